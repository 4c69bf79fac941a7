//! The apply session through simulated nodes: what happens to the locks and to
//! the nodes when the lock is held, when the state moved, when a step panics and
//! when a node fails half-way.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};

use super::*;
use crate::apply::sim::{simulated, Sim, SimContainer};
use crate::apply::tests::Quiet;
use crate::apply::{apply_tasks, Task};
use crate::graph::DepGraph;
use crate::node::fake::FakeNodes;
use crate::observe::observe;
use crate::plan::tests::redis_todo;

/// This test process: alive, on this machine.
fn me() -> LockHolder {
    LockHolder::this_process("todo")
}

use crate::testing::holder_elsewhere as elsewhere;

/// The plan and tasks `apply` would run against the simulated nodes as they are.
fn planned(t: &Topology, nodes: &FakeNodes) -> (Plan, Vec<Task>) {
    let state = observe(t, &mut nodes.connections(t), 4).unwrap();
    let p = crate::plan::plan(t, &state, None).unwrap();
    let tasks = apply_tasks(t, &DepGraph::build(t).unwrap(), &p);
    (p, tasks)
}

fn session(
    t: &Topology,
    nodes: &FakeNodes,
    p: &Plan,
    tasks: &[Task],
) -> Result<Vec<Outcome>, SessionError> {
    run_locked(t, &mut nodes.connections(t), 4, p, tasks, &me(), &Quiet)
}

fn sim(s: &Arc<Mutex<Sim>>) -> std::sync::MutexGuard<'_, Sim> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The operations that change a node (not observe, lock, unlock).
fn changes(nodes: &FakeNodes) -> Vec<(String, NodeOp)> {
    nodes
        .ops()
        .into_iter()
        .filter(|(_, op)| {
            !matches!(
                op,
                NodeOp::Observe { .. }
                    | NodeOp::Digest { .. }
                    | NodeOp::Lock { .. }
                    | NodeOp::Unlock { .. }
                    | NodeOp::Release { .. }
            )
        })
        .collect()
}

#[test]
fn locks_and_reads_each_node_in_one_round_trip_runs_and_unlocks() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let before = nodes.log().len();
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let log = nodes.log()[before..].to_vec();
    for node in ["node1", "node4"] {
        let mine: Vec<_> = log.iter().filter(|r| r.node == node).collect();
        let kinds = |i: usize| mine[i].ops.iter().map(NodeOp::kind).collect::<Vec<_>>();
        // The re-check is a digest computed on the node, not a second read.
        assert_eq!(kinds(0), ["lock", "digest"], "{node}");
        // The lock goes with the node's last step: no round trip of its own.
        assert_eq!(kinds(mine.len() - 1), ["start", "release"], "{node}");
        assert!(
            mine.iter()
                .all(|r| !r.ops.iter().any(|o| o.kind() == "unlock")),
            "{node}: an unlock round trip after a release"
        );
    }
    assert!(sim(&s).locks.is_empty());
    let r = report(&p, &tasks, &outcomes, Verb::Apply);
    assert!(r.complete);
    assert_eq!(
        r.text,
        "\nApply complete! Containers: 2 added, 0 changed, 0 destroyed.\n"
    );
}

#[test]
fn a_lock_held_by_another_apply_changes_nothing_and_names_the_holder() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let other = elsewhere();
    sim(&s).locks.insert("node4".into(), other.clone());
    let Err(SessionError::Read(errors)) = session(&t, &nodes, &p, &tasks) else {
        panic!("the session ran with node4 locked by another");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    let message = errors[0].to_string();
    assert!(message.contains("node4"), "{message}");
    assert!(
        message.contains(&other.to_string()),
        "the holder is named: {message}"
    );
    assert!(!message.contains("STALE"), "{message}");
    assert!(stale_nodes(&errors).is_empty());
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    // Ours is released; the other apply keeps its own.
    let locks = sim(&s).locks.clone();
    assert_eq!(
        locks.into_iter().collect::<Vec<_>>(),
        [("node4".into(), other)]
    );
}

