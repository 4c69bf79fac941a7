//! Faults during execute, through the simulated nodes: a node whose step hangs
//! until its time-out stalls only what depends on that node.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use super::sim::simulated;
use super::tests::Quiet;
use super::*;
use crate::node::fake::FakeNodes;
use crate::observe::observe;
use crate::plan::plan;
use crate::plan::tests::redis_todo;
use crate::transport::TransportError;

/// node4's create hangs until node1's create has run, then times out (its
/// script ended, as `ScriptedNode` reports it): node1's own steps do not wait
/// for it, and only those that need node4's container are skipped. The fake
/// nodes answer concurrently (as real nodes do): with round trips serialized,
/// node4's hang held up node1's create whenever it began first, which a loaded
/// machine made likely. The hang ends on node1's create alone; the long limit
/// only keeps a regression from hanging the suite.
#[test]
fn a_hanging_node_stalls_only_the_steps_that_depend_on_it() {
    let t = redis_todo();
    let (sim, _) = simulated(&t, &[]);
    let shared = sim.clone();
    // Set when node1's create ran; whether node4's hang saw it before ending.
    let app_created = Arc::new((Mutex::new(false), Condvar::new()));
    let seen_during_hang = Arc::new(Mutex::new(false));
    let (created, seen) = (app_created.clone(), seen_during_hang.clone());
    let w = FakeNodes::concurrent(move |node, ops| {
        let create = ops.iter().any(|op| op.kind() == "create");
        if node == "node4" && create {
            let (lock, cv) = &*created;
            let done = cv
                .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(120), |d| !*d)
                .unwrap();
            *seen.lock().unwrap() = *done.0;
            return Err(TransportError::ScriptTimeout {
                node: node.into(),
                secs: 1,
                aftermath: "its processes on the node were ended".into(),
            });
        }
        let out = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run(node, ops);
        if node == "node1" && create {
            *created.0.lock().unwrap() = true;
            created.1.notify_all();
        }
        out
    });
    let mut c = w.connections(&t);
    let state = observe(&t, &mut c, 4).unwrap();
    let p = plan(&t, &state, None).unwrap();
    let tasks = apply_tasks(&t, &crate::graph::DepGraph::build(&t).unwrap(), &p);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    let outcome = |label: &str| {
        let i = tasks.iter().position(|t| t.label == label).unwrap();
        outcomes[i].clone()
    };
    assert!(
        matches!(outcome("create todo-redisdb"), Outcome::Failed(e) if e.contains("timed out")),
        "{outcomes:?}"
    );
    // node1's create needs nothing of node4: done while node4 still hung.
    assert_eq!(outcome("create todo-app1"), Outcome::Done);
    assert!(
        *seen_during_hang.lock().unwrap(),
        "node1's create waited for node4's hang"
    );
    // Its rules point at node4's container, which never came: not started.
    assert!(
        matches!(outcome("rules todo-app1"), Outcome::Skipped(why) if why.contains("create todo-redisdb")),
        "{outcomes:?}"
    );
    // node4's later steps say why they did not run.
    assert!(
        matches!(outcome("start todo-redisdb"), Outcome::Skipped(why) if why.contains("timed out")),
        "{outcomes:?}"
    );
}
