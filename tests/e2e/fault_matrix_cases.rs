//! The fault matrix (docs/faults.md): each row a real fault in the lab (a remote
//! command that hangs past `--command-timeout`, a node partitioned by dropping its
//! SSH packets inside its namespace, apply killed after each kind of step, ...),
//! and the same checks after each: nothing foreign changed, no duplicate
//! container, locks as designed, and the next apply converges to a plan with no
//! change. Test-only injection points of builds with the `testing` feature:
//! `GEARTOPO_TEST_PAUSE_AT=after-KIND`, `GEARTOPO_TEST_HANG_AFTER=KIND`
//! (src/apply/pause.rs).

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::ensure;
use crate::fault_cases::{file_arg, lock_present, server, signal, start};
use crate::harness::{Ctx, Guard, Outcome};

thread_local! {
    /// `foreign` as the running row found it when it began (`row`).
    static BEFORE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Begins a row: writes its topology and records what it must not change.
fn row(ctx: &Ctx, name: &str, body: &str) -> Result<std::path::PathBuf, String> {
    let file = ctx.topology(name, body);
    let before = foreign(ctx, name)?;
    BEFORE.with(|b| *b.borrow_mut() = before);
    Ok(file)
}

/// How many `sleep 3600` (the injected hang) run in `node`'s network namespace.
fn hanging(ctx: &Ctx, node: &str) -> Result<usize, String> {
    let run = ctx.on_node(
        node,
        r#"me=$(readlink /proc/self/ns/net); n=0
for p in $(pgrep -x sleep); do
  if [ "$(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)" = "sleep 3600 " ] && [ "$(readlink /proc/$p/ns/net)" = "$me" ]; then n=$((n+1)); fi
done; echo $n"#,
    );
    run.ok()?
        .stdout
        .trim()
        .parse()
        .map_err(|e| format!("count of hanging scripts: {e}"))
}

/// The supervised scripts' pid files left on `node`.
fn pid_files(ctx: &Ctx, node: &str) -> Result<String, String> {
    let run = ctx.on_node(
        node,
        r#"ls "${GEARTOPO_RUN_DIR:-/run/geartopo}/scripts" 2>/dev/null | grep '\.pid$' || true"#,
    );
    Ok(run.ok()?.stdout.trim().to_string())
}

/// What geartopo does not own on the lab's nodes, as a row finds it: every
/// container of another topology (id, name, state) and each node's own INPUT and
/// OUTPUT rules (geartopo never writes the node's namespace).
fn foreign(ctx: &Ctx, name: &str) -> Result<String, String> {
    let mut out = String::new();
    for (node, _) in &ctx.nodes {
        let rt = ctx.runtime(node);
        let run = ctx.on_node(
            node,
            &format!(
                "{rt} ps -a --format '{{{{.ID}}}} {{{{.Names}}}} {{{{.State}}}}' | grep -v ' {name}-' || true; iptables -w -S INPUT; iptables -w -S OUTPUT"
            ),
        );
        out.push_str(&format!("{node}:\n{}", run.ok()?.stdout));
    }
    Ok(out)
}

/// The checks every row ends with: the next apply converges (after force-unlock
/// where the design says so, done by the row), the plan shows no change, one
/// container per name, no lock and no script left on any node, and nothing
/// geartopo does not own changed since `before` (`foreign`).
fn converges(ctx: &Ctx, file: &std::path::Path, name: &str, node: &str) -> Outcome {
    let before = BEFORE.with(|b| b.borrow().clone());
    ensure!(
        foreign(ctx, name)? == before,
        "something geartopo does not own changed:\nbefore:\n{before}\nnow:\n{}",
        foreign(ctx, name)?
    );
    ctx.apply(file)?;
    ctx.plan(file).ok()?;
    let containers = ctx.containers_of(node, name)?;
    ensure!(
        containers.len() == 1,
        "not exactly one container: {containers:?}"
    );
    for (n, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, n)?, "{n} still locked");
    }
    ensure!(
        pid_files(ctx, node)?.is_empty(),
        "pid files left on {node}: {}",
        pid_files(ctx, node)?
    );
    Ok(())
}