#[test]
fn a_lock_whose_holder_is_gone_is_reported_stale_and_kept() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    // This machine and boot, this pid, but another start time: the pid was reused,
    // the process that took the lock is gone.
    let gone = LockHolder {
        start_ticks: me().start_ticks + 1,
        ..me()
    };
    sim(&s).locks.insert("node4".into(), gone.clone());
    let Err(SessionError::Read(errors)) = session(&t, &nodes, &p, &tasks) else {
        panic!("the session ran with node4 locked");
    };
    let message = errors[0].to_string();
    assert!(message.contains("STALE"), "{message}");
    assert!(message.contains("holder is gone"), "{message}");
    assert_eq!(stale_nodes(&errors), ["node4"]);
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    // Never removed by itself: only force-unlock does that.
    assert_eq!(sim(&s).locks.get("node4"), Some(&gone));
}

#[test]
fn a_live_holder_is_waited_for_and_the_session_runs_once_it_is_released() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    sim(&s).locks.insert("node4".into(), elsewhere());
    // The other apply lets go while this one waits.
    let releaser = {
        let s = s.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            sim(&s).locks.remove("node4");
        })
    };
    let stop = AtomicBool::new(false);
    let control = Control {
        lock_timeout: Duration::from_secs(10),
        retry_every: Duration::from_millis(20),
        stop: &stop,
        held: false,
    };
    let before = nodes.log().len();
    let outcomes = run_controlled(
        &t,
        &mut nodes.connections(&t),
        4,
        &p,
        &tasks,
        &me(),
        &Quiet,
        &control,
    )
    .unwrap();
    releaser.join().unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let tries = nodes.log()[before..]
        .iter()
        .filter(|r| r.node == "node4" && r.ops.first().map(NodeOp::kind) == Some("lock"))
        .count();
    assert!(tries >= 2, "retried: {tries} tries");
    assert!(sim(&s).locks.is_empty());
}

#[test]
fn the_lock_wait_gives_up_at_the_timeout_holding_nothing() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    sim(&s).locks.insert("node4".into(), elsewhere());
    let stop = AtomicBool::new(false);
    let control = Control {
        lock_timeout: Duration::from_millis(100),
        retry_every: Duration::from_millis(20),
        stop: &stop,
        held: false,
    };
    let started = Instant::now();
    let e = run_controlled(
        &t,
        &mut nodes.connections(&t),
        4,
        &p,
        &tasks,
        &me(),
        &Quiet,
        &control,
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(matches!(e, SessionError::Read(_)), "{e}");
    assert!(changes(&nodes).is_empty());
    let locks: Vec<_> = sim(&s).locks.keys().cloned().collect();
    assert_eq!(locks, ["node4"], "only the other apply's lock remains");
}

#[test]
fn once_stopped_no_step_starts_and_the_report_says_interrupted() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let stop = AtomicBool::new(false);
    // The first step to start runs (nodes race for it: any node's first step);
    // the operator presses Ctrl-C while it does.
    let stop_ref = &stop;
    let outcomes = std::thread::scope(|_| {
        let mut conns = nodes.connections(&t);
        let progress = StopAfterFirst(stop_ref);
        crate::apply::execute_until(&tasks, &mut conns, 1, &progress, stop_ref)
    });
    let done: Vec<usize> = (0..outcomes.len())
        .filter(|i| outcomes[*i] == Outcome::Done)
        .collect();
    assert_eq!(done.len(), 1, "the running step finished: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != done[0])
            .all(|(_, o)| *o == Outcome::Skipped(crate::apply::INTERRUPTED.into())),
        "{outcomes:?}"
    );
    assert_eq!(changes(&nodes).len(), 1);
    assert_eq!(changes(&nodes)[0].1, tasks[done[0]].op);
    let r = report(&p, &tasks, &outcomes, Verb::Apply);
    assert!(!r.complete);
    assert!(r.text.contains("Apply interrupted."), "{}", r.text);
    assert!(r.text.contains("(interrupted)"), "{}", r.text);
    drop(s);
}

