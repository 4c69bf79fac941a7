//! Executing a plan: turning its changes into tasks (one `NodeOp`, one round trip
//! each) ordered by the dependency graph, and running them with one connection per
//! node, nodes in parallel. A failed task stops what depends on it; everything else
//! finishes. The plan is decided before this runs; nothing here re-plans, and no
//! shell text is written here (`node::script` renders the operations).
//! `session` wraps a run in the apply lock.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use crate::graph::{DepGraph, Step};
use crate::node::{CreateSpec, NodeConnection, NodeOp, OwnedRules};
use crate::plan::{Action, Change, Plan};
use crate::text::escape_controls;
use crate::topology::model::{Firewall, Runtime, Topology};

pub mod interrupt;
#[cfg(feature = "testing")]
pub mod pause;
pub mod saved;
pub mod session;
#[cfg(test)]
pub(crate) mod sim;

/// One operation on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub node: String,
    /// What it does, for progress and the report (`create todo-app1`).
    pub label: String,
    pub op: NodeOp,
    /// Indexes of tasks that must be done first.
    pub deps: Vec<usize>,
}

/// What became of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Failed(String),
    /// Not run: something it needs did not complete.
    Skipped(String),
}

/// Where progress goes.
pub trait Progress: Sync {
    /// The tasks are about to run (in a session: every node locked, nothing moved).
    fn begin(&self) {}
    fn started(&self, node: &str, label: &str);
    fn finished(&self, node: &str, label: &str, outcome: &Outcome);
    /// The apply lock of `node` could not be released.
    fn unlock_failed(&self, node: &str, error: &crate::transport::TransportError);
}

/// Plain lines, for logs and pipes. A closed stdout or stderr does not stop an
/// apply half-way (its locks must still be released): progress lines that cannot
/// be written are dropped, and the report that follows fails to print instead.
pub struct PlainProgress;

impl Progress for PlainProgress {
    fn begin(&self) {
        let _ = writeln!(std::io::stdout());
    }
    fn started(&self, _node: &str, _label: &str) {}
    fn finished(&self, node: &str, label: &str, outcome: &Outcome) {
        let mut out = std::io::stdout();
        let _ = match outcome {
            Outcome::Done => writeln!(out, "{node}: {label}: done"),
            Outcome::Failed(e) => writeln!(out, "{node}: {label}: FAILED: {}", escape_controls(e)),
            Outcome::Skipped(why) => writeln!(out, "{node}: {label}: not started ({why})"),
        };
    }
    fn unlock_failed(&self, node: &str, error: &crate::transport::TransportError) {
        let error = escape_controls(&error.to_string()).into_owned();
        let _ = writeln!(
            std::io::stderr(),
            "warning: could not release the lock on node {node}: {error}"
        );
    }
}

fn runtime_of(topology: &Topology, node: &str) -> Runtime {
    topology
        .nodes
        .get(node)
        .map(|n| n.runtime)
        .unwrap_or(Runtime::Podman)
}

fn firewall_of(topology: &Topology, node: &str) -> Firewall {
    topology
        .nodes
        .get(node)
        .map(|n| n.firewall)
        .unwrap_or_default()
}

/// Secret values never stand on a command line: `script` passes them through a
/// root-only env file, or (with a line break, which an env file cannot hold)
/// through the environment of the create process.
fn in_file(v: &crate::topology::model::EnvValue) -> bool {
    v.secret
}

