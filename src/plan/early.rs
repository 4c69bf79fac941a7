//! Planning while the nodes are still being read (issue 18, scale): each
//! container is resolved and compared on the reading threads as soon as the
//! reads it depends on have arrived, instead of all 10,000 after the last read
//! of a thousand nodes.
//!
//! What a container resolves to depends on the file, the names resolved before
//! the reads, its own node's state, and the host ports of the containers its
//! links reach; a node's host ports depend only on its own containers and its
//! own state (`resolve::assign_ports`). So a node's ports are worked out when
//! its read arrives, and a container is resolved (and compared with what runs
//! on its node) once its own node and every node its links reach have theirs.
//! The functions are the ones `plan_with` calls after the reads, on the same
//! inputs: what is done here is what would be done there, only earlier.
//!
//! It is only a head start: `plan_with` uses what was done here and does the
//! rest, and when anything went wrong here (a node's ports could not all be
//! assigned, a read failed) it uses nothing of it, so errors come out as they
//! always did. A comparison is reused only under the selection it was made
//! with; the resolved containers do not depend on the selection.

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use foldhash::{HashMap, HashMapExt, HashSet};

use crate::observe::ReadHook;
use crate::state::NodeState;
use crate::topology::model::{Container, LinkTarget, Topology};

use super::resolve::{assign_ports, resolve, ByName, PortKey};
use super::{compare_one, node_check, node_digest, Compared, Desired, NodeCheck, Selection};

/// A container resolved (and, under the expected selection, compared) early.
pub(super) struct Done {
    pub desired: Desired,
    pub compared: Option<Compared>,
}

/// What was planned early, handed to `plan_with`.
pub(super) struct Head<'t> {
    /// Every node's host ports, as `assign_host_ports` gives them.
    pub ports: HashMap<PortKey<'t>, u16>,
    pub done: HashMap<&'t str, Done>,
    /// The selection the comparisons in `done` were made under.
    pub selection: Option<Selection>,
    /// Each node whose containers all resolved: what the plan depends on
    /// there (`recheck_for`) and its digest (`fingerprint_with`).
    pub checks: HashMap<&'t str, (NodeCheck, String)>,
}

/// The plan's head start, fed by the reads (`observe::ReadHook`).
pub struct Early<'t> {
    topology: &'t Topology,
    by_name: ByName<'t>,
    selection: Option<Selection>,
    /// The containers on each node, in the file's order.
    on_node: HashMap<&'t str, Vec<&'t Container>>,
    /// The containers whose resolving needs each node's ports: those on it
    /// and those whose links reach a container on it.
    needed_by: HashMap<&'t str, Vec<&'t Container>>,
    inner: Mutex<Inner<'t>>,
    queue: Mutex<Queue>,
    arrived: Condvar,
}

/// `m` locked, also after a thread panicked while holding it: the reads and
/// `work` must still end (`done`), and `head` then finds the work spoiled.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reads not yet taken up by `work`, and whether they have all ended.
type Queue = (VecDeque<(String, Arc<NodeState>)>, bool);

#[derive(Default)]
struct Inner<'t> {
    resolved: Arc<BTreeMap<String, Ipv4Addr>>,
    ports: HashMap<PortKey<'t>, u16>,
    /// Nodes whose ports are in `ports`.
    ported: usize,
    /// Each container: how many of the nodes it needs have no ports yet.
    missing: HashMap<&'t str, usize>,
    /// A node's state as read and as this topology owns it, kept while
    /// containers on it are still to be resolved.
    states: HashMap<&'t str, (Arc<NodeState>, Arc<NodeState>)>,
    /// Containers on each node still to be resolved.
    left: HashMap<&'t str, usize>,
    /// Nodes with a container that did not resolve.
    unresolved: HashSet<&'t str>,
    done: HashMap<&'t str, Done>,
    checks: HashMap<&'t str, (NodeCheck, String)>,
    /// Something went wrong: `plan_with` does it all again.
    spoiled: bool,
}

impl<'t> Early<'t> {
    /// A head start for a plan of `topology`; the comparisons are made only
    /// when the selection is known before the reads (`selection`), else each
    /// container is only resolved.
    pub fn new(topology: &'t Topology, selection: Option<Selection>) -> Early<'t> {
        let by_name = super::resolve::by_name(topology);
        let mut on_node: HashMap<&str, Vec<&Container>> = HashMap::new();
        let mut needed_by: HashMap<&str, Vec<&Container>> = HashMap::new();
        let mut missing = HashMap::with_capacity(topology.containers.len());
        for c in &topology.containers {
            on_node.entry(&c.node).or_default().push(c);
            let mut needs: Vec<&str> = vec![&c.node];
            for l in &c.links {
                if let LinkTarget::Container { container, .. } = &l.target {
                    if let Some(t) = by_name.get(container.as_str()) {
                        needs.push(&t.node);
                    }
                }
            }
            needs.sort_unstable();
            needs.dedup();
            missing.insert(c.name.as_str(), needs.len());
            for n in needs {
                needed_by.entry(n).or_default().push(c);
            }
        }
        let left = on_node.iter().map(|(&n, on)| (n, on.len())).collect();
        Early {
            topology,
            by_name,
            selection,
            on_node,
            needed_by,
            inner: Mutex::new(Inner {
                missing,
                left,
                ..Inner::default()
            }),
            queue: Mutex::new((VecDeque::new(), false)),
            arrived: Condvar::new(),
        }
    }

    /// What was done, or nothing when it cannot be used: some node's ports
    /// were not worked out (its read failed, or a port could not be given).
    pub(super) fn head(self) -> Option<Head<'t>> {
        // Poisoned: a thread panicked half-way through; use nothing of it.
        let inner = self.inner.into_inner().ok()?;
        let complete = inner.ported == self.topology.nodes.len();
        (complete && !inner.spoiled).then_some(Head {
            ports: inner.ports,
            done: inner.done,
            selection: self.selection,
            checks: inner.checks,
        })
    }

