//! `--target`, `--exclude` and `--replace` on captured state: the cluster example
//! (app-1 and app-2 link to mysql, redis and api; api links to mysql).

use std::collections::BTreeSet;

use super::*;
use crate::plan::{destroy_selected, plan, plan_selected, Action, Plan};
use crate::testing::{applied_state, empty_state};

fn cluster() -> (Topology, DepGraph) {
    let t = crate::topology::parse(
        "cluster.toml",
        include_bytes!("../../../examples/cluster.toml"),
    )
    .unwrap();
    let g = DepGraph::build(&t).unwrap();
    (t, g)
}

fn applied(t: &Topology) -> ObservedState {
    applied_state(t, &plan(t, &empty_state(t), None).unwrap())
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn targets(v: &[&str]) -> Scope {
    Scope {
        targets: names(v),
        ..Scope::default()
    }
}

fn excludes(v: &[&str]) -> Scope {
    Scope {
        excludes: names(v),
        ..Scope::default()
    }
}

fn replace(v: &[&str]) -> Scope {
    Scope {
        replace: names(v),
        ..Scope::default()
    }
}

/// The containers a plan touches, sorted, with what happens to them.
fn touched(p: &Plan) -> Vec<(String, Action)> {
    let mut v: Vec<(String, Action)> = p
        .changes
        .iter()
        .map(|c| (c.container.clone(), c.action.clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn deleted(p: &Plan) -> BTreeSet<String> {
    assert!(p.changes.iter().all(|c| c.action == Action::Delete));
    p.changes.iter().map(|c| c.container.clone()).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn destroy_plan(t: &Topology, g: &DepGraph, s: &ObservedState, scope: Scope) -> Plan {
    let sel = select(t, g, s, &scope, Mode::Destroy).unwrap();
    destroy_selected(&t.name, t.id.as_deref(), s, &sel.limit)
}

fn apply_plan(t: &Topology, g: &DepGraph, s: &ObservedState, scope: Scope) -> Plan {
    let sel = select(t, g, s, &scope, Mode::Apply).unwrap();
    plan_selected(t, s, &sel).unwrap()
}

#[test]
fn destroy_target_removes_what_links_to_it_too() {
    let (t, g) = cluster();
    let s = applied(&t);
    // api links to mysql, app-1 and app-2 link to both: all of them go; redis stays.
    let p = destroy_plan(&t, &g, &s, targets(&["mysql"]));
    assert_eq!(deleted(&p), set(&["mysql", "api", "app-1", "app-2"]));
    // redis: only the app replicas link to it.
    let p = destroy_plan(&t, &g, &s, targets(&["redis"]));
    assert_eq!(deleted(&p), set(&["redis", "app-1", "app-2"]));
    // One replica: only itself, nothing links to it.
    let p = destroy_plan(&t, &g, &s, targets(&["app-2"]));
    assert_eq!(deleted(&p), set(&["app-2"]));
}

#[test]
fn destroy_target_of_a_container_only_on_the_nodes_removes_it() {
    let (t, _) = cluster();
    let s = applied(&t);
    let mut smaller = t.clone();
    smaller.containers.retain(|c| c.name != "redis");
    for c in &mut smaller.containers {
        c.links.retain(|l| !matches!(&l.target, crate::topology::model::LinkTarget::Container { container, .. } if container == "redis"));
    }
    let g2 = DepGraph::build(&smaller).unwrap();
    let p = destroy_plan(&smaller, &g2, &s, targets(&["redis"]));
    assert_eq!(deleted(&p), set(&["redis"]));
}

#[test]
fn destroy_exclude_keeps_it_and_what_it_needs() {
    let (t, g) = cluster();
    let s = applied(&t);
    // api needs mysql: removing mysql would break the link api keeps.
    let p = destroy_plan(&t, &g, &s, excludes(&["api"]));
    assert_eq!(deleted(&p), set(&["redis", "app-1", "app-2"]));
}

#[test]
fn exclude_leaves_it_and_its_dependents_alone() {
    let (t, g) = cluster();
    let s = empty_state(&t);
    // api and both app replicas link to mysql: none of them is planned.
    let p = apply_plan(&t, &g, &s, excludes(&["mysql"]));
    assert_eq!(touched(&p), vec![("redis".into(), Action::Create)]);
    // A declared name means every replica; a replica name only itself.
    let p = apply_plan(&t, &g, &s, excludes(&["app"]));
    assert_eq!(
        touched(&p).into_iter().map(|c| c.0).collect::<Vec<_>>(),
        names(&["api", "mysql", "redis"])
    );
    let p = apply_plan(&t, &g, &s, excludes(&["app-2"]));
    assert_eq!(
        touched(&p).into_iter().map(|c| c.0).collect::<Vec<_>>(),
        names(&["api", "app-1", "mysql", "redis"])
    );
}

#[test]
fn exclude_keeps_an_excluded_container_that_would_be_replaced_or_removed() {
    let (t, _) = cluster();
    let s = applied(&t);
    let mut changed = t.clone();
    for c in &mut changed.containers {
        c.image = format!("{}-next", c.image);
    }
    changed.containers.retain(|c| c.name != "app-2");
    let g2 = DepGraph::build(&changed).unwrap();
    // Without --exclude everything is replaced and app-2 removed; excluding redis
    // keeps it and app-1 (which links to it) as they are. app-2 is not in the file
    // any more: no link of it is known, so it is removed.
    let p = apply_plan(&changed, &g2, &s, excludes(&["redis"]));
    let got = touched(&p);
    assert_eq!(
        got.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        vec!["api", "app-2", "mysql"]
    );
    assert_eq!(got[1].1, Action::Delete);
}

#[test]
fn target_by_declared_name_means_every_replica_and_what_they_need() {
    let (t, g) = cluster();
    let s = empty_state(&t);
    let p = apply_plan(&t, &g, &s, targets(&["api"]));
    assert_eq!(
        touched(&p).into_iter().map(|c| c.0).collect::<Vec<_>>(),
        names(&["api", "mysql"])
    );
    let p = apply_plan(&t, &g, &s, targets(&["app"]));
    assert_eq!(p.changes.len(), 5);
}

#[test]
fn replace_an_unchanged_container_is_a_requested_replace() {
    let (t, g) = cluster();
    let s = applied(&t);
    assert!(!plan(&t, &s, None).unwrap().has_changes());
    let p = apply_plan(&t, &g, &s, replace(&["redis"]));
    assert_eq!(
        touched(&p),
        vec![(
            "redis".into(),
            Action::Replace {
                forced_by: Vec::new()
            }
        )]
    );
    let c = &p.changes[0];
    assert_eq!(c.reasons, vec!["replace requested".to_string()]);
    assert!(c.start);
    assert_eq!(
        c.observed_id,
        Some(s.nodes["node4"].containers["redis"].id.clone())
    );
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    assert!(
        text.contains("# redis on node4 will be replaced, as requested"),
        "{text}"
    );
    assert!(text.contains("-/+ container \"cluster-redis\""), "{text}");
    assert!(
        text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{text}"
    );
}

#[test]
fn replace_a_replica_replaces_only_it_and_a_declared_name_every_replica() {
    let (t, g) = cluster();
    let s = applied(&t);
    let p = apply_plan(&t, &g, &s, replace(&["app-2"]));
    assert_eq!(
        touched(&p),
        vec![(
            "app-2".into(),
            Action::Replace {
                forced_by: Vec::new()
            }
        )]
    );
    let p = apply_plan(&t, &g, &s, replace(&["app"]));
    assert_eq!(
        touched(&p).into_iter().map(|c| c.0).collect::<Vec<_>>(),
        names(&["app-1", "app-2"])
    );
}

#[test]
fn replace_keeps_the_attributes_that_force_it_and_a_missing_container_is_created() {
    let (t, g) = cluster();
    let mut s = applied(&t);
    let mut changed = t.clone();
    changed
        .containers
        .iter_mut()
        .find(|c| c.name == "redis")
        .unwrap()
        .image = "redis:8".into();
    let p = apply_plan(&changed, &g, &s, replace(&["redis"]));
    assert_eq!(
        p.changes[0].action,
        Action::Replace {
            forced_by: vec!["image".into()]
        }
    );
    assert_eq!(p.changes[0].reasons, vec!["replace requested".to_string()]);
    // A container that is not there is created, requested or not.
    let node4 = s.nodes.get_mut("node4").unwrap();
    node4.containers.remove("redis");
    node4.taken_ports.retain(|(_, port)| *port != 46379);
    let p = apply_plan(&t, &g, &s, replace(&["redis"]));
    assert_eq!(touched(&p), vec![("redis".into(), Action::Create)]);
}

#[test]
fn an_update_in_place_becomes_a_replace_when_requested() {
    let (t, g) = cluster();
    let mut s = applied(&t);
    let oc = s
        .nodes
        .get_mut("node2")
        .unwrap()
        .containers
        .get_mut("mysql")
        .unwrap();
    oc.state = crate::state::RunState::Stopped("exited".into());
    let p = apply_plan(&t, &g, &s, replace(&["mysql"]));
    assert_eq!(
        touched(&p),
        vec![(
            "mysql".into(),
            Action::Replace {
                forced_by: Vec::new()
            }
        )]
    );
}

#[test]
fn target_and_exclude_together_are_refused() {
    let (t, g) = cluster();
    let s = empty_state(&t);
    let scope = Scope {
        targets: names(&["api"]),
        excludes: names(&["redis"]),
        replace: vec![],
        make_durable: false,
    };
    let e = select(&t, &g, &s, &scope, Mode::Apply).unwrap_err();
    assert_eq!(e, SelectError::TargetAndExclude);
    assert_eq!(select(&t, &g, &s, &scope, Mode::Destroy).unwrap_err(), e);
    assert!(e
        .to_string()
        .starts_with("--target and --exclude cannot be used together"));
}

#[test]
fn unknown_names_are_errors_naming_the_closest_valid_one() {
    let (t, g) = cluster();
    let s = applied(&t);
    let err = |scope: Scope, mode| select(&t, &g, &s, &scope, mode).unwrap_err().to_string();
    assert_eq!(
        err(targets(&["mysq"]), Mode::Apply),
        "--target mysq: no such container in the topology or on its nodes (did you mean mysql?)"
    );
    assert_eq!(
        err(excludes(&["redsi"]), Mode::Destroy),
        "--exclude redsi: no such container in the topology or on its nodes (did you mean redis?)"
    );
    assert_eq!(
        err(replace(&["app-3"]), Mode::Apply),
        "--replace app-3: no such container in the topology or on its nodes (did you mean app-1?)"
    );
    assert_eq!(
        err(targets(&["zookeeper"]), Mode::Apply),
        "--target zookeeper: no such container in the topology or on its nodes"
    );
}

#[test]
fn replace_outside_the_targets_or_on_destroy_is_refused() {
    let (t, g) = cluster();
    let s = applied(&t);
    let scope = Scope {
        targets: names(&["redis"]),
        replace: names(&["mysql"]),
        ..Scope::default()
    };
    assert_eq!(
        select(&t, &g, &s, &scope, Mode::Apply).unwrap_err(),
        SelectError::ReplaceOutOfScope {
            name: "mysql".into(),
            flag: "--target"
        }
    );
    // api depends on mysql: excluding mysql leaves api alone too.
    let scope = Scope {
        excludes: names(&["mysql"]),
        replace: names(&["api"]),
        ..Scope::default()
    };
    assert_eq!(
        select(&t, &g, &s, &scope, Mode::Apply).unwrap_err(),
        SelectError::ReplaceOutOfScope {
            name: "api".into(),
            flag: "--exclude"
        }
    );
    assert_eq!(
        select(&t, &g, &s, &replace(&["api"]), Mode::Destroy).unwrap_err(),
        SelectError::ReplaceOnDestroy
    );
}

#[test]
fn a_scaled_down_replica_is_part_of_its_declared_name() {
    let (t, g) = cluster();
    let mut s = applied(&t);
    // app-3 left on node1 by an earlier `replicas = 3`.
    let node1 = s.nodes.get_mut("node1").unwrap();
    let mut extra = node1.containers["app-2"].clone();
    extra.container = "app-3".into();
    extra.runtime_name = "cluster-app-3".into();
    extra.id = "app3id".into();
    node1.containers.insert("app-3".into(), extra);
    let p = apply_plan(&t, &g, &s, targets(&["app"]));
    assert_eq!(touched(&p), vec![("app-3".into(), Action::Delete)]);
    let p = apply_plan(&t, &g, &s, excludes(&["app"]));
    assert!(!p.has_changes());
}

#[test]
fn the_targeting_warning_is_given_for_target_and_exclude_only() {
    let w = targets(&["api"]).targeting_warning().unwrap();
    assert!(w.starts_with("warning: resource targeting is in effect (--target)"));
    assert!(w.contains("the plan may be incomplete"));
    assert!(excludes(&["api"])
        .targeting_warning()
        .unwrap()
        .contains("(--exclude)"));
    assert_eq!(replace(&["api"]).targeting_warning(), None);
    assert_eq!(Scope::default().targeting_warning(), None);
}
