//! What plan, apply, destroy and show share: load the topology, connect to every
//! node, read their state, and report errors the way an operator needs them
//! (every node that failed, by name; no partial result presented as complete).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{anyhow, Result};

use crate::graph::DepGraph;
use crate::node::Connections;
use crate::observe::{connect_all, observe};
use crate::plan::{destroy_selected, plan_selected, select, Mode, Plan, Scope};
use crate::render::no_plan;
use crate::state::ObservedState;
use crate::topology::{self, Topology};

/// A topology with its graph, ready to talk to its nodes.
pub struct Session {
    pub topology: Topology,
    pub graph: DepGraph,
    pub source: Vec<u8>,
    pub conns: Connections,
    pub parallelism: usize,
}

/// Loads and validates; prints every diagnostic on failure.
pub fn load(path: &Path) -> Result<(Topology, DepGraph, Vec<u8>)> {
    let source = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    load_source(&path.display().to_string(), source)
}

/// As `load`, from text already read (a saved plan carries its topology).
pub fn load_source(name: &str, source: Vec<u8>) -> Result<(Topology, DepGraph, Vec<u8>)> {
    let topology = topology::parse(name, &source).map_err(|invalid| {
        eprint!("{invalid}");
        anyhow!("{name} is not a valid topology; nothing was changed")
    })?;
    let graph = DepGraph::build(&topology)
        .map_err(|c| anyhow!("start-order cycle: {}", c.path.join(" -> ")))?;
    Ok((topology, graph, source))
}

impl Session {
    /// Connects to every node at once; fails naming every node that could not be reached.
    pub fn connect(
        topology: Topology,
        graph: DepGraph,
        source: Vec<u8>,
        args: &super::ConnectArgs,
    ) -> Result<Session> {
        let parallelism = args.parallelism as usize;
        let conns = connect_all(&topology, &args.options(), parallelism)
            .map_err(|errors| anyhow!(no_plan("cannot reach every node", &errors)))?;
        Ok(Session {
            topology,
            graph,
            source,
            conns,
            parallelism,
        })
    }

    /// Reads every node.
    pub fn observe(&mut self) -> Result<ObservedState> {
        observe(&self.topology, &mut self.conns, self.parallelism)
            .map_err(|errors| anyhow!(no_plan("cannot read every node", &errors)))
    }

    /// The plan against `state`, limited to `targets` and what they need.
    pub fn plan(&self, state: &ObservedState, targets: &[String]) -> Result<Plan> {
        self.plan_scoped(state, &Scope::targets(targets))
    }

    /// The plan against `state` within `scope` (`--target`, `--exclude`, `--replace`).
    pub fn plan_scoped(&self, state: &ObservedState, scope: &Scope) -> Result<Plan> {
        let selection = select(&self.topology, &self.graph, state, scope, Mode::Apply)?;
        plan_selected(&self.topology, state, &selection).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            anyhow!("no plan can be made:\n{}", lines.join("\n"))
        })
    }

    /// The destroy plan against `state` within `scope` (`--target`, `--exclude`).
    pub fn destroy_plan(&self, state: &ObservedState, scope: &Scope) -> Result<Plan> {
        let selection = select(&self.topology, &self.graph, state, scope, Mode::Destroy)?;
        Ok(destroy_selected(
            &self.topology.name,
            state,
            &selection.limit,
        ))
    }
}

/// Colours for stdout.
pub fn stdout_style() -> crate::render::Style {
    crate::render::Style::detect(std::io::stdout().is_terminal())
}
