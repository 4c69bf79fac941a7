//! Named volumes and container options on simulated nodes: the plan shows a
//! volume being made, apply makes it with the topology's labels before the
//! container, a replace mounts the same volume into the new container, destroy
//! keeps volumes unless asked (`--volumes`), and a volume of another owner stops
//! the plan. Options reach the create and force a replace only when changed.

use super::sim::simulated;
use super::tests::{apply_once, Quiet};
use super::*;
use crate::observe::observe;
use crate::plan::{plan, Action, PlanError};
use crate::render::{plan_text, Style};

fn topology(image: &str, extra: &str) -> Topology {
    let text = format!(
        r#"
name = "shop"
id = "0123456789abcdef"
[nodes.n1]
address = "198.18.0.1"
[containers.db]
node = "n1"
image = "{image}"
volumes = [{{ name = "data", target = "/var/lib/db" }}, {{ source = "/srv/conf", target = "/conf", read_only = true }}]
{extra}
[containers.web]
node = "n1"
image = "web:1"
"#
    );
    crate::topology::parse("t.toml", text.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render()))
}

#[test]
fn a_named_volume_is_made_once_kept_by_a_replace_and_removed_only_on_request() {
    let t = topology("db:1", "");
    let (sim, w) = simulated(&t, &[]);
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let text = plan_text(&p, Style::plain());
    assert!(
        text.contains("\"shop-db.data:/var/lib/db\", # volume created"),
        "{text}"
    );
    assert!(
        text.contains("\"/srv/conf:/conf:ro\", # node path"),
        "{text}"
    );
    let json = crate::render::plan_json(&p);
    let db = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"] == "db")
        .unwrap();
    assert_eq!(db["volumes_created"], serde_json::json!(["shop-db.data"]));
    {
        let s = sim.lock().unwrap();
        let labels = &s.volumes["n1"]["shop-db.data"];
        assert_eq!(labels["geartopo.topology"], "shop");
        assert_eq!(labels["geartopo.id"], "0123456789abcdef");
        assert_eq!(
            s.mounts[&("n1".to_string(), "shop-db".to_string())],
            ["shop-db.data:/var/lib/db", "/srv/conf:/conf:ro"]
        );
        assert!(s.mounts[&("n1".to_string(), "shop-web".to_string())].is_empty());
    }
    // Read in the same round trip as the rest; applied again: nothing to do.
    let before = w.log().len();
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
    let reads = &w.log()[before..];
    assert_eq!(reads.len(), 1, "one round trip for the one node");
    assert!(matches!(
        reads[0].ops[..],
        [NodeOp::Volumes, NodeOp::Observe { .. }]
    ));

    // A new image replaces the container; the new one mounts the same volume.
    let t2 = topology("db:2", "");
    let (p, _, outcomes) = apply_once(&t2, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let db = p.changes.iter().find(|c| c.container == "db").unwrap();
    assert_eq!(
        db.action,
        Action::Replace {
            forced_by: vec!["image".into()]
        }
    );
    let text = plan_text(&p, Style::plain());
    assert!(
        text.contains("\"shop-db.data:/var/lib/db\", # volume kept"),
        "{text}"
    );
    {
        let s = sim.lock().unwrap();
        assert_eq!(s.volumes["n1"].len(), 1);
        assert_eq!(
            s.mounts[&("n1".to_string(), "shop-db".to_string())][0],
            "shop-db.data:/var/lib/db"
        );
    }

    // Destroy keeps the volume; with --volumes it goes after its container.
    let mut c = w.connections(&t2);
    let state = observe(&t2, &mut c, 4).unwrap();
    let d =
        crate::plan::destroy_selected("shop", t2.id.as_deref(), &state, &crate::plan::Limit::All);
    let volumes =
        crate::plan::volumes::destroyed_volumes("shop", t2.id.as_deref(), &state, &d.changes, true);
    assert_eq!(volumes["n1"], ["shop-db.data"]);
    let graph = DepGraph::build(&t2).unwrap();
    let tasks = destroy_tasks(&t2, &graph, &d);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(
        sim.lock().unwrap().volumes["n1"].contains_key("shop-db.data"),
        "kept"
    );
    let mut tasks = Vec::new();
    remove_volume_tasks(&mut tasks, &volumes);
    assert_eq!(tasks[0].label, "remove volumes shop-db.data");
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(sim.lock().unwrap().volumes["n1"].is_empty(), "removed");
}

#[test]
fn a_targeted_destroy_with_volumes_removes_only_the_destroyed_containers_volumes() {
    let t = topology("db:1", "");
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    // A volume of another container of the topology, made outside this test's file.
    sim.lock().unwrap().volumes.get_mut("n1").unwrap().insert(
        "shop-web.cache".into(),
        [("geartopo.topology".to_string(), "shop".to_string())].into(),
    );
    let mut c = w.connections(&t);
    let state = observe(&t, &mut c, 4).unwrap();
    let limit = crate::plan::Limit::Only(["db".to_string()].into());
    let d = crate::plan::destroy_selected("shop", t.id.as_deref(), &state, &limit);
    let volumes =
        crate::plan::volumes::destroyed_volumes("shop", t.id.as_deref(), &state, &d.changes, false);
    assert_eq!(volumes["n1"], ["shop-db.data"]);
}

#[test]
fn a_volume_of_the_same_name_and_another_owner_stops_the_plan() {
    let t = topology("db:1", "");
    let (sim, w) = simulated(&t, &[]);
    sim.lock().unwrap().volumes.insert(
        "n1".into(),
        [(
            "shop-db.data".to_string(),
            [("geartopo.topology".to_string(), "other".to_string())].into(),
        )]
        .into(),
    );
    let mut c = w.connections(&t);
    let state = observe(&t, &mut c, 4).unwrap();
    let errors = plan(&t, &state, None).unwrap_err();
    assert_eq!(
        errors,
        [PlanError::VolumeTaken {
            node: "n1".into(),
            name: "shop-db.data".into()
        }]
    );
    assert!(errors[0].to_string().contains("does not own"));
}

#[test]
fn options_reach_the_create_and_force_a_replace_only_when_changed() {
    let t = topology(
        "db:1",
        "memory = \"512m\"\ncpus = 1.5\nuser = \"999:999\"\ncap_add = [\"net_admin\"]\ncap_drop = [\"ALL\"]\nstop_signal = \"INT\"\nstop_timeout = \"1m\"\nread_only = true\nlabels = { team = \"db\" }",
    );
    let (_sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let db = w
        .ops()
        .into_iter()
        .find_map(|(_, op)| match op {
            NodeOp::Create(s) if s.runtime_name == "shop-db" => Some(s),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        db.options.join(" "),
        "--memory 512m --cpus 1.5 --user 999:999 --cap-add NET_ADMIN --cap-drop ALL --stop-signal SIGINT --stop-timeout 60 --read-only --label team=db"
    );
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    // Dropping every option is a change too (the old container records them).
    let plain = topology("db:1", "");
    let mut c = w.connections(&plain);
    let state = observe(&plain, &mut c, 4).unwrap();
    let p = plan(&plain, &state, None).unwrap();
    let db = p.changes.iter().find(|c| c.container == "db").unwrap();
    assert_eq!(
        db.action,
        Action::Replace {
            forced_by: vec!["options".into()]
        }
    );
    // web never had options or volumes: it is not touched.
    assert!(p.changes.iter().all(|c| c.container != "web"));
}

#[test]
fn check_probes_each_link_in_one_round_trip_per_node() {
    let t = crate::plan::tests::redis_todo();
    let (sim, w) = simulated(&t, &[]);
    apply_once(&t, &w);
    let mut checks = crate::linkcheck::links(&t);
    assert!(!checks.is_empty());
    let before = w.log().len();
    let mut c = w.connections(&t);
    crate::linkcheck::check(&t, &mut c, 4, 3, &mut checks);
    assert!(checks.iter().all(|c| c.result == "ok"), "{checks:?}");
    let trips = &w.log()[before..];
    let nodes: std::collections::BTreeSet<&str> = checks.iter().map(|c| c.node.as_str()).collect();
    assert_eq!(
        trips.len(),
        nodes.len(),
        "one round trip per node with links: {trips:?}"
    );
    // A container that is gone: its links are not running, and count as failed.
    sim.lock().unwrap().nodes.get_mut("node1").unwrap().clear();
    let mut checks = crate::linkcheck::links(&t);
    crate::linkcheck::check(&t, &mut c, 4, 3, &mut checks);
    assert!(
        checks
            .iter()
            .all(|c| c.result == "not running" && c.failed()),
        "{checks:?}"
    );
}

#[test]
fn a_node_allows_a_system_path_only_for_itself() {
    let text = |allow_on: &str| {
        format!(
            r#"
name = "t"
[nodes.n1]
address = "198.18.0.1"
{allow_on}
[nodes.n2]
address = "198.18.0.2"
[containers.tls]
replicas = 2
nodes = ["n1", "n2"]
image = "tls:1"
volumes = [{{ source = "/etc/ssl/certs", target = "/certs", read_only = true }}]
"#
        )
    };
    // Allowed on n1 only: the replica on n2 is refused, naming n2.
    let e = crate::topology::parse("t.toml", text("allow_binds = [\"/etc/ssl\"]").as_bytes())
        .unwrap_err();
    let lines = e.lines().join("\n");
    assert!(lines.contains("a system path of node `n2`"), "{lines}");
    assert!(!lines.contains("node `n1`"), "{lines}");
    // In [defaults]: allowed everywhere.
    let t = crate::topology::parse(
        "t.toml",
        text("")
            .replace(
                "[nodes.n1]",
                "[defaults]\nallow_binds = [\"/etc/ssl\"]\n[nodes.n1]",
            )
            .as_bytes(),
    );
    assert!(t.is_ok(), "{:?}", t.err().map(|e| e.lines()));
}
