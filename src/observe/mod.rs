//! Reading live state: one connection per node, all nodes at once (bounded by
//! `--parallelism`), one round trip per node (`NodeOp::Observe`, after a `Lock`
//! when apply asks), and the parsing of what came back into `state` (`parse`).
//! Each node's steps are reported to a `ReadProgress` (`progress`) as they happen.
//! Read-only: nothing here changes a node.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Instant;

use crate::node::lock::LockHolder;
use crate::node::{Connections, NodeOp, ScriptedNode, LOCK_HELD};
use crate::state::{NodeState, ObservedState};
use crate::topology::model::{LinkTarget, NodeAddress, Topology};
use crate::transport::{ConnectOptions, TransportError};

pub mod digest;
pub(crate) mod parse;
mod progress;
pub mod recheck;
pub use parse::parse_node;
pub use progress::{NoProgress, ReadProgress};

/// Why a node could not be read. Names the node.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error("node {node}: another apply holds the lock: {holder}")]
    Locked { node: String, holder: String },
    #[error("node {node}: reading state failed (exit {status}): {stderr}")]
    Failed {
        node: String,
        status: i32,
        stderr: String,
    },
    #[error("node {node}: unexpected output while reading state: {reason}")]
    Parse { node: String, reason: String },
    #[error("cannot resolve {name}: {reason}")]
    Resolve { name: String, reason: String },
}

impl From<TransportError> for ObserveError {
    fn from(e: TransportError) -> Self {
        ObserveError::Transport(Box::new(e))
    }
}

