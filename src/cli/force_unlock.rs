//! `geartopo force-unlock FILE [--node NAME]... [--yes]` (terraform's word): shows
//! who holds each node's apply lock, asks, and removes the locks. For the lock of
//! an apply that was killed (SIGKILL, a crash, a lost machine); geartopo never
//! removes a lock by itself, since only the operator can know that no apply is
//! still running against the node (docs/design-notes.md).

use std::path::PathBuf;

use std::io::Write;

use anyhow::Result;

use super::session::{load, Session};
use crate::node::lock::{staleness, start_ticks, HeldLock, Local, Staleness};
use crate::node::script::supervise::parse_running;
use crate::node::{Connections, NodeOp};
use crate::text::escape_controls;

#[derive(Debug, clap::Args)]
pub struct ForceUnlockArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Only this node's lock (repeat for more; default: every node of the topology).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// Remove without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run(args: ForceUnlockArgs) -> Result<i32> {
    let path = super::topology_path(args.file.clone());
    let (mut topology, graph, source) = load(&path)?;
    super::known_nodes(&topology, &args.nodes, &path)?;
    // Only the nodes asked for need to be reachable.
    if !args.nodes.is_empty() {
        topology.nodes.retain(|n, _| args.nodes.contains(n));
    }
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let yes = args.yes;
    let mut ask = |question: &str| -> Result<bool> { Ok(yes || super::apply::confirm(question)?) };
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let done = unlock_nodes(
        &mut session.conns,
        &Local::read(),
        &mut ask,
        &mut out,
        &mut err,
    )?;
    Ok(if done { 0 } else { 1 })
}

