//! Apply tests without hosts: a simulated podman node behind the fake transport
//! understands exactly the scripts geartopo sends (observe, create, init, rules,
//! start, rm), so ordering, failure propagation, convergence and idempotence are
//! checked on the full observe -> plan -> execute loop. The lab tests the real thing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::observe::{observe, Connections};
use crate::plan::plan;
use crate::plan::tests::redis_todo;
use crate::state::ObservedState;
use crate::transport::fake::FakeWorld;
use crate::transport::{Output, TransportError};

#[derive(Debug, Clone)]
struct SimContainer {
    id: String,
    name: String,
    labels: BTreeMap<String, String>,
    image: String,
    publish: Vec<(String, String, String)>,
    status: String,
    pid: u32,
    rules: Vec<String>,
    jumps: usize,
}

#[derive(Default)]
struct Sim {
    nodes: BTreeMap<String, Vec<SimContainer>>,
    next: u32,
    /// (node, substring of a script) that fails with an error message.
    fail: Vec<(String, String)>,
    /// Nodes that drop the connection.
    gone: Vec<String>,
}

/// Splits a command line the way `shell::join` quoted it.
fn unquote(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    cur.push(q);
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

impl Sim {
    fn observe(&self, node: &str) -> String {
        let mut out = String::from("@@geartopo tcp\n@@geartopo udp\n@@geartopo ports\n");
        let cs = self.nodes.get(node).cloned().unwrap_or_default();
        for c in &cs {
            let ports: Vec<String> = c
                .publish
                .iter()
                .map(|(h, p, pr)| format!("0.0.0.0:{h}->{p}/{pr}"))
                .collect();
            out.push_str(&ports.join(", "));
            out.push('\n');
        }
        let inspect: Vec<serde_json::Value> = cs
            .iter()
            .map(|c| {
                let mut bindings = serde_json::Map::new();
                for (h, p, pr) in &c.publish {
                    bindings.insert(format!("{p}/{pr}"), serde_json::json!([{"HostIp": "", "HostPort": h}]));
                }
                serde_json::json!({"Id": c.id, "Name": c.name, "State": {"Status": c.status, "Pid": c.pid},
                    "Config": {"Image": c.image, "Labels": c.labels}, "HostConfig": {"PortBindings": bindings}})
            })
            .collect();
        out.push_str(&format!(
            "@@geartopo inspect\n{}\n",
            serde_json::Value::Array(inspect)
        ));
        for c in &cs {
            out.push_str(&format!("@@geartopo ns {} {}\n", c.id, c.pid));
            if c.pid > 0 {
                out.push_str("@@geartopo sysctl 1 1\n*nat\n");
                if !c.rules.is_empty() || c.jumps > 0 {
                    out.push_str(":GEARTOPO-OUTPUT - [0:0]\n:GEARTOPO-POSTROUTING - [0:0]\n:GEARTOPO-PREROUTING - [0:0]\n");
                }
                for (b, o) in crate::rules::CHAINS {
                    for _ in 0..c.jumps {
                        out.push_str(&format!("-A {b} -j {o}\n"));
                    }
                }
                for r in &c.rules {
                    out.push_str(r);
                    out.push('\n');
                }
                out.push_str("COMMIT\n");
            }
        }
        out.push_str("@@geartopo end\n");
        out
    }

    fn find(&mut self, node: &str, name_or_id: &str) -> Option<&mut SimContainer> {
        self.nodes
            .get_mut(node)?
            .iter_mut()
            .find(|c| c.name == name_or_id || c.id == name_or_id)
    }

    /// `podman init`: like podman, refuses a container that is initialized already.
    fn init(&mut self, node: &str, name: &str) -> Result<(), TransportError> {
        self.next += 1;
        let pid = 100 + self.next;
        let c = self
            .find(node, name)
            .expect("init of an existing container");
        if c.status == "initialized" || c.status == "running" {
            return Err(TransportError::Io {
                node: node.into(),
                reason: format!("container {name} state improper"),
            });
        }
        c.status = "initialized".into();
        c.pid = pid;
        Ok(())
    }

    fn run(&mut self, node: &str, script: &str) -> Result<Output, TransportError> {
        if self.gone.iter().any(|n| n == node) {
            return Err(TransportError::Io {
                node: node.into(),
                reason: "connection reset".into(),
            });
        }
        if let Some((_, what)) = self
            .fail
            .iter()
            .find(|(n, what)| n == node && script.contains(what.as_str()))
        {
            return Ok(Output {
                status: 125,
                stdout: vec![],
                stderr: format!("simulated failure at {what}").into_bytes(),
            });
        }
        if script.contains("@@geartopo tcp") {
            return Ok(Output {
                status: 0,
                stdout: self.observe(node).into_bytes(),
                stderr: vec![],
            });
        }
        let mut lines = script.lines().peekable();
        while let Some(line) = lines.next() {
            let words = unquote(line);
            match words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["podman", "rm", "-f", id, ..] => {
                    let id = id.to_string();
                    self.nodes
                        .entry(node.into())
                        .or_default()
                        .retain(|c| c.id != id && c.name != id);
                }
                ["podman", "create", "--name", name, rest @ ..] => {
                    let mut c = SimContainer {
                        id: format!("{node}-{}", self.next),
                        name: name.to_string(),
                        labels: BTreeMap::new(),
                        image: String::new(),
                        publish: vec![],
                        status: "created".into(),
                        pid: 0,
                        rules: vec![],
                        jumps: 0,
                    };
                    self.next += 1;
                    let mut i = 0;
                    while i < rest.len() {
                        match rest[i] {
                            "--label" => {
                                let (k, v) = rest[i + 1].split_once('=').unwrap();
                                c.labels.insert(k.into(), v.into());
                                i += 2;
                            }
                            "--publish" => {
                                let (h, pp) = rest[i + 1].split_once(':').unwrap();
                                let (p, pr) = pp.split_once('/').unwrap();
                                c.publish.push((h.into(), p.into(), pr.into()));
                                i += 2;
                            }
                            "--sysctl" | "--env" | "--env-file" => i += 2,
                            image => {
                                c.image = image.into();
                                break;
                            }
                        }
                    }
                    // As podman: names are unique on a node, and a host port
                    // another container publishes cannot be published again.
                    let others = self.nodes.entry(node.into()).or_default();
                    if others.iter().any(|o| o.name == c.name) {
                        return Ok(Output {
                            status: 125,
                            stdout: vec![],
                            stderr: format!("the container name {} is already in use", c.name)
                                .into_bytes(),
                        });
                    }
                    if let Some(p) = c.publish.iter().find(|p| {
                        others
                            .iter()
                            .any(|o| o.publish.iter().any(|q| q.0 == p.0 && q.2 == p.2))
                    }) {
                        return Ok(Output {
                            status: 126,
                            stdout: vec![],
                            stderr: format!("port {} is already allocated", p.0).into_bytes(),
                        });
                    }
                    others.push(c);
                }
                ["podman", "init", name, ..] => {
                    let name = name.to_string();
                    self.init(node, &name)?;
                }
                ["case", ..] if line.contains("podman init ") => {
                    // init only what is not initialized or running already.
                    let name = line
                        .split("podman init ")
                        .nth(1)
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_string();
                    let status = self
                        .find(node, &name)
                        .expect("init of an existing container")
                        .status
                        .clone();
                    if status != "initialized" && status != "running" {
                        self.init(node, &name)?;
                    }
                }
                ["pid=$(podman", "inspect", "-f", _, name] => {
                    let name = name.trim_end_matches(')').to_string();
                    let doc: Vec<String> = lines
                        .by_ref()
                        .skip_while(|l| !l.contains("iptables-restore"))
                        .skip(1)
                        .take_while(|l| *l != "GEARTOPO_RESTORE")
                        .map(str::to_string)
                        .collect();
                    let c = self
                        .find(node, &name)
                        .expect("rules for an existing container");
                    assert!(
                        c.pid > 0,
                        "rules restored into a container without a namespace"
                    );
                    c.rules = doc.into_iter().filter(|l| l.starts_with("-A ")).collect();
                    c.jumps = 1;
                }
                _ if line.contains("podman start ") => {
                    let name = line
                        .split("podman start ")
                        .nth(1)
                        .unwrap()
                        .split(' ')
                        .next()
                        .unwrap()
                        .to_string();
                    let c = self
                        .find(node, &name)
                        .expect("start of an existing container");
                    assert!(c.pid > 0, "started without init");
                    c.status = "running".into();
                }
                _ => {}
            }
        }
        Ok(Output::default())
    }
}

