//! The docker runtime wrapper through the simulated nodes (docs/durable.md): on
//! an unprepared docker node plan warns naming `geartopo node prepare` and
//! containers are made as before; once dockerd has the wrapper registered, new
//! containers run under it, older ones are listed as not durable (never replaced
//! by themselves), and a missing or edited wrapper is drift that apply repairs.

use super::sim::simulated;
use super::tests::apply_once;
use super::Outcome;
use crate::node::durable::{DOCKER_RUNTIME, RUNTIME, RUNTIME_FILE};
use crate::plan::tests::redis_todo;
use crate::testing::DEFAULT_STATE_DIR as STATE;
use crate::topology::model::{Runtime, Topology};

fn on_docker() -> Topology {
    let mut t = redis_todo();
    for n in t.nodes.values_mut() {
        n.runtime = Runtime::Docker;
    }
    t
}

fn wrapper() -> String {
    format!("{STATE}/{RUNTIME_FILE}")
}

#[test]
fn an_unprepared_docker_node_is_a_warning_naming_the_command_and_keeps_runc() {
    let t = on_docker();
    let (sim, w) = simulated(&t, &[]);
    let (_, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(sim
        .lock()
        .unwrap()
        .nodes
        .values()
        .flatten()
        .all(|c| c.oci_runtime == "runc"));
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(p.not_durable.is_empty());
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("node node1: dockerd has no runtime geartopo:"));
    assert!(p.warnings[0].ends_with("geartopo node prepare FILE --node node1"));
}

#[test]
fn on_a_prepared_node_new_containers_run_under_the_wrapper_and_old_ones_are_not_durable() {
    let t = on_docker();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    // The operator prepares node1 only.
    sim.lock()
        .unwrap()
        .docker_runtime
        .insert("node1".into(), wrapper());
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert_eq!(p.warnings.len(), 1, "node4 only: {:?}", p.warnings);
    let names: Vec<&str> = p.not_durable.iter().map(|n| n.container.as_str()).collect();
    assert_eq!(names, ["app1"], "made before the node was prepared");
    // Replaced only on request, then under the wrapper and durable.
    let mut c = w.connections(&t);
    let state = crate::observe::observe(&t, &mut c, 4).unwrap();
    let sel = crate::plan::select::Selection {
        make_durable: true,
        ..Default::default()
    };
    let p = crate::plan::plan_selected(&t, &state, &sel).unwrap();
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert_eq!(p.changes[0].reasons, ["make durable"]);
    let tasks = super::apply_tasks(&t, &crate::graph::DepGraph::build(&t).unwrap(), &p);
    let outcomes = super::execute(&tasks, &mut c, 4, &super::tests::Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let runtimes: Vec<(String, String)> = sim
        .lock()
        .unwrap()
        .nodes
        .values()
        .flatten()
        .map(|c| (c.name.clone(), c.oci_runtime.clone()))
        .collect();
    assert!(
        runtimes.contains(&("todo-app1".into(), DOCKER_RUNTIME.into())),
        "{runtimes:?}"
    );
    assert!(
        runtimes.contains(&("todo-redisdb".into(), "runc".into())),
        "{runtimes:?}"
    );
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes() && p.not_durable.is_empty(), "{:?}", p);
}

#[test]
fn a_wrapper_missing_or_edited_on_a_prepared_node_is_drift_that_apply_repairs() {
    let t = on_docker();
    let (sim, w) = simulated(&t, &[]);
    {
        let mut s = sim.lock().unwrap();
        s.docker_runtime.insert("node1".into(), wrapper());
        s.docker_runtime.insert("node4".into(), wrapper());
    }
    apply_once(&t, &w);
    let (p, _, _) = apply_once(&t, &w);
    assert!(
        !p.has_changes() && p.warnings.is_empty() && p.not_durable.is_empty(),
        "{p:?}"
    );
    sim.lock()
        .unwrap()
        .files
        .get_mut("node1")
        .unwrap()
        .insert(wrapper(), ("755".into(), format!("{RUNTIME}# edited\n")));
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert_eq!(p.drift.len(), 1, "{:?}", p.drift);
    assert_eq!(
        p.drift[0].what,
        format!(
            "runtime wrapper {} differs from what geartopo wrote",
            wrapper()
        )
    );
    assert_eq!(p.changes[0].reasons, ["hook"]);
    assert_eq!(sim.lock().unwrap().files["node1"][&wrapper()].1, RUNTIME);
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
}

#[test]
fn a_wrapper_registered_elsewhere_is_named_in_the_warning() {
    let t = on_docker();
    let (sim, w) = simulated(&t, &[]);
    sim.lock()
        .unwrap()
        .docker_runtime
        .insert("node1".into(), "/opt/other/runtime".into());
    let (p, _, _) = apply_once(&t, &w);
    assert!(p.warnings[0].starts_with(&format!(
        "node node1: dockerd has the runtime geartopo at /opt/other/runtime, not at {}",
        wrapper()
    )));
    assert!(sim.lock().unwrap().nodes["node1"]
        .iter()
        .all(|c| c.oci_runtime == "runc"));
}
