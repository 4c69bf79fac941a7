//! Plan tests on captured state: a hand-built model (no parser involved) and
//! observed states made from what an apply would leave, then changed the way an
//! operator or a failure would change them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::*;
use crate::rules::rules_hash;
use crate::state::{
    ObservedContainer, ObservedState, OwnedChains, ProtocolName, PublishedPort, RunState,
};
use crate::topology::model::*;

fn node(name: &str, ip: &str) -> Node {
    Node {
        name: name.into(),
        address: NodeAddress::Remote(ip.into()),
        user: "root".into(),
        port: 22,
        identity: None,
        known_hosts: PathBuf::from("/root/.ssh/known_hosts"),
        runtime: Runtime::Podman,
        firewall: Firewall::Iptables,
        host_ports: PortRange {
            first: 4000,
            last: 60000,
        },
        ssh_host: None,
        sudo: false,
        openssh: None,
    }
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, EnvValue> {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                EnvValue {
                    value: v.to_string(),
                    secret: false,
                },
            )
        })
        .collect()
}

fn container(name: &str, node: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        declared: name.into(),
        replica: None,
        node: node.into(),
        image: image.into(),
        command: vec![],
        env: env(&[("GEARTOPO_TOPOLOGY", "todo"), ("GEARTOPO_CONTAINER", name)]),
        publish: vec![],
        links: vec![],
        restart: Default::default(),
        health: None,
        max_unavailable: 1,
        volumes: vec![],
        options: Default::default(),
    }
}

/// The seed: redisdb on node4 published 6379 -> 50000, app1 on node1 sees it at 127.0.0.1:6379.
pub(crate) fn redis_todo() -> Topology {
    let mut redis = container("redisdb", "node4", "localhost/geartopo-busybox:latest");
    redis.publish.push(Publish {
        port: 6379,
        host_port: Some(50000),
        protocol: Protocol::Tcp,
        private: false,
    });
    let mut app = container("app1", "node1", "localhost/geartopo-busybox:latest");
    app.command = vec!["sleep".into(), "1000000".into()];
    app.env.insert(
        "API_KEY".into(),
        EnvValue {
            value: "hunter2".into(),
            secret: true,
        },
    );
    app.links.push(Link {
        listen_ip: Ipv4Addr::LOCALHOST,
        listen_port: 6379,
        protocol: Protocol::Tcp,
        target: LinkTarget::Container {
            container: "redisdb".into(),
            port: 6379,
        },
        origin: LinkOrigin::Declared { index: 0 },
    });
    Topology {
        name: "todo".into(),
        id: None,
        nodes: [
            ("node1".to_string(), node("node1", "198.18.0.1")),
            ("node4".to_string(), node("node4", "198.18.0.4")),
        ]
        .into(),
        containers: vec![redis, app],
        views: vec![],
    }
}

pub(crate) use crate::testing::empty_state;

/// The state a successful apply of `t` leaves behind.
pub(crate) fn applied(t: &Topology) -> ObservedState {
    crate::testing::applied_state(t, &plan(t, &empty_state(t), None).unwrap())
}

/// One observed container, to change it the way a person on the node would.
fn observed_mut<'a>(s: &'a mut ObservedState, node: &str, name: &str) -> &'a mut ObservedContainer {
    s.nodes
        .get_mut(node)
        .unwrap()
        .containers
        .get_mut(name)
        .unwrap()
}

fn actions(p: &Plan) -> Vec<(String, Action)> {
    p.changes
        .iter()
        .map(|c| (c.container.clone(), c.action.clone()))
        .collect()
}

#[test]
fn empty_nodes_plan_every_container_for_creation() {
    let t = redis_todo();
    let p = plan(&t, &empty_state(&t), None).unwrap();
    assert_eq!(
        actions(&p),
        vec![
            ("redisdb".into(), Action::Create),
            ("app1".into(), Action::Create)
        ]
    );
    assert_eq!(
        p.summary(),
        Summary {
            add: 2,
            change: 0,
            destroy: 0
        }
    );
    let app = p.changes[1].desired.as_ref().unwrap();
    assert_eq!(app.links[0].dest_ip, Ipv4Addr::new(198, 18, 0, 4));
    assert_eq!(app.links[0].dest_port, 50000);
}