/// A simulated node set behind a fake transport; scripts containing the given
/// text fail on the given node.
fn simulated(failures: &[(&str, &str)]) -> (Arc<Mutex<Sim>>, FakeWorld) {
    let sim = Sim {
        fail: failures
            .iter()
            .map(|(n, what)| (n.to_string(), what.to_string()))
            .collect(),
        ..Sim::default()
    };
    let sim = Arc::new(Mutex::new(sim));
    let w = world(sim.clone());
    (sim, w)
}

fn world(sim: Arc<Mutex<Sim>>) -> FakeWorld {
    FakeWorld::new(move |node, _cmd, stdin| sim.lock().unwrap().run(node, stdin))
}

fn conns(world: &FakeWorld, t: &crate::topology::model::Topology) -> Connections {
    t.nodes
        .keys()
        .map(|n| Box::new(world.transport(n)) as Box<dyn crate::transport::Transport>)
        .collect()
}

struct Quiet;
impl Progress for Quiet {
    fn started(&self, _: &str, _: &str) {}
    fn finished(&self, _: &str, _: &str, _: &Outcome) {}
}

/// observe -> plan -> execute, as `apply --auto-approve` does.
fn apply_once(
    t: &crate::topology::model::Topology,
    w: &FakeWorld,
) -> (crate::plan::Plan, Vec<Task>, Vec<Outcome>) {
    let mut c = conns(w, t);
    let state: ObservedState = observe(t, &mut c, 4).unwrap();
    let p = plan(t, &state, None).unwrap();
    let graph = DepGraph::build(t).unwrap();
    let tasks = apply_tasks(t, &graph, &p);
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    (p, tasks, outcomes)
}

