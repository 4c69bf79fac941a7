//! Private published ports through the simulated nodes: the node's own chain is
//! planned from the links, applied in one operation, kept in step when links come
//! and go, drift-checked, removed by destroy; nothing else in the node's FORWARD
//! chain changes. The shell text is pinned by the golden scripts; the lab tests
//! the real packets (tests/e2e/private_ports_cases.rs).

use std::collections::BTreeMap;

use super::sim::simulated;
use super::tests::Quiet;
use super::*;
use crate::node::fake::FakeNodes;
use crate::observe::observe;
use crate::plan::{destroy_selected, plan, Limit};
use crate::private_ports::chain_name;
use crate::topology::load_source;

const HEAD: &str = r#"name = "todo"
id = "0123456789abcdef0123"
[nodes.node1]
address = "198.18.0.1"
[nodes.node2]
address = "198.18.0.2"
[nodes.node4]
address = "198.18.0.4"
[containers.redisdb]
node = "node4"
image = "img"
publish = [{ port = 6379, host_port = 50000, private = true }, { port = 80, host_port = 50080 }]
"#;

fn client(name: &str, node: &str) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"img\"\nlinks = [{{ to = \"redisdb:6379\" }}, {{ to = \"redisdb:80\", listen = \"127.0.0.1:80\" }}]\n"
    )
}

fn load(body: &str) -> (Topology, DepGraph) {
    let l = load_source("t.toml", format!("{HEAD}{body}").into_bytes())
        .unwrap_or_else(|e| panic!("{}", e.render_with(false)));
    (l.topology, l.graph)
}

fn chain() -> String {
    chain_name("todo", Some("0123456789abcdef0123"))
}

fn rules(sources: &[&str]) -> Vec<String> {
    let m = "-p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment \"geartopo todo redisdb 6379/tcp\"";
    let c = chain();
    let mut out: Vec<String> = sources
        .iter()
        .map(|s| format!("-A {c} -s {s} {m} -j RETURN"))
        .collect();
    out.push(format!("-A {c} {m} -j REJECT --reject-with tcp-reset"));
    out
}

fn apply_once(t: &Topology, g: &DepGraph, w: &FakeNodes) -> (crate::plan::Plan, Vec<Task>) {
    let mut c = w.connections(t);
    let state = observe(t, &mut c, 4).unwrap();
    let p = plan(t, &state, None).unwrap();
    let tasks = apply_tasks(t, g, &p);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    (p, tasks)
}

#[test]
fn a_private_port_lets_in_the_linking_nodes_only_and_then_plans_no_change() {
    let (t, g) = load(&client("app1", "node1"));
    let (sim, w) = simulated(&t, &[]);
    let (p, tasks) = apply_once(&t, &g, &w);
    assert_eq!(p.node_changes.len(), 1, "{:?}", p.node_changes);
    let n = &p.node_changes[0];
    assert_eq!((n.node.as_str(), n.rules_before.as_ref()), ("node4", None));
    // node1's address only; the public port 80 has no rule at all.
    assert_eq!(n.rules_after, rules(&["198.18.0.1/32"]));
    // First on node4: the port is never open to all before its container exists.
    let first_on_node4 = tasks.iter().find(|t| t.node == "node4").unwrap();
    assert!(
        matches!(first_on_node4.op, NodeOp::PrivatePorts { .. }),
        "{tasks:?}"
    );
    assert_eq!(
        sim.lock().unwrap().node_chains["node4"][&chain()],
        rules(&["198.18.0.1/32"])
    );
    let (again, tasks) = apply_once(&t, &g, &w);
    assert!(!again.has_changes(), "{:?}", again.node_changes);
    assert!(tasks.is_empty());
}

#[test]
fn a_public_port_makes_no_chain() {
    let (t, g) = {
        let src = format!("{HEAD}{}", client("app1", "node1")).replace(", private = true", "");
        let l = load_source("t.toml", src.into_bytes()).unwrap();
        (l.topology, l.graph)
    };
    let (sim, w) = simulated(&t, &[]);
    let (p, _) = apply_once(&t, &g, &w);
    assert!(p.node_changes.is_empty());
    assert!(w.ops().iter().all(|(_, op)| op.kind() != "private-ports"));
    assert!(sim.lock().unwrap().node_chains.is_empty());
}

#[test]
fn a_link_from_a_new_node_opens_the_port_to_it_and_a_removed_link_closes_it() {
    let (t1, g1) = load(&client("app1", "node1"));
    let (_sim, w) = simulated(&t1, &[]);
    apply_once(&t1, &g1, &w);

    let (t2, g2) = load(&(client("app1", "node1") + &client("app2", "node2")));
    let (p, _) = apply_once(&t2, &g2, &w);
    assert_eq!(p.node_changes.len(), 1);
    assert_eq!(p.node_changes[0].reasons, ["rules"]);
    assert_eq!(
        p.node_changes[0].rules_after,
        rules(&["198.18.0.1/32", "198.18.0.2/32"])
    );
    // Plan text: the chain's diff, counted as one change in place.
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    assert!(
        text.contains("private ports chain on node4 will be updated in place"),
        "{text}"
    );
    assert!(text.contains("+-A GEARTOPO-PP-"), "{text}");
    assert!(
        text.contains("Plan: 1 to add, 1 to change, 0 to destroy."),
        "{text}"
    );

    let (t3, g3) = load(&client("app2", "node2"));
    let (p, _) = apply_once(&t3, &g3, &w);
    assert_eq!(p.node_changes[0].rules_after, rules(&["198.18.0.2/32"]));

    // No linker left: the chain refuses everyone.
    let (t4, g4) = load("");
    let (p, _) = apply_once(&t4, &g4, &w);
    assert_eq!(p.node_changes[0].rules_after, rules(&[]));
}

