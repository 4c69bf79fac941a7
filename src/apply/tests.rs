//! Apply tests without hosts: simulated nodes (`sim`) behind the fake connections
//! act on the operations geartopo sends (observe, create, init, rules, start,
//! remove), so ordering, failure propagation, convergence and idempotence are
//! checked on the full observe -> plan -> execute loop, by the operations each
//! node received. What those operations look like as shell text is pinned by the
//! golden scripts (`node::script`); the lab tests the real thing.

use super::sim::{simulated, SimContainer};
use super::*;
use crate::node::fake::FakeNodes;
use crate::node::Connections;
use crate::observe::observe;
use crate::plan::plan;
use crate::plan::tests::redis_todo;
use crate::state::ObservedState;
use crate::transport::TransportError;

fn conns(nodes: &FakeNodes, t: &crate::topology::model::Topology) -> Connections {
    nodes.connections(t)
}

pub(crate) struct Quiet;
impl Progress for Quiet {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: &Outcome) {}
    fn unlock_failed(&self, node: &str, error: &TransportError) {
        panic!("unlock failed on {node}: {error}");
    }
}

/// observe -> plan -> execute, as `apply --auto-approve` does.
pub(super) fn apply_once(
    t: &crate::topology::model::Topology,
    w: &FakeNodes,
) -> (crate::plan::Plan, Vec<Task>, Vec<Outcome>) {
    let mut c = conns(w, t);
    let state: ObservedState = observe(t, &mut c, 4).unwrap();
    let p = plan(t, &state, None).unwrap();
    let graph = DepGraph::build(t).unwrap();
    let tasks = apply_tasks(t, &graph, &p);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    (p, tasks, outcomes)
}

fn position(tasks: &[Task], label: &str) -> usize {
    tasks
        .iter()
        .position(|t| t.label == label)
        .unwrap_or_else(|| panic!("no task {label}: {tasks:?}"))
}

#[test]
fn tasks_follow_the_dependency_order() {
    let t = redis_todo();
    let p = plan(&t, &crate::plan::tests::empty_state(&t), None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    let labels: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels.len(), 6, "{labels:?}");
    assert!(position(&tasks, "create todo-redisdb") < position(&tasks, "rules todo-app1"));
    assert!(position(&tasks, "start todo-redisdb") < position(&tasks, "start todo-app1"));
    assert!(position(&tasks, "create todo-app1") < position(&tasks, "rules todo-app1"));
    assert!(position(&tasks, "rules todo-app1") < position(&tasks, "start todo-app1"));
    for (i, task) in tasks.iter().enumerate() {
        assert!(
            task.deps.iter().all(|d| *d < i),
            "deps come earlier: {task:?}"
        );
    }
}

#[test]
fn apply_then_plan_again_is_no_change_and_runs_nothing_that_changes() {
    let t = redis_todo();
    let (_sim, w) = simulated(&t, &[]);
    let (_, tasks, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert_eq!(tasks.len(), 6);
    let before = w.log().len();
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
    let after: Vec<_> = w.log()[before..].to_vec();
    assert_eq!(after.len(), 2, "one round trip per node and nothing else");
    assert!(
        after.iter().all(|r| matches!(
            r.ops.as_slice(),
            [NodeOp::Observe { topology, .. }] if topology == "todo"
        )),
        "{after:?}"
    );
}

#[test]
fn each_container_is_created_with_labels_sysctls_and_ports() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let created: BTreeMap<String, (String, CreateSpec)> = w
        .ops()
        .into_iter()
        .filter_map(|(node, op)| match op {
            NodeOp::Create(spec) => Some((spec.runtime_name.clone(), (node, spec))),
            _ => None,
        })
        .collect();
    let (node, redis) = &created["todo-redisdb"];
    assert_eq!(node, "node4");
    assert_eq!(
        redis.labels[..2],
        [
            ("geartopo.topology".to_string(), "todo".to_string()),
            ("geartopo.container".to_string(), "redisdb".to_string()),
        ]
    );
    assert_eq!(redis.labels[2].0, "geartopo.spec");
    assert_eq!(redis.publish, [("tcp", 6379, 50000)]);
    assert_eq!(redis.image, "localhost/geartopo-busybox:latest");
    let (_, app) = &created["todo-app1"];
    assert_eq!(
        app.secret_env,
        [("API_KEY".to_string(), "hunter2".to_string())],
        "the secret reaches the container through its file"
    );
    assert!(
        app.env.iter().all(|(_, v)| !v.contains("hunter2")),
        "a secret is passed as a plain --env: {:?}",
        app.env
    );
    // Every container is prepared (its namespace made) as part of its create.
    let s = sim.lock().unwrap();
    assert!(s.nodes.values().flatten().all(|c| c.pid > 0));
}

