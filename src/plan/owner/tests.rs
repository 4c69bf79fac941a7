//! Ownership by id on captured state: two topologies named `todo` on the same
//! nodes, one of them ours (id A), the other a team's we must never touch (id B).

use crate::plan::tests::{applied, empty_state, redis_todo};
use crate::plan::{destroy_selected, plan, Action, Adopted, Limit, PlanError};
use crate::state::{ObservedContainer, ObservedState};
use crate::topology::model::Topology;

const OURS: &str = "0123456789abcdef0123456789abcdef";
const THEIRS: &str = "fedcba9876543210fedcba9876543210";

fn ours() -> Topology {
    let mut t = redis_todo();
    t.id = Some(OURS.into());
    t
}

/// Their container `name` on `node`, running with their id (a copy of our app1's
/// shape, as another team's apply of a topology also named `todo` leaves it).
fn theirs(s: &mut ObservedState, node: &str, name: &str, runtime_name: &str) {
    let template = applied(&ours()).nodes["node1"].containers["app1"].clone();
    let c = ObservedContainer {
        id: format!("their-{name}"),
        runtime_name: runtime_name.into(),
        container: name.into(),
        owner_id: Some(THEIRS.into()),
        ..template
    };
    let ns = s.nodes.get_mut(node).unwrap();
    ns.names.insert(runtime_name.into());
    if ns.containers.contains_key(name) {
        ns.extras.push(c);
    } else {
        ns.containers.insert(name.into(), c);
    }
}

#[test]
fn another_ids_container_of_the_same_topology_name_is_neither_removed_nor_changed() {
    let t = ours();
    let mut s = applied(&t);
    // Theirs: a container our file does not have, one on a node where ours is
    // elsewhere, and a stopped one with broken rules (drift, were it ours).
    theirs(&mut s, "node1", "web", "todo-web");
    theirs(&mut s, "node1", "redisdb", "todo-redisdb");
    theirs(&mut s, "node4", "cache", "todo-cache");
    s.nodes
        .get_mut("node4")
        .unwrap()
        .containers
        .get_mut("cache")
        .unwrap()
        .chains = None;
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(p.changes, vec![], "{:#?}", p.changes);
    assert_eq!(p.drift, vec![]);

    // The same state read by a file without an id: everything named `todo` is its own.
    let mut legacy = t.clone();
    legacy.id = None;
    let p = plan(&legacy, &s, None).unwrap();
    let mut deleted: Vec<&str> = p
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .map(|c| c.runtime_name.as_str())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["todo-cache", "todo-redisdb", "todo-web"]);
}

#[test]
fn their_container_first_in_observe_order_does_not_make_ours_a_copy() {
    let t = ours();
    let mut s = applied(&t);
    let node1 = s.nodes.get_mut("node1").unwrap();
    let mine = node1.containers.remove("app1").unwrap();
    theirs(&mut s, "node1", "app1", "todo-app1-by-hand");
    s.nodes.get_mut("node1").unwrap().extras.push(mine);
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(p.changes, vec![]);
}

#[test]
fn a_container_of_another_id_with_our_runtime_name_is_a_plan_error_naming_both_ids() {
    let t = ours();
    let mut s = empty_state(&t);
    theirs(&mut s, "node1", "app1", "todo-app1");
    assert_eq!(
        plan(&t, &s, None).unwrap_err(),
        vec![PlanError::OwnedByOther {
            node: "node1".into(),
            name: "todo-app1".into(),
            ours: OURS.into(),
            theirs: THEIRS.into(),
        }]
    );
    let message = plan(&t, &s, None).unwrap_err()[0].to_string();
    assert!(
        message.contains(OURS) && message.contains(THEIRS),
        "{message}"
    );
}

#[test]
fn containers_made_before_ids_are_adopted_without_a_change() {
    let t = ours();
    let mut s = applied(&t);
    for ns in s.nodes.values_mut() {
        for c in ns.containers.values_mut() {
            c.owner_id = None;
        }
    }
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(p.changes, vec![]);
    assert_eq!(
        p.adopted,
        vec![
            Adopted {
                container: "app1".into(),
                node: "node1".into(),
                runtime_name: "todo-app1".into(),
            },
            Adopted {
                container: "redisdb".into(),
                node: "node4".into(),
                runtime_name: "todo-redisdb".into(),
            },
        ]
    );
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    assert!(
        text.contains("app1 on node1 (\"todo-app1\"): adopted"),
        "{text}"
    );
    assert!(
        text.ends_with(&format!("{}\n", crate::render::NO_CHANGES)),
        "{text}"
    );
    // Ours with our id are not notes.
    assert_eq!(plan(&t, &applied(&t), None).unwrap().adopted, vec![]);
}

#[test]
fn destroy_never_removes_another_ids_container() {
    let t = ours();
    let mut s = applied(&t);
    theirs(&mut s, "node1", "web", "todo-web");
    theirs(&mut s, "node4", "app1", "todo-app1-b");
    let p = destroy_selected(&t.name, t.id.as_deref(), &s, &Limit::All);
    let mut removed: Vec<&str> = p.changes.iter().map(|c| c.runtime_name.as_str()).collect();
    removed.sort();
    assert_eq!(removed, ["todo-app1", "todo-redisdb"]);
    assert!(p.changes.iter().all(|c| c.action == Action::Delete));
}

/// A node removed from the file while it still runs the topology's containers:
/// plan never reads it, so it never shows them; `destroy --node` reads it again
/// and removes what is there, and only that.
#[test]
fn a_node_gone_from_the_file_is_invisible_to_plan_and_destroy_node_cleans_only_it() {
    let t = ours();
    let s = applied(&t);
    let mut without = t.clone();
    without.nodes.remove("node1");
    without.containers.retain(|c| c.node != "node1");
    // What observe reads for the file without node1.
    let mut read = s.clone();
    read.nodes.remove("node1");
    let p = plan(&without, &read, None).unwrap();
    assert_eq!(p.changes, vec![], "app1 on node1 is out of sight");

    // `destroy --node node1=...`: node1 read again, the plan kept to it.
    let mut p = destroy_selected(&without.name, without.id.as_deref(), &s, &Limit::All);
    p.retain_nodes(&["node1".to_string()].into());
    let removed: Vec<(&str, &str)> = p
        .changes
        .iter()
        .map(|c| (c.node.as_str(), c.runtime_name.as_str()))
        .collect();
    assert_eq!(removed, [("node1", "todo-app1")]);
    assert_eq!(p.changes[0].observed_id.as_deref(), Some("id-app1"));
}

#[test]
fn what_show_reports_is_only_ours() {
    let t = ours();
    let mut s = applied(&t);
    theirs(&mut s, "node1", "web", "todo-web");
    let owned = crate::plan::owned_state(t.id.as_deref(), &s);
    let p = plan(&t, &s, None).unwrap();
    let doc = serde_json::to_value(crate::output::show::ShowDocument::new(&p, &owned)).unwrap();
    let names: Vec<&str> = doc["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["runtime_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["todo-redisdb", "todo-app1"]);
}