/// A remote command that hangs past `--command-timeout`: geartopo ends it on the
/// node through its pid file (no process left), releases the lock, reports the
/// step as timed out; the next apply converges.
pub fn hang_past_the_command_timeout_is_ended(ctx: &Ctx) -> Outcome {
    let name = "e2e-hang";
    let node = "node2";
    let file = row(ctx, name, &server("s", node, 7711, 51711))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let began = Instant::now();
    let apply = start(
        ctx,
        &["apply", &f, "--auto-approve", "--command-timeout", "8s"],
        &[("GEARTOPO_TEST_HANG_AFTER", "create")],
        Stdio::null(),
    );
    let (status, stdout, stderr) = apply.finish();
    let took = began.elapsed();
    let all = format!("[{status:?} after {took:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains("command timed out after 8s; its processes on the node were ended")
            && stdout.contains(&format!("not started {node}: start {name}-s")),
        "the report:\n{all}"
    );
    ensure!(took < Duration::from_secs(60), "took too long:\n{all}");
    ensure!(
        hanging(ctx, node)? == 0,
        "the hung script still runs:\n{all}"
    );
    ensure!(!lock_present(ctx, node)?, "lock left:\n{all}");
    converges(ctx, &file, name, node)
}

/// Drops a node's SSH packets inside its namespace until dropped (a partition
/// that the operator would see as a node that stopped answering).
struct Partition<'a> {
    ctx: &'a Ctx,
    node: String,
}

const PARTITION_RULES: [&str; 2] = [
    "INPUT -p tcp --dport 22 -j DROP",
    "OUTPUT -p tcp --sport 22 -j DROP",
];

impl<'a> Partition<'a> {
    fn new(ctx: &'a Ctx, node: &str) -> Result<Partition<'a>, String> {
        for rule in PARTITION_RULES {
            ctx.on_node(node, &format!("iptables -w -I {rule}")).ok()?;
        }
        Ok(Partition {
            ctx,
            node: node.to_string(),
        })
    }
}

impl Drop for Partition<'_> {
    fn drop(&mut self) {
        for rule in PARTITION_RULES {
            let _ = self
                .ctx
                .on_node(&self.node, &format!("iptables -w -D {rule}"));
        }
    }
}