#[test]
fn with_the_stop_set_before_the_run_nothing_runs_and_the_locks_are_released() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let stop = AtomicBool::new(true);
    let control = Control {
        lock_timeout: Duration::ZERO,
        retry_every: Duration::from_secs(1),
        stop: &stop,
        held: false,
    };
    let outcomes = run_controlled(
        &t,
        &mut nodes.connections(&t),
        4,
        &p,
        &tasks,
        &me(),
        &Quiet,
        &control,
    )
    .unwrap();
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    assert!(outcomes
        .iter()
        .all(|o| *o == Outcome::Skipped(crate::apply::INTERRUPTED.into())));
    assert!(sim(&s).locks.is_empty());
}

/// Sets the stop once the first step finished, as a Ctrl-C during it would.
struct StopAfterFirst<'a>(&'a AtomicBool);

impl Progress for StopAfterFirst<'_> {
    fn started(&self, _node: &str, _label: &str) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn finished(&self, _node: &str, _label: &str, _outcome: &Outcome) {}
    fn unlock_failed(&self, _node: &str, _error: &crate::transport::TransportError) {}
}

#[test]
fn state_moved_between_plan_and_lock_changes_nothing() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    // Someone takes a port on node4 while the plan is shown.
    sim(&s)
        .nodes
        .entry("node4".into())
        .or_default()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-web".into(),
            labels: Default::default(),
            image: "img".into(),
            publish: vec![("50000".into(), "80".into(), "tcp".into())],
            status: "running".into(),
            pid: 9,
            rules: vec![],
            jumps: 0,
            nft: None,
            oci_runtime: "runc".into(),
        });
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    assert!(
        matches!(&e, SessionError::Moved { planned, now } if planned != now),
        "{e}"
    );
    assert!(e.to_string().contains("nothing was changed"), "{e}");
    assert!(changes(&nodes).is_empty(), "{:?}", changes(&nodes));
    assert!(sim(&s).locks.is_empty(), "locks released");
}

/// Issue 16: a socket or a container of another owner appearing on a node
/// between plan and lock, on a host port the plan does not use, does not abort
/// the apply (the fingerprint covers only what the plan depends on).
#[test]
fn an_unrelated_port_taken_between_plan_and_lock_does_not_abort() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    sim(&s)
        .nodes
        .entry("node4".into())
        .or_default()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-web".into(),
            labels: Default::default(),
            image: "img".into(),
            publish: vec![("50999".into(), "80".into(), "tcp".into())],
            status: "running".into(),
            pid: 9,
            rules: vec![],
            jumps: 0,
            nft: None,
            oci_runtime: "runc".into(),
        });
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    assert!(sim(&s).locks.is_empty(), "locks released");
}

/// The re-check after a first apply, with the plan's containers in place: a
/// rule of a kept container deleted by hand between plan and lock aborts; the
/// plan's own port and name, held by its own container, do not.
#[test]
fn a_kept_containers_rules_changed_between_plan_and_lock_abort() {
    let mut t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    session(&t, &nodes, &p, &tasks).unwrap();
    // A change to app1 only (its image): redisdb is kept as it is.
    let app1 = t.containers.iter_mut().find(|c| c.name == "app1").unwrap();
    app1.image = "localhost/other:1".into();
    let (p, tasks) = planned(&t, &nodes);
    assert!(p.has_changes());
    let rules_of = |s: &Arc<Mutex<Sim>>| {
        sim(s)
            .nodes
            .values()
            .flatten()
            .map(|c| c.rules.len())
            .sum::<usize>()
    };
    assert!(rules_of(&s) > 0);
    for c in sim(&s).nodes.values_mut().flatten() {
        c.rules.pop();
    }
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    assert!(matches!(e, SessionError::Moved { .. }), "{e}");
    assert!(sim(&s).locks.is_empty(), "locks released");
}

