//! Faults: an apply killed while it holds the locks, Ctrl-C at the prompt and
//! during an apply. Each starts geartopo itself (not through `Ctx::geartopo`) so
//! that it can signal it at a known point: the test-only pause of builds with the
//! `testing` feature (`GEARTOPO_TEST_PAUSE_AT`, src/apply/pause.rs) says where it
//! stopped and its pid on stderr.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};

pub(crate) fn server(name: &str, node: &str, port: u16, host_port: u16) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"tcp\", \"{port}\", \"{name}\"]\n\
         publish = [{{ port = {port}, host_port = {host_port} }}]\n\n"
    )
}

/// A geartopo started in the lab's control namespace, its stderr read line by
/// line as it comes.
pub(crate) struct Started {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Vec<String>,
    stdout: std::thread::JoinHandle<String>,
}

/// Starts `geartopo ARGS` as `lab exec` would, with `env`, stdin `stdin`, in a
/// process group of its own (SIGINT at its default: LAB-NOTES, "Testing Ctrl-C").
pub(crate) fn start(ctx: &Ctx, args: &[&str], env: &[(&str, &str)], stdin: Stdio) -> Started {
    let lab = ctx.lab.display().to_string();
    let bin = ctx.bin.display().to_string();
    let mut cmd = Command::new(&ctx.bin);
    cmd.args(["lab", "exec", &lab, "--", &bin])
        .args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn geartopo");
    let err = child.stderr.take().unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    Started {
        child,
        lines,
        stderr: Vec::new(),
        stdout,
    }
}

impl Started {
    /// Waits for the pause at `point`; the pid of the paused geartopo.
    pub(crate) fn paused_at(&mut self, point: &str) -> Result<i32, String> {
        let marker = format!("geartopo-test: paused at {point} (pid ");
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| format!("no pause at {point}; stderr:\n{}", self.stderr.join("\n")))?;
            self.stderr.push(line.clone());
            if let Some(rest) = line.strip_prefix(&marker) {
                return rest
                    .trim_end_matches(')')
                    .parse()
                    .map_err(|_| format!("no pid in {line}"));
            }
        }
    }

    /// Waits for the end: (exit status of `lab exec`, stdout, stderr).
    pub(crate) fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let status = self.child.wait().expect("wait");
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.stderr.push(line);
        }
        let stdout = self.stdout.join().unwrap_or_default();
        (status, stdout, self.stderr.join("\n"))
    }
}

pub(crate) fn signal(pid: i32, sig: libc::c_int) {
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Whether node's apply lock directory exists.
pub(crate) fn lock_present(ctx: &Ctx, node: &str) -> Result<bool, String> {
    let run = ctx.on_node(
        node,
        r#"test -d "${GEARTOPO_RUN_DIR:-/run/geartopo}/apply.lock" && echo present || echo absent"#,
    );
    Ok(run.ok()?.stdout.trim() == "present")
}

pub(crate) fn file_arg(file: &Path) -> String {
    file.display().to_string()
}

/// An apply killed with SIGKILL while it holds every lock: the next apply refuses,
/// names the lock as stale and force-unlock as the fix; force-unlock asks (and
/// without a yes removes nothing), removes with --yes, says so when there is
/// nothing left; then apply converges.
pub fn killed_apply_leaves_a_stale_lock(ctx: &Ctx) -> Outcome {
    let name = "e2e-killed";
    let file = ctx.topology(name, &server("s", "node2", 7701, 51701));
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "after-lock"),
            ("GEARTOPO_TEST_PAUSE_MS", "60000"),
        ],
        Stdio::null(),
    );
    let pid = apply.paused_at("after-lock")?;
    signal(pid, libc::SIGKILL);
    // `lab exec` reaps it: no zombie keeps its pid alive.
    let _ = apply.finish();
    ensure!(lock_present(ctx, "node2")?, "the killed apply left no lock");
    let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
    ensure!(
        run.stderr.contains("STALE") && run.stderr.contains("holder is gone"),
        "the lock is not reported stale:\n{}",
        run.describe()
    );
    ensure!(
        run.stderr
            .contains(&format!("geartopo force-unlock {f} --node node2")),
        "the fix is not named:\n{}",
        run.describe()
    );
    ensure!(
        ctx.containers_of("node2", name)?.is_empty(),
        "something was created under a lock"
    );
    ensure!(
        lock_present(ctx, "node2")?,
        "a stale lock went away by itself"
    );
    // Without a yes: shown, nothing removed.
    let run = ctx
        .geartopo(&["force-unlock", &f, "--node", "node2"])
        .expect(1)?;
    ensure!(
        run.stdout
            .contains("node2: locked by geartopo apply of e2e-killed")
            && run.stdout.contains("STALE")
            && run.stdout.contains("nothing was removed"),
        "force-unlock without yes:\n{}",
        run.describe()
    );
    ensure!(lock_present(ctx, "node2")?, "removed without a yes");
    let run = ctx.geartopo(&["force-unlock", &f, "--yes"]).ok()?;
    ensure!(
        run.stdout.contains("node2: lock removed"),
        "force-unlock --yes:\n{}",
        run.describe()
    );
    for (node, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, node)?, "{node} still locked");
    }
    let run = ctx.geartopo(&["force-unlock", &f, "--yes"]).ok()?;
    ensure!(
        run.stdout.contains("No lock to remove."),
        "{}",
        run.describe()
    );
    ctx.apply(&file)?;
    ctx.plan(&file).ok()?;
    Ok(())
}