    /// Resolves (and compares) `c`, whose nodes all have their ports.
    fn plan_one(&self, c: &'t Container, ns: &NodeState, resolved: &BTreeMap<String, Ipv4Addr>) {
        // The ports `c` reads: its own and those of the containers its links reach.
        let ports: HashMap<PortKey, u16> = {
            let inner = lock(&self.inner);
            let own = c
                .publish
                .iter()
                .map(|p| (c.name.as_str(), p.protocol, p.port));
            let reached = c.links.iter().filter_map(|l| match &l.target {
                LinkTarget::Container { container, port } => {
                    Some((container.as_str(), l.protocol, *port))
                }
                _ => None,
            });
            own.chain(reached)
                .filter_map(|k| Some((k, *inner.ports.get(&k)?)))
                .collect()
        };
        let resolved_here = resolve(self.topology, &self.by_name, resolved, Some(ns), c, &ports);
        // Compared before the lock: the workers share it.
        let done = resolved_here.ok().map(|desired| {
            let compared = self
                .selection
                .as_ref()
                .map(|s| compare_one(self.topology, s, &desired, ns));
            Done { desired, compared }
        });
        let mut inner = lock(&self.inner);
        match done {
            Some(done) => {
                inner.done.insert(&c.name, done);
            }
            None => {
                inner.unresolved.insert(&c.node);
            }
        }
        let left = inner
            .left
            .get_mut(c.node.as_str())
            .expect("a node of the file");
        *left -= 1;
        if *left > 0 {
            return;
        }
        // The node's last container: what the plan depends on there, its
        // digest made outside the lock.
        let (full, _) = inner
            .states
            .remove(c.node.as_str())
            .expect("kept until now");
        if inner.unresolved.contains(c.node.as_str()) {
            return;
        }
        let on_node = &self.on_node[c.node.as_str()];
        let desired = on_node.iter().map(|c| &inner.done[c.name.as_str()].desired);
        let check = node_check(desired, Some(&full));
        drop(inner);
        let digest = node_digest(&check, &c.node, &full);
        let mut inner = lock(&self.inner);
        inner.checks.insert(&c.node, (check, digest));
    }

    /// Works out `node`'s ports, then plans every container whose nodes all have theirs.
    fn take_up(&self, node: &str, state: Arc<NodeState>) {
        let Some((&node, containers)) = self.on_node.get_key_value(node) else {
            // A node with no container: nothing to resolve there.
            let Some((node, _)) = self.topology.nodes.get_key_value(node) else {
                return;
            };
            let check = node_check(std::iter::empty(), Some(&state));
            let digest = node_digest(&check, node, &state);
            let mut inner = lock(&self.inner);
            inner.ported += 1;
            inner.checks.insert(node, (check, digest));
            return;
        };
        // As `plan_with` sees it: only what this topology owns.
        let ns = match self.topology.id.as_deref() {
            None => state.clone(),
            Some(id) => {
                let mut owned = NodeState::clone(&state);
                super::owner::split_node(id, node, &mut owned, &mut Vec::new(), &mut Vec::new());
                Arc::new(owned)
            }
        };
        let mut errors = Vec::new();
        let ports = assign_ports(self.topology, containers, |_| &ns, &mut errors);
        let (ready, resolved) = {
            let mut inner = lock(&self.inner);
            if !errors.is_empty() {
                inner.spoiled = true;
            }
            if inner.spoiled {
                return;
            }
            inner.ports.extend(ports);
            inner.ported += 1;
            inner.states.insert(node, (state, ns));
            let mut ready = Vec::new();
            for &c in self.needed_by.get(node).map_or(&[][..], Vec::as_slice) {
                let missing = inner.missing.get_mut(c.name.as_str()).expect("counted");
                *missing -= 1;
                if *missing == 0 {
                    let ns = inner.states[c.node.as_str()].1.clone();
                    ready.push((c, ns));
                }
            }
            (ready, inner.resolved.clone())
        };
        for (c, ns) in ready {
            self.plan_one(c, &ns, &resolved);
        }
    }
}

impl ReadHook for Early<'_> {
    fn names(&self, resolved: &BTreeMap<String, Ipv4Addr>) {
        lock(&self.inner).resolved = Arc::new(resolved.clone());
    }

    fn read(&self, node: &str, state: &Arc<NodeState>) {
        let mut queue = lock(&self.queue);
        queue.0.push_back((node.to_string(), state.clone()));
        self.arrived.notify_one();
    }

    /// On one thread a core (not on a hundred reading threads: what it keeps,
    /// the plan's resolved containers, is made in few malloc arenas).
    fn work(&self) {
        loop {
            let next = {
                let mut queue = lock(&self.queue);
                loop {
                    if let Some(next) = queue.0.pop_front() {
                        break Some(next);
                    }
                    if queue.1 {
                        break None;
                    }
                    queue = self
                        .arrived
                        .wait(queue)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let Some((node, state)) = next else { break };
            self.take_up(&node, state);
        }
    }

    fn release(&self) {
        lock(&self.inner).states.clear();
    }

    fn failed(&self) {
        lock(&self.inner).spoiled = true;
    }

    fn done(&self) {
        lock(&self.queue).1 = true;
        self.arrived.notify_all();
    }
}

#[cfg(test)]
mod tests;