#[test]
fn everything_in_place_is_no_change() {
    let t = redis_todo();
    let p = plan(&t, &applied(&t), None).unwrap();
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(p.drift.is_empty());
}

#[test]
fn an_image_change_replaces_naming_the_image() {
    let t = redis_todo();
    let s = applied(&t);
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/other:1".into();
    let p = plan(&t2, &s, None).unwrap();
    assert_eq!(
        actions(&p),
        vec![(
            "redisdb".into(),
            Action::Replace {
                forced_by: vec!["image".into()]
            }
        )]
    );
    assert_eq!(
        p.summary(),
        Summary {
            add: 1,
            change: 0,
            destroy: 1
        }
    );
}

#[test]
fn a_link_added_updates_rules_without_restart() {
    let t = redis_todo();
    let s = applied(&t);
    let mut t2 = t.clone();
    t2.containers[1].links.push(Link {
        listen_ip: Ipv4Addr::new(127, 0, 0, 2),
        listen_port: 7000,
        protocol: Protocol::Tcp,
        target: LinkTarget::Container {
            container: "redisdb".into(),
            port: 6379,
        },
        origin: LinkOrigin::Declared { index: 1 },
    });
    let p = plan(&t2, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("app1".into(), Action::Update)]);
    let c = &p.changes[0];
    assert!(!c.start);
    assert_eq!(c.reasons, vec!["rules".to_string()]);
    assert_eq!(
        c.rules_after.len(),
        c.rules_before.as_ref().unwrap().len() + 1
    );
    assert!(p.drift.is_empty());
}

#[test]
fn a_rule_deleted_by_hand_is_drift_and_restored() {
    let t = redis_todo();
    let mut s = applied(&t);
    let app = observed_mut(&mut s, "node1", "app1");
    app.chains.as_mut().unwrap().rules.remove(0);
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("app1".into(), Action::Update)]);
    assert_eq!(p.drift.len(), 1);
    assert!(p.drift[0].what.contains("changed"), "{:?}", p.drift);
}

#[test]
fn a_missing_jump_is_drift() {
    let t = redis_todo();
    let mut s = applied(&t);
    let app = observed_mut(&mut s, "node1", "app1");
    app.chains
        .as_mut()
        .unwrap()
        .jumps
        .insert("OUTPUT".into(), 0);
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("app1".into(), Action::Update)]);
    assert!(
        p.drift[0]
            .what
            .contains("OUTPUT jumps to GEARTOPO-OUTPUT 0 times"),
        "{:?}",
        p.drift
    );
}

#[test]
fn a_container_removed_from_the_file_is_destroyed() {
    let t = redis_todo();
    let s = applied(&t);
    let mut t2 = t.clone();
    t2.containers.retain(|c| c.name == "redisdb");
    let p = plan(&t2, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("app1".into(), Action::Delete)]);
    assert_eq!(p.changes[0].observed_id.as_deref(), Some("id-app1"));
}

#[test]
fn a_stopped_container_is_started_and_called_drift() {
    let t = redis_todo();
    let mut s = applied(&t);
    let r = observed_mut(&mut s, "node4", "redisdb");
    r.state = RunState::Stopped("exited".into());
    r.pid = None;
    r.chains = None;
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("redisdb".into(), Action::Update)]);
    assert!(p.changes[0].start);
    assert!(p.drift[0].what.contains("stopped outside geartopo"));
}

#[test]
fn a_created_but_not_started_container_converges_without_drift() {
    let t = redis_todo();
    let mut s = applied(&t);
    let r = observed_mut(&mut s, "node4", "redisdb");
    r.state = RunState::Created;
    r.chains = Some(OwnedChains::default());
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("redisdb".into(), Action::Update)]);
    assert!(p.changes[0].start);
}

#[test]
fn a_moved_container_is_deleted_there_and_created_here() {
    let t = redis_todo();
    let s = applied(&t);
    let mut t2 = t.clone();
    t2.containers[1].node = "node4".into();
    let p = plan(&t2, &s, None).unwrap();
    let a = actions(&p);
    assert!(a.contains(&("app1".into(), Action::Delete)));
    assert!(a.contains(&("app1".into(), Action::Create)));
}