/// Runs `f` over `items` on at most `parallelism` threads at once, keeping order.
pub fn parallel_map<T: Send, R: Send>(
    items: Vec<T>,
    parallelism: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let queue = Mutex::new(items.into_iter().enumerate().collect::<Vec<_>>());
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..parallelism.max(1).min(n.max(1)) {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap().pop();
                let Some((i, item)) = next else { break };
                let r = f(item);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

/// Connects to every node of the topology at once. Every failure is returned, each
/// naming its node; no partial set of connections is handed out. Each node's
/// `connecting` (and `failed`) goes to `progress`.
pub fn connect_all(
    topology: &Topology,
    options: &ConnectOptions,
    parallelism: usize,
    progress: &dyn ReadProgress,
) -> Result<Connections, Vec<TransportError>> {
    let nodes: Vec<_> = topology.nodes.values().collect();
    let results = parallel_map(nodes, parallelism, |node| {
        progress.connecting(&node.name);
        let connected = crate::transport::connect(node, options);
        if let Err(e) = &connected {
            progress.failed(&node.name, &e.to_string());
        }
        connected.map(|t| {
            Box::new(ScriptedNode::for_node(t, node)) as Box<dyn crate::node::NodeConnection>
        })
    });
    let mut conns = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(c) => conns.push(c),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(conns)
    } else {
        Err(errors)
    }
}

/// Reads every node (one round trip each, all at once) and resolves DNS names.
pub fn observe(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
) -> Result<ObservedState, Vec<ObserveError>> {
    observe_locking(topology, conns, parallelism, None)
}

/// As `observe`; with a `holder`, each node's lock is taken first in the same
/// round trip, and a node locked by another is `ObserveError::Locked`.
pub fn observe_locking(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    holder: Option<&LockHolder>,
) -> Result<ObservedState, Vec<ObserveError>> {
    observe_with(topology, conns, parallelism, holder, &NoProgress)
}

/// As `observe_locking`, telling `progress` when each node's read starts and how
/// it ended.
pub fn observe_with(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    holder: Option<&LockHolder>,
    progress: &dyn ReadProgress,
) -> Result<ObservedState, Vec<ObserveError>> {
    observe_probing(topology, conns, parallelism, holder, progress, false)
}

/// As `observe_with`; with `probe`, each container's health check (those that
/// have one) is tried once in the same round trip (`show`), into
/// `NodeState::health`.
pub fn observe_probing(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    holder: Option<&LockHolder>,
    progress: &dyn ReadProgress,
    probe: bool,
) -> Result<ObservedState, Vec<ObserveError>> {
    let mut first: Vec<NodeOp> = holder
        .map(|h| NodeOp::Lock { holder: h.clone() })
        .into_iter()
        .collect();
    // Volumes only when the topology has named volumes: one more runtime run.
    if crate::plan::volumes::has_named_volumes(topology) {
        first.push(NodeOp::Volumes);
    }
    // Each node's images in the file, to report those it would have to pull.
    let mut images: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
    for c in &topology.containers {
        images
            .entry(c.node.as_str())
            .or_default()
            .insert(c.image.as_str());
    }
    let subnets = crate::plan::private::needs_subnets(topology);
    let jobs: Vec<_> = conns.iter_mut().collect();
    let results = parallel_map(jobs, parallelism, |conn| {
        let node = topology
            .nodes
            .get(conn.node())
            .expect("connections are the topology's nodes");
        let mut ops: Vec<NodeOp> = first.clone();
        ops.push(NodeOp::Observe {
            topology: topology.name.clone(),
            subnets,
            images: images
                .get(node.name.as_str())
                .map(|i| i.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        });
        progress.reading(&node.name);
        let started = Instant::now();
        let checks: Vec<(String, crate::topology::model::Health)> = if probe {
            topology
                .containers
                .iter()
                .filter(|c| c.node == node.name)
                .filter_map(|c| Some((c.runtime_name(&topology.name), c.health.clone()?)))
                .collect()
        } else {
            Vec::new()
        };
        let probing: Vec<NodeOp>;
        let ops_here = if checks.is_empty() {
            &ops
        } else {
            probing = std::iter::once(NodeOp::ProbeHealth { checks })
                .chain(ops.iter().cloned())
                .collect();
            &probing
        };
        let read = read_node(
            conn.as_mut(),
            ops_here,
            &node.name,
            &topology.name,
            holder.is_some(),
        );
        match &read {
            Ok(s) => progress.read(&node.name, s.containers.len(), started.elapsed()),
            Err(e) => progress.failed(&node.name, &e.to_string()),
        }
        read.map(|s| (node.name.clone(), s))
    });
    let mut state = ObservedState::default();
    let mut errors = Vec::new();
    // Host ports the file gives, by node: once, not once per node (a scan of
    // every container per node is quadratic in a fleet).
    let mut given: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for c in &topology.containers {
        given
            .entry(c.node.as_str())
            .or_default()
            .extend(c.publish.iter().filter_map(|p| p.host_port));
    }
    for r in results {
        match r {
            Ok((name, s)) => {
                let mut s = s;
                let ports = given.get(name.as_str()).map_or(&[][..], Vec::as_slice);
                keep_relevant_ports(topology, &name, ports, &mut s);
                state.nodes.insert(name, s);
            }
            Err(e) => errors.push(e),
        }
    }
    match resolve_names(topology) {
        Ok(resolved) => state.resolved = resolved,
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        Ok(state)
    } else {
        Err(errors)
    }
}

/// One node's round trip and the parsing of its answer.
fn read_node(
    conn: &mut dyn crate::node::NodeConnection,
    ops: &[NodeOp],
    node: &str,
    topology: &str,
    locking: bool,
) -> Result<NodeState, ObserveError> {
    let out = conn.run(ops)?;
    if out.status == LOCK_HELD && locking {
        return Err(ObserveError::Locked {
            node: node.to_string(),
            holder: out.stderr_str().trim().to_string(),
        });
    }
    if !out.success() {
        return Err(ObserveError::Failed {
            node: node.to_string(),
            status: out.status,
            stderr: out.stderr_str().trim().to_string(),
        });
    }
    let stdout = out.stdout_str();
    let mut state = parse_node(node, topology, &stdout)?;
    if ops.iter().any(|o| matches!(o, NodeOp::ProbeHealth { .. })) {
        // The probe's lines come before the first section.
        let head = stdout
            .split(crate::node::section::MARK)
            .next()
            .unwrap_or("");
        state.health = crate::node::script::health::parse_probes(head).collect();
    }
    Ok(state)
}

/// Keeps only the taken ports a plan can care about: those in the node's
/// `host_ports` range and those the file gives explicitly. The rest (ephemeral
/// sockets elsewhere) would only make saved plans go stale for nothing.
pub(crate) fn keep_relevant_ports(
    topology: &Topology,
    node: &str,
    given: &[u16],
    state: &mut NodeState,
) {
    let Some(n) = topology.nodes.get(node) else {
        return;
    };
    state
        .taken_ports
        .retain(|(_, p)| (n.host_ports.first..=n.host_ports.last).contains(p) || given.contains(p));
}

/// Resolves the DNS names that rules need as addresses: node addresses that are
/// not IPs (only for nodes a link targets) and raw link hosts.
pub(crate) fn resolve_names(
    topology: &Topology,
) -> Result<BTreeMap<String, Ipv4Addr>, ObserveError> {
    let mut names = Vec::new();
    // By name once: `Topology::container` is a scan, and this runs per link.
    let by_name: std::collections::HashMap<&str, &crate::topology::model::Container> = topology
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    for c in &topology.containers {
        for l in &c.links {
            match &l.target {
                LinkTarget::Raw { host, .. } => names.push(host.clone()),
                LinkTarget::Container { container, .. } => {
                    if let Some(t) = by_name.get(container.as_str()) {
                        if let Some(NodeAddress::Remote(a)) =
                            topology.nodes.get(&t.node).map(|n| &n.address)
                        {
                            names.push(a.clone());
                        }
                    }
                }
                LinkTarget::Loopback { .. } => {}
            }
        }
    }
    let mut resolved = BTreeMap::new();
    for name in names {
        if name.parse::<Ipv4Addr>().is_ok() || resolved.contains_key(&name) {
            continue;
        }
        let addr = (name.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| ObserveError::Resolve {
                name: name.clone(),
                reason: e.to_string(),
            })?
            .filter_map(|a| match a.ip() {
                std::net::IpAddr::V4(v4) => Some(v4),
                _ => None,
            })
            // Round-robin DNS answers in any order: take the lowest, so the
            // rules (and the plan's fingerprint) do not change from run to run.
            .min()
            .ok_or_else(|| ObserveError::Resolve {
                name: name.clone(),
                reason: "no IPv4 address".into(),
            })?;
        resolved.insert(name, addr);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests;
