//! The head start changes nothing: a plan made with it is the plan made
//! without it, whatever the order the reads arrive in, with drift, with
//! another owner's containers, with errors and with a selection; and it did
//! the work (a head start that silently did nothing would pass the rest).

use std::sync::Arc;

use super::*;
use crate::observe::parse::parse_node;
use crate::plan::{plan_selected, plan_with, Limit, Plan, PlanError, Selection};
use crate::state::{ObservedState, ProtocolName, RunState};
use crate::testing::{applied_output, empty_state};

/// Three nodes; each one's containers link to those of the node before it,
/// and the first's to a raw address; host ports left to the plan and given.
fn fleet(id: Option<&str>) -> Topology {
    let mut t = String::from("name = \"fleet\"\n");
    if let Some(id) = id {
        t.push_str(&format!("id = \"{id}\"\n"));
    }
    for i in 0..3 {
        t.push_str(&format!(
            "\n[nodes.n{i}]\naddress = \"198.18.0.{}\"\n",
            i + 1
        ));
    }
    for i in 0..3 {
        for k in 0..3 {
            let links: Vec<String> = (0..3)
                .map(|j| {
                    let listen = format!("127.0.0.1:{}", 7000 + j);
                    if i == 0 {
                        format!(
                            "{{ to = \"198.18.1.9:{}\", listen = \"{listen}\" }}",
                            50000 + j
                        )
                    } else {
                        format!("{{ to = \"n{}c{j}:6379\", listen = \"{listen}\" }}", i - 1)
                    }
                })
                .collect();
            let given = if k == 0 {
                format!(", {{ port = 80, host_port = {} }}", 8080 + i)
            } else {
                String::new()
            };
            t.push_str(&format!(
                "\n[containers.n{i}c{k}]\nnode = \"n{i}\"\nimage = \"localhost/geartopo-busybox:latest\"\n\
                 command = [\"sleep\", \"1000000\"]\npublish = [{{ port = 6379 }}{given}]\nlinks = [{}]\n",
                links.join(", ")
            ));
        }
    }
    crate::topology::parse("fleet.toml", t.as_bytes()).expect("a valid topology")
}

/// Each node as read after an apply, parsed from the text a podman node
/// prints (so with the canonical lines the fingerprint digests).
fn applied(t: &Topology) -> ObservedState {
    let first = crate::plan::plan(t, &empty_state(t), None).expect("plans");
    let mut s = ObservedState::default();
    for node in t.nodes.keys() {
        let text = applied_output(t, &first, node);
        s.nodes.insert(
            node.clone(),
            parse_node(node, &t.name, &text).expect("parses"),
        );
    }
    s
}

/// The plan made with the head start, the reads arriving in `order`; and how
/// many containers (resolved, and compared when `expected` is given) and
/// nodes it had done before the plan.
fn with_head_start(
    t: &Topology,
    s: &ObservedState,
    selection: &Selection,
    expected: Option<Selection>,
    order: &[&str],
) -> (Result<Plan, Vec<PlanError>>, usize, usize) {
    let expected_known = expected.is_some();
    let early = Early::new(t, expected);
    early.names(&s.resolved);
    for node in order {
        early.read(node, &Arc::new(s.nodes[*node].clone()));
    }
    early.done();
    early.work();
    early.release();
    let (done, checked) = {
        let inner = early.inner.lock().unwrap();
        // Those resolved early and compared under the expected selection.
        let compared = inner.done.values().filter(|d| d.compared.is_some()).count();
        let done = if expected_known {
            compared
        } else {
            inner.done.len()
        };
        (done, inner.checks.len())
    };
    (plan_with(t, s, selection, Some(early)), done, checked)
}

/// Removes a container from a node's state as if removed by hand: its name
/// and its host ports free again.
fn remove(s: &mut ObservedState, node: &str, name: &str) {
    let ns = s.nodes.get_mut(node).unwrap();
    let oc = ns.containers.remove(name).expect("there");
    ns.names.remove(&oc.runtime_name);
    for p in &oc.published {
        ns.taken_ports.remove(&(p.protocol, p.host_port));
    }
}

const ORDERS: [[&str; 3]; 3] = [["n0", "n1", "n2"], ["n2", "n1", "n0"], ["n1", "n2", "n0"]];

#[test]
fn a_plan_with_the_head_start_is_the_plan_without_it_in_every_order() {
    let t = fleet(None);
    let s = applied(&t);
    let all = Selection::default();
    let plain = plan_selected(&t, &s, &all).unwrap();
    assert!(!plain.has_changes(), "as applied");
    for order in ORDERS {
        let (early, done, checked) = with_head_start(&t, &s, &all, Some(all.clone()), &order);
        assert_eq!(done, 9, "every container resolved early ({order:?})");
        assert_eq!(checked, 3, "every node's digest made early ({order:?})");
        assert_eq!(early.unwrap(), plain, "{order:?}");
    }
}

