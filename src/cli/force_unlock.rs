//! `geartopo force-unlock FILE [--node NAME]... [--yes]` (terraform's word): shows
//! who holds each node's apply lock, asks, and removes the locks. For the lock of
//! an apply that was killed (SIGKILL, a crash, a lost machine); geartopo never
//! removes a lock by itself, since only the operator can know that no apply is
//! still running against the node (docs/design-notes.md).

use std::path::PathBuf;

use anyhow::{anyhow, Result};

use super::session::{load, Session};
use crate::node::lock::{staleness, start_ticks, HeldLock, Local, Staleness};
use crate::node::NodeOp;

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
    for n in &args.nodes {
        if !topology.nodes.contains_key(n) {
            let known: Vec<&str> = topology.nodes.keys().map(String::as_str).collect();
            return Err(anyhow!(
                "--node {n}: no such node in {} (nodes: {})",
                path.display(),
                known.join(", ")
            ));
        }
    }
    // Only the nodes asked for need to be reachable.
    if !args.nodes.is_empty() {
        topology.nodes.retain(|n, _| args.nodes.contains(n));
    }
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let local = Local::read();
    let mut held: Vec<(usize, HeldLock)> = Vec::new();
    let mut failed = false;
    for (i, conn) in session.conns.iter_mut().enumerate() {
        let node = conn.node().to_string();
        let out = conn.run(&[NodeOp::ReadLock])?;
        if !out.success() {
            errln!(
                "error: node {node}: cannot read the lock (exit {}): {}",
                out.status,
                out.stderr_str().trim()
            )?;
            failed = true;
            continue;
        }
        match HeldLock::parse(&out.stdout_str()) {
            None => outln!("{node}: no lock held")?,
            Some(lock) => {
                let judged = match lock
                    .holder
                    .as_ref()
                    .map(|h| staleness(h, &local, start_ticks))
                {
                    Some(Staleness::Stale(why)) => format!(" [STALE: its holder is gone: {why}]"),
                    Some(Staleness::NotProven) => {
                        " [its holder may still be running: make sure it is not]".to_string()
                    }
                    None => String::new(),
                };
                outln!(
                    "{node}: locked by {} (lock {}){judged}",
                    lock.shown(),
                    lock.path
                )?;
                held.push((i, lock));
            }
        }
    }
    if held.is_empty() {
        outln!("\nNo lock to remove.")?;
        return Ok(if failed { 1 } else { 0 });
    }
    if !args.yes
        && !super::apply::confirm(&format!(
            "\nRemove {}? An apply that still runs would go on without it.",
            if held.len() == 1 {
                "this lock"
            } else {
                "these locks"
            }
        ))?
    {
        outln!("\nForce-unlock cancelled; nothing was removed.")?;
        return Ok(1);
    }
    for (i, lock) in held {
        let conn = &mut session.conns[i];
        let node = conn.node().to_string();
        let out = conn.run(&[NodeOp::ForceUnlock { line: lock.line }])?;
        if out.success() {
            outln!("{node}: lock removed")?;
        } else {
            errln!("error: node {node}: {}", out.stderr_str().trim())?;
            failed = true;
        }
    }
    Ok(if failed { 1 } else { 0 })
}
