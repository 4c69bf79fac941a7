//! What plan, apply, destroy and show share: load the topology, connect to every
//! node, read their state, and report errors the way an operator needs them
//! (every node that failed, by name; no partial result presented as complete).
//! While the nodes are connected to and read, each one's progress is on stderr
//! when it is a terminal (`progress`), taken away before anything is printed.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{anyhow, Result};

use crate::graph::DepGraph;
use crate::node::Connections;
use crate::node::{NodeConnection, ScriptedNode};
use crate::observe::{connect_all, connect_and_observe, observe_with, NotRead};
use crate::plan::early::Early;
use crate::plan::{
    destroy_selected, plan_selected, plan_with, select, Mode, Plan, Scope, Selection,
};
use crate::render::no_plan;
use crate::state::ObservedState;
use crate::topology::{self, Topology};

use super::progress::{read_progress, ShownProgress};

/// A topology with its graph, ready to talk to its nodes.
pub struct Session {
    pub topology: Topology,
    pub graph: DepGraph,
    pub source: Vec<u8>,
    pub conns: Connections,
    pub parallelism: usize,
    /// Shows the connect and the read; cleared once the read is over.
    progress: Box<dyn ShownProgress>,
}

/// Loads and validates (`topology::load`, as every command does); prints every
/// diagnostic on failure.
pub fn load(path: &Path) -> Result<(Topology, DepGraph, Vec<u8>)> {
    load_saying(path, "nothing was changed")
}

/// As `load`, ending an invalid file's report with `consequence` (what the
/// command did not do because of it).
pub fn load_saying(path: &Path, consequence: &str) -> Result<(Topology, DepGraph, Vec<u8>)> {
    loaded(
        &path.display().to_string(),
        consequence,
        topology::load(path),
    )
}

/// As `load`, from text already read (a saved plan carries its topology).
pub fn load_source(name: &str, source: Vec<u8>) -> Result<(Topology, DepGraph, Vec<u8>)> {
    loaded(
        name,
        "nothing was changed",
        topology::load_source(name, source),
    )
}

fn loaded(
    name: &str,
    consequence: &str,
    result: Result<topology::Loaded, topology::Invalid>,
) -> Result<(Topology, DepGraph, Vec<u8>)> {
    match result {
        Ok(l) => Ok((l.topology, l.graph, l.source)),
        Err(invalid) => {
            // Unreadable: the one `error:` line main prints, as on every command.
            if let Some(message) = super::without_place(&invalid) {
                return Err(anyhow!("{message}"));
            }
            super::report_invalid(invalid);
            Err(anyhow!("{name} is not a valid topology; {consequence}"))
        }
    }
}

impl Session {
    /// A session on connections already made (unit tests: fake nodes).
    #[cfg(test)]
    pub fn with_connections(topology: Topology, conns: Connections) -> Session {
        let graph = DepGraph::build(&topology).expect("a valid topology");
        Session {
            topology,
            graph,
            source: Vec::new(),
            conns,
            parallelism: 4,
            progress: Box::new(crate::observe::NoProgress),
        }
    }

    /// Connects to every node at once; fails naming every node that could not be reached.
    pub fn connect(
        topology: Topology,
        graph: DepGraph,
        source: Vec<u8>,
        args: &super::ConnectArgs,
    ) -> Result<Session> {
        let parallelism = args.parallelism as usize;
        let progress = read_progress(topology.nodes.keys());
        let conns =
            connect_all(&topology, &args.options(), parallelism, &*progress).map_err(|errors| {
                progress.clear();
                anyhow!(no_plan("cannot reach every node", &errors))
            })?;
        Ok(Session {
            topology,
            graph,
            source,
            conns,
            parallelism,
            progress,
        })
    }

    /// Takes the connect progress away, for a command that does not read the
    /// nodes (`check`) before it prints.
    pub fn connected(&self) {
        self.progress.clear();
    }

    /// Reads every node.
    pub fn observe(&mut self) -> Result<ObservedState> {
        self.read(None)
            .map_err(|errors| anyhow!(no_plan("cannot read every node", &errors)))
    }

    /// As `observe`, taking each node's apply lock for `holder` in its read's
    /// round trip (a node whose lock is held answers `ObserveError::Locked`).
    /// On an error, the locks taken on the other nodes are still held.
    pub fn observe_locking(
        &mut self,
        holder: &crate::node::lock::LockHolder,
    ) -> Result<ObservedState, Vec<crate::observe::ObserveError>> {
        self.read(Some(holder))
    }

    /// Reads every node (taking its lock for `holder`, if given), the read's
    /// progress cleared afterwards.
    fn read(
        &mut self,
        holder: Option<&crate::node::lock::LockHolder>,
    ) -> Result<ObservedState, Vec<crate::observe::ObserveError>> {
        let read = observe_with(
            &self.topology,
            &mut self.conns,
            self.parallelism,
            holder,
            &*self.progress,
        );
        self.progress.clear();
        read
    }