#[test]
fn a_failed_create_stops_what_depends_on_it_and_the_next_apply_converges() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[("node4", "create")]);
    let (_, tasks, outcomes) = apply_once(&t, &w);
    let outcome = |label: &str| outcomes[position(&tasks, label)].clone();
    assert!(
        matches!(outcome("create todo-redisdb"), Outcome::Failed(e) if e.contains("simulated failure"))
    );
    assert!(matches!(outcome("rules todo-redisdb"), Outcome::Skipped(_)));
    assert!(matches!(outcome("start todo-redisdb"), Outcome::Skipped(_)));
    assert_eq!(
        outcome("create todo-app1"),
        Outcome::Done,
        "independent work on another node finishes"
    );
    assert!(
        matches!(outcome("rules todo-app1"), Outcome::Skipped(why) if why.contains("create todo-redisdb"))
    );
    assert!(matches!(outcome("start todo-app1"), Outcome::Skipped(_)));
    // The app exists, prepared but never started without its links.
    {
        let s = sim.lock().unwrap();
        let app = &s.nodes["node1"][0];
        assert_eq!(app.status, "initialized");
    }
    // Fix the cause; the next apply converges, creating nothing twice.
    sim.lock().unwrap().fail.clear();
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let app_change = p.changes.iter().find(|c| c.container == "app1").unwrap();
    assert_eq!(app_change.action, crate::plan::Action::Update);
    let s = sim.lock().unwrap();
    assert_eq!(s.nodes["node1"].len(), 1);
    assert_eq!(s.nodes["node4"].len(), 1);
    assert!(s.nodes.values().flatten().all(|c| c.status == "running"));
    drop(s);
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes());
}

#[test]
fn a_node_gone_mid_run_skips_its_remaining_work_and_others_finish() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let p = plan(&t, &state, None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    sim.lock().unwrap().gone.push("node1".into());
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    let outcome = |label: &str| outcomes[position(&tasks, label)].clone();
    assert!(matches!(outcome("create todo-app1"), Outcome::Failed(e) if e.contains("node1")));
    assert!(matches!(outcome("rules todo-app1"), Outcome::Skipped(_)));
    for label in [
        "create todo-redisdb",
        "rules todo-redisdb",
        "start todo-redisdb",
    ] {
        assert_eq!(outcome(label), Outcome::Done, "{label}");
    }
}

#[test]
fn a_link_only_change_is_one_restore_and_no_restart() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let pid_before = sim.lock().unwrap().nodes["node1"][0].pid;
    let mut t2 = t.clone();
    let mut extra = t2.containers[1].links[0].clone();
    extra.listen_port = 7000;
    extra.origin = crate::topology::model::LinkOrigin::Declared { index: 1 };
    t2.containers[1].links.push(extra);
    let before = w.log().len();
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    assert_eq!(
        tasks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
        vec!["rules todo-app1"]
    );
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    let changing: Vec<&str> = w.log()[before..]
        .iter()
        .flat_map(|r| &r.ops)
        .filter(|op| !matches!(op, NodeOp::Observe { .. }))
        .map(NodeOp::kind)
        .collect();
    assert_eq!(
        changing,
        ["rules"],
        "one restore, nothing started or created"
    );
    let s = sim.lock().unwrap();
    assert_eq!(s.nodes["node1"][0].pid, pid_before);
    assert_eq!(
        s.nodes["node1"][0]
            .rules
            .iter()
            .filter(|r| r.contains("-j DNAT"))
            .count(),
        2
    );
}