/// A docker node has no digest script: its lock's round trip reads it in full
/// and the check narrows it here, to the same fingerprint; podman nodes answer
/// a digest. Both re-checks catch a port the plan needs taken meanwhile.
#[test]
fn a_docker_node_is_rechecked_by_a_full_read_a_podman_node_by_digest() {
    let mut t = redis_todo();
    t.nodes.get_mut("node4").unwrap().runtime = crate::topology::model::Runtime::Docker;
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    assert!(p.recheck["node4"].digest.is_none());
    assert!(p.recheck["node1"].digest.is_some());
    let before = nodes.log().len();
    session(&t, &nodes, &p, &tasks).unwrap();
    let log = nodes.log()[before..].to_vec();
    let first = |node: &str| {
        log.iter()
            .find(|r| r.node == node)
            .map(|r| r.ops.iter().map(NodeOp::kind).collect::<Vec<_>>())
            .unwrap()
    };
    assert_eq!(first("node4"), ["lock", "observe"]);
    assert_eq!(first("node1"), ["lock", "digest"]);
    // Again from empty nodes, a foreign container takes the plan's port on
    // the docker node after the plan.
    let (s2, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let port = p
        .desired
        .iter()
        .find(|d| d.node == "node4")
        .and_then(|d| d.publish.first())
        .map(|(_, _, h)| h.to_string())
        .expect("redisdb publishes a port");
    sim(&s2)
        .nodes
        .entry("node4".into())
        .or_default()
        .push(SimContainer {
            id: "foreign".into(),
            name: "other-web".into(),
            labels: Default::default(),
            image: "img".into(),
            publish: vec![(port, "80".into(), "tcp".into())],
            status: "running".into(),
            pid: 9,
            rules: vec![],
            jumps: 0,
            nft: None,
            oci_runtime: "runc".into(),
        });
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    assert!(matches!(e, SessionError::Moved { .. }), "{e}");
    assert!(sim(&s2).locks.is_empty() && sim(&s).locks.is_empty());
}

#[test]
fn a_step_that_panics_still_releases_every_lock() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    sim(&s).panic_on.push(("node4".into(), "start".into()));
    let result = catch_unwind(AssertUnwindSafe(|| session(&t, &nodes, &p, &tasks)));
    assert!(result.is_err(), "the panic reaches the caller");
    assert!(
        sim(&s).locks.is_empty(),
        "locks released: {:?}",
        sim(&s).locks
    );
    let last: Vec<_> = nodes.log().into_iter().rev().take(2).collect();
    assert!(
        last.iter()
            .all(|r| r.ops.iter().map(NodeOp::kind).eq(["unlock"])),
        "{last:?}"
    );
}

#[test]
fn a_node_failing_half_way_lets_the_others_finish_and_the_report_says_what_was_done() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[("node1", "rules")]);
    let (p, tasks) = planned(&t, &nodes);
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    let r = report(&p, &tasks, &outcomes, Verb::Apply);
    assert!(!r.complete);
    for line in [
        "\nApply failed. What was done and what was not:\n",
        "  done        node4: create todo-redisdb\n",
        "  done        node4: rules todo-redisdb\n",
        "  done        node4: start todo-redisdb\n",
        "  done        node1: create todo-app1\n",
        "  FAILED      node1: rules todo-app1: simulated failure at rules\n",
        "  not started node1: start todo-app1 (rules todo-app1 did not complete)\n",
    ] {
        assert!(r.text.contains(line), "missing {line:?} in:\n{}", r.text);
    }
    assert_eq!(r.text.matches("\n  ").count(), tasks.len(), "{}", r.text);
    let s = sim(&s);
    assert!(s.locks.is_empty());
    assert_eq!(s.nodes["node4"][0].status, "running");
    assert_eq!(
        s.nodes["node1"][0].status, "initialized",
        "never started without its links"
    );
}