    /// As `observe`, trying each container's health check once in the same
    /// round trip (`show`).
    pub fn observe_probing(&mut self) -> Result<ObservedState> {
        let read = crate::observe::observe_probing(
            &self.topology,
            &mut self.conns,
            self.parallelism,
            None,
            &*self.progress,
            true,
        );
        self.progress.clear();
        read.map_err(|errors| anyhow!(no_plan("cannot read every node", &errors)))
    }

    /// Connects to every node, reads each as soon as it is connected, and plans
    /// within `scope`, each container planned while other nodes are still
    /// being read (`observe::connect_and_observe`, `plan::early`): the plan
    /// `connect`, `observe` and `plan_scoped` make, with less of it after the
    /// last read. For `plan`, which takes no lock.
    pub fn connect_and_plan(
        topology: Topology,
        graph: DepGraph,
        source: Vec<u8>,
        args: &super::ConnectArgs,
        scope: &Scope,
    ) -> Result<(Session, Plan)> {
        let parallelism = args.parallelism as usize;
        let progress = read_progress(topology.nodes.keys());
        let options = args.options();
        // The selection is known before the reads when nothing names containers.
        let plain =
            scope.targets.is_empty() && scope.excludes.is_empty() && scope.replace.is_empty();
        let expected = plain.then(|| Selection {
            make_durable: scope.make_durable,
            ..Selection::default()
        });
        let early = Early::new(&topology, expected);
        let read = connect_and_observe(
            &topology,
            parallelism,
            |node| {
                crate::transport::connect(node, &options)
                    .map(|t| Box::new(ScriptedNode::for_node(t, node)) as Box<dyn NodeConnection>)
            },
            &*progress,
            &early,
        );
        progress.clear();
        let (conns, state) = read.map_err(|e| match e {
            // Every node that failed: those not reached, then those not read.
            NotRead::Connect { unreached, unread } => {
                let mut failed: Vec<String> = unreached.iter().map(|e| e.to_string()).collect();
                failed.extend(unread.iter().map(|e| e.to_string()));
                anyhow!(no_plan("cannot reach every node", &failed))
            }
            NotRead::Read(errors) => anyhow!(no_plan("cannot read every node", &errors)),
        })?;
        let selection = select(&topology, &graph, &state, scope, Mode::Apply)?;
        let plan = plan_with(&topology, &state, &selection, Some(early)).map_err(no_plan_made)?;
        let session = Session {
            topology,
            graph,
            source,
            conns,
            parallelism,
            progress,
        };
        Ok((session, plan))
    }

    /// The plan against `state`, limited to `targets` and what they need.
    pub fn plan(&self, state: &ObservedState, targets: &[String]) -> Result<Plan> {
        self.plan_scoped(state, &Scope::targets(targets))
    }

    /// The plan against `state` within `scope` (`--target`, `--exclude`, `--replace`).
    pub fn plan_scoped(&self, state: &ObservedState, scope: &Scope) -> Result<Plan> {
        let selection = select(&self.topology, &self.graph, state, scope, Mode::Apply)?;
        plan_selected(&self.topology, state, &selection).map_err(no_plan_made)
    }

    /// The destroy plan against `state` within `scope` (`--target`, `--exclude`).
    pub fn destroy_plan(&self, state: &ObservedState, scope: &Scope) -> Result<Plan> {
        let selection = select(&self.topology, &self.graph, state, scope, Mode::Destroy)?;
        Ok(destroy_selected(
            &self.topology.name,
            self.topology.id.as_deref(),
            state,
            &selection.limit,
        ))
    }
}

/// The plan's errors, one a line.
fn no_plan_made(errors: Vec<crate::plan::PlanError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    anyhow!("no plan can be made:\n{}", lines.join("\n"))
}

/// Colours for stdout.
pub fn stdout_style() -> crate::render::Style {
    crate::render::Style::detect(std::io::stdout().is_terminal())
}

/// With `--target`, the part of the topology on the nodes the targets need
/// (`plan::reach`), saying on stderr which nodes are left alone; otherwise the
/// whole topology.
pub fn narrowed(
    topology: Topology,
    graph: DepGraph,
    targets: &[String],
) -> Result<(Topology, DepGraph)> {
    let Some(part) = crate::plan::reach::reachable_part(&topology, &graph, targets) else {
        return Ok((topology, graph));
    };
    let left: Vec<&str> = topology
        .nodes
        .keys()
        .filter(|n| !part.nodes.contains_key(*n))
        .map(String::as_str)
        .collect();
    errln!(
        "note: --target needs only {}; not contacted: {}",
        part.nodes.keys().cloned().collect::<Vec<_>>().join(", "),
        left.join(", ")
    )?;
    // A part of an acyclic graph has no cycle.
    let graph = DepGraph::build(&part).map_err(|c| anyhow!("{c:?}"))?;
    Ok((part, graph))
}