/// A remote command hangs and then its node is partitioned: the script cannot be
/// ended, so the lock stays on that node (every other lock is released) and the
/// report names the pid file; once the node answers again, force-unlock shows
/// the script's processes, ends them with the lock, and apply converges.
pub fn partitioned_during_a_hang_keeps_the_lock_and_force_unlock_ends_it(ctx: &Ctx) -> Outcome {
    let name = "e2e-part";
    let node = "node3";
    let file = row(ctx, name, &server("s", node, 7712, 51712))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    // Whatever happens below, no lock or script of this row outlives it.
    struct Unlock<'a>(&'a Ctx, String);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            let _ = self.0.geartopo(&["force-unlock", &self.1, "--yes"]);
        }
    }
    let _unlock = Unlock(ctx, f.clone());
    let apply = start(
        ctx,
        &["apply", &f, "--auto-approve", "--command-timeout", "8s"],
        &[("GEARTOPO_TEST_HANG_AFTER", "create")],
        Stdio::null(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while hanging(ctx, node)? == 0 {
        ensure!(Instant::now() < deadline, "the injected hang never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let partition = Partition::new(ctx, node)?;
    let (status, stdout, stderr) = apply.finish();
    drop(partition);
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains("could not be ended") && stdout.contains("/scripts/"),
        "the pid file is not named:\n{all}"
    );
    ensure!(
        stderr.contains(&format!("could not release the lock on node {node}")),
        "the lock left is not said:\n{all}"
    );
    ensure!(lock_present(ctx, node)?, "the lock went:\n{all}");
    for (n, _) in &ctx.nodes {
        ensure!(n == node || !lock_present(ctx, n)?, "{n} still locked");
    }
    ensure!(hanging(ctx, node)? == 1, "the hung script is not running");
    let run = ctx
        .geartopo(&["force-unlock", &f, "--node", node])
        .expect(1)?;
    ensure!(
        run.stdout.contains("a geartopo script still runs there")
            && run.stdout.contains("sleep 3600"),
        "force-unlock does not show the script:\n{}",
        run.describe()
    );
    ensure!(hanging(ctx, node)? == 1, "ended without a yes");
    let run = ctx
        .geartopo(&["force-unlock", &f, "--node", node, "--yes"])
        .ok()?;
    ensure!(
        run.stdout.contains("ended process group") && run.stdout.contains("lock removed"),
        "force-unlock --yes:\n{}",
        run.describe()
    );
    ensure!(hanging(ctx, node)? == 0, "the script outlived force-unlock");
    converges(ctx, &file, name, node)
}

/// Apply killed with SIGKILL right after a step of `kind`, on a topology whose
/// apply has every kind: the lock stays (stale), force-unlock removes it, and the
/// next apply converges without a duplicate; after `start`, the node's last
/// step, which carries the release of its lock, nothing is left at all.
fn killed_after(ctx: &Ctx, kind: &str, name: &str, node: &str, port: u16) -> Outcome {
    let file = row(ctx, name, &server("s", node, port, port + 44000))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    if kind == "remove" || kind == "init" {
        // Something to remove (a replace) or to init (an update of a stopped
        // container): a first apply, then a change of image command.
        ctx.apply(&file)?;
        if kind == "init" {
            let rt = ctx.runtime(node);
            ctx.on_node(
                node,
                &format!("{rt} stop -t 0 $({rt} ps -aq --filter label=geartopo.topology={name})"),
            )
            .ok()?;
        } else {
            let body = server("s", node, port, port + 44000).replace("\"s\"]", "\"s2\"]");
            ctx.topology(name, &body);
        }
    }
    let point = format!("after-{kind}");
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", point.as_str()),
            ("GEARTOPO_TEST_PAUSE_MS", "60000"),
        ],
        Stdio::null(),
    );
    let pid = apply.paused_at(&point)?;
    signal(pid, libc::SIGKILL);
    let _ = apply.finish();
    if kind == "start" {
        // The node's last step carried the release of its lock, and the nodes
        // with nothing to do were released as the steps started: killed after
        // it, nothing is left, and the next apply has nothing to do.
        for (n, _) in &ctx.nodes {
            ensure!(
                !lock_present(ctx, n)?,
                "{n}: a lock left after the last step, which releases it"
            );
        }
        let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).ok()?;
        ensure!(
            run.stdout.contains("No changes"),
            "the apply after the kill:\n{}",
            run.describe()
        );
        return converges(ctx, &file, name, node);
    }
    ensure!(lock_present(ctx, node)?, "no lock left after SIGKILL");
    // Refused on the stale lock, with nothing changed.
    let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
    ensure!(
        run.stderr.contains("STALE"),
        "the apply after the kill:\n{}",
        run.describe()
    );
    ensure!(lock_present(ctx, node)?, "the stale lock went by itself");
    ctx.geartopo(&["force-unlock", &f, "--yes"]).ok()?;
    converges(ctx, &file, name, node)
}

pub fn killed_after_create(ctx: &Ctx) -> Outcome {
    killed_after(ctx, "create", "e2e-kcreate", "node1", 7721)
}
pub fn killed_after_init(ctx: &Ctx) -> Outcome {
    killed_after(ctx, "init", "e2e-kinit", "node2", 7722)
}
pub fn killed_after_rules(ctx: &Ctx) -> Outcome {
    killed_after(ctx, "rules", "e2e-krules", "node3", 7723)
}
pub fn killed_after_start(ctx: &Ctx) -> Outcome {
    killed_after(ctx, "start", "e2e-kstart", "node4", 7724)
}
pub fn killed_after_remove(ctx: &Ctx) -> Outcome {
    killed_after(ctx, "remove", "e2e-kremove", "node1", 7725)
}