#[test]
fn a_linker_on_the_same_node_is_let_in_from_the_runtime_network() {
    let (t, g) = load(&client("near", "node4"));
    let (_sim, w) = simulated(&t, &[]);
    let (p, _) = apply_once(&t, &g, &w);
    // The simulated podman's network, as the observe script reads it.
    assert_eq!(p.node_changes[0].rules_after, rules(&["10.88.0.0/16"]));
}

#[test]
fn destroy_removes_the_chain_and_leaves_every_other_forward_rule_as_it_was() {
    let (t, g) = load(&client("app1", "node1"));
    let (sim, w) = simulated(&t, &[]);
    let foreign = vec![
        "-A FORWARD -j DOCKER-USER".to_string(),
        "-A FORWARD -j GEARTOPO-PP-ffffffffffffffff".to_string(),
        "-A FORWARD -m comment --comment \"netavark firewall plugin rules\" -j NETAVARK_FORWARD"
            .to_string(),
    ];
    let other = BTreeMap::from([(
        "GEARTOPO-PP-ffffffffffffffff".to_string(),
        vec!["-A GEARTOPO-PP-ffffffffffffffff -j RETURN".to_string()],
    )]);
    {
        let mut s = sim.lock().unwrap();
        s.forward.insert("node4".into(), foreign.clone());
        s.node_chains.insert("node4".into(), other.clone());
    }
    apply_once(&t, &g, &w);
    {
        let s = sim.lock().unwrap();
        assert_eq!(s.forward["node4"][0], format!("-A FORWARD -j {}", chain()));
        assert_eq!(s.forward["node4"][1..], foreign[..]);
        assert_eq!(
            s.node_chains["node4"]["GEARTOPO-PP-ffffffffffffffff"],
            other["GEARTOPO-PP-ffffffffffffffff"]
        );
    }
    // Another topology's chain is never planned: only ours is compared.
    let mut c = w.connections(&t);
    let state = observe(&t, &mut c, 4).unwrap();
    let d = destroy_selected("todo", t.id.as_deref(), &state, &Limit::All);
    assert_eq!(d.node_changes.len(), 1);
    assert_eq!(d.node_changes[0].chain, chain());
    let tasks = destroy_tasks(&t, &g, &d);
    // After the containers of node4.
    assert_eq!(
        tasks.last().unwrap().label,
        format!("remove private ports chain {}", chain())
    );
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let s = sim.lock().unwrap();
    assert_eq!(s.forward["node4"], foreign);
    assert_eq!(s.node_chains["node4"], other);
}

#[test]
fn a_jump_removed_by_hand_is_drift_and_apply_puts_it_back() {
    let (t, g) = load(&client("app1", "node1"));
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &g, &w);
    sim.lock()
        .unwrap()
        .forward
        .get_mut("node4")
        .unwrap()
        .clear();
    let (p, _) = apply_once(&t, &g, &w);
    assert_eq!(p.node_changes[0].reasons, ["jump"]);
    assert!(
        p.drift
            .iter()
            .any(|d| d.node == "node4" && d.what.contains("0 times")),
        "{:?}",
        p.drift
    );
    let (again, _) = apply_once(&t, &g, &w);
    assert!(!again.has_changes());
}

#[test]
fn two_topologies_of_one_name_on_one_node_keep_to_their_own_chains() {
    let (t, g) = load(&client("app1", "node1"));
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &g, &w);
    // Another team's "todo" (another id) on the same nodes, other containers.
    let other_src = format!("{HEAD}{}", client("app9", "node2"))
        .replace("0123456789abcdef0123", "fedcba98765432100123")
        .replace("redisdb", "cache")
        .replace("50000", "50001")
        .replace("50080", "50081");
    let other = load_source("o.toml", other_src.into_bytes()).unwrap();
    let (o, og) = (other.topology, other.graph);
    let (p, _) = apply_once(&o, &og, &w);
    let theirs = chain_name("todo", Some("fedcba98765432100123"));
    assert_eq!(p.node_changes.len(), 1);
    assert_eq!(p.node_changes[0].chain, theirs);
    {
        let s = sim.lock().unwrap();
        assert_eq!(s.node_chains["node4"][&chain()], rules(&["198.18.0.1/32"]));
        assert!(s.node_chains["node4"][&theirs][0].contains("-s 198.18.0.2/32"));
    }
    // Ours is still as planned: no change for us.
    let (again, _) = apply_once(&t, &g, &w);
    assert!(again.node_changes.is_empty(), "{:?}", again.node_changes);
    // Their destroy takes their chain only.
    let mut c = w.connections(&o);
    let state = observe(&o, &mut c, 4).unwrap();
    let d = destroy_selected("todo", o.id.as_deref(), &state, &Limit::All);
    assert_eq!(d.node_changes.len(), 1);
    assert_eq!(d.node_changes[0].chain, theirs);
    let outcomes = execute(&destroy_tasks(&o, &og, &d), &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let s = sim.lock().unwrap();
    assert!(!s.node_chains["node4"].contains_key(&theirs));
    assert_eq!(s.node_chains["node4"][&chain()], rules(&["198.18.0.1/32"]));
}
