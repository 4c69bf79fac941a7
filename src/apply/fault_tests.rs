//! Faults during execute, through the simulated nodes: a node whose step hangs
//! until its time-out stalls only what depends on that node.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::sim::simulated;
use super::tests::Quiet;
use super::*;
use crate::node::fake::FakeNodes;
use crate::observe::observe;
use crate::plan::plan;
use crate::plan::tests::redis_todo;
use crate::transport::TransportError;

/// Records when each task finished.
struct Clock(Mutex<Vec<(String, Instant)>>);
impl Progress for Clock {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, label: &str, _: &Outcome) {
        self.0.lock().unwrap().push((label.into(), Instant::now()));
    }
    fn unlock_failed(&self, node: &str, error: &TransportError) {
        Quiet.unlock_failed(node, error)
    }
}

/// node4's create hangs for `HANG` and then times out (its script ended, as
/// `ScriptedNode` reports it); node1's own steps do not wait for it, and only
/// those that need node4's container are skipped.
#[test]
fn a_hanging_node_stalls_only_the_steps_that_depend_on_it() {
    const HANG: Duration = Duration::from_millis(600);
    let t = redis_todo();
    let (sim, _) = simulated(&t, &[]);
    let shared = sim.clone();
    let w = FakeNodes::new(move |node, ops| {
        if node == "node4" && ops.iter().any(|op| op.kind() == "create") {
            std::thread::sleep(HANG);
            return Err(TransportError::ScriptTimeout {
                node: node.into(),
                secs: 1,
                aftermath: "its processes on the node were ended".into(),
            });
        }
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run(node, ops)
    });
    let mut c = w.connections(&t);
    let state = observe(&t, &mut c, 4).unwrap();
    let p = plan(&t, &state, None).unwrap();
    let tasks = apply_tasks(&t, &crate::graph::DepGraph::build(&t).unwrap(), &p);
    let clock = Clock(Mutex::new(Vec::new()));
    let began = Instant::now();
    let outcomes = execute(&tasks, &mut c, 4, &clock);
    let outcome = |label: &str| {
        let i = tasks.iter().position(|t| t.label == label).unwrap();
        outcomes[i].clone()
    };
    assert!(
        matches!(outcome("create todo-redisdb"), Outcome::Failed(e) if e.contains("timed out")),
        "{outcomes:?}"
    );
    // node1's create needs nothing of node4: done, long before the hang ended.
    assert_eq!(outcome("create todo-app1"), Outcome::Done);
    let finished = clock.0.lock().unwrap().clone();
    let app_created = finished
        .iter()
        .find(|(l, _)| l == "create todo-app1")
        .map(|(_, at)| *at - began)
        .unwrap();
    assert!(app_created < HANG / 2, "waited {app_created:?}");
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
