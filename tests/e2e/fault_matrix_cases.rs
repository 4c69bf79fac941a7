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

/// The checks every row ends with: the next apply converges (after force-unlock
/// where the design says so, done by the row), the plan shows no change, one
/// container per name, no lock and no script left on any node.
fn converges(ctx: &Ctx, file: &std::path::Path, name: &str, node: &str) -> Outcome {
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
    let file = ctx.topology(name, &server("s", node, 7711, 51711));
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
    let file = ctx.topology(name, &server("s", node, 7712, 51712));
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
/// next apply converges without a duplicate.
fn killed_after(ctx: &Ctx, kind: &str, name: &str, node: &str, port: u16) -> Outcome {
    let file = ctx.topology(name, &server("s", node, port, port + 44000));
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
    ensure!(lock_present(ctx, node)?, "no lock left after SIGKILL");
    ctx.geartopo(&["apply", &f, "--auto-approve"]).expect(1)?;
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
