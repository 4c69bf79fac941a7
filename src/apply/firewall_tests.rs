//! The nftables backend and the switch between backends, on simulated nodes:
//! the full observe -> plan -> execute loop, nodes answering `observe` with nft's
//! own JSON listing (`nft::listing`), read back by the real reader.

use super::sim::simulated;
use super::tests::apply_once;
use super::*;
use crate::nft::{table_lines, FAMILY, TABLE};
use crate::plan::tests::redis_todo;
use crate::render::{plan_text, Style};
use crate::topology::model::{Firewall, Topology};

/// The seed with app1's node (node1) on `firewall`.
fn seed(firewall: Firewall) -> Topology {
    let mut t = redis_todo();
    t.nodes.get_mut("node1").unwrap().firewall = firewall;
    t
}

fn rules_ops(w: &crate::node::fake::FakeNodes) -> Vec<OwnedRules> {
    w.ops()
        .into_iter()
        .filter_map(|(_, op)| match op {
            NodeOp::Rules { rules, .. } => Some(rules),
            _ => None,
        })
        .collect()
}

#[test]
fn an_nftables_node_gets_its_table_and_plans_no_change_after() {
    let t = seed(Firewall::Nftables);
    let (sim, w) = simulated(&t, &[]);
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let app = p.changes.iter().find(|c| c.container == "app1").unwrap();
    assert_eq!(app.rules_after[0], "table ip geartopo {");
    let rules = rules_ops(&w);
    let app_rules = rules.iter().find(|r| r.container == "app1").unwrap();
    assert_eq!(app_rules.firewall, Firewall::Nftables);
    assert!(!app_rules.clear_other);
    let doc = app_rules.payload();
    assert!(
        doc.starts_with("table ip geartopo {}\ndelete table ip geartopo\ntable ip geartopo {\n")
    );
    assert!(doc.contains("dnat to 198.18.0.4:50000"), "{doc}");
    // Only app1's node is on nftables: redisdb's namespace gets iptables rules.
    let redis_rules = rules.iter().find(|r| r.container == "redisdb").unwrap();
    assert_eq!(redis_rules.firewall, Firewall::Iptables);
    {
        let sim = sim.lock().unwrap();
        let c = &sim.nodes["node1"][0];
        assert!(
            c.rules.is_empty() && c.jumps == 0,
            "no iptables rule: {c:?}"
        );
        assert!(c.nft.is_some());
    }
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
}

#[test]
fn a_table_edited_or_deleted_by_hand_is_drift_and_repaired() {
    let t = seed(Firewall::Nftables);
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    type Edit = fn(&mut Option<Vec<String>>);
    let edits: [(&str, Edit); 2] = [
        ("rules in table ip geartopo were changed", |nft| {
            // `nft delete rule ...` of the DNAT: the marker no longer matches.
            nft.as_mut().unwrap().retain(|l| !l.contains("dnat to"));
        }),
        ("table ip geartopo is missing", |nft| *nft = None),
    ];
    for (what, edit) in edits {
        edit(&mut sim.lock().unwrap().nodes.get_mut("node1").unwrap()[0].nft);
        let (p, _, outcomes) = apply_once(&t, &w);
        assert_eq!(p.drift.len(), 1, "{:?}", p.drift);
        assert_eq!(p.drift[0].what, what);
        let app = &p.changes[0];
        assert_eq!(
            (app.container.as_str(), &app.action),
            ("app1", &Action::Update)
        );
        assert_eq!(app.reasons, ["rules"]);
        assert!(!app.start, "repaired in place, no restart");
        let text = plan_text(&p, Style::plain());
        assert!(
            text.contains("~ rules (table ip geartopo, in nft syntax):"),
            "{text}"
        );
        assert!(
            text.contains("+        ip daddr 127.0.0.1 tcp dport 6379 dnat to 198.18.0.4:50000"),
            "{text}"
        );
        assert!(outcomes.iter().all(|o| *o == Outcome::Done));
        let (p, _, _) = apply_once(&t, &w);
        assert!(!p.has_changes() && p.drift.is_empty(), "{:?}", p.changes);
    }
}