fn position(tasks: &[Task], label: &str) -> usize {
    tasks
        .iter()
        .position(|t| t.label == label)
        .unwrap_or_else(|| panic!("no task {label}: {tasks:?}"))
}

#[test]
fn tasks_follow_the_dependency_order() {
    let t = redis_todo();
    let p = plan(&t, &crate::plan::tests::empty_state(&t), None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    let labels: Vec<&str> = tasks.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels.len(), 6, "{labels:?}");
    assert!(position(&tasks, "create todo-redisdb") < position(&tasks, "rules todo-app1"));
    assert!(position(&tasks, "start todo-redisdb") < position(&tasks, "start todo-app1"));
    assert!(position(&tasks, "create todo-app1") < position(&tasks, "rules todo-app1"));
    assert!(position(&tasks, "rules todo-app1") < position(&tasks, "start todo-app1"));
    for (i, task) in tasks.iter().enumerate() {
        assert!(
            task.deps.iter().all(|d| *d < i),
            "deps come earlier: {task:?}"
        );
    }
}

#[test]
fn apply_then_plan_again_is_no_change_and_runs_nothing_that_changes() {
    let t = redis_todo();
    let (_sim, w) = simulated(&[]);
    let (_, tasks, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert_eq!(tasks.len(), 6);
    let before = w.log().len();
    let (p, tasks, _) = apply_once(&t, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
    assert!(tasks.is_empty());
    let after: Vec<_> = w.log()[before..].to_vec();
    assert_eq!(after.len(), 2, "one observe per node and nothing else");
    assert!(after.iter().all(|r| r.stdin.contains("@@geartopo tcp")
        && !r.stdin.contains("create")
        && !r.stdin.contains("iptables-restore")));
}

#[test]
fn each_container_is_created_with_labels_sysctls_and_ports() {
    let t = redis_todo();
    let (_sim, w) = simulated(&[]);
    apply_once(&t, &w);
    let create = w
        .log()
        .into_iter()
        .find(|r| r.stdin.contains("podman create --name todo-redisdb"))
        .unwrap();
    for needle in [
        "--label geartopo.topology=todo",
        "--label geartopo.container=redisdb",
        "--sysctl net.ipv4.ip_forward=1",
        "--sysctl net.ipv4.conf.all.route_localnet=1",
        "--publish 50000:6379/tcp",
        "*) podman init todo-redisdb >/dev/null ;; esac",
    ] {
        assert!(
            create.stdin.contains(needle),
            "missing {needle} in {}",
            create.stdin
        );
    }
    let app = w
        .log()
        .into_iter()
        .find(|r| r.stdin.contains("podman create --name todo-app1"))
        .unwrap();
    assert!(
        app.stdin
            .contains("printf '%s\\n' API_KEY=hunter2 >> \"$envfile\""),
        "the secret reaches the container through its file: {}",
        app.stdin
    );
    assert!(
        !app.stdin
            .lines()
            .any(|l| l.starts_with("podman create") && l.contains("hunter2")),
        "a secret stands on a command line"
    );
}

#[test]
fn a_failed_create_stops_what_depends_on_it_and_the_next_apply_converges() {
    let t = redis_todo();
    let (sim, w) = simulated(&[("node4", "podman create --name todo-redisdb")]);
    let (_, tasks, outcomes) = apply_once(&t, &w);
    let outcome = |label: &str| outcomes[position(&tasks, label)].clone();
    assert!(
        matches!(outcome("create todo-redisdb"), Outcome::Failed(e) if e.contains("simulated failure"))
    );
    assert!(matches!(outcome("rules todo-redisdb"), Outcome::Skipped(_)));
    assert!(matches!(outcome("start todo-redisdb"), Outcome::Skipped(_)));
    assert_eq!(
        outcome("create todo-app1"),
        Outcome::Done,
        "independent work on another node finishes"
    );
    assert!(
        matches!(outcome("rules todo-app1"), Outcome::Skipped(why) if why.contains("create todo-redisdb"))
    );
    assert!(matches!(outcome("start todo-app1"), Outcome::Skipped(_)));
    // The app exists, prepared but never started without its links.
    {
        let s = sim.lock().unwrap();
        let app = &s.nodes["node1"][0];
        assert_eq!(app.status, "initialized");
    }
    // Fix the cause; the next apply converges, creating nothing twice.
    sim.lock().unwrap().fail.clear();
    let (p, _, outcomes) = apply_once(&t, &w);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let app_change = p.changes.iter().find(|c| c.container == "app1").unwrap();
    assert_eq!(app_change.action, crate::plan::Action::Update);
    let s = sim.lock().unwrap();
    assert_eq!(s.nodes["node1"].len(), 1);
    assert_eq!(s.nodes["node4"].len(), 1);
    assert!(s.nodes.values().flatten().all(|c| c.status == "running"));
    drop(s);
    let (p, _, _) = apply_once(&t, &w);
    assert!(!p.has_changes());
}

#[test]
fn a_node_gone_mid_run_skips_its_remaining_work_and_others_finish() {
    let t = redis_todo();
    let (sim, w) = simulated(&[]);
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let p = plan(&t, &state, None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    sim.lock().unwrap().gone.push("node1".into());
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    let outcome = |label: &str| outcomes[position(&tasks, label)].clone();
    assert!(matches!(outcome("create todo-app1"), Outcome::Failed(e) if e.contains("node1")));
    assert!(matches!(outcome("rules todo-app1"), Outcome::Skipped(_)));
    for label in [
        "create todo-redisdb",
        "rules todo-redisdb",
        "start todo-redisdb",
    ] {
        assert_eq!(outcome(label), Outcome::Done, "{label}");
    }
}

#[test]
fn a_link_only_change_is_one_restore_and_no_restart() {
    let t = redis_todo();
    let (sim, w) = simulated(&[]);
    apply_once(&t, &w);
    let pid_before = sim.lock().unwrap().nodes["node1"][0].pid;
    let mut t2 = t.clone();
    let mut extra = t2.containers[1].links[0].clone();
    extra.listen_port = 7000;
    extra.origin = crate::topology::model::LinkOrigin::Declared { index: 1 };
    t2.containers[1].links.push(extra);
    let before = w.log().len();
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    assert_eq!(
        tasks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
        vec!["rules todo-app1"]
    );
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    let changing: Vec<_> = w.log()[before..]
        .iter()
        .filter(|r| !r.stdin.contains("@@geartopo tcp"))
        .cloned()
        .collect();
    assert_eq!(changing.len(), 1);
    assert_eq!(
        changing[0]
            .stdin
            .matches("iptables-restore --noflush")
            .count(),
        1
    );
    assert!(
        !changing[0].stdin.contains("podman start") && !changing[0].stdin.contains("podman create")
    );
    let s = sim.lock().unwrap();
    assert_eq!(s.nodes["node1"][0].pid, pid_before);
    assert_eq!(
        s.nodes["node1"][0]
            .rules
            .iter()
            .filter(|r| r.contains("DNAT"))
            .count(),
        2
    );
}

#[test]
fn destroy_removes_dependents_first_and_only_what_the_topology_owns() {
    let t = redis_todo();
    let (sim, w) = simulated(&[]);
    apply_once(&t, &w);
    // Another topology's container on the same node.
    sim.lock()
        .unwrap()
        .nodes
        .get_mut("node4")
        .unwrap()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-x".into(),
            labels: [
                ("geartopo.topology".to_string(), "other".to_string()),
                ("geartopo.container".to_string(), "x".to_string()),
            ]
            .into(),
            image: "img".into(),
            publish: vec![],
            status: "running".into(),
            pid: 7,
            rules: vec![],
            jumps: 0,
        });
    let mut c = conns(&w, &t);
    let state = observe(&t, &mut c, 4).unwrap();
    let mut p = plan(&t, &state, None).unwrap();
    p.changes = state
        .nodes
        .iter()
        .flat_map(|(n, ns)| {
            ns.containers
                .values()
                .map(move |oc| (n.clone(), oc.clone()))
        })
        .map(|(n, oc)| crate::plan::Change {
            container: oc.container.clone(),
            node: n,
            runtime_name: oc.runtime_name.clone(),
            action: crate::plan::Action::Delete,
            start: false,
            rules_before: None,
            rules_after: vec![],
            reasons: vec![],
            observed_id: Some(oc.id.clone()),
            observed_image: None,
            desired: None,
        })
        .collect();
    let tasks = destroy_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    assert_eq!(tasks.len(), 2);
    let app = position(&tasks, "destroy todo-app1");
    let redis = position(&tasks, "destroy todo-redisdb");
    assert!(
        tasks[redis].deps.contains(&app),
        "redis waits for the app that links to it"
    );
    let outcomes = execute(&tasks, &mut c, 4, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    let s = sim.lock().unwrap();
    assert!(s.nodes["node1"].is_empty());
    assert_eq!(s.nodes["node4"].len(), 1);
    assert_eq!(s.nodes["node4"][0].name, "other-x");
}

#[test]
fn docker_nodes_get_the_same_behaviour_through_docker_commands() {
    let mut t = redis_todo();
    for n in t.nodes.values_mut() {
        n.runtime = crate::topology::model::Runtime::Docker;
    }
    let p = plan(&t, &crate::plan::tests::empty_state(&t), None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    let create = &tasks[position(&tasks, "create todo-redisdb")];
    assert!(create.script.contains("docker create --name todo-redisdb"));
    assert!(!create.script.contains("init"));
    let rules = &tasks[position(&tasks, "rules todo-redisdb")];
    assert!(rules.script.contains("docker start todo-redisdb"));
    assert!(rules
        .script
        .contains("docker inspect -f '{{.State.Pid}}' todo-redisdb"));
    let w = FakeWorld::succeeding();
    let mut c = conns(&w, &t);
    let outcomes = execute(&tasks, &mut c, 2, &Quiet);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done));
    assert!(w.log().iter().all(|r| !r.stdin.contains("podman")));
}

/// Regression: a container left initialized by an apply that stopped half-way was
/// given `podman init` again, which podman refuses ("container state improper").
#[test]
fn an_initialized_container_is_not_initialized_again() {
    let t = redis_todo();
    let (sim, w) = simulated(&[("node1", "iptables-restore")]);
    apply_once(&t, &w);
    assert_eq!(sim.lock().unwrap().nodes["node1"][0].status, "initialized");
    sim.lock().unwrap().fail.clear();
    let (_, tasks, outcomes) = apply_once(&t, &w);
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Done),
        "{tasks:?} {outcomes:?}"
    );
    assert_eq!(sim.lock().unwrap().nodes["node1"][0].status, "running");
}

