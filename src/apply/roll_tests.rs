//! Health checks and rolling replacement (docs/rolling.md) on simulated nodes:
//! the order the nodes ran their operations in, and what a check that never
//! passes stops.

use super::sim::simulated;
use super::tests::apply_once;
use super::*;
use crate::plan::tests::redis_todo;
use crate::topology::model::{Health, Probe, Topology};

/// The etcd example (3 replicas in a view, an observer), with a health check.
fn etcd(image: &str, extra: &str) -> Topology {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/etcd-cluster.toml"
    ))
    .unwrap();
    let text = text
        .replace("localhost/geartopo-etcd:latest", image)
        .replace(
            "replicas = 3\n",
            &format!("replicas = 3\nhealth = {{ tcp = 2379 }}\n{extra}"),
        );
    crate::topology::parse("etcd.toml", text.as_bytes()).unwrap()
}

/// The most containers of `names` down at once, by the log: from a container's
/// removal to the end of its health check.
fn most_down(log: &[(String, String, String)], names: &[&str]) -> usize {
    let mut down = std::collections::BTreeSet::new();
    let mut most = 0;
    for (_, kind, name) in log {
        if !names.contains(&name.as_str()) {
            continue;
        }
        match kind.as_str() {
            "remove" => {
                down.insert(name.clone());
            }
            "health" => {
                down.remove(name);
            }
            _ => {}
        }
        most = most.max(down.len());
    }
    most
}

fn at(log: &[(String, String, String)], kind: &str, name: &str) -> usize {
    log.iter()
        .position(|(_, k, n)| k == kind && n == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {log:?}"))
}

const MEMBERS: [&str; 3] = ["kv-etcd-1", "kv-etcd-2", "kv-etcd-3"];

#[test]
fn an_image_change_of_a_view_rolls_one_member_at_a_time() {
    let t = etcd("etcd:1", "");
    let (sim, w) = simulated(&t, &[]);
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(p.rolls.is_empty(), "creating is not rolling: {:?}", p.rolls);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    sim.lock().unwrap().log.clear();

    let t2 = etcd("etcd:2", "");
    let (p, tasks, outcomes) = apply_once(&t2, &w);
    assert_eq!(p.rolls.len(), 1, "{:?}", p.rolls);
    assert_eq!(p.rolls[0].group, "view etcd");
    assert_eq!(p.rolls[0].members, ["etcd-1", "etcd-2", "etcd-3"]);
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    assert!(
        text.contains("view etcd will be replaced one at a time, each healthy before the next goes down:\n  #   etcd-1 -> etcd-2 -> etcd-3"),
        "{text}"
    );
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Done),
        "{tasks:#?} {outcomes:?}"
    );
    let s = sim.lock().unwrap();
    assert_eq!(most_down(&s.log, &MEMBERS), 1, "{:#?}", s.log);
    for w in MEMBERS.windows(2) {
        assert!(
            at(&s.log, "health", w[0]) < at(&s.log, "remove", w[1]),
            "{} went down before {} was healthy: {:#?}",
            w[1],
            w[0],
            s.log
        );
    }
    for c in s.nodes.values().flatten() {
        assert_eq!(
            (c.image.as_str(), c.status.as_str()),
            ("etcd:2", "running"),
            "{c:?}"
        );
    }
    drop(s);
    let (p, _, _) = apply_once(&t2, &w);
    assert!(!p.has_changes(), "{:#?} {:#?}", p.changes, p.drift);
}

#[test]
fn max_unavailable_two_takes_two_members_down_together() {
    let t = etcd("etcd:1", "").clone();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    sim.lock().unwrap().log.clear();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/etcd-cluster.toml"
    ))
    .unwrap()
    .replace("localhost/geartopo-etcd:latest", "etcd:2")
    .replace(
        "ports     = [2379, 2380]\n",
        "ports     = [2379, 2380]\nmax_unavailable = 2\n",
    );
    let t2 = crate::topology::parse("etcd.toml", text.as_bytes()).unwrap();
    let (p, _, outcomes) = apply_once(&t2, &w);
    assert_eq!(p.rolls[0].max_unavailable, 2);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    // No health check here: a member is up once started.
    let s = sim.lock().unwrap();
    assert!(
        at(&s.log, "start", MEMBERS[0]) < at(&s.log, "remove", MEMBERS[2]),
        "{:#?}",
        s.log
    );
}