/// Partial reachability: with a node's SSH packets dropped, a plan of the whole
/// topology fails naming that node, while `--target` of a container that needs
/// nothing there reads only its own node (the others not contacted) and applies;
/// once the node answers again, the whole topology converges.
pub fn an_unreachable_node_blocks_only_what_needs_it(ctx: &Ctx) -> Outcome {
    let name = "e2e-reach";
    let body = server("a", "node1", 7731, 51731) + &server("b", "node3", 7732, 51732);
    let file = row(ctx, name, &body)?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let partition = Partition::new(ctx, "node3")?;
    let run = ctx
        .geartopo(&["plan", &f, "--connect-timeout", "3"])
        .expect(1)?;
    ensure!(
        run.stderr.contains("node3"),
        "the unreachable node is not named:\n{}",
        run.describe()
    );
    let run = ctx
        .geartopo(&[
            "apply",
            &f,
            "--auto-approve",
            "--target",
            "a",
            "--connect-timeout",
            "3",
        ])
        .ok()?;
    ensure!(
        run.stderr
            .contains("--target needs only node1; not contacted: node2, node3, node4, node5"),
        "{}",
        run.describe()
    );
    ensure!(
        ctx.containers_of("node1", name)?.len() == 1,
        "a not created"
    );
    let run = ctx.geartopo(&["plan", &f, "--target", "a", "--detailed-exitcode"]);
    ensure!(
        run.code == 0,
        "targeted plan after apply:\n{}",
        run.describe()
    );
    ensure!(!lock_present(ctx, "node1")?, "node1 still locked");
    drop(partition);
    converges(ctx, &file, name, "node3")
}

/// A server on `server_node` and a client on `client_node` linked to it.
fn linked(name: &str, server_node: &str, client_node: &str, port: u16) -> String {
    server("s", server_node, port, port + 44000)
        + &format!(
            "[containers.c]\nnode = \"{client_node}\"\nimage = \"{}\"\ncommand = [\"sleep\", \"inf\"]\nlinks = [{{ to = \"s:{port}\" }}]\n\n",
            crate::harness::IMAGE
        )
        + &format!("# {name}\n")
}

/// The owned nat chains of the client and the jump into them, once each.
fn client_rules_in_place(ctx: &Ctx, node: &str, name: &str) -> Outcome {
    let nat = ctx.container_nat(node, &format!("{name}-c"))?;
    let jumps = nat
        .lines()
        .filter(|l| *l == "-A OUTPUT -j GEARTOPO-OUTPUT")
        .count();
    ensure!(jumps == 1, "{jumps} jumps into GEARTOPO-OUTPUT:\n{nat}");
    ensure!(
        nat.lines()
            .any(|l| l.starts_with("-A GEARTOPO-OUTPUT") && l.contains("DNAT")),
        "no link rule:\n{nat}"
    );
    Ok(())
}

/// The nat table flushed by hand inside a container: plan shows the drift, the
/// next apply puts the owned chains and the jump back (once), nothing else.
pub fn nat_flushed_inside_a_container_is_restored(ctx: &Ctx) -> Outcome {
    let name = "e2e-flush";
    let file = row(ctx, name, &linked(name, "node1", "node2", 7741))?;
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    client_rules_in_place(ctx, "node2", name)?;
    let pid = ctx.container_pid("node2", &format!("{name}-c"))?;
    ctx.on_node(
        "node2",
        &format!("nsenter -t {pid} -n iptables -w -t nat -F"),
    )
    .ok()?;
    ensure!(
        ctx.plan(&file).code == 2,
        "the flushed rules are not planned"
    );
    converges(ctx, &file, name, "node2")?;
    client_rules_in_place(ctx, "node2", name)
}

/// A container removed by hand (`podman rm -f`): the plan creates it again, and
/// the apply converges with one container and its links in place.
pub fn container_removed_by_hand_is_created_again(ctx: &Ctx) -> Outcome {
    let name = "e2e-rmhand";
    let file = row(ctx, name, &linked(name, "node3", "node4", 7742))?;
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let rt = ctx.runtime("node4");
    ctx.on_node("node4", &format!("{rt} rm -f {name}-c >/dev/null"))
        .ok()?;
    ensure!(
        ctx.plan(&file).code == 2,
        "the removed container is not planned"
    );
    converges(ctx, &file, name, "node4")?;
    client_rules_in_place(ctx, "node4", name)
}

/// An image no node has and no registry serves: the step fails naming it, no
/// container is left half-made, the locks are released; once the file names an
/// image that exists, apply converges.
pub fn missing_image_fails_cleanly(ctx: &Ctx) -> Outcome {
    let name = "e2e-noimg";
    let body = server("s", "node2", 7743, 51743)
        .replace(crate::harness::IMAGE, "localhost/geartopo-no-such-image:1");
    let file = row(ctx, name, &body)?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
    ensure!(
        run.stdout.contains("FAILED") && run.stdout.contains("geartopo-no-such-image"),
        "the failure does not name the image:\n{}",
        run.describe()
    );
    ensure!(
        ctx.containers_of("node2", name)?.is_empty(),
        "a container was left behind"
    );
    for (n, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, n)?, "{n} still locked");
    }
    ctx.topology(name, &server("s", "node2", 7743, 51743));
    converges(ctx, &file, name, "node2")
}

