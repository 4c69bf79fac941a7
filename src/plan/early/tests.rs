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
/// A fourth node, n3, has no container.
fn fleet(id: Option<&str>) -> Topology {
    let mut t = String::from("name = \"fleet\"\n");
    if let Some(id) = id {
        t.push_str(&format!("id = \"{id}\"\n"));
    }
    for i in 0..4 {
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
/// nodes it had done before the plan (both 0 when the head start is not
/// usable: every node's ports worked out, nothing spoiled).
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
        let usable = inner.ported == t.nodes.len() && !inner.spoiled;
        if usable {
            (done, inner.checks.len())
        } else {
            (0, 0)
        }
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

const ORDERS: [[&str; 4]; 3] = [
    ["n0", "n1", "n2", "n3"],
    ["n3", "n2", "n1", "n0"],
    ["n1", "n3", "n2", "n0"],
];

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
        assert_eq!(checked, 4, "every node's digest made early ({order:?})");
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
    // Its own durable rules file: the fingerprint's scope names the files of
    // every container on the node, theirs too.
    theirs.rules_file = Some("fleet-n1c9.rules".into());
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
        let (early, done, _) = with_head_start(&t, &s, &all, Some(all.clone()), &order);
        assert_eq!(done, 0, "not usable: {order:?}");
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
        &["n0", "n1", "n2", "n3"],
    );
    assert_eq!(done, 9);
    assert_eq!(early.unwrap(), plain);
    // Not knowing the selection before the reads: the same.
    let (early, _, _) = with_head_start(&t, &s, &only, None, &["n2", "n3", "n0", "n1"]);
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

#[test]
fn a_node_read_without_canonical_lines_fingerprints_as_without_it() {
    // As a docker node's read: no canonical lines, its part of the
    // fingerprint the digest of its narrowed state.
    let t = fleet(None);
    let mut s = applied(&t);
    s.nodes.get_mut("n1").unwrap().canonical = crate::observe::digest::Canonical(None);
    let all = Selection::default();
    let plain = plan_selected(&t, &s, &all).unwrap();
    let (early, done, checked) = with_head_start(&t, &s, &all, Some(all.clone()), &ORDERS[1]);
    assert_eq!((done, checked), (9, 4));
    assert_eq!(early.unwrap(), plain);
}

/// A node answering its read with `output` (or failing it).
struct Answering {
    name: String,
    output: Option<String>,
}

impl crate::node::NodeConnection for Answering {
    fn node(&self) -> &str {
        &self.name
    }
    fn run(
        &mut self,
        _: &[crate::node::NodeOp],
    ) -> Result<crate::transport::Output, crate::transport::TransportError> {
        Ok(match &self.output {
            Some(text) => crate::transport::Output {
                status: 0,
                stdout: text.as_bytes().to_vec(),
                stderr: vec![],
            },
            None => crate::transport::Output {
                status: 3,
                stdout: vec![],
                stderr: b"podman: cannot read".to_vec(),
            },
        })
    }
}

/// `connect_and_observe` on nodes answering as after an apply, but `unreached`
/// (cannot connect) and `unread` (read fails); with the head start.
fn connect_and_read<'t>(
    t: &'t Topology,
    unreached: &[&str],
    unread: &[&str],
) -> (Result<ObservedState, crate::observe::NotRead>, Early<'t>) {
    let first = crate::plan::plan(t, &empty_state(t), None).expect("plans");
    let early = Early::new(t, Some(Selection::default()));
    #[allow(clippy::result_large_err)]
    let connect = |node: &crate::topology::model::Node| -> Result<
        Box<dyn crate::node::NodeConnection>,
        crate::transport::TransportError,
    > {
        if unreached.contains(&node.name.as_str()) {
            return Err(crate::transport::TransportError::Connect {
                node: node.name.clone(),
                address: "198.18.0.9:22".into(),
                reason: "refused".into(),
            });
        }
        let output =
            (!unread.contains(&node.name.as_str())).then(|| applied_output(t, &first, &node.name));
        Ok(Box::new(Answering {
            name: node.name.clone(),
            output,
        }))
    };
    let read =
        crate::observe::connect_and_observe(t, 3, connect, &crate::observe::NoProgress, &early)
            .map(|(_, state)| state);
    (read, early)
}

#[test]
fn connected_and_read_at_once_the_plan_is_the_plan_of_the_same_state() {
    let t = fleet(None);
    let (read, early) = connect_and_read(&t, &[], &[]);
    let state = read.expect("every node read");
    let all = Selection::default();
    let plain = plan_selected(&t, &state, &all).unwrap();
    {
        let inner = early.inner.lock().unwrap();
        assert_eq!(
            (inner.ported, inner.done.len(), inner.checks.len()),
            (4, 9, 4)
        );
        assert!(inner.states.is_empty(), "let go of every node's state");
    }
    assert_eq!(plan_with(&t, &state, &all, Some(early)).unwrap(), plain);
    assert!(!plain.has_changes());
}

#[test]
fn unreached_and_unread_nodes_are_all_named_and_nothing_early_is_used() {
    let t = fleet(None);
    let (read, early) = connect_and_read(&t, &["n1"], &["n2"]);
    match read {
        Err(crate::observe::NotRead::Connect { unreached, unread }) => {
            assert_eq!(unreached.len(), 1);
            assert!(unreached[0].to_string().starts_with("node n1: "));
            assert_eq!(unread.len(), 1);
            assert!(
                unread[0].to_string().starts_with("node n2: "),
                "{}",
                unread[0]
            );
        }
        other => panic!("expected the unreached node named: {other:?}"),
    }
    assert!(early.head().is_none());
    let (read, early) = connect_and_read(&t, &[], &["n0"]);
    match read {
        Err(crate::observe::NotRead::Read(errors)) => {
            assert_eq!(errors.len(), 1);
            assert!(errors[0].to_string().starts_with("node n0: "));
        }
        other => panic!("expected the unread node named: {other:?}"),
    }
    assert!(early.head().is_none());
}