#[test]
fn a_node_whose_last_step_does_not_run_is_unlocked_by_a_round_trip_of_its_own() {
    let t = redis_todo();
    // node1's rules fail: its start (the step the release rides on) never runs.
    let (s, nodes) = simulated(&t, &[("node1", "rules")]);
    let (p, tasks) = planned(&t, &nodes);
    let before = nodes.log().len();
    session(&t, &nodes, &p, &tasks).unwrap();
    let log = nodes.log()[before..].to_vec();
    let last = |node: &str| {
        let r = log.iter().rfind(|r| r.node == node).unwrap();
        r.ops.iter().map(NodeOp::kind).collect::<Vec<_>>()
    };
    assert_eq!(last("node1"), ["unlock"]);
    assert_eq!(last("node4"), ["start", "release"]);
    assert!(
        sim(&s).locks.is_empty(),
        "a lock was left: {:?}",
        sim(&s).locks
    );
}

#[test]
fn a_node_with_no_step_is_released_as_the_steps_start() {
    let mut t = redis_todo();
    let mut idle = t.nodes["node1"].clone();
    idle.name = "node9".into();
    t.nodes.insert("node9".into(), idle);
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    assert!(tasks.iter().all(|t| t.node != "node9"));
    let before = nodes.log().len();
    session(&t, &nodes, &p, &tasks).unwrap();
    let kinds: Vec<Vec<&str>> = nodes.log()[before..]
        .iter()
        .filter(|r| r.node == "node9")
        .map(|r| r.ops.iter().map(NodeOp::kind).collect())
        .collect();
    assert_eq!(kinds, [vec!["lock", "digest"], vec!["release"]]);
    assert!(sim(&s).locks.is_empty());
}

#[test]
fn a_release_that_does_not_say_released_is_followed_by_an_unlock() {
    // A node whose answer to the last step lacks the release line (an older
    // script, an early exit): the session does not take the release on trust.
    let t = redis_todo();
    let (s, sim_nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &sim_nodes);
    let quiet = {
        let s = s.clone();
        FakeNodes::new(move |node, ops| {
            let mut out = sim(&s).run(node, ops)?;
            let kept: String = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| *l != crate::node::RELEASED)
                .map(|l| format!("{l}\n"))
                .collect();
            out.stdout = kept.into_bytes();
            Ok(out)
        })
    };
    run_locked(&t, &mut quiet.connections(&t), 4, &p, &tasks, &me(), &Quiet).unwrap();
    for node in ["node1", "node4"] {
        let r = quiet.log().into_iter().rfind(|r| r.node == node).unwrap();
        assert_eq!(
            r.ops.iter().map(NodeOp::kind).collect::<Vec<_>>(),
            ["unlock"]
        );
    }
    assert!(sim(&s).locks.is_empty());
}

#[test]
fn a_session_on_locks_taken_with_the_read_sends_no_lock_round_trip() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    // The read took the locks (`apply --auto-approve`).
    let state =
        crate::observe::observe_locking(&t, &mut nodes.connections(&t), 4, Some(&me())).unwrap();
    assert_eq!(sim(&s).locks.len(), 2, "the read took every lock");
    let p = crate::plan::plan(&t, &state, None).unwrap();
    let tasks = apply_tasks(&t, &DepGraph::build(&t).unwrap(), &p);
    let stop = AtomicBool::new(false);
    let control = Control {
        lock_timeout: Duration::ZERO,
        retry_every: Duration::from_secs(1),
        stop: &stop,
        held: true,
    };
    let before = nodes.log().len();
    let outcomes = run_controlled(
        &t,
        &mut nodes.connections(&t),
        4,
        &p,
        &tasks,
        &me(),
        &Quiet,
        &control,
    )
    .unwrap();
    assert!(outcomes.iter().all(|o| *o == Outcome::Done), "{outcomes:?}");
    let log = nodes.log()[before..].to_vec();
    assert!(
        log.iter().all(|r| !r
            .ops
            .iter()
            .any(|o| matches!(o.kind(), "lock" | "digest" | "observe"))),
        "a lock or a read in the session: {log:?}"
    );
    // One round trip a step, the last one carrying the release.
    assert_eq!(log.len(), tasks.len(), "{log:?}");
    assert!(sim(&s).locks.is_empty());
}