/// A listener of another owner, started by the test in `node`'s namespace on
/// `port`; stopped (by its pid) when dropped.
struct Foreign<'a> {
    ctx: &'a Ctx,
    node: String,
    pid: String,
}

impl<'a> Foreign<'a> {
    fn listen(ctx: &'a Ctx, node: &str, port: u16) -> Result<Foreign<'a>, String> {
        let run = ctx
            .on_node(
                node,
                &format!("setsid socat TCP-LISTEN:{port},reuseaddr,fork /dev/null </dev/null >/dev/null 2>&1 & echo $!"),
            )
            .ok()?;
        let pid = run.stdout.trim().to_string();
        ensure!(
            pid.bytes().all(|b| b.is_ascii_digit()),
            "no pid: {}",
            run.describe()
        );
        std::thread::sleep(Duration::from_millis(300));
        Ok(Foreign {
            ctx,
            node: node.to_string(),
            pid,
        })
    }

    fn alive(&self) -> bool {
        std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

impl Drop for Foreign<'_> {
    fn drop(&mut self) {
        let _ = self.ctx.on_node(&self.node, &format!("kill {}", self.pid));
    }
}

/// A host port taken by another owner: before the plan, the plan refuses naming
/// node and port and nothing is changed; taken between lock and create (the
/// apply paused after the lock), the runtime's failure or success is reported as
/// it is, the foreign listener is untouched, and once it is gone apply converges.
pub fn host_port_taken_by_another_owner(ctx: &Ctx) -> Outcome {
    let name = "e2e-porttaken";
    let node = "node1";
    let file = row(ctx, name, &server("s", node, 7744, 51744))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    {
        let foreign = Foreign::listen(ctx, node, 51744)?;
        let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
        ensure!(
            run.stderr.contains("51744") && run.stderr.contains(node),
            "the taken port is not named:\n{}",
            run.describe()
        );
        ensure!(ctx.containers_of(node, name)?.is_empty(), "created anyway");
        ensure!(foreign.alive(), "the foreign listener was touched");
    }
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "after-lock"),
            ("GEARTOPO_TEST_PAUSE_MS", "3000"),
        ],
        Stdio::null(),
    );
    apply.paused_at("after-lock")?;
    let foreign = Foreign::listen(ctx, node, 51744)?;
    let (status, stdout, stderr) = apply.finish();
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(foreign.alive(), "the foreign listener was touched:\n{all}");
    ensure!(
        ctx.containers_of(node, name)?.len() <= 1,
        "duplicate containers:\n{all}"
    );
    for (n, _) in &ctx.nodes {
        ensure!(!lock_present(ctx, n)?, "{n} still locked:\n{all}");
    }
    drop(foreign);
    converges(ctx, &file, name, node)
}

/// A node partitioned in the middle of an apply (its SSH packets dropped inside
/// its namespace while a step waits to start): that node's step fails with the
/// time-out, its lock cannot be released (the node is not reachable) and stays;
/// once the node answers again, force-unlock removes it and apply converges.
pub fn partitioned_mid_apply(ctx: &Ctx) -> Outcome {
    let name = "e2e-midpart";
    let node = "node4";
    let file = row(ctx, name, &server("s", node, 7745, 51745))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    struct Unlock<'a>(&'a Ctx, String);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            let _ = self.0.geartopo(&["force-unlock", &self.1, "--yes"]);
        }
    }
    let _unlock = Unlock(ctx, f.clone());
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve", "--command-timeout", "8s"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "step"),
            ("GEARTOPO_TEST_PAUSE_MS", "2000"),
        ],
        Stdio::null(),
    );
    apply.paused_at("step")?;
    let partition = Partition::new(ctx, node)?;
    let (status, stdout, stderr) = apply.finish();
    drop(partition);
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains(&format!("FAILED      {node}")) && stdout.contains("timed out"),
        "the report:\n{all}"
    );
    ensure!(
        stderr.contains(&format!("could not release the lock on node {node}")),
        "the lock left is not said:\n{all}"
    );
    ensure!(lock_present(ctx, node)?, "no lock left:\n{all}");
    ensure!(
        ctx.containers_of(node, name)?.len() <= 1,
        "duplicate containers:\n{all}"
    );
    ctx.geartopo(&["force-unlock", &f, "--node", node, "--yes"])
        .ok()?;
    converges(ctx, &file, name, node)
}