/// Shows the lock of each node in `conns`, asks once (`ask`), removes each lock
/// shown if it is still the same; true when nothing failed and nothing was
/// declined.
pub fn unlock_nodes(
    conns: &mut Connections,
    local: &Local,
    ask: &mut dyn FnMut(&str) -> Result<bool>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool> {
    let mut held: Vec<(usize, HeldLock)> = Vec::new();
    let mut failed = false;
    for (i, conn) in conns.iter_mut().enumerate() {
        let node = conn.node().to_string();
        let read = conn.run(&[NodeOp::ReadLock])?;
        if !read.success() {
            writeln!(
                err,
                "error: node {node}: cannot read the lock (exit {}): {}",
                read.status,
                read.stderr_str().trim()
            )?;
            failed = true;
            continue;
        }
        match HeldLock::parse(&read.stdout_str()) {
            None => writeln!(out, "{node}: no lock held")?,
            Some(lock) => {
                let judged = match lock
                    .holder
                    .as_ref()
                    .map(|h| staleness(h, local, start_ticks))
                {
                    Some(Staleness::Stale(why)) => format!(" [STALE: its holder is gone: {why}]"),
                    Some(Staleness::NotProven) => {
                        " [its holder may still be running: make sure it is not]".to_string()
                    }
                    None => String::new(),
                };
                writeln!(
                    out,
                    "{node}: locked by {} (lock {}){judged}",
                    lock.shown(),
                    lock.path
                )?;
                for script in parse_running(&read.stdout_str()) {
                    writeln!(
                        out,
                        "{node}: a geartopo script still runs there (process group {}, pid file {}); removing the lock ends it:",
                        script.group,
                        escape_controls(&script.pid_file)
                    )?;
                    for p in &script.processes {
                        writeln!(out, "    {}", escape_controls(p))?;
                    }
                }
                held.push((i, lock));
            }
        }
    }
    if held.is_empty() {
        writeln!(out, "\nNo lock to remove.")?;
        return Ok(!failed);
    }
    let question = format!(
        "\nRemove {}? An apply that still runs would go on without it.",
        if held.len() == 1 {
            "this lock"
        } else {
            "these locks"
        }
    );
    if !ask(&question)? {
        writeln!(out, "\nForce-unlock cancelled; nothing was removed.")?;
        return Ok(false);
    }
    for (i, lock) in held {
        let conn = &mut conns[i];
        let node = conn.node().to_string();
        let removed = conn.run(&[NodeOp::ForceUnlock { line: lock.line }])?;
        if removed.success() {
            for ended in removed.stdout_str().lines() {
                writeln!(out, "{node}: {}", escape_controls(ended))?;
            }
            writeln!(out, "{node}: lock removed")?;
        } else {
            writeln!(err, "error: node {node}: {}", removed.stderr_str().trim())?;
            failed = true;
        }
    }
    Ok(!failed)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::node::fake::FakeNodes;
    use crate::node::lock::LockHolder;
    use crate::transport::Output;

    /// node1 locked by `holder`, node2 free; the fake answers read-lock and
    /// force-unlock as the scripts do.
    fn nodes(holder: LockHolder) -> (FakeNodes, Arc<Mutex<Option<LockHolder>>>) {
        let lock = Arc::new(Mutex::new(Some(holder)));
        let state = lock.clone();
        let fake = FakeNodes::new(move |node, ops| {
            let mut held = state.lock().unwrap();
            let mut out = Output::default();
            for op in ops {
                match (node, op, held.as_ref()) {
                    ("node1", NodeOp::ReadLock, Some(h)) => {
                        out.stdout = (HeldLock::report(h, "/run/geartopo/apply.lock")
                            + "script: /run/geartopo/scripts/9-3.pid 77\n"
                            + "script-ps: 77 05:00 sh -s\n"
                            + "script-ps: 80 05:00 sleep 600\n")
                            .into_bytes();
                    }
                    ("node1", NodeOp::ForceUnlock { line }, Some(h)) if *line == h.to_string() => {
                        *held = None;
                        out.stdout =
                            b"ended process group 77 (/run/geartopo/scripts/9-3.pid)\n".to_vec();
                    }
                    _ => {}
                }
            }
            Ok(out)
        });
        (fake, lock)
    }

    fn conns(fake: &FakeNodes) -> Connections {
        vec![
            Box::new(fake.connection("node1")) as Box<dyn crate::node::NodeConnection>,
            Box::new(fake.connection("node2")),
        ]
    }

    fn here() -> Local {
        Local {
            host: "h1".into(),
            boot_id: "b1".into(),
        }
    }

    fn gone() -> LockHolder {
        LockHolder {
            topology: "todo".into(),
            user: "root".into(),
            host: "h1".into(),
            // No process has pid 0 in /proc: provably gone on "h1", boot "b1".
            pid: 0,
            start_ticks: 5,
            boot_id: "b1".into(),
            since: 9,
        }
    }

    fn run(fake: &FakeNodes, answer: bool) -> (bool, String, Vec<String>) {
        let mut asked = Vec::new();
        let mut ask = |q: &str| {
            asked.push(q.to_string());
            Ok(answer)
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ok = unlock_nodes(&mut conns(fake), &here(), &mut ask, &mut out, &mut err).unwrap();
        (ok, String::from_utf8(out).unwrap(), asked)
    }

    #[test]
    fn shows_the_holder_and_removes_nothing_unless_confirmed() {
        let (fake, lock) = nodes(gone());
        let (ok, out, asked) = run(&fake, false);
        assert!(!ok);
        assert_eq!(asked.len(), 1);
        assert!(
            out.contains(&format!("node1: locked by {}", gone())),
            "{out}"
        );
        assert!(out.contains("STALE"), "{out}");
        assert!(out.contains("node2: no lock held"), "{out}");
        assert!(out.contains("nothing was removed"), "{out}");
        assert!(lock.lock().unwrap().is_some());
        assert!(!fake
            .ops()
            .iter()
            .any(|(_, op)| matches!(op, NodeOp::ForceUnlock { .. })));
    }

    #[test]
    fn confirmed_it_removes_the_lock_it_showed() {
        let (fake, lock) = nodes(gone());
        let (ok, out, _) = run(&fake, true);
        assert!(ok, "{out}");
        assert!(out.contains("node1: lock removed"), "{out}");
        assert!(lock.lock().unwrap().is_none());
        let forced: Vec<String> = fake
            .ops()
            .into_iter()
            .filter(|(_, op)| matches!(op, NodeOp::ForceUnlock { .. }))
            .map(|(n, _)| n)
            .collect();
        assert_eq!(forced, ["node1"], "only the locked node");
    }

    /// A script an apply left running (a time-out that could not be ended) is
    /// shown with its processes before the question, and ended with the lock.
    #[test]
    fn a_script_left_running_is_shown_then_ended_with_the_lock() {
        let (fake, _) = nodes(gone());
        let (ok, out, _) = run(&fake, true);
        assert!(ok, "{out}");
        let shown = out
            .find("node1: a geartopo script still runs there (process group 77, pid file /run/geartopo/scripts/9-3.pid)")
            .expect(&out);
        let sleep = out.find("    80 05:00 sleep 600").expect(&out);
        let ended = out
            .find("node1: ended process group 77 (/run/geartopo/scripts/9-3.pid)")
            .expect(&out);
        let removed = out.find("node1: lock removed").expect(&out);
        assert!(shown < sleep && sleep < ended && ended < removed, "{out}");
    }

    #[test]
    fn with_no_lock_it_says_so_and_asks_nothing() {
        let (fake, lock) = nodes(gone());
        *lock.lock().unwrap() = None;
        let (ok, out, asked) = run(&fake, true);
        assert!(ok);
        assert!(asked.is_empty());
        assert!(out.contains("No lock to remove."), "{out}");
    }
}