// ---- apply --json and destroy --json: the document of a session --------------

use crate::output::apply::{ApplyDocument, ApplyErrorKind, ApplyResult, StepOutcome};

/// The document as printed, checked against the committed schema/apply.schema.json
/// and compared with its golden file in tests/golden/apply/ (which tests/schema.rs
/// validates too); `GEARTOPO_BLESS=1` rewrites the golden.
fn printed(golden: &str, doc: &ApplyDocument) -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/apply.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let value = serde_json::to_value(doc).unwrap();
    // Fields are declared in alphabetical order: printed as typed, the document
    // reads as its sorted value (as plan --json, which it embeds).
    assert_eq!(
        serde_json::to_string_pretty(doc).unwrap(),
        serde_json::to_string_pretty(&value).unwrap()
    );
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "does not fit the schema: {errors:?}\n{value:#}"
    );
    assert_eq!(value["format_version"], 1);
    // The fingerprint after a run depends on the order the simulated nodes
    // handed out ids and pids in: the golden keeps a placeholder.
    let mut fixed = value.clone();
    if fixed["plan"].is_object() {
        fixed["plan"]["fingerprint"] = "FINGERPRINT".into();
    }
    let text = serde_json::to_string_pretty(&fixed).unwrap() + "\n";
    let file = format!(
        "{}/tests/golden/apply/{golden}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(std::path::Path::new(&file).parent().unwrap()).unwrap();
        std::fs::write(&file, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        committed == text,
        "{file} differs (GEARTOPO_BLESS=1 rewrites it):\n{}",
        similar::TextDiff::from_lines(committed.as_str(), text.as_str()).unified_diff()
    );
    value
}

#[test]
fn the_document_of_a_complete_apply_lists_every_step_done_and_embeds_the_plan() {
    let t = redis_todo();
    let (_s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    let doc = printed(
        "complete",
        &ApplyDocument::ran(Verb::Apply, &p, &tasks, &outcomes),
    );
    assert_eq!(doc["command"], "apply");
    assert_eq!(doc["result"], "complete");
    assert_eq!(doc["error"], serde_json::Value::Null);
    assert_eq!(
        doc["plan"],
        crate::render::plan_json(&p),
        "the plan --json document"
    );
    let steps: Vec<(String, String, String, String)> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap().to_string();
            (f("node"), f("container"), f("operation"), f("outcome"))
        })
        .collect();
    let expected: Vec<(String, String, String, String)> = [
        ("node4", "redisdb", "create"),
        ("node4", "redisdb", "rules"),
        ("node4", "redisdb", "start"),
        ("node1", "app1", "create"),
        ("node1", "app1", "rules"),
        ("node1", "app1", "start"),
    ]
    .iter()
    .map(|(n, c, o)| {
        (
            n.to_string(),
            c.to_string(),
            o.to_string(),
            "done".to_string(),
        )
    })
    .collect();
    let mut sorted = steps.clone();
    sorted.sort();
    let mut expected_sorted = expected;
    expected_sorted.sort();
    assert_eq!(sorted, expected_sorted);
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 2, "change": 0, "destroy": 0, "done": 6, "failed": 0, "not_started": 0})
    );
}