/// The lab's layout (the harness names the lab after its own pid).
fn layout() -> geartopo::lab::Layout {
    geartopo::lab::Layout::new(
        std::path::Path::new(geartopo::lab::LAB_ROOT),
        &format!("e2e-{}", std::process::id()),
    )
}

/// Kills `node`'s sshd (by its pid file) and the per-connection sshd processes
/// it started (its children, found through /proc): the node stops answering SSH
/// and every open connection to it drops.
fn kill_sshd(node: &str) -> Result<(), String> {
    let pid_file = layout().node(node).sshd_pid();
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{}: {e}", pid_file.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("{}: {e}", pid_file.display()))?;
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    signal(pid, libc::SIGKILL);
    for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        signal(child, libc::SIGKILL);
    }
    Ok(())
}

/// Starts `node`'s sshd again, as `lab up` does (unless it runs).
fn start_sshd(node: &str) -> Outcome {
    let layout = layout();
    let running = std::fs::read_to_string(layout.node(node).sshd_pid())
        .ok()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .is_some_and(|p| std::path::Path::new(&format!("/proc/{p}/exe")).exists());
    if running {
        return Ok(());
    }
    let config = layout.node(node).sshd_config();
    let status = std::process::Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", layout.node_ns(node)))
        .arg("/usr/sbin/sshd")
        .arg("-f")
        .arg(&config)
        .status()
        .map_err(|e| format!("sshd: {e}"))?;
    ensure!(status.success(), "sshd did not start: {status:?}");
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// A node's sshd killed in the middle of an apply (with its connections): that
/// node's step fails as unreachable, the others' finish, the lock on it cannot be
/// released and stays; with sshd back, force-unlock removes it (the holder is
/// gone: stale) and apply converges.
pub fn sshd_killed_mid_apply(ctx: &Ctx) -> Outcome {
    let name = "e2e-sshdkill";
    let node = "node2";
    let file = row(ctx, name, &linked(name, node, "node3", 7746))?;
    let _guard = Guard::new(ctx, &file, name);
    let f = file_arg(&file);
    struct Restore<'a>(&'a Ctx, String, &'static str);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = start_sshd(self.2);
            let _ = self.0.geartopo(&["force-unlock", &self.1, "--yes"]);
        }
    }
    let mut apply = start(
        ctx,
        &["apply", &f, "--auto-approve", "--command-timeout", "8s"],
        &[
            ("GEARTOPO_TEST_PAUSE_AT", "step"),
            ("GEARTOPO_TEST_PAUSE_MS", "2000"),
        ],
        Stdio::null(),
    );
    apply.paused_at("step")?;
    let restore = Restore(ctx, f.clone(), node);
    kill_sshd(node)?;
    let (status, stdout, stderr) = apply.finish();
    let all = format!("[{status:?}]\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    ensure!(status.code() == Some(1), "exit status:\n{all}");
    ensure!(
        stdout.contains(&format!("FAILED      {node}")),
        "the report:\n{all}"
    );
    ensure!(
        stderr.contains(&format!("could not release the lock on node {node}")),
        "the lock left is not said:\n{all}"
    );
    start_sshd(node)?;
    ensure!(lock_present(ctx, node)?, "no lock left:\n{all}");
    for (n, _) in &ctx.nodes {
        ensure!(
            n == node || !lock_present(ctx, n)?,
            "{n} still locked:\n{all}"
        );
    }
    let run = ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
    ensure!(run.stderr.contains("STALE"), "{}", run.describe());
    ctx.geartopo(&["force-unlock", &f, "--node", node, "--yes"])
        .ok()?;
    drop(restore);
    converges(ctx, &file, name, node)?;
    ensure!(
        ctx.containers_of("node3", name)?.len() == 1,
        "not one client container"
    );
    Ok(())
}
