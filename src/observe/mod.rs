//! Reading live state: one connection per node, all nodes at once (bounded by
//! `--parallelism`), one round trip per node (`NodeOp::Observe`, after a `Lock`
//! when apply asks), and the parsing of what came back into `state` (`parse`).
//! Each node's steps are reported to a `ReadProgress` (`progress`) as they happen.
//! Read-only: nothing here changes a node.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::node::lock::LockHolder;
use crate::node::{Connections, NodeConnection, NodeOp, ScriptedNode, LOCK_HELD};
use crate::state::{NodeState, ObservedState};
use crate::topology::model::{LinkTarget, Node, NodeAddress, Topology};
use crate::transport::{ConnectOptions, Output, TransportError};

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
    let reader = Reader::new(topology, holder, progress, probe, &NoHook);
    let jobs: Vec<_> = conns.iter_mut().collect();
    let results = parallel_map(jobs, parallelism, |conn| {
        let fetched = reader.fetch(conn.as_mut());
        reader.finish(fetched)
    });
    reader.gather(results)
}

/// Told of each node's read as it arrives (`connect_and_observe`): the plan's
/// head start (`plan::early`).
pub trait ReadHook: Sync {
    /// The names resolved, before any read (not called when one cannot be).
    fn names(&self, _resolved: &BTreeMap<String, Ipv4Addr>) {}
    /// A node's read, parsed, its taken ports narrowed as in the state (on
    /// the thread that parsed it: hand the work to `work`).
    fn read(&self, _node: &str, _state: &Arc<NodeState>) {}
    /// A node's read failed.
    fn failed(&self) {}
    /// Run on one thread a core while the reads go on; returns once `done`
    /// has been called and its work is over.
    fn work(&self) {}
    /// Every read has ended: `work` finishes what is left and returns.
    fn done(&self) {}
    /// Every `work` has returned: let go of the node states.
    fn release(&self) {}
}

/// No hook.
pub struct NoHook;
impl ReadHook for NoHook {}

/// Why `connect_and_observe` has no state.
#[derive(Debug)]
pub enum NotRead {
    /// `unreached` could not be reached; of the others, `unread` could not be
    /// read (the rest were).
    Connect {
        unreached: Vec<TransportError>,
        unread: Vec<ObserveError>,
    },
    /// Every node was reached; these could not be read.
    Read(Vec<ObserveError>),
}

/// Connects to every node and reads each as soon as it is connected (no lock,
/// no probe), `parallelism` nodes at a time: no read waits for the slowest
/// handshake, and the reads' parsing (and the plan's head start, `hook`) runs
/// while other nodes are still being connected to. `connect` makes one node's
/// connection.
pub fn connect_and_observe(
    topology: &Topology,
    parallelism: usize,
    connect: impl Fn(&Node) -> Result<Box<dyn NodeConnection>, TransportError> + Sync,
    progress: &dyn ReadProgress,
    hook: &dyn ReadHook,
) -> Result<(Connections, ObservedState), NotRead> {
    let reader = Reader::new(topology, None, progress, false, hook);
    let nodes: Vec<_> = topology.nodes.values().collect();
    // Each answer is parsed on one of `cores` threads, not on the thread that
    // fetched it: that thread goes on to its next node at once, so the waves
    // of round trips are not held up by parsing on a busy machine.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (to_parse, answers) = std::sync::mpsc::channel::<(usize, Fetched)>();
    let answers = Mutex::new(answers);
    let parsed: Mutex<Vec<Option<ReadResult>>> =
        Mutex::new((0..nodes.len()).map(|_| None).collect());
    let results = reader.alongside(|| {
        std::thread::scope(|s| {
            for _ in 0..cores {
                s.spawn(|| loop {
                    let next = answers.lock().unwrap().recv();
                    let Ok((i, fetched)) = next else { break };
                    let read = reader.finish(fetched);
                    parsed.lock().unwrap()[i] = Some(read);
                });
            }
            let indexed: Vec<_> = nodes.iter().copied().enumerate().collect();
            let connected = parallel_map(indexed, parallelism, |(i, node)| {
                progress.connecting(&node.name);
                match connect(node) {
                    Ok(mut conn) => {
                        let fetched = reader.fetch(conn.as_mut());
                        to_parse.send((i, fetched)).expect("the parsers wait");
                        Ok(conn)
                    }
                    Err(e) => {
                        progress.failed(&node.name, &e.to_string());
                        reader.hook.failed();
                        Err(e)
                    }
                }
            });
            // The parsers end when every answer is parsed.
            drop(to_parse);
            connected
        })
    });
    let parsed = parsed.into_inner().unwrap();
    let results: Vec<_> = results
        .into_iter()
        .zip(parsed)
        .map(|(c, read)| c.map(|conn| (conn, read)))
        .collect();
    let mut conns = Vec::new();
    let mut reads = Vec::new();
    let mut unreached = Vec::new();
    for r in results {
        match r {
            Ok((conn, read)) => {
                conns.push(conn);
                reads.push(read.expect("every answer fetched is parsed"));
            }
            Err(e) => unreached.push(e),
        }
    }
    if !unreached.is_empty() {
        let unread = reader.gather(reads).err().unwrap_or_default();
        return Err(NotRead::Connect { unreached, unread });
    }
    reader
        .gather(reads)
        .map(|state| (conns, state))
        .map_err(NotRead::Read)
}