#[test]
fn the_document_of_a_failure_half_way_says_done_failed_and_not_started() {
    let t = redis_todo();
    let (_s, nodes) = simulated(&t, &[("node1", "rules")]);
    let (p, tasks) = planned(&t, &nodes);
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    let typed = ApplyDocument::ran(Verb::Apply, &p, &tasks, &outcomes);
    assert_eq!(typed.result, ApplyResult::Failed);
    let doc = printed("failed-half-way", &typed);
    assert_eq!(doc["result"], "failed");
    let app1: Vec<&serde_json::Value> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["container"] == "app1")
        .collect();
    let shape: Vec<(&str, &str)> = app1
        .iter()
        .map(|s| {
            (
                s["operation"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("create", "done"),
            ("rules", "failed"),
            ("start", "not_started")
        ]
    );
    assert_eq!(app1[1]["error"], "simulated failure at rules");
    assert_eq!(app1[1]["reason"], serde_json::Value::Null);
    assert_eq!(app1[2]["reason"], "rules todo-app1 did not complete");
    assert_eq!(app1[2]["error"], serde_json::Value::Null);
    assert_eq!(app1[0]["runtime_name"], "todo-app1");
    assert!(typed
        .steps
        .iter()
        .filter(|s| s.container == "redisdb")
        .all(|s| s.outcome == StepOutcome::Done));
    // redisdb was added; app1 was not (its links are not in force).
    assert_eq!(
        doc["summary"],
        serde_json::json!({"add": 1, "change": 0, "destroy": 0, "done": 4, "failed": 1, "not_started": 1})
    );
}

#[test]
fn the_document_of_a_held_lock_names_the_holder_and_lists_no_step() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let other = elsewhere();
    sim(&s).locks.insert("node4".into(), other.clone());
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    let kind = ApplyErrorKind::from(&e);
    assert_eq!(kind, ApplyErrorKind::Locked);
    let message = match &e {
        SessionError::Read(errors) => crate::render::no_plan("cannot read every node", errors),
        other => other.to_string(),
    };
    let doc = printed(
        "lock-held",
        &ApplyDocument::error(Verb::Apply, Some(&p), kind, message),
    );
    assert_eq!(doc["result"], "error");
    assert_eq!(doc["error"]["kind"], "locked");
    let text = doc["error"]["message"].as_str().unwrap();
    assert!(
        text.contains("node4") && text.contains(&other.to_string()),
        "{text}"
    );
    assert_eq!(doc["steps"], serde_json::json!([]));
    assert_eq!(
        doc["plan"]["summary"]["add"], 2,
        "the plan that was not carried out"
    );
    assert!(changes(&nodes).is_empty());
}

#[test]
fn moved_state_is_its_own_kind_of_error() {
    let t = redis_todo();
    let (_s, nodes) = simulated(&t, &[]);
    let (mut p, tasks) = planned(&t, &nodes);
    p.fingerprint = "0".into();
    let e = session(&t, &nodes, &p, &tasks).unwrap_err();
    assert_eq!(ApplyErrorKind::from(&e), ApplyErrorKind::StateChanged);
}