/// Ctrl-C at the confirmation prompt (SIGINT to the foreground group, as a
/// terminal sends it): nothing changed, no lock left.
pub fn ctrl_c_at_the_prompt_changes_nothing(ctx: &Ctx) -> Outcome {
    let name = "e2e-prompt";
    let file = ctx.topology(name, &server("s", "node3", 7702, 51702));
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let apply = start(ctx, &["apply", &f], &[], Stdio::piped());
    // The prompt is printed once the plan is made: wait until a plan shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pgid = apply.child.id() as i32;
    let mut waited = false;
    while std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        // The plan is read with no lock; the prompt follows at once.
        let stat = std::fs::read_to_string(format!("/proc/{pgid}/stat")).unwrap_or_default();
        if stat.is_empty() {
            break;
        }
        // Children of `lab exec`, down to geartopo: all blocked on the prompt's read.
        if prompt_waiting(pgid) {
            waited = true;
            break;
        }
    }
    ensure!(waited, "apply never reached the prompt");
    signal(-pgid, libc::SIGINT);
    let (status, stdout, stderr) = apply.finish();
    ensure!(
        stdout.contains("Enter a value:")
            && !stdout.contains("Apply complete")
            && !stdout.contains("Apply cancelled")
            && !stdout.contains("Apply failed"),
        "after Ctrl-C at the prompt ({status:?}):\n{stdout}\n{stderr}"
    );
    ensure!(
        ctx.containers_of("node3", name)?.is_empty(),
        "Ctrl-C at the prompt created something"
    );
    for (node, _) in &ctx.nodes {
        ensure!(
            !lock_present(ctx, node)?,
            "{node} locked after Ctrl-C at the prompt"
        );
    }
    ensure!(ctx.plan(&file).code == 2, "the plan still shows the change");
    Ok(())
}

/// Whether the deepest process under `pid` is blocked reading its stdin (the
/// prompt): its wchan names a read of a pipe.
fn prompt_waiting(pid: i32) -> bool {
    let mut leaf = pid;
    loop {
        let children = std::fs::read_to_string(format!("/proc/{leaf}/task/{leaf}/children"))
            .unwrap_or_default();
        match children
            .split_whitespace()
            .next()
            .and_then(|c| c.parse().ok())
        {
            Some(c) => leaf = c,
            None => break,
        }
    }
    if leaf == pid {
        return false;
    }
    // geartopo's stdin is the pipe this test keeps open and never writes: the
    // one place it blocks on it is the prompt.
    let wchan = std::fs::read_to_string(format!("/proc/{leaf}/wchan")).unwrap_or_default();
    let syscall = std::fs::read_to_string(format!("/proc/{leaf}/syscall")).unwrap_or_default();
    // read(2) is syscall 0 on x86_64, on fd 0.
    wchan.contains("pipe_read") || syscall.starts_with("0 0x0 ")
}