#[test]
fn sysctl_changed_by_hand_is_drift() {
    let t = redis_todo();
    let mut s = applied(&t);
    let app = observed_mut(&mut s, "node1", "app1");
    app.sysctls
        .insert("net.ipv4.conf.all.route_localnet".into(), "0".into());
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(p.changes[0].reasons, vec!["sysctls".to_string()]);
    assert!(p.drift[0].what.contains("route_localnet is 0"));
}

fn with_picked_port() -> Topology {
    let mut t = redis_todo();
    t.containers[0].publish[0].host_port = None;
    t
}

#[test]
fn picked_host_ports_skip_taken_ones_and_are_kept() {
    let t = with_picked_port();
    let mut s = empty_state(&t);
    let taken = s.nodes.get_mut("node4").unwrap();
    taken.taken_ports.insert((ProtocolName::Tcp, 4000));
    taken.taken_ports.insert((ProtocolName::Tcp, 4001));
    let p = plan(&t, &s, None).unwrap();
    let picked = p.desired[0].publish[0].2;
    assert_eq!(picked, 4002);
    assert_eq!(p.desired[1].links[0].dest_port, 4002);
    // After the apply, with the lower ports now free, the port stays.
    let mut after = applied_with(&t, &s);
    after
        .nodes
        .get_mut("node4")
        .unwrap()
        .taken_ports
        .remove(&(ProtocolName::Tcp, 4000));
    let p2 = plan(&t, &after, None).unwrap();
    assert_eq!(p2.desired[0].publish[0].2, 4002);
    assert!(!p2.has_changes());
}

/// As `applied`, on top of ports already taken in `base`.
fn applied_with(t: &Topology, base: &ObservedState) -> ObservedState {
    let p = plan(t, base, None).unwrap();
    // The rules files (and everything else) as this plan would leave them.
    let mut s = crate::testing::applied_state(t, &p);
    for (name, ns) in &base.nodes {
        s.nodes
            .get_mut(name)
            .unwrap()
            .taken_ports
            .extend(ns.taken_ports.iter().cloned());
    }
    // `applied` planned on empty nodes; use the ports this plan picked instead.
    for d in &p.desired {
        let oc = s
            .nodes
            .get_mut(&d.node)
            .unwrap()
            .containers
            .get_mut(&d.container)
            .unwrap();
        oc.published = d
            .publish
            .iter()
            .map(|(p, port, hp)| PublishedPort {
                protocol: (*p).into(),
                port: *port,
                host_port: *hp,
            })
            .collect();
        oc.spec = d.spec.clone();
        oc.chains.as_mut().unwrap().rules = d.rules.clone();
        oc.chains.as_mut().unwrap().marker = Some(rules_hash(&d.rules));
        for (proto, _, hp) in &d.publish {
            s.nodes
                .get_mut(&d.node)
                .unwrap()
                .taken_ports
                .insert(((*proto).into(), *hp));
        }
    }
    s
}

#[test]
fn a_given_host_port_taken_by_something_else_is_an_error() {
    let t = redis_todo();
    let mut s = empty_state(&t);
    s.nodes
        .get_mut("node4")
        .unwrap()
        .taken_ports
        .insert((ProtocolName::Tcp, 50000));
    let e = plan(&t, &s, None).unwrap_err();
    assert_eq!(
        e,
        vec![PlanError::PortTaken {
            node: "node4".into(),
            container: "redisdb".into(),
            host_port: 50000,
            protocol: "tcp"
        }]
    );
}

#[test]
fn no_free_port_is_an_error_naming_node_and_range() {
    let mut t = with_picked_port();
    t.nodes.get_mut("node4").unwrap().host_ports = PortRange {
        first: 5000,
        last: 5000,
    };
    let mut s = empty_state(&t);
    s.nodes
        .get_mut("node4")
        .unwrap()
        .taken_ports
        .insert((ProtocolName::Tcp, 5000));
    let e = plan(&t, &s, None).unwrap_err();
    assert!(
        e[0].to_string()
            .contains("node node4: no free host port for redisdb 6379/tcp in 5000-5000"),
        "{}",
        e[0]
    );
}