#[test]
fn destroy_removes_dependents_first_and_only_what_the_topology_owns() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    // Another topology's container on the same node.
    sim.lock()
        .unwrap()
        .nodes
        .get_mut("node4")
        .unwrap()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-x".into(),
            labels: [
                ("geartopo.topology".to_string(), "other".to_string()),
                ("geartopo.container".to_string(), "x".to_string()),
            ]
            .into(),
            image: "img".into(),
            publish: vec![],
            status: "running".into(),
            pid: 7,
            rules: vec![],
            jumps: 0,
            nft: None,
            oci_runtime: "runc".into(),
        });
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let mut p = plan(&t, &state, None).unwrap();
    p.changes = state
        .nodes
        .iter()
        .flat_map(|(n, ns)| {
            ns.containers
                .values()
                .map(move |oc| (n.clone(), oc.clone()))
        })
        .map(|(n, oc)| crate::plan::Change {
            container: oc.container.clone(),
            node: n,
            runtime_name: oc.runtime_name.clone(),
            action: crate::plan::Action::Delete,
            start: false,
            rules_before: None,
            rules_after: vec![],
            reasons: vec![],
            observed_id: Some(oc.id.clone()),
            observed_image: None,
            desired: None,
            rules_file: None,
        })
        .collect();
    let tasks = destroy_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    assert_eq!(tasks.len(), 2);
    let app = position(&tasks, "destroy todo-app1");
    let redis = position(&tasks, "destroy todo-redisdb");
    assert!(
        tasks[redis].deps.contains(&app),
        "redis waits for the app that links to it"
    );
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    let s = sim.lock().unwrap();
    assert!(s.nodes["node1"].is_empty());
    assert_eq!(s.nodes["node4"].len(), 1);
    assert_eq!(s.nodes["node4"][0].name, "other-x");
}

#[test]
fn docker_nodes_converge_the_same_way_without_init() {
    let mut t = redis_todo();
    for n in t.nodes.values_mut() {
        n.runtime = crate::topology::model::Runtime::Docker;
    }
    let p = plan(&t, &crate::plan::tests::empty_state(&t), None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    let kinds: Vec<&str> = tasks.iter().map(|t| t.op.kind()).collect();
    assert!(
        !kinds.contains(&"init"),
        "docker has no init; its rules step starts it: {kinds:?}"
    );
    let (sim, w) = simulated(&t, &[]);
    let (_, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    {
        let s = sim.lock().unwrap();
        assert!(s.nodes.values().flatten().all(|c| c.status == "running"));
        assert_eq!(s.nodes.values().flatten().count(), 2);
    }
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
}

/// Regression: a container left initialized by an apply that stopped half-way was
/// given `podman init` again, which podman refuses ("container state improper").
/// The init step checks the state first (golden scripts podman/init.sh).
#[test]
fn an_initialized_container_is_not_initialized_again() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[("node1", "rules")]);
    apply_once(&t, &w);
    assert_eq!(sim.lock().unwrap().nodes["node1"][0].status, "initialized");
    sim.lock().unwrap().fail.clear();
    let (_, tasks, outcomes) = apply_once(&t, &w);
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Done),
        "{tasks:?} {outcomes:?}"
    );
    assert_eq!(sim.lock().unwrap().nodes["node1"][0].status, "running");
}