#[test]
fn an_apply_with_nothing_to_do_says_so() {
    let t = redis_todo();
    let (_s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    session(&t, &nodes, &p, &tasks).unwrap();
    let (again, none) = planned(&t, &nodes);
    assert!(!again.has_changes() && none.is_empty());
    let doc = printed(
        "no-changes",
        &ApplyDocument::no_changes(Verb::Apply, &again),
    );
    assert_eq!(doc["result"], "no_changes");
    assert_eq!(doc["steps"], serde_json::json!([]));
}

#[test]
fn destroy_reports_in_its_own_words_and_its_document_removes_every_container() {
    let t = redis_todo();
    let (_s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    session(&t, &nodes, &p, &tasks).unwrap();
    let state = observe(&t, &mut nodes.connections(&t), 4).unwrap();
    let d = crate::plan::destroy(&t.name, &state);
    let tasks = crate::apply::destroy_tasks(&t, &DepGraph::build(&t).unwrap(), &d);
    let outcomes = session(&t, &nodes, &d, &tasks).unwrap();
    let r = report(&d, &tasks, &outcomes, Verb::Destroy);
    assert!(r.complete);
    assert_eq!(r.text, "\nDestroy complete! 2 containers destroyed.\n");
    let doc = printed(
        "destroy",
        &ApplyDocument::ran(Verb::Destroy, &d, &tasks, &outcomes),
    );
    assert_eq!(doc["command"], "destroy");
    assert_eq!(doc["result"], "complete");
    let mut removed: Vec<(&str, &str)> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["container"].as_str().unwrap(),
                s["operation"].as_str().unwrap(),
            )
        })
        .collect();
    removed.sort();
    assert_eq!(removed, [("app1", "remove"), ("redisdb", "remove")]);
    assert_eq!(doc["summary"]["destroy"], 2);
}

#[test]
fn a_failed_destroy_tells_to_run_destroy_again() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    session(&t, &nodes, &p, &tasks).unwrap();
    sim(&s).fail.push(("node1".into(), "remove".into()));
    let state = observe(&t, &mut nodes.connections(&t), 4).unwrap();
    let d = crate::plan::destroy(&t.name, &state);
    let tasks = crate::apply::destroy_tasks(&t, &DepGraph::build(&t).unwrap(), &d);
    let outcomes = session(&t, &nodes, &d, &tasks).unwrap();
    let r = report(&d, &tasks, &outcomes, Verb::Destroy);
    assert!(!r.complete);
    assert!(r.text.starts_with("\nDestroy failed."), "{}", r.text);
    assert!(
        r.text.contains("run `geartopo destroy` again"),
        "{}",
        r.text
    );
}

// ---- output hygiene: what a node writes reaches the terminal escaped ---------

#[test]
fn a_failed_steps_stderr_is_reported_with_control_characters_escaped() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[("node1", "rules")]);
    sim(&s).fail_stderr = Some("iptables: \x1b[2J\x1b]0;pwned\x07bad rule\u{202e}".into());
    let (p, tasks) = planned(&t, &nodes);
    let outcomes = session(&t, &nodes, &p, &tasks).unwrap();
    let r = report(&p, &tasks, &outcomes, Verb::Apply);
    for raw in ['\x1b', '\x07', '\u{202e}'] {
        assert!(!r.text.contains(raw), "raw {raw:?} in:\n{}", r.text);
    }
    let line = "  FAILED      node1: rules todo-app1: iptables: \\x1b[2J\\x1b]0;pwned\\x07bad rule\\u{202e}\n";
    assert!(r.text.contains(line), "missing {line:?} in:\n{}", r.text);
}

#[test]
fn a_lock_holder_with_control_characters_is_printed_escaped() {
    let t = redis_todo();
    let (s, nodes) = simulated(&t, &[]);
    let (p, tasks) = planned(&t, &nodes);
    let holder = LockHolder {
        user: "alice\x1b[1A\x1b[2K\rnothing to see".into(),
        ..elsewhere()
    };
    sim(&s).locks.insert("node4".into(), holder);
    let Err(SessionError::Read(errors)) = session(&t, &nodes, &p, &tasks) else {
        panic!("the session ran with node4 locked by another");
    };
    // As the apply command prints it (`cli::apply` names every node's error).
    let e = anyhow::anyhow!(crate::render::no_plan("cannot read every node", &errors));
    let printed = crate::cli::error_line(&e);
    assert!(
        !printed.contains('\x1b') && !printed.contains('\r'),
        "{printed:?}"
    );
    assert!(
        printed.contains("alice\\x1b[1A\\x1b[2K\\x0dnothing to see"),
        "{printed}"
    );
}
