//! `geartopo node prepare FILE [--node NAME]...`: the one-time preparation of a
//! docker node for durable links (docs/durable.md): geartopo's runtime wrapper
//! registered with dockerd (its configuration's `runtimes`, then a reload). It
//! changes a daemon's configuration that other tools share, so geartopo does it
//! only when asked, as its own command (docs/design-notes.md); plan names it
//! in a warning while a docker node is not prepared. Podman nodes need nothing
//! of it. Idempotent: a prepared node is left as it is.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;

use super::session::{load, Session};
use crate::node::prepare::{self, Found};
use crate::node::{Connections, NodeOp};
use crate::text::escape_controls;
use crate::topology::model::{Runtime, Topology};

#[derive(Debug, clap::Subcommand)]
pub enum NodeCommand {
    /// Register geartopo's runtime wrapper with dockerd on the docker nodes, so
    /// that links come back at every start of a container there (durable links).
    Prepare(PrepareArgs),
}

#[derive(Debug, clap::Args)]
pub struct PrepareArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Only this node (repeat for more; default: every docker node of the topology).
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run(command: NodeCommand) -> Result<i32> {
    match command {
        NodeCommand::Prepare(args) => run_prepare(args),
    }
}

fn run_prepare(args: PrepareArgs) -> Result<i32> {
    let path = super::topology_path(args.file.clone());
    let (mut topology, graph, source) = load(&path)?;
    super::known_nodes(&topology, &args.nodes, &path)?;
    let mut out = std::io::stdout();
    let wanted = |name: &str| args.nodes.is_empty() || args.nodes.iter().any(|n| n == name);
    for (name, node) in &topology.nodes {
        if wanted(name) && node.runtime == Runtime::Podman {
            writeln!(
                out,
                "{name}: podman: nothing to prepare (podman reads geartopo's hook file)"
            )?;
        }
    }
    // Only the docker nodes asked for are contacted.
    topology
        .nodes
        .retain(|n, node| wanted(n) && node.runtime == Runtime::Docker);
    if topology.nodes.is_empty() {
        return Ok(0);
    }
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let mut err = std::io::stderr();
    let ok = prepare_nodes(&session.topology, &mut session.conns, &mut out, &mut err)?;
    Ok(if ok { 0 } else { 1 })
}

/// Prepares each docker node in `conns`; true when none failed.
pub fn prepare_nodes(
    topology: &Topology,
    conns: &mut Connections,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool> {
    let mut ok = true;
    for conn in conns.iter_mut() {
        let node = conn.node().to_string();
        if topology.nodes.get(&node).map(|n| n.runtime) != Some(Runtime::Docker) {
            continue;
        }
        match prepare_one(conn.as_mut()) {
            Ok(done) => writeln!(out, "{node}: {done}")?,
            Err(e) => {
                writeln!(err, "error: node {node}: {}", escape_controls(&e))?;
                ok = false;
            }
        }
    }
    Ok(ok)
}

fn prepare_one(conn: &mut dyn crate::node::NodeConnection) -> Result<String, String> {
    let read = conn
        .run(&[NodeOp::PrepareRead])
        .map_err(|e| e.to_string())?;
    if !read.success() {
        return Err(read.stderr_str().trim().to_string());
    }
    let found: Found = prepare::parse(&read.stdout_str())?;
    let wrapper = found.wrapper();
    let new = prepare::merged(found.config.as_deref(), &wrapper, &found.config_path)?;
    let config = match (&new, found.registered == wrapper) {
        // dockerd has it and the file says it: only the programs are checked.
        (None, true) => None,
        // The file says it but dockerd did not load it: reload with the same text.
        (None, false) => Some((found.config.clone().unwrap_or_default(), found.sha.clone())),
        (Some(text), _) => Some((text.clone(), found.sha.clone())),
    };
    let changed = config.is_some();
    let wrote = conn
        .run(&[NodeOp::Prepare { config }])
        .map_err(|e| e.to_string())?;
    if !wrote.success() {
        return Err(wrote.stderr_str().trim().to_string());
    }
    Ok(if changed {
        format!(
            "prepared: runtime {} at {wrapper} in {}, dockerd reloaded ({})",
            crate::node::durable::DOCKER_RUNTIME,
            found.config_path,
            wrote.stdout_str().trim()
        )
    } else {
        format!(
            "already prepared (dockerd has runtime {} at {wrapper})",
            crate::node::durable::DOCKER_RUNTIME
        )
    })
}