fn create_spec(topology: &Topology, c: &Change) -> CreateSpec {
    use crate::node::volumes::{ID_LABEL as VOLUME_ID, TOPOLOGY_LABEL as VOLUME_TOPOLOGY};
    let d = c.desired.as_ref().expect("create has a desired container");
    let mut labels = vec![
        ("geartopo.topology".into(), topology.name.clone()),
        ("geartopo.container".into(), d.container.clone()),
        ("geartopo.spec".into(), d.spec_label()),
    ];
    // Last, so that the labels of a file without an id are what they always were.
    if let Some(id) = &topology.id {
        labels.push(("geartopo.id".into(), id.clone()));
    }
    CreateSpec {
        runtime_name: d.runtime_name.clone(),
        labels,
        publish: d
            .publish
            .iter()
            .map(|(p, port, hp)| (p.as_str(), *port, *hp))
            .collect(),
        env: d
            .env
            .iter()
            .filter(|(_, v)| !in_file(v))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect(),
        secret_env: d
            .env
            .iter()
            .filter(|(_, v)| in_file(v))
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect(),
        image: d.image.clone(),
        command: d.command.clone(),
        restart: d.restart.as_arg(),
        oci_runtime: d.oci_runtime.clone(),
        volumes: d
            .mounts
            .iter()
            .filter_map(|m| m.volume.clone())
            .map(|name| {
                let mut labels = vec![
                    (VOLUME_TOPOLOGY.to_string(), topology.name.clone()),
                    ("geartopo.container".to_string(), d.container.clone()),
                ];
                if let Some(id) = &topology.id {
                    labels.push((VOLUME_ID.to_string(), id.clone()));
                }
                (name, labels)
            })
            .collect(),
        mounts: d.mounts.iter().map(|m| m.arg()).collect(),
        options: d.options.create_args(),
        durable: Some(OwnedRules {
            topology: topology.name.clone(),
            container: d.container.clone(),
            rules: d.rules.clone(),
            file: Some(d.runtime_name.clone()),
            firewall: d.firewall,
            clear_other: false,
        }),
    }
}