/// SIGINT in the middle of an apply: the running step finishes, no other starts,
/// the locks are released, the report says what was done and what was
/// interrupted (exit 1); the next plan works and the next apply converges.
pub fn sigint_mid_apply_stops_in_good_order(ctx: &Ctx) -> Outcome {
    let name = "e2e-sigint";
    let file = ctx.topology(name, &server("s", "node4", 7703, 51703));
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "step"),
            ("GEARTOPO_TEST_PAUSE_MS", "1500"),
        ],
        Stdio::null(),
    );
    let pid = apply.paused_at("step")?;
    signal(pid, libc::SIGINT);
    let (status, stdout, stderr) = apply.finish();
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains("Apply interrupted.")
            && stdout.contains("done        node4: create e2e-sigint-s")
            && stdout.contains("not started node4: start e2e-sigint-s (interrupted)"),
        "the report:\n{all}"
    );
    ensure!(
        stderr.contains("interrupted: running steps finish"),
        "nothing said about the interrupt:\n{all}"
    );
    for (node, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, node)?, "{node} still locked:\n{all}");
    }
    ensure!(
        ctx.plan(&file).code == 2,
        "the plan after the interrupt does not show the rest"
    );
    ctx.apply(&file)?;
    ctx.plan(&file).ok()?;
    ensure!(
        ctx.containers_of("node4", name)?.len() == 1,
        "duplicate containers after the interrupted apply"
    );
    Ok(())
}

/// With `--auto-approve` the read takes the locks: a SIGINT between that read and
/// the first step (paused there) ends the run with nothing changed, every step
/// "not started (interrupted)", and no lock left on any node.
pub fn sigint_after_the_locked_read_changes_nothing(ctx: &Ctx) -> Outcome {
    let name = "e2e-sigread";
    let file = ctx.topology(name, &server("s", "node2", 7705, 51705));
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "after-locked-read"),
            // The pause sleeps on through the signal: long enough to look at
            // the lock, no longer.
            ("GEARTOPO_TEST_PAUSE_MS", "5000"),
        ],
        Stdio::null(),
    );
    let pid = apply.paused_at("after-locked-read")?;
    ensure!(
        lock_present(ctx, "node2")?,
        "the read under --auto-approve took no lock"
    );
    signal(pid, libc::SIGINT);
    let (status, stdout, stderr) = apply.finish();
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains("Apply interrupted.")
            && stdout.contains("not started node2: create e2e-sigread-s (interrupted)")
            && !stdout.contains("  done "),
        "the report:\n{all}"
    );
    ensure!(
        ctx.containers_of("node2", name)?.is_empty(),
        "something was created after the interrupt:\n{all}"
    );
    for (node, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, node)?, "{node} still locked:\n{all}");
    }
    ctx.apply(&file)?;
    ctx.plan(&file).ok()?;
    Ok(())
}

/// A second SIGINT exits at once (130), naming the nodes whose locks may remain;
/// they do remain, force-unlock removes them, and apply converges.
pub fn second_sigint_exits_at_once(ctx: &Ctx) -> Outcome {
    let name = "e2e-sigint2";
    let file = ctx.topology(name, &server("s", "node3", 7704, 51704));
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "step"),
            ("GEARTOPO_TEST_PAUSE_MS", "60000"),
        ],
        Stdio::null(),
    );
    let pid = apply.paused_at("step")?;
    signal(pid, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(pid, libc::SIGINT);
    let (status, stdout, stderr) = apply.finish();
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(130), "exit status:\n{all}");
    ensure!(
        stderr.contains("interrupted again")
            && stderr.contains("node1, node2, node3, node4")
            && stderr.contains(&format!("geartopo force-unlock {f}")),
        "the locks that may remain are not named:\n{all}"
    );
    ensure!(lock_present(ctx, "node3")?, "no lock left:\n{all}");
    ctx.geartopo(&["force-unlock", &f, "--yes"]).ok()?;
    ctx.apply(&file)?;
    ctx.plan(&file).ok()?;
    Ok(())
}