#[test]
fn a_node_not_read_is_an_error_not_a_partial_plan() {
    let t = redis_todo();
    let mut s = empty_state(&t);
    s.nodes.remove("node4");
    assert_eq!(
        plan(&t, &s, None).unwrap_err(),
        vec![PlanError::NotObserved {
            node: "node4".into()
        }]
    );
}

#[test]
fn target_limits_the_plan_to_what_it_needs() {
    let t = redis_todo();
    let s = empty_state(&t);
    let needed: BTreeSet<String> = ["redisdb".to_string()].into();
    let p = plan(&t, &s, Some(&needed)).unwrap();
    assert_eq!(actions(&p), vec![("redisdb".into(), Action::Create)]);
}

#[test]
fn secret_env_values_never_reach_plan_output() {
    let t = redis_todo();
    let p = plan(&t, &empty_state(&t), None).unwrap();
    let text = crate::render::plan_text(&p, crate::render::Style::plain());
    let json = crate::render::plan_json(&p).to_string();
    assert!(!text.contains("hunter2") && !json.contains("hunter2"));
    assert!(text.contains("API_KEY = (sensitive value)"));
}

/// Golden files of plan output, text and JSON; `GEARTOPO_BLESS=1` rewrites them.
fn golden(name: &str, p: &Plan) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plan");
    let text = crate::render::plan_text(p, crate::render::Style::plain());
    let json = serde_json::to_string_pretty(&crate::render::plan_json(p)).unwrap() + "\n";
    for (ext, got) in [("txt", text), ("json", json)] {
        let path = dir.join(format!("{name}.{ext}"));
        if std::env::var_os("GEARTOPO_BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "missing golden {}; run with GEARTOPO_BLESS=1",
                path.display()
            )
        });
        assert_eq!(got, want, "golden {} differs", path.display());
    }
}

#[test]
fn golden_plans() {
    let t = redis_todo();
    golden("empty-nodes", &plan(&t, &empty_state(&t), None).unwrap());
    let s = applied(&t);
    golden("everything-in-place", &plan(&t, &s, None).unwrap());
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/geartopo-busybox:v2".into();
    golden("image-changed", &plan(&t2, &s, None).unwrap());
    let mut t3 = t.clone();
    t3.containers[1].links.push(Link {
        listen_ip: Ipv4Addr::new(127, 0, 0, 2),
        listen_port: 7000,
        protocol: Protocol::Udp,
        target: LinkTarget::Raw {
            host: "198.18.0.9".into(),
            port: 5353,
        },
        origin: LinkOrigin::Declared { index: 1 },
    });
    golden("link-added", &plan(&t3, &s, None).unwrap());
    let mut drifted = s.clone();
    drifted
        .nodes
        .get_mut("node1")
        .unwrap()
        .containers
        .get_mut("app1")
        .unwrap()
        .chains
        .as_mut()
        .unwrap()
        .rules
        .remove(1);
    golden("rule-deleted-by-hand", &plan(&t, &drifted, None).unwrap());
    // `iptables -F GEARTOPO-INPUT` in the container: the guard is gone.
    let mut flushed = s.clone();
    let chains = flushed
        .nodes
        .get_mut("node1")
        .unwrap()
        .containers
        .get_mut("app1")
        .unwrap()
        .chains
        .as_mut()
        .unwrap();
    chains
        .rules
        .retain(|r| !r.starts_with("-A GEARTOPO-INPUT "));
    golden("guard-flushed-by-hand", &plan(&t, &flushed, None).unwrap());
    let mut t4 = t.clone();
    t4.containers.retain(|c| c.name == "redisdb");
    golden("removed-from-file", &plan(&t4, &s, None).unwrap());
    // A file that gained an id, over containers made before ids: adopted, no change.
    let mut t5 = t.clone();
    t5.id = Some("0123456789abcdef0123456789abcdef".into());
    golden("adopted-without-id", &plan(&t5, &s, None).unwrap());
    // redisdb's port made private: node4's own chain lets node1 (app1's node) in.
    let mut t6 = t.clone();
    t6.containers[0].publish[0].private = true;
    golden("private-port-made", &plan(&t6, &s, None).unwrap());
    // `apply --replace redisdb` with nothing changed, and `destroy --target redisdb`
    // (app1 links to it, so it goes first).
    let g = crate::graph::DepGraph::build(&t).unwrap();
    let asked = |scope: Scope, mode| select(&t, &g, &s, &scope, mode).unwrap();
    let replace = Scope {
        replace: vec!["redisdb".into()],
        ..Scope::default()
    };
    golden(
        "replace-requested",
        &plan_selected(&t, &s, &asked(replace, Mode::Apply)).unwrap(),
    );
    let target = Scope::targets(&["redisdb".into()]);
    golden(
        "destroy-target",
        &destroy_selected(&t.name, None, &s, &asked(target, Mode::Destroy).limit),
    );
}