/// Regression (review): a new container given the host port that a replaced
/// container held was created before the replace removed the holder, so the
/// first apply failed with "port is already allocated".
#[test]
fn a_host_port_freed_by_a_replace_is_free_before_it_is_taken() {
    let mut t = redis_todo();
    t.containers[0].publish[0].host_port = None;
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let held = sim.lock().unwrap().nodes["node4"][0].publish[0].0.clone();
    assert_eq!(held, "4000");
    // A new container on node4 is given 4000; redisdb changes image (replace).
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/geartopo-busybox:v2".into();
    let mut aaa = t2.containers[0].clone();
    aaa.name = "aaa".into();
    aaa.declared = "aaa".into();
    aaa.publish[0].host_port = Some(4000);
    t2.containers.insert(0, aaa);
    let (p, tasks, outcomes) = apply_once(&t2, &w);
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Done),
        "{tasks:#?} {outcomes:?}"
    );
    assert!(
        position(&tasks, "remove todo-redisdb to replace it") < position(&tasks, "create todo-aaa")
    );
    let redis = p.desired.iter().find(|d| d.container == "redisdb").unwrap();
    assert_ne!(redis.publish[0].2, 4000);
    let (p, _, _) = apply_once(&t2, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
}

/// Steps on an existing container name it by the id observe found under our
/// labels, not by the name another owner's container could have.
#[test]
fn existing_containers_are_addressed_by_id() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let id = sim.lock().unwrap().nodes["node1"][0].id.clone();
    let mut t2 = t.clone();
    t2.containers[1].links[0].listen_port = 7000;
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    assert_eq!(tasks.len(), 1);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(
        matches!(&tasks[0].op, NodeOp::Rules { container, .. } if *container == id),
        "{:?}",
        tasks[0].op
    );
}

/// A replace makes sure of the new image on the node before the old container
/// goes: the image step comes first, and the remove waits for it.
#[test]
fn a_replace_ensures_the_new_image_before_it_removes_the_old_container() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/geartopo-busybox:v2".into();
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let image = position(
        &tasks,
        "image localhost/geartopo-busybox:v2 for todo-redisdb",
    );
    let remove = position(&tasks, "remove todo-redisdb to replace it");
    assert!(image < remove);
    assert_eq!(tasks[remove].deps, [image]);
    assert_eq!(
        sim.lock().unwrap().ensured,
        [(
            "node4".to_string(),
            "localhost/geartopo-busybox:v2".to_string()
        )]
    );
    // Nothing else pulls: a create of a new container or a rules change has no image step.
    assert_eq!(
        tasks
            .iter()
            .filter(|t| matches!(t.op, NodeOp::EnsureImage { .. }))
            .count(),
        1
    );
}

/// An image that cannot be had fails its step naming it, and the old container
/// keeps running with its rules; the link to it is untouched.
#[test]
fn a_replace_to_an_image_that_cannot_be_had_leaves_the_old_container_running() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let old = sim.lock().unwrap().nodes["node4"].clone();
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/no-such-image:typo".into();
    sim.lock()
        .unwrap()
        .missing_images
        .push("localhost/no-such-image:typo".into());
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    let image = position(
        &tasks,
        "image localhost/no-such-image:typo for todo-redisdb",
    );
    match &outcomes[image] {
        Outcome::Failed(e) => assert!(e.contains("localhost/no-such-image:typo"), "{e}"),
        other => panic!("{other:?}"),
    }
    let remove = position(&tasks, "remove todo-redisdb to replace it");
    assert!(
        matches!(outcomes[remove], Outcome::Skipped(_)),
        "{outcomes:?}"
    );
    let s = sim.lock().unwrap();
    assert_eq!(s.nodes["node4"].len(), 1);
    assert_eq!(s.nodes["node4"][0].id, old[0].id);
    assert_eq!(s.nodes["node4"][0].status, "running");
    assert_eq!(
        s.nodes["node4"][0].image,
        "localhost/geartopo-busybox:latest"
    );
    // No remove reached the node.
    let removed = w
        .log()
        .iter()
        .flat_map(|r| r.ops.clone())
        .any(|op| matches!(op, NodeOp::Remove { .. }));
    assert!(!removed);
}

