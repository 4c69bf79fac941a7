//! The apply session through simulated nodes: what happens to the locks and to
//! the nodes when the lock is held, when the state moved, when a step panics and
//! when a node fails half-way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use super::*;
use crate::apply::sim::{simulated, Sim, SimContainer};
use crate::apply::tests::Quiet;
use crate::apply::{apply_tasks, Task};
use crate::graph::DepGraph;
use crate::node::fake::FakeNodes;
use crate::observe::observe;
use crate::plan::tests::redis_todo;

const HOLDER: &str = "geartopo apply of todo by test@here pid 1 since unix time 0";

/// The plan and tasks `apply` would run against the simulated nodes as they are.
fn planned(t: &Topology, nodes: &FakeNodes) -> (Plan, Vec<Task>) {
    let state = observe(t, &mut nodes.connections(t), 4).unwrap();
    let p = crate::plan::plan(t, &state, None).unwrap();
    let tasks = apply_tasks(t, &DepGraph::build(t).unwrap(), &p);
    (p, tasks)
}

fn session(
    t: &Topology,
    nodes: &FakeNodes,
    p: &Plan,
    tasks: &[Task],
) -> Result<Vec<Outcome>, SessionError> {
    run_locked(t, &mut nodes.connections(t), 4, p, tasks, HOLDER, &Quiet)
}

fn sim(s: &Arc<Mutex<Sim>>) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The operations that change a node (not observe, lock, unlock).
fn changes(nodes: &FakeNodes) -> Vec<(String, NodeOp)> {
    nodes
        .ops()
        .into_iter()
        .filter(|(_, op)| {
            !matches!(
                op,
                NodeOp::Observe { .. } | NodeOp::Lock { .. } | NodeOp::Unlock { .. }
            )
        })
        .collect()
}

#[test]
fn locks_and_reads_each_node_in_one_round_trip_runs_and_unlocks() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let before = nodes.log().len();
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let log = nodes.log()[before..].to_vec();
    for node in ["node1", "node4"] {
        let mine: Vec<_> = log.iter().filter(|r| r.node == node).collect();
        let kinds = |i: usize| mine[i].ops.iter().map(NodeOp::kind).collect::<Vec<_>>();
        assert_eq!(kinds(0), ["lock", "observe"], "{node}");
        assert_eq!(kinds(mine.len() - 1), ["unlock"], "{node}");
    }
    assert!(sim(&s).locks.is_empty());
    let r = report(&p, &tasks, &outcomes, "Apply");
    assert!(r.complete);
    assert_eq!(
        r.text,
        "\nApply complete! Containers: 2 added, 0 changed, 0 destroyed.\n"
    );
}

#[test]
fn a_lock_held_by_another_apply_changes_nothing_and_names_the_holder() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let other = "geartopo apply of todo by alice@elsewhere pid 7 since unix time 1";
    sim(&s).locks.insert("node4".into(), other.into());
    let Err(SessionError::Read(errors)) = session(&t, &nodes, &p, &tasks) else {
        panic!("the session ran with node4 locked by another");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert!(message.contains("node4"), "{message}");
    assert!(message.contains(other), "the holder is named: {message}");
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    // Ours is released; the other apply keeps its own.
    let locks = sim(&s).locks.clone();
    assert_eq!(
        locks.into_iter().collect::<Vec<_>>(),
        [("node4".into(), other.into())]
    );
}

#[test]
fn state_moved_between_plan_and_lock_changes_nothing() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    // Someone takes a port on node4 while the plan is shown.
    sim(&s)
        .nodes
        .entry("node4".into())
        .or_default()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-web".into(),
            labels: Default::default(),
            image: "img".into(),
            publish: vec![("50000".into(), "80".into(), "tcp".into())],
            status: "running".into(),
            pid: 9,
            rules: vec![],
            jumps: 0,
        });
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    assert!(
        matches!(&e, SessionError::Moved { planned, now } if planned != now),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    assert!(sim(&s).locks.is_empty(), "locks released");
}

#[test]
fn a_step_that_panics_still_releases_every_lock() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    sim(&s).panic_on.push(("node4".into(), "start".into()));
    let result = catch_unwind(AssertUnwindSafe(|| session(&t, &nodes, &p, &tasks)));
    assert!(result.is_err(), "the panic reaches the caller");
    assert!(
        sim(&s).locks.is_empty(),
        "locks released: {:?}",
        sim(&s).locks
    );
    let last: Vec<_> = nodes.log().into_iter().rev().take(2).collect();
    assert!(
        last.iter()
            .all(|r| r.ops.iter().map(NodeOp::kind).eq(["unlock"])),
        "{last:?}"
    );
}

#[test]
fn a_node_failing_half_way_lets_the_others_finish_and_the_report_says_what_was_done() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[("node1", "rules")]);
    let (p, tasks) = planned(&t, &nodes);
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    let r = report(&p, &tasks, &outcomes, "Apply");
    assert!(!r.complete);
    for line in [
        "\nApply failed. What was done and what was not:\n",
        "  done        node4: create todo-redisdb\n",
        "  done        node4: rules todo-redisdb\n",
        "  done        node4: start todo-redisdb\n",
        "  done        node1: create todo-app1\n",
        "  FAILED      node1: rules todo-app1: simulated failure at rules\n",
        "  not started node1: start todo-app1 (rules todo-app1 did not complete)\n",
    ] {
        assert!(r.text.contains(line), "missing {line:?} in:\n{}", r.text);
    }
    assert_eq!(r.text.matches("\n  ").count(), tasks.len(), "{}", r.text);
    let s = sim(&s);
    assert!(s.locks.is_empty());
    assert_eq!(s.nodes["node4"][0].status, "running");
    assert_eq!(
        s.nodes["node1"][0].status, "initialized",
        "never started without its links"
    );
}