/// The tasks that carry out `plan`, in an order every node can follow: first the
/// removals (containers no longer wanted, and the old side of every replace, so
/// that host ports they hold are free whichever container takes them next; the
/// old side of a replace only once the new image is on the node), then
/// create, rules and start per the graph. Steps on a container that exists act on
/// its observed id, never on a name another owner could hold.
pub fn apply_tasks(topology: &Topology, graph: &DepGraph, plan: &Plan) -> Vec<Task> {
    // A node's private-ports chain first, on its own: a node runs its tasks in
    // order, so a port is never open to all before its container is created, and
    // a linking node is let in before its container starts.
    let mut tasks: Vec<Task> = node_tasks(plan);
    let mut deletes_on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    // Members of a roll (docs/rolling.md): (roll, position) by container. Their
    // removal is not among the node's removals: it waits for the members before
    // them, and is emitted with their create.
    let rolled: BTreeMap<&str, (usize, usize)> = plan
        .rolls
        .iter()
        .enumerate()
        .flat_map(|(r, roll)| {
            roll.members
                .iter()
                .enumerate()
                .map(move |(i, m)| (m.as_str(), (r, i)))
        })
        .collect();
    // The task after which a container counts as up: its health check, else its
    // start (else its create).
    let mut up: BTreeMap<&str, usize> = BTreeMap::new();
    // A rolled member's removal: (task, roll, position), given the member it
    // waits for once every task exists.
    let mut roll_removes: Vec<(usize, usize, usize)> = Vec::new();
    for c in plan.changes.iter() {
        if rolled.contains_key(c.container.as_str()) {
            continue;
        }
        let label = match c.action {
            Action::Delete => format!("destroy {}", c.runtime_name),
            Action::Replace { .. } => format!("remove {} to replace it", c.runtime_name),
            _ => continue,
        };
        let Some(id) = c.observed_id.as_deref() else {
            continue;
        };
        // The new image first: one that cannot be had fails here, before the
        // old container goes, which then keeps running (and its links with it).
        let mut deps = vec![];
        if let (Action::Replace { .. }, Some(d)) = (&c.action, &c.desired) {
            deps.push(tasks.len());
            tasks.push(ensure_image(&c.node, &c.runtime_name, &d.image));
        }
        deletes_on
            .entry(c.node.clone())
            .or_default()
            .push(tasks.len());
        tasks.push(Task {
            node: c.node.clone(),
            label,
            op: NodeOp::Remove {
                container: id.to_string(),
            },
            deps,
        });
    }
    let changes: BTreeMap<&str, &Change> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete)
        .map(|c| (c.container.as_str(), c))
        .collect();
    let mut index: BTreeMap<Step, usize> = BTreeMap::new();
    for step in graph.steps_in_order() {
        let (Step::Create(name) | Step::Rules(name) | Step::Start(name)) = &step;
        let Some(c) = changes.get(name.as_str()) else {
            continue;
        };
        let rt = runtime_of(topology, &c.node);
        // A new container is ours by the name we just gave it; an existing one
        // is addressed by the id observe found under our labels.
        let existing = c.action == Action::Update;
        let target = match (existing, c.observed_id.as_deref()) {
            (true, Some(id)) => id,
            _ => c.runtime_name.as_str(),
        };
        let container = target.to_string();
        let (label, op) = match &step {
            Step::Create(_) => match &c.action {
                Action::Create | Action::Replace { .. } => (
                    format!("create {}", c.runtime_name),
                    NodeOp::Create(create_spec(topology, c)),
                ),
                // Only podman has a step between create and start (README).
                _ if c.start && rt == Runtime::Podman => (
                    format!("init {}", c.runtime_name),
                    NodeOp::Init { container },
                ),
                _ => continue,
            },
            Step::Rules(_) => (
                format!("rules {}", c.runtime_name),
                NodeOp::Rules {
                    container,
                    rules: OwnedRules {
                        topology: topology.name.clone(),
                        container: c.container.clone(),
                        rules: c.rules_after.clone(),
                        file: c.rules_file.clone(),
                        firewall: c
                            .desired
                            .as_ref()
                            .map_or_else(|| firewall_of(topology, &c.node), |d| d.firewall),
                        // A switch of backends: the old one's rules go after the
                        // new ones are in place (docs/nftables.md).
                        clear_other: c.reasons.iter().any(|r| r == "firewall"),
                    },
                },
            ),
            Step::Start(_) => {
                if !c.start {
                    continue;
                }
                (
                    format!("start {}", c.runtime_name),
                    NodeOp::Start { container },
                )
            }
        };
        let roll = rolled.get(c.container.as_str()).copied();
        let mut deps: Vec<usize> = graph
            .dependencies(&step)
            .iter()
            // A member's rules do not wait for the new containers of the members
            // after it in its roll: the old ones, at the same host ports, serve.
            .filter(|d| match (d, roll) {
                (Step::Create(other), Some((r, _))) if *other != c.container => {
                    rolled.get(other.as_str()).is_none_or(|(o, _)| *o != r)
                }
                _ => true,
            })
            .filter_map(|d| index.get(d).copied())
            .collect();
        if matches!(step, Step::Create(_)) {
            deps.extend(deletes_on.get(&c.node).into_iter().flatten().copied());
            if let (Some((r, i)), Some(id), Some(d)) = (roll, c.observed_id.as_deref(), &c.desired)
            {
                let image = tasks.len();
                tasks.push(ensure_image(&c.node, &c.runtime_name, &d.image));
                roll_removes.push((tasks.len(), r, i));
                deps.push(tasks.len());
                tasks.push(Task {
                    node: c.node.clone(),
                    label: format!("remove {} to replace it (rolling)", c.runtime_name),
                    op: NodeOp::Remove {
                        container: id.to_string(),
                    },
                    deps: vec![image],
                });
            }
        }
        // The init of a stopped durable container runs the hook, which reads
        // its rules file: a file to repair is written first.
        let repair = ["rules file", "hook"];
        if matches!(op, NodeOp::Init { .. })
            && c.rules_file.is_some()
            && c.reasons.iter().any(|r| repair.contains(&r.as_str()))
        {
            let write = tasks.len();
            tasks.push(Task {
                node: c.node.clone(),
                label: format!("rules file {}", c.runtime_name),
                op: NodeOp::WriteRules {
                    rules: OwnedRules {
                        topology: topology.name.clone(),
                        container: c.container.clone(),
                        rules: c.rules_after.clone(),
                        file: c.rules_file.clone(),
                        firewall: c
                            .desired
                            .as_ref()
                            .map_or_else(|| firewall_of(topology, &c.node), |d| d.firewall),
                        clear_other: false,
                    },
                },
                deps: deps.clone(),
            });
            deps.push(write);
        }
        deps.sort();
        deps.dedup();
        index.insert(step.clone(), tasks.len());
        let started = matches!(op, NodeOp::Start { .. });
        if started || matches!(op, NodeOp::Create(_)) {
            up.insert(c.container.as_str(), tasks.len());
        }
        tasks.push(Task {
            node: c.node.clone(),
            label,
            op,
            deps,
        });
        // What links to a container it starts waits for it to be healthy.
        if let (true, Some(health)) = (started, c.desired.as_ref().and_then(|d| d.health.as_ref()))
        {
            let check = tasks.len();
            tasks.push(Task {
                node: c.node.clone(),
                label: format!("health {}", c.runtime_name),
                op: NodeOp::Health {
                    container: container_of(c),
                    name: c.runtime_name.clone(),
                    health: health.clone(),
                },
                deps: vec![check - 1],
            });
            index.insert(step.clone(), check);
            up.insert(c.container.as_str(), check);
        }
    }
    // Member i of a roll goes down once member i - max_unavailable is up.
    for (remove, r, i) in roll_removes {
        let roll = &plan.rolls[r];
        let Some(before) = i.checked_sub(roll.max_unavailable as usize) else {
            continue;
        };
        if let Some(t) = up.get(roll.members[before].as_str()) {
            tasks[remove].deps.push(*t);
        }
    }
    in_dependency_order(tasks)
}