#[test]
fn containers_record_the_topology_id_and_only_a_file_with_one() {
    let mut t = redis_todo();
    t.id = Some("0123456789abcdef0123456789abcdef".into());
    let p = plan(&t, &crate::plan::tests::empty_state(&t), None).unwrap();
    let labels = |t: &crate::topology::model::Topology| -> Vec<Vec<(String, String)>> {
        apply_tasks(t, &DepGraph::build(t).unwrap(), &p)
            .iter()
            .filter_map(|task| match &task.op {
                NodeOp::Create(spec) => Some(spec.labels.clone()),
                _ => None,
            })
            .collect()
    };
    let with = labels(&t);
    assert_eq!(with.len(), 2);
    for l in &with {
        assert!(l.contains(&(
            "geartopo.id".into(),
            "0123456789abcdef0123456789abcdef".into()
        )));
    }
    t.id = None;
    assert!(labels(&t)
        .iter()
        .all(|l| l.iter().all(|(k, _)| k != "geartopo.id")));
}

/// Two teams each call their topology `todo` and share the nodes: with ids, one
/// team's apply and destroy leave the other's containers running with their rules.
#[test]
fn two_topologies_of_one_name_and_two_ids_apply_and_destroy_side_by_side() {
    let mut a = redis_todo();
    a.id = Some("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".into());
    let mut b = redis_todo();
    b.id = Some("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".into());
    for c in &mut b.containers {
        c.name = format!("{}-b", c.name);
        for p in &mut c.publish {
            p.host_port = Some(50001);
        }
        for l in &mut c.links {
            if let crate::topology::model::LinkTarget::Container { container, .. } = &mut l.target {
                *container = format!("{container}-b");
            }
        }
    }
    let (sim, w) = simulated(&a, &[]);
    apply_once(&a, &w);
    apply_once(&b, &w);
    let names = || -> Vec<String> {
        let s = sim.lock().unwrap();
        let mut n: Vec<String> = s.nodes.values().flatten().map(|c| c.name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(
        names(),
        ["todo-app1", "todo-app1-b", "todo-redisdb", "todo-redisdb-b"]
    );
    // Each sees only its own: nothing to change for either.
    for t in [&a, &b] {
        let (p, _, _) = apply_once(t, &w);
        assert!(!p.has_changes(), "{:?}", p.changes);
    }
    // A destroys.
    let mut c = conns(&w, &a);
    let state = observe(&a, &mut c, 4).unwrap();
    let p =
        crate::plan::destroy_selected(&a.name, a.id.as_deref(), &state, &crate::plan::Limit::All);
    let tasks = destroy_tasks(&a, &DepGraph::build(&a).unwrap(), &p);
    assert!(execute(&tasks, &mut c, 4, &Quiet)
        .iter()
        .all(|o| *o == Outcome::Done));
    assert_eq!(names(), ["todo-app1-b", "todo-redisdb-b"]);
    // B is untouched: running, rules in place, nothing to do.
    let (p, _, _) = apply_once(&b, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(sim
        .lock()
        .unwrap()
        .nodes
        .values()
        .flatten()
        .all(|c| c.status == "running"));
}

#[test]
fn a_node_whose_read_fails_is_reported_with_its_stderr_escaped() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[("node1", "observe")]);
    sim.lock().unwrap().fail_stderr = Some("podman: \x1b]0;pwned\x07\x1b[2Jerror\u{202e}".into());
    let errors = observe(&t, &mut conns(&w, &t), 4).unwrap_err();
    // As plan, show and apply print it.
    let e = anyhow::anyhow!(crate::render::no_plan("cannot read every node", &errors));
    let printed = crate::cli::error_line(&e);
    for raw in ['\x1b', '\x07', '\u{202e}'] {
        assert!(!printed.contains(raw), "raw {raw:?} in {printed:?}");
    }
    assert!(
        printed.contains("node node1: reading state failed (exit 125): podman: \\x1b]0;pwned\\x07\\x1b[2Jerror\\u{202e}"),
        "{printed}"
    );
}

// ---- durable links (docs/durable.md) ------------------------------------------

/// The files a simulated node keeps for durable links, by path.
fn files_on(sim: &std::sync::Mutex<super::sim::Sim>, node: &str) -> Vec<String> {
    let s = sim.lock().unwrap();
    s.files
        .get(node)
        .into_iter()
        .flatten()
        .map(|(p, _)| p.clone())
        .collect()
}

#[test]
fn an_apply_writes_the_hook_and_a_rules_file_per_container_before_its_first_start() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    assert_eq!(
        files_on(&sim, "node1"),
        [
            "/etc/containers/oci/hooks.d/geartopo.json",
            "/var/lib/geartopo/hook",
            "/var/lib/geartopo/rules/todo-app1"
        ]
    );
    // Written by the create step, before the container's init (its first start).
    let creates: Vec<CreateSpec> = w
        .log()
        .iter()
        .flat_map(|r| r.ops.clone())
        .filter_map(|op| match op {
            NodeOp::Create(spec) => Some(spec),
            _ => None,
        })
        .collect();
    assert_eq!(creates.len(), 2);
    for spec in &creates {
        assert_eq!(spec.restart, "always");
        let rules = spec
            .durable
            .as_ref()
            .expect("every new container is durable");
        assert_eq!(rules.file.as_deref(), Some(spec.runtime_name.as_str()));
    }
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
    assert!(p.not_durable.is_empty());
}