/// Regression (review): a new container given the host port that a replaced
/// container held was created before the replace removed the holder, so the
/// first apply failed with "port is already allocated".
#[test]
fn a_host_port_freed_by_a_replace_is_free_before_it_is_taken() {
    let mut t = redis_todo();
    t.containers[0].publish[0].host_port = None;
    let (sim, w) = simulated(&[]);
    apply_once(&t, &w);
    let held = sim.lock().unwrap().nodes["node4"][0].publish[0].0.clone();
    assert_eq!(held, "4000");
    // A new container on node4 is given 4000; redisdb changes image (replace).
    let mut t2 = t.clone();
    t2.containers[0].image = "localhost/geartopo-busybox:v2".into();
    let mut aaa = t2.containers[0].clone();
    aaa.name = "aaa".into();
    aaa.declared = "aaa".into();
    aaa.publish[0].host_port = Some(4000);
    t2.containers.insert(0, aaa);
    let (p, tasks, outcomes) = apply_once(&t2, &w);
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Done),
        "{tasks:#?} {outcomes:?}"
    );
    assert!(
        position(&tasks, "remove todo-redisdb to replace it") < position(&tasks, "create todo-aaa")
    );
    let redis = p.desired.iter().find(|d| d.container == "redisdb").unwrap();
    assert_ne!(redis.publish[0].2, 4000);
    let (p, _, _) = apply_once(&t2, &w);
    assert!(!p.has_changes(), "{:?}", p.changes);
}

/// Steps on an existing container name it by the id observe found under our
/// labels, not by the name another owner's container could have.
#[test]
fn existing_containers_are_addressed_by_id() {
    let t = redis_todo();
    let (sim, w) = simulated(&[]);
    apply_once(&t, &w);
    let id = sim.lock().unwrap().nodes["node1"][0].id.clone();
    let mut t2 = t.clone();
    t2.containers[1].links[0].listen_port = 7000;
    let (_, tasks, outcomes) = apply_once(&t2, &w);
    assert_eq!(tasks.len(), 1);
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(
        tasks[0]
            .script
            .contains(&format!("inspect -f '{{{{.State.Pid}}}}' {id}")),
        "{}",
        tasks[0].script
    );
    assert!(!tasks[0].script.contains("todo-app1"));
}