/// A node's read: its name and state.
type ReadResult = Result<(String, Arc<NodeState>), ObserveError>;

/// A node's round trip, its answer not yet parsed.
struct Fetched<'a> {
    node: &'a str,
    out: Result<Output, TransportError>,
    probed: bool,
    started: Instant,
}

/// What every node's read shares: the round trip's operations, worked out once.
struct Reader<'a> {
    topology: &'a Topology,
    holder: Option<&'a LockHolder>,
    progress: &'a dyn ReadProgress,
    probe: bool,
    hook: &'a dyn ReadHook,
    first: Vec<NodeOp>,
    images: BTreeMap<&'a str, std::collections::BTreeSet<&'a str>>,
    subnets: bool,
    given: BTreeMap<&'a str, Vec<u16>>,
    resolved: Result<BTreeMap<String, Ipv4Addr>, ObserveError>,
}

impl<'a> Reader<'a> {
    fn new(
        topology: &'a Topology,
        holder: Option<&'a LockHolder>,
        progress: &'a dyn ReadProgress,
        probe: bool,
        hook: &'a dyn ReadHook,
    ) -> Reader<'a> {
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
        // Host ports the file gives, by node: once, not once per node (a scan of
        // every container per node is quadratic in a fleet).
        let mut given: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for c in &topology.containers {
            given
                .entry(c.node.as_str())
                .or_default()
                .extend(c.publish.iter().filter_map(|p| p.host_port));
        }
        // Before the reads, so the plan's head start has them.
        let resolved = resolve_names(topology);
        if let Ok(names) = &resolved {
            hook.names(names);
        }
        Reader {
            topology,
            holder,
            progress,
            probe,
            hook,
            first,
            images,
            subnets: crate::plan::private::needs_subnets(topology),
            given,
            resolved,
        }
    }

    /// Runs `reads` with the hook's own work on one thread a core beside
    /// them; the hook's work is over when this returns.
    fn alongside<R: Send>(&self, reads: impl FnOnce() -> R + Send) -> R {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // `done` also when `reads` panics: else the scope would wait forever
        // for the hook's threads, and a crash would become a hang.
        struct Done<'h>(&'h dyn ReadHook);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        let results = std::thread::scope(|s| {
            for _ in 0..cores {
                s.spawn(|| self.hook.work());
            }
            let _done = Done(self.hook);
            reads()
        });
        self.hook.release();
        results
    }

    /// One node's round trip, not yet parsed.
    fn fetch(&self, conn: &mut dyn NodeConnection) -> Fetched<'a> {
        let topology = self.topology;
        let node = topology
            .nodes
            .get(conn.node())
            .expect("connections are the topology's nodes");
        let mut ops: Vec<NodeOp> = self.first.clone();
        ops.push(NodeOp::Observe {
            topology: topology.name.clone(),
            subnets: self.subnets,
            images: self
                .images
                .get(node.name.as_str())
                .map(|i| i.iter().map(|s| s.to_string()).collect())
                .unwrap_or_default(),
        });
        self.progress.reading(&node.name);
        let started = Instant::now();
        let mut probed = false;
        if self.probe {
            let checks: Vec<(String, crate::topology::model::Health)> = topology
                .containers
                .iter()
                .filter(|c| c.node == node.name)
                .filter_map(|c| Some((c.runtime_name(&topology.name), c.health.clone()?)))
                .collect();
            if !checks.is_empty() {
                ops.insert(0, NodeOp::ProbeHealth { checks });
                probed = true;
            }
        }
        Fetched {
            node: &node.name,
            out: conn.run(&ops),
            probed,
            started,
        }
    }

    /// A round trip's answer parsed, told to the progress and the hook.
    fn finish(&self, fetched: Fetched<'a>) -> Result<(String, Arc<NodeState>), ObserveError> {
        let Fetched {
            node,
            out,
            probed,
            started,
        } = fetched;
        let topology = self.topology;
        let read = interpret(out, probed, node, &topology.name, self.holder.is_some());
        match &read {
            Ok(s) => self
                .progress
                .read(node, s.containers.len(), started.elapsed()),
            Err(e) => self.progress.failed(node, &e.to_string()),
        }
        let read = read.map(|mut s| {
            let ports = self.given.get(node).map_or(&[][..], Vec::as_slice);
            keep_relevant_ports(topology, node, ports, &mut s);
            Arc::new(s)
        });
        match &read {
            Ok(s) => self.hook.read(node, s),
            Err(_) => self.hook.failed(),
        }
        read.map(|s| (node.to_string(), s))
    }

    /// The state of every node read, or every error (the names' too).
    fn gather(
        self,
        results: Vec<Result<(String, Arc<NodeState>), ObserveError>>,
    ) -> Result<ObservedState, Vec<ObserveError>> {
        let mut state = ObservedState::default();
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((name, s)) => {
                    // The hook has let go of it: no copy.
                    let s = Arc::try_unwrap(s).unwrap_or_else(|s| NodeState::clone(&s));
                    state.nodes.insert(name, s);
                }
                Err(e) => errors.push(e),
            }
        }
        match self.resolved {
            Ok(resolved) => state.resolved = resolved,
            Err(e) => errors.push(e),
        }
        if errors.is_empty() {
            Ok(state)
        } else {
            Err(errors)
        }
    }
}