#[test]
fn a_rules_file_or_hook_removed_on_the_node_is_drift_and_apply_puts_it_back() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let before = sim.lock().unwrap().files.clone();
    {
        let mut s = sim.lock().unwrap();
        let files = s.files.get_mut("node1").unwrap();
        files.remove("/var/lib/geartopo/rules/todo-app1");
        files.remove("/var/lib/geartopo/hook");
    }
    let (p, tasks, outcomes) = apply_once(&t, &w);
    let drift: Vec<&str> = p.drift.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(
        drift,
        [
            "rules file /var/lib/geartopo/rules/todo-app1 is missing",
            "hook program /var/lib/geartopo/hook is missing"
        ]
    );
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].action, Action::Update);
    assert_eq!(p.changes[0].reasons, ["rules file", "hook"]);
    assert!(!p.changes[0].start, "a repair restarts nothing");
    assert_eq!(tasks.len(), 1);
    assert_eq!(outcomes, [Outcome::Done]);
    assert_eq!(sim.lock().unwrap().files, before);
    assert!(!apply_once(&t, &w).0.has_changes());
}

#[test]
fn a_rules_file_changed_by_hand_is_drift_and_a_link_change_rewrites_it_in_its_rules_step() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let path = "/var/lib/geartopo/rules/todo-app1";
    sim.lock()
        .unwrap()
        .files
        .get_mut("node1")
        .unwrap()
        .get_mut(path)
        .unwrap()
        .1 += "# added\n";
    let (p, _, _) = apply_once(&t, &w);
    assert_eq!(p.drift.len(), 1);
    assert!(p.drift[0].what.contains("differs"), "{:?}", p.drift);
    assert!(!apply_once(&t, &w).0.has_changes());
    // A link change: one rules step, which writes the new rules file.
    let mut t2 = t.clone();
    t2.containers[1].links.clear();
    let (p, tasks, _) = apply_once(&t2, &w);
    assert!(p.drift.is_empty());
    assert_eq!(tasks.len(), 1);
    match &tasks[0].op {
        NodeOp::Rules { rules, .. } => assert_eq!(rules.file.as_deref(), Some("todo-app1")),
        other => panic!("{other:?}"),
    }
    let text = sim.lock().unwrap().files["node1"][path].1.clone();
    assert!(!text.contains("--to-destination"), "{text}");
    assert!(!apply_once(&t2, &w).0.has_changes());
}