/// iptables -> nftables and back: an update in place each way (no replace, no
/// start), one rules step writing the new backend and clearing the old, after
/// which the old backend holds nothing of geartopo's and the next plan is empty.
#[test]
fn switching_backends_is_an_update_in_place_that_leaves_only_the_new_rules() {
    for (from, to) in [
        (Firewall::Iptables, Firewall::Nftables),
        (Firewall::Nftables, Firewall::Iptables),
    ] {
        let (sim, w) = simulated(&seed(from), &[]);
        apply_once(&seed(from), &w);
        let before = w.ops().len();
        let t = seed(to);
        let (p, tasks, outcomes) = apply_once(&t, &w);
        assert!(p.drift.is_empty(), "a switch is not drift: {:?}", p.drift);
        assert_eq!(p.changes.len(), 1, "{:?}", p.changes);
        let c = &p.changes[0];
        assert_eq!(c.container, "app1");
        assert_eq!(c.action, Action::Update);
        assert_eq!(c.reasons, ["firewall", "rules"]);
        assert!(!c.start);
        let text = plan_text(&p, Style::plain());
        let line = format!(
            "~ firewall = {:?} -> {:?} # in place, no restart",
            from.as_str(),
            to.as_str()
        );
        assert!(text.contains(&line), "{text}");
        assert!(text.contains("Plan: 0 to add, 1 to change, 0 to destroy."));
        let labels: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["rules todo-app1"]);
        assert!(outcomes.iter().all(|o| *o == Outcome::Done));
        let ops: Vec<NodeOp> = w.ops()[before..].iter().map(|(_, op)| op.clone()).collect();
        assert!(
            !ops.iter().any(|op| matches!(
                op,
                NodeOp::Remove { .. } | NodeOp::Start { .. } | NodeOp::Create(_)
            )),
            "{ops:?}"
        );
        let rules = rules_ops(&w).pop().unwrap();
        assert_eq!((rules.firewall, rules.clear_other), (to, true));
        {
            let sim = sim.lock().unwrap();
            let app = &sim.nodes["node1"][0];
            match to {
                Firewall::Nftables => {
                    assert!(app.rules.is_empty() && app.jumps == 0, "{app:?}");
                    assert!(app.nft.is_some());
                }
                Firewall::Iptables => {
                    assert!(!app.rules.is_empty() && app.jumps == 1);
                    assert_eq!(app.nft, None);
                }
            }
        }
        let (p, _, _) = apply_once(&t, &w);
        assert!(!p.has_changes(), "{:?}", p.changes);
    }
}

/// The plan's rules diff of a switch shows what goes (the old backend's lines,
/// in its syntax) and what comes (the new one's, in its syntax).
#[test]
fn a_switch_shows_both_backends_rules_in_their_own_syntax() {
    let old = seed(Firewall::Iptables);
    let (_sim, w) = simulated(&old, &[]);
    apply_once(&old, &w);
    let t = seed(Firewall::Nftables);
    let mut c = w.connections(&t);
    let state = crate::observe::observe(&t, &mut c, 4).unwrap();
    let p = crate::plan::plan(&t, &state, None).unwrap();
    let text = plan_text(&p, Style::plain());
    assert!(
        text.contains("-A GEARTOPO-OUTPUT -d 127.0.0.1/32"),
        "{text}"
    );
    assert!(
        text.contains(&format!("+table {FAMILY} {TABLE} {{")),
        "{text}"
    );
    let desired = crate::nft::desired(
        "todo",
        "app1",
        &p.desired
            .iter()
            .find(|d| d.container == "app1")
            .unwrap()
            .links,
    );
    assert_eq!(p.changes[0].rules_after, table_lines(&desired));
}

/// The rules step of a switch writes the new backend before it removes the old:
/// at every moment one complete set of the links is in place.
#[test]
fn the_switch_script_writes_the_new_rules_before_removing_the_old() {
    let t = seed(Firewall::Nftables);
    let p = crate::plan::plan(&t, &crate::testing::empty_state(&t), None).unwrap();
    let app = p.changes.iter().find(|c| c.container == "app1").unwrap();
    for (firewall, rules, new, old) in [
        (
            Firewall::Nftables,
            app.rules_after.clone(),
            "nft -f -",
            "iptables -w -t \"$t\" -D",
        ),
        (
            Firewall::Iptables,
            crate::rules::render_rules("todo", "app1", &app.desired.as_ref().unwrap().links),
            "iptables-restore --noflush",
            "delete table ip geartopo",
        ),
    ] {
        let op = NodeOp::Rules {
            container: "id".into(),
            rules: OwnedRules {
                topology: "todo".into(),
                container: "app1".into(),
                rules,
                firewall,
                clear_other: true,
                file: None,
            },
        };
        let text = crate::node::script::render(
            &crate::node::NodeProfile::for_runtime(crate::topology::model::Runtime::Podman),
            &[op],
        );
        let (n, o) = (text.find(new).unwrap(), text.rfind(old).unwrap());
        assert!(n < o, "{new} must come before {old}:\n{text}");
    }
}