#[test]
fn golden_unreachable_node() {
    use crate::transport::TransportError;
    let errors = vec![
        TransportError::ConnectTimeout {
            node: "node4".into(),
            address: "198.18.0.4:22".into(),
            secs: 10,
        },
        TransportError::Connect {
            node: "node2".into(),
            address: "198.18.0.2:22".into(),
            reason: "Connection refused (os error 111)".into(),
        },
    ];
    let text = crate::render::no_plan("cannot reach every node", &errors) + "\n";
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plan/unreachable-node.txt");
    if std::env::var_os("GEARTOPO_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    assert_eq!(text, std::fs::read_to_string(&path).unwrap());
}

/// The etcd example (examples/etcd-cluster.toml) with `replicas` members, parsed.
fn etcd_view(replicas: usize) -> Topology {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etcd-cluster.toml"),
    )
    .unwrap();
    let three = "replicas = 3\nnodes    = [\"node1\", \"node2\", \"node3\"]";
    assert!(text.contains(three), "the example changed shape");
    let text = match replicas {
        3 => text,
        _ => text.replace(
            three,
            "replicas = 4\nnodes = [\"node1\", \"node2\", \"node3\", \"node4\"]",
        ),
    };
    crate::topology::parse("etcd-cluster.toml", text.as_bytes()).unwrap()
}

/// Issue 6: scaling a view changes every member's GEARTOPO_VIEW_<NAME>_MEMBERS,
/// but must only add (or remove) the member and update the others' rules in
/// place; replacing them would restart the whole cluster.
#[test]
fn scaling_a_view_updates_the_other_members_in_place() {
    let (three, four) = (etcd_view(3), etcd_view(4));
    let up = plan(&four, &applied(&three), None).unwrap();
    let update = |n: &str| (n.to_string(), Action::Update);
    assert_eq!(
        actions(&up),
        vec![
            update("etcd-1"),
            update("etcd-2"),
            update("etcd-3"),
            ("etcd-4".to_string(), Action::Create),
            update("client"),
        ]
    );
    for c in up.changes.iter().filter(|c| c.action == Action::Update) {
        assert_eq!(c.reasons, ["rules"], "{}", c.container);
        let added: Vec<&String> = c
            .rules_after
            .iter()
            .filter(|r| !c.rules_before.as_ref().unwrap().contains(r))
            .collect();
        assert!(
            added
                .iter()
                .filter(|r| r.contains("-d 192.168.1.4/32"))
                .count()
                == 2,
            "{}: {added:?}",
            c.container
        );
    }
    assert!(!plan(&four, &applied(&four), None).unwrap().has_changes());

    let down = plan(&three, &applied(&four), None).unwrap();
    assert_eq!(
        actions(&down),
        vec![
            ("etcd-4".to_string(), Action::Delete),
            update("etcd-1"),
            update("etcd-2"),
            update("etcd-3"),
            update("client"),
        ]
    );
    assert!(down
        .changes
        .iter()
        .all(|c| c.rules_after.iter().all(|r| !r.contains("192.168.1.4"))));
}