#[test]
fn destroy_removes_each_rules_file_and_the_hook_once_no_rules_file_is_left() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    // Another topology's rules file on node1: the hook stays for it.
    sim.lock().unwrap().files.get_mut("node1").unwrap().insert(
        "/var/lib/geartopo/rules/other-web".into(),
        ("600".into(), "x".into()),
    );
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let p = crate::plan::destroy("todo", &state);
    let tasks = destroy_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    execute(&tasks, &mut c, 4, &Quiet);
    assert!(files_on(&sim, "node4").is_empty());
    assert_eq!(
        files_on(&sim, "node1"),
        [
            "/etc/containers/oci/hooks.d/geartopo.json",
            "/var/lib/geartopo/hook",
            "/var/lib/geartopo/rules/other-web"
        ]
    );
}

/// A container made by a geartopo before durable links: no label, no `restart`
/// in its spec. Upgrading never replaces it by itself; it is shown, and replaced
/// only when asked.
#[test]
fn a_container_made_before_durable_links_is_shown_and_replaced_only_on_request() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    {
        let mut s = sim.lock().unwrap();
        for cs in s.nodes.values_mut() {
            for c in cs {
                c.labels.remove(crate::node::durable::LABEL);
                let spec = c.labels["geartopo.spec"].clone();
                let old: Vec<&str> = spec
                    .split(',')
                    .filter(|kv| !kv.starts_with("restart="))
                    .collect();
                c.labels.insert("geartopo.spec".into(), old.join(","));
            }
        }
        s.files.clear();
    }
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
    let names: Vec<&str> = p
        .not_durable
        .iter()
        .map(|n| n.runtime_name.as_str())
        .collect();
    assert_eq!(names, ["todo-redisdb", "todo-app1"]);
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    assert!(
        text.contains("app1 on node1 (\"todo-app1\"): not durable: replace to make it durable"),
        "{text}"
    );
    // --make-durable: both replaced, then durable.
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let selection = crate::plan::Selection {
        limit: crate::plan::Limit::All,
        replace: Default::default(),
        make_durable: true,
    };
    let p = crate::plan::plan_selected(&t, &state, &selection).unwrap();
    assert_eq!(p.changes.len(), 2);
    for ch in &p.changes {
        assert!(matches!(ch.action, Action::Replace { .. }), "{ch:?}");
        assert_eq!(ch.reasons, ["make durable"]);
    }
    let graph = DepGraph::build(&t).unwrap();
    let tasks = apply_tasks(&t, &graph, &p);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes() && p.not_durable.is_empty(), "{p:?}");
}

/// A stopped durable container whose rules file is gone: its init would run the
/// hook, which fails without the file, so apply writes the file first.
#[test]
fn a_stopped_container_whose_rules_file_is_gone_gets_it_back_before_its_init() {
    let t = redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    {
        let mut s = sim.lock().unwrap();
        let app = s.nodes.get_mut("node1").unwrap().iter_mut().next().unwrap();
        app.status = "exited".into();
        app.pid = 0;
        s.files
            .get_mut("node1")
            .unwrap()
            .remove("/var/lib/geartopo/rules/todo-app1");
    }
    let (p, tasks, outcomes) = apply_once(&t, &w);
    assert_eq!(p.changes[0].reasons, ["start", "rules", "rules file"]);
    let write = position(&tasks, "rules file todo-app1");
    let init = position(&tasks, "init todo-app1");
    assert!(tasks[init].deps.contains(&write), "{tasks:?}");
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert_eq!(sim.lock().unwrap().nodes["node1"][0].status, "running");
    assert!(!apply_once(&t, &w).0.has_changes());
}