/// The runtime's handle on a container a step just created or acts on.
fn container_of(c: &Change) -> String {
    match (&c.action, c.observed_id.as_deref()) {
        (Action::Update, Some(id)) => id.to_string(),
        _ => c.runtime_name.clone(),
    }
}

/// `tasks` reordered so that every task comes after its dependencies (each node
/// runs its tasks in list order), otherwise in their order: a rolled member's
/// removal waits for a start that the step order puts after it.
fn in_dependency_order(tasks: Vec<Task>) -> Vec<Task> {
    let n = tasks.len();
    let mut waiting: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for d in &t.deps {
            dependents[*d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &m in &dependents[i] {
            waiting[m] -= 1;
            if waiting[m] == 0 {
                ready.insert(m);
            }
        }
    }
    assert_eq!(order.len(), n, "apply tasks with a cycle: {tasks:?}");
    let mut new_index = vec![0; n];
    for (new, old) in order.iter().enumerate() {
        new_index[*old] = new;
    }
    let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    order
        .iter()
        .map(|old| {
            let mut t = slots[*old].take().expect("each task once");
            for d in &mut t.deps {
                *d = new_index[*d];
            }
            t.deps.sort();
            t
        })
        .collect()
}

/// One task per node change of the plan (`private_ports`).
fn node_tasks(plan: &Plan) -> Vec<Task> {
    plan.node_changes
        .iter()
        .map(|n| Task {
            node: n.node.clone(),
            label: if n.rules_after.is_empty() {
                format!("remove private ports chain {}", n.chain)
            } else {
                format!("private ports chain {}", n.chain)
            },
            op: NodeOp::PrivatePorts {
                chain: n.chain.clone(),
                rules: n.rules_after.clone(),
            },
            deps: vec![],
        })
        .collect()
}

/// The tasks that remove every container in `plan` (all deletes), dependents first:
/// a container goes before the containers it links to.
pub fn destroy_tasks(topology: &Topology, graph: &DepGraph, plan: &Plan) -> Vec<Task> {
    let mut tasks = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    // Reverse start order: containers that nothing links to come first.
    let mut order: Vec<&Change> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    let steps = graph.steps_in_order();
    let position = |name: &str| {
        steps
            .iter()
            .position(|s| matches!(s, Step::Start(n) if n == name))
    };
    order.sort_by_key(|c| std::cmp::Reverse(position(&c.container)));
    for c in order {
        let mut deps = Vec::new();
        // Wait for every container that starts after this one and needs it.
        for other in &topology.containers {
            if graph
                .dependencies(&Step::Start(other.name.clone()))
                .contains(&Step::Start(c.container.clone()))
            {
                if let Some(i) = index.get(&other.name) {
                    deps.push(*i);
                }
            }
        }
        index.insert(c.container.clone(), tasks.len());
        tasks.push(Task {
            node: c.node.clone(),
            label: format!("destroy {}", c.runtime_name),
            op: NodeOp::Remove {
                container: c
                    .observed_id
                    .clone()
                    .unwrap_or_else(|| c.runtime_name.clone()),
            },
            deps,
        });
    }
    // Last on each node (its tasks run in order): the chain outlives the
    // containers whose ports it guards.
    tasks.extend(node_tasks(plan));
    tasks
}

/// `destroy --volumes`: on each node, after everything else there (a node runs
/// its tasks in order, and the removal waits for that node's container
/// removals), one task that removes the volumes `volumes` names for it.
pub fn remove_volume_tasks(tasks: &mut Vec<Task>, volumes: &BTreeMap<String, Vec<String>>) {
    for (node, names) in volumes {
        if names.is_empty() {
            continue;
        }
        let deps = tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| &t.node == node && matches!(t.op, NodeOp::Remove { .. }))
            .map(|(i, _)| i)
            .collect();
        tasks.push(Task {
            node: node.clone(),
            label: format!("remove volumes {}", names.join(" ")),
            op: NodeOp::RemoveVolumes {
                names: names.clone(),
            },
            deps,
        });
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Pending,
    Finished(Outcome),
}

/// Runs `tasks` over `conns` (one per node): each node's tasks in order on its own
/// thread, waiting for dependencies on other nodes; at most `parallelism` scripts
/// run at once. A transport error ends that node's run (its later tasks are
/// skipped); a failed task skips what depends on it. Returns one outcome per task.
pub fn execute(
    tasks: &[Task],
    conns: &mut [Box<dyn NodeConnection>],
    parallelism: usize,
    progress: &dyn Progress,
) -> Vec<Outcome> {
    execute_until(tasks, conns, parallelism, progress, &AtomicBool::new(false))
}

/// What a task not started because of an interruption says.
pub const INTERRUPTED: &str = "interrupted";

/// As `execute`; once `stop` is set (the first Ctrl-C), no task starts any more:
/// those running finish, the rest are `Skipped` as interrupted.
pub fn execute_until(
    tasks: &[Task],
    conns: &mut [Box<dyn NodeConnection>],
    parallelism: usize,
    progress: &dyn Progress,
    stop: &AtomicBool,
) -> Vec<Outcome> {
    execute_releasing(tasks, conns, parallelism, progress, stop, None).0
}

/// As `execute_until`; with `release` (`NodeOp::Release`), each node's last task
/// carries it in its own round trip, so that a node whose steps all went
/// through is unlocked without another round trip. Also returns the nodes whose
/// answer said `RELEASED`: the others still hold the lock.
pub fn execute_releasing(
    tasks: &[Task],
    conns: &mut [Box<dyn NodeConnection>],
    parallelism: usize,
    progress: &dyn Progress,
    stop: &AtomicBool,
    release: Option<&NodeOp>,
) -> (Vec<Outcome>, std::collections::BTreeSet<String>) {
    let released = Mutex::new(std::collections::BTreeSet::new());
    let connected: Vec<String> = conns.iter().map(|c| c.node().to_string()).collect();
    let status = Mutex::new(
        tasks
            .iter()
            .map(|t| {
                if connected.contains(&t.node) {
                    Status::Pending
                } else {
                    Status::Finished(Outcome::Skipped(format!(
                        "node {} is not connected",
                        t.node
                    )))
                }
            })
            .collect::<Vec<_>>(),
    );
    let changed = Condvar::new();
    let permits = Permits::new(parallelism);
    std::thread::scope(|scope| {
        for conn in conns.iter_mut() {
            let mine: Vec<usize> = (0..tasks.len())
                .filter(|i| tasks[*i].node == conn.node())
                .collect();
            let (status, changed, permits, released) = (&status, &changed, &permits, &released);
            if mine.is_empty() {
                // A node with nothing to do has no reason to stay locked while
                // the others work: its lock goes at once, in a round trip of its own.
                if let Some(r) = release {
                    scope.spawn(move || {
                        // Not stopped by an interrupt: a lock is always released.
                        permits.take(&AtomicBool::new(false));
                        let result = conn.run(std::slice::from_ref(r));
                        permits.give();
                        if said_released(&result) {
                            released
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(conn.node().to_string());
                        }
                    });
                }
                continue;
            }
            let last = *mine.last().expect("not empty");
            scope.spawn(move || {
                // Should this thread panic, its unfinished tasks count as failed,
                // so other nodes waiting on them stop waiting.
                let _guard = PanicGuard {
                    status,
                    changed,
                    tasks: mine.clone(),
                };
                let mut broken: Option<String> = None;
                for i in mine {
                    let task = &tasks[i];
                    // Wait for dependencies (they come earlier in every node's order).
                    let mut st = status.lock().unwrap_or_else(|e| e.into_inner());
                    while task.deps.iter().any(|d| st[*d] == Status::Pending) {
                        st = changed.wait(st).unwrap_or_else(|e| e.into_inner());
                    }
                    let failed_dep = task
                        .deps
                        .iter()
                        .find(|d| st[**d] != Status::Finished(Outcome::Done));
                    let skip = match (failed_dep, &broken) {
                        _ if stop.load(Ordering::SeqCst) => Some(INTERRUPTED.to_string()),
                        (_, Some(why)) => Some(why.clone()),
                        (Some(d), None) => Some(format!("{} did not complete", tasks[*d].label)),
                        _ => None,
                    };
                    drop(st);
                    let outcome = match skip {
                        Some(why) => Outcome::Skipped(why),
                        None => 'run: {
                            // An interrupt while this step waited for its turn:
                            // it does not start.
                            if !permits.take(stop) {
                                break 'run Outcome::Skipped(INTERRUPTED.to_string());
                            }
                            progress.started(&task.node, &task.label);
                            #[cfg(feature = "testing")]
                            pause::at("step");
                            let result = match release {
                                Some(r) if i == last => {
                                    let result = conn.run(&[task.op.clone(), r.clone()]);
                                    if said_released(&result) {
                                        released
                                            .lock()
                                            .unwrap_or_else(|e| e.into_inner())
                                            .insert(task.node.clone());
                                    }
                                    result
                                }
                                _ => conn.run(std::slice::from_ref(&task.op)),
                            };
                            #[cfg(feature = "testing")]
                            pause::at(&format!("after-{}", task.op.kind()));
                            permits.give();
                            match result {
                                Ok(out) if out.success() => Outcome::Done,
                                Ok(out) => {
                                    let err = out.stderr_str().trim().to_string();
                                    Outcome::Failed(if err.is_empty() {
                                        format!("exit status {}", out.status)
                                    } else {
                                        err
                                    })
                                }
                                Err(e) => {
                                    broken = Some(match e {
                                        crate::transport::TransportError::ScriptTimeout {
                                            ..
                                        } => format!("a step on node {} timed out", task.node),
                                        _ => format!("node {} is unreachable", task.node),
                                    });
                                    Outcome::Failed(e.to_string())
                                }
                            }
                        }
                    };
                    progress.finished(&task.node, &task.label, &outcome);
                    status.lock().unwrap()[i] = Status::Finished(outcome);
                    changed.notify_all();
                }
            });
        }
    });
    let outcomes = status
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|s| match s {
            Status::Finished(o) => o,
            Status::Pending => unreachable!("every connected node runs all its tasks"),
        })
        .collect();
    (
        outcomes,
        released.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

/// At most `parallelism` scripts at once, across every node's thread.
struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Permits {
    fn new(parallelism: usize) -> Self {
        Permits {
            free: Mutex::new(parallelism.max(1)),
            freed: Condvar::new(),
        }
    }

    /// Waits for a free permit and takes it; takes none and says false when
    /// `stop` was set meanwhile.
    fn take(&self, stop: &AtomicBool) -> bool {
        let mut p = self.free.lock().unwrap();
        while *p == 0 {
            p = self.freed.wait(p).unwrap();
        }
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        *p -= 1;
        true
    }

    fn give(&self) {
        *self.free.lock().unwrap() += 1;
        self.freed.notify_one();
    }
}

/// Whether a round trip that carried `NodeOp::Release` ended with the lock gone.
fn said_released(
    result: &Result<crate::transport::Output, crate::transport::TransportError>,
) -> bool {
    result.as_ref().is_ok_and(|out| {
        out.success() && out.stdout_str().lines().any(|l| l == crate::node::RELEASED)
    })
}

struct PanicGuard<'a> {
    status: &'a Mutex<Vec<Status>>,
    changed: &'a Condvar,
    tasks: Vec<usize>,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut st = self.status.lock().unwrap_or_else(|e| e.into_inner());
            for i in &self.tasks {
                if st[*i] == Status::Pending {
                    st[*i] = Status::Finished(Outcome::Failed("internal error".into()));
                }
            }
            self.changed.notify_all();
        }
    }
}

#[cfg(test)]
mod docker_runtime_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod firewall_tests;
#[cfg(test)]
mod private_tests;
#[cfg(test)]
mod roll_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod volume_tests;

/// The step that makes sure a replacement's image is on the node before the old
/// container goes (a plain replace, and each member of a roll).
fn ensure_image(node: &str, runtime_name: &str, image: &str) -> Task {
    Task {
        node: node.to_string(),
        label: format!("image {image} for {runtime_name}"),
        op: NodeOp::EnsureImage {
            image: image.to_string(),
        },
        deps: vec![],
    }
}