/// A member's own view address is its identity: moving it still replaces it.
#[test]
fn a_member_whose_own_view_address_changes_is_replaced() {
    let three = etcd_view(3);
    let mut moved = three.clone();
    let e2 = moved
        .containers
        .iter_mut()
        .find(|c| c.name == "etcd-2")
        .unwrap();
    e2.env.get_mut("GEARTOPO_VIEW_ETCD").unwrap().value = "192.168.1.9".into();
    let p = plan(&moved, &applied(&three), None).unwrap();
    assert!(actions(&p).contains(&(
        "etcd-2".to_string(),
        Action::Replace {
            forced_by: vec!["env".into()]
        }
    )));
}

#[test]
fn a_container_of_another_owner_with_our_name_is_an_error() {
    let t = redis_todo();
    let mut s = empty_state(&t);
    s.nodes
        .get_mut("node1")
        .unwrap()
        .names
        .insert("todo-app1".into());
    assert_eq!(
        plan(&t, &s, None).unwrap_err(),
        vec![PlanError::NameTaken {
            node: "node1".into(),
            name: "todo-app1".into()
        }]
    );
}

#[test]
fn a_copy_carrying_our_labels_is_removed() {
    let t = redis_todo();
    let mut s = applied(&t);
    let mut copy = observed_mut(&mut s, "node1", "app1").clone();
    copy.id = "copy-of-app1".into();
    copy.runtime_name = "app1-copy".into();
    s.nodes.get_mut("node1").unwrap().extras.push(copy);
    let p = plan(&t, &s, None).unwrap();
    assert_eq!(actions(&p), vec![("app1".into(), Action::Delete)]);
    assert_eq!(p.changes[0].observed_id.as_deref(), Some("copy-of-app1"));
}

/// A container of ours found in the node's own network namespace (host
/// networking, made or changed by hand) is a plan error naming it: a rules step
/// there would write the node's firewall.
#[test]
fn a_container_of_ours_with_host_networking_is_a_plan_error_naming_it() {
    let t = redis_todo();
    let mut s = applied(&t);
    let app1 = observed_mut(&mut s, "node1", "app1");
    app1.host_network = true;
    app1.chains = None;
    let errors = plan(&t, &s, None).unwrap_err();
    assert_eq!(
        errors,
        [PlanError::HostNetwork {
            node: "node1".into(),
            container: "app1".into(),
            runtime_name: "todo-app1".into(),
        }]
    );
    let text = errors[0].to_string();
    assert!(
        text.contains("todo-app1") && text.contains("host networking"),
        "{text}"
    );
    // Destroy still removes it (removing touches no namespace).
    let d = destroy("todo", &s);
    assert!(d.changes.iter().any(|c| c.container == "app1"));
}

/// Chains applied by a geartopo from before the route_localnet guard are not
/// drift: the plan adds the guard as a rules change, no restart.
#[test]
fn chains_from_before_the_guard_get_it_added_as_a_change_not_drift() {
    let t = redis_todo();
    let mut s = applied(&t);
    let app1 = observed_mut(&mut s, "node1", "app1");
    let chains = app1.chains.as_mut().unwrap();
    chains
        .rules
        .retain(|r| !r.starts_with("-A GEARTOPO-INPUT "));
    chains.declared.remove("GEARTOPO-INPUT");
    chains.jumps.remove("INPUT");
    chains.marker = Some(rules_hash(&chains.rules));
    let p = plan(&t, &s, None).unwrap();
    assert!(p.drift.is_empty(), "{:?}", p.drift);
    assert_eq!(actions(&p), [("app1".to_string(), Action::Update)]);
    let after = &p.changes[0].rules_after;
    assert!(after[0].starts_with("-A GEARTOPO-INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8"));
}

/// The guard's jump removed or doubled by hand is drift, repaired by a rules step.
#[test]
fn a_missing_or_doubled_guard_jump_is_drift() {
    let t = redis_todo();
    for n in [0, 2] {
        let mut s = applied(&t);
        let chains = observed_mut(&mut s, "node1", "app1")
            .chains
            .as_mut()
            .unwrap();
        chains.jumps.insert("INPUT".into(), n);
        let p = plan(&t, &s, None).unwrap();
        assert_eq!(actions(&p), [("app1".to_string(), Action::Update)]);
        let what: Vec<&str> = p.drift.iter().map(|d| d.what.as_str()).collect();
        assert_eq!(what, [format!("INPUT jumps to GEARTOPO-INPUT {n} times")]);
    }
}