/// One node's answer, parsed.
fn interpret(
    out: Result<Output, TransportError>,
    probed: bool,
    node: &str,
    topology: &str,
    locking: bool,
) -> Result<NodeState, ObserveError> {
    let out = out?;
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
    if probed {
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
pub(crate) fn resolve_names<'a>(
    topology: &'a Topology,
) -> Result<BTreeMap<String, Ipv4Addr>, ObserveError> {
    // Each name once, in the order the links name them: a fleet's links name
    // the same few nodes a hundred thousand times.
    let mut seen: foldhash::HashSet<&str> = foldhash::HashSet::default();
    let mut names: Vec<&str> = Vec::new();
    let mut name = |n: &'a str| {
        if seen.insert(n) {
            names.push(n);
        }
    };
    // Nodes whose address is a name; none (all addresses IPs): no link to a
    // container needs a look-up.
    let named = topology
        .nodes
        .values()
        .any(|n| matches!(&n.address, NodeAddress::Remote(a) if a.parse::<Ipv4Addr>().is_err()));
    // By name once: `Topology::container` is a scan, and this runs per link.
    let by_name: foldhash::HashMap<&str, &crate::topology::model::Container> = if named {
        topology
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect()
    } else {
        foldhash::HashMap::default()
    };
    for c in &topology.containers {
        for l in &c.links {
            match &l.target {
                LinkTarget::Raw { host, .. } => name(host),
                LinkTarget::Container { container, .. } if named => {
                    if let Some(t) = by_name.get(container.as_str()) {
                        if let Some(NodeAddress::Remote(a)) =
                            topology.nodes.get(&t.node).map(|n| &n.address)
                        {
                            name(a);
                        }
                    }
                }
                LinkTarget::Container { .. } | LinkTarget::Loopback { .. } => {}
            }
        }
    }
    let mut resolved = BTreeMap::new();
    for name in names {
        if name.parse::<Ipv4Addr>().is_ok() {
            continue;
        }
        let addr = (name, 0)
            .to_socket_addrs()
            .map_err(|e| ObserveError::Resolve {
                name: name.to_string(),
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
                name: name.to_string(),
                reason: "no IPv4 address".into(),
            })?;
        resolved.insert(name.to_string(), addr);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests;