#[test]
fn drift_and_changes_come_out_the_same() {
    let t = fleet(None);
    let mut s = applied(&t);
    // A container gone, one stopped, one's rules emptied by hand.
    remove(&mut s, "n1", "n1c2");
    s.nodes
        .get_mut("n2")
        .unwrap()
        .containers
        .get_mut("n2c1")
        .unwrap()
        .state = RunState::Stopped("exited".into());
    s.nodes
        .get_mut("n0")
        .unwrap()
        .containers
        .get_mut("n0c0")
        .unwrap()
        .chains
        .as_mut()
        .expect("read in its namespace")
        .rules
        .clear();
    let all = Selection::default();
    let plain = plan_selected(&t, &s, &all).unwrap();
    assert!(plain.has_changes() && !plain.drift.is_empty());
    for order in ORDERS {
        let (early, done, _) = with_head_start(&t, &s, &all, Some(all.clone()), &order);
        assert_eq!(done, 9);
        assert_eq!(early.unwrap(), plain, "{order:?}");
    }
}

#[test]
fn another_owners_containers_are_set_aside_as_without_it() {
    let ours = "0123456789abcdef";
    let t = fleet(Some(ours));
    let mut s = applied(&t);
    // One of ours carries no id yet (adopted); one of another team's
    // topology of the same name sits on n1 under a name ours do not take.
    let mut theirs = s.nodes["n1"].containers["n1c0"].clone();
    theirs.owner_id = Some("fedcba9876543210".into());
    theirs.container = "n1c9".into();
    theirs.runtime_name = "fleet-n1c9".into();
    theirs.id = "their-id".into();
    s.nodes
        .get_mut("n1")
        .unwrap()
        .containers
        .insert("n1c9".into(), theirs);
    s.nodes
        .get_mut("n0")
        .unwrap()
        .containers
        .get_mut("n0c1")
        .unwrap()
        .owner_id = None;
    let all = Selection::default();
    let plain = plan_selected(&t, &s, &all).unwrap();
    assert_eq!(plain.adopted.len(), 1);
    assert!(
        plain.changes.iter().all(|c| c.container != "n1c9"),
        "theirs is not ours to delete"
    );
    for order in ORDERS {
        let (early, done, _) = with_head_start(&t, &s, &all, Some(all.clone()), &order);
        assert_eq!(done, 9);
        assert_eq!(early.unwrap(), plain, "{order:?}");
    }
}

#[test]
fn a_port_error_is_reported_as_without_it() {
    let t = fleet(None);
    let mut s = empty_state(&t);
    s.nodes
        .get_mut("n2")
        .unwrap()
        .taken_ports
        .insert((ProtocolName::Tcp, 8082));
    let all = Selection::default();
    let plain = plan_selected(&t, &s, &all).unwrap_err();
    assert!(matches!(
        plain[0],
        PlanError::PortTaken {
            host_port: 8082,
            ..
        }
    ));
    for order in ORDERS {
        let (early, _, _) = with_head_start(&t, &s, &all, Some(all.clone()), &order);
        assert_eq!(early.unwrap_err(), plain, "{order:?}");
    }
}

#[test]
fn under_another_selection_only_the_resolving_is_reused() {
    let t = fleet(None);
    let mut s = applied(&t);
    remove(&mut s, "n2", "n2c0");
    remove(&mut s, "n1", "n1c1");
    // Compared early under "everything", planned under "only n2c0".
    let only = Selection {
        limit: Limit::Only(["n2c0".to_string()].into()),
        ..Selection::default()
    };
    let plain = plan_selected(&t, &s, &only).unwrap();
    assert_eq!(plain.changes.len(), 1, "only n2c0 is created");
    let (early, done, _) = with_head_start(
        &t,
        &s,
        &only,
        Some(Selection::default()),
        &["n0", "n1", "n2"],
    );
    assert_eq!(done, 9);
    assert_eq!(early.unwrap(), plain);
    // Not knowing the selection before the reads: the same.
    let (early, _, _) = with_head_start(&t, &s, &only, None, &["n2", "n0", "n1"]);
    assert_eq!(early.unwrap(), plain);
}

#[test]
fn a_failed_read_leaves_the_plan_to_be_made_in_full() {
    let t = fleet(None);
    let s = applied(&t);
    let early = Early::new(&t, Some(Selection::default()));
    early.names(&s.resolved);
    early.read("n0", &Arc::new(s.nodes["n0"].clone()));
    early.failed();
    early.read("n1", &Arc::new(s.nodes["n1"].clone()));
    early.done();
    early.work();
    early.release();
    assert!(early.head().is_none());
}