#[test]
fn a_member_that_never_becomes_healthy_stops_the_roll_and_the_next_apply_converges() {
    let t = etcd("etcd:1", "");
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    sim.lock().unwrap().unhealthy.push("kv-etcd-2".into());
    let t2 = etcd("etcd:2", "");
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    let outcome = |label: &str| {
        outcomes[tasks
            .iter()
            .position(|t| t.label == label)
            .unwrap_or_else(|| panic!("no {label}"))]
        .clone()
    };
    assert_eq!(outcome("health kv-etcd-1"), Outcome::Done);
    assert!(
        matches!(outcome("health kv-etcd-2"), Outcome::Failed(e) if e.contains("not healthy")),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcome("remove kv-etcd-3 to replace it (rolling)"), Outcome::Skipped(why) if why.contains("health kv-etcd-2")),
        "{outcomes:?}"
    );
    {
        let s = sim.lock().unwrap();
        let image = |node: &str| s.nodes[node][0].image.clone();
        assert_eq!(image("node1"), "etcd:2");
        assert_eq!(
            image("node3"),
            "etcd:1",
            "etcd-3 kept running the old image"
        );
        assert_eq!(s.nodes["node3"][0].status, "running");
    }
    // Fixed: the next apply replaces only etcd-3 (etcd-2 is already new).
    sim.lock().unwrap().unhealthy.clear();
    let (p, _, outcomes) = apply_once(&t2, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let replaced: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| matches!(c.action, crate::plan::Action::Replace { .. }))
        .map(|c| c.container.as_str())
        .collect();
    assert_eq!(replaced, ["etcd-3"]);
    let (p, _, _) = apply_once(&t2, &w);
    assert!(!p.has_changes());
}

fn with_health(t: &mut Topology, name: &str) {
    t.containers
        .iter_mut()
        .find(|c| c.name == name)
        .unwrap()
        .health = Some(Health {
        probe: Probe::Tcp(6379),
        interval_ms: 1000,
        timeout_ms: 2000,
        retries: 3,
    });
}

#[test]
fn what_links_to_a_container_starts_once_it_is_healthy() {
    let mut t = redis_todo();
    with_health(&mut t, "redisdb");
    let (sim, w) = simulated(&t, &[]);
    let (_, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let s = sim.lock().unwrap();
    assert!(at(&s.log, "health", "todo-redisdb") < at(&s.log, "start", "todo-app1"));
}

#[test]
fn a_container_never_healthy_is_a_failed_step_and_its_dependents_do_not_start() {
    let mut t = redis_todo();
    with_health(&mut t, "redisdb");
    let (sim, w) = simulated(&t, &[]);
    sim.lock().unwrap().unhealthy.push("todo-redisdb".into());
    let (_, tasks, outcomes) = apply_once(&t, &w);
    let outcome =
        |label: &str| outcomes[tasks.iter().position(|t| t.label == label).unwrap()].clone();
    assert!(matches!(outcome("health todo-redisdb"), Outcome::Failed(_)));
    assert!(
        matches!(outcome("start todo-app1"), Outcome::Skipped(why) if why.contains("health todo-redisdb")),
        "{outcomes:?}"
    );
    // Healthy now: the next apply starts the app (redisdb runs already).
    sim.lock().unwrap().unhealthy.clear();
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
    assert!(sim
        .lock()
        .unwrap()
        .nodes
        .values()
        .flatten()
        .all(|c| c.status == "running"));
}

#[test]
fn other_replaces_keep_todays_order() {
    // Two replaced containers outside any roll: removals before creates, as before.
    let t = redis_todo();
    let (_, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let mut t2 = t.clone();
    for c in &mut t2.containers {
        c.image.push_str("-2");
    }
    let (p, tasks, outcomes) = apply_once(&t2, &w);
    assert!(p.rolls.is_empty());
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    let pos = |l: &str| tasks.iter().position(|t| t.label == l).unwrap();
    assert!(pos("remove todo-redisdb to replace it") < pos("create todo-redisdb"));
    assert!(pos("remove todo-app1 to replace it") < pos("create todo-app1"));
}

#[test]
fn show_tries_each_health_check_once_in_its_read() {
    let t = etcd("etcd:1", "");
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    sim.lock().unwrap().unhealthy.push("kv-etcd-2".into());
    sim.lock().unwrap().log.clear();
    let mut c = w.connections(&t);
    let state =
        crate::observe::observe_probing(&t, &mut c, 4, None, &crate::observe::NoProgress, true)
            .unwrap();
    let p = crate::plan::plan(&t, &state, None).unwrap();
    assert!(!p.has_changes(), "a probe is not a change");
    let doc = crate::output::show::ShowDocument::new(&p, &state);
    let health: Vec<(String, Option<String>)> = doc
        .containers
        .iter()
        .map(|c| match c {
            crate::output::show::ShowContainer::Observed(o) => {
                (o.container.clone(), o.health.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let h = |s: &str| Some(s.to_string());
    assert_eq!(
        health,
        [
            ("etcd-1".to_string(), h("healthy")),
            ("etcd-2".to_string(), h("unhealthy")),
            ("etcd-3".to_string(), h("healthy")),
            ("client".to_string(), None),
        ]
    );
    // The probe rides with the read: no step of its own.
    let log = &sim.lock().unwrap().log;
    assert!(log.is_empty(), "{log:?}");
}
