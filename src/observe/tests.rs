//! What a `ReadProgress` hears from `connect_all` and `observe_with`: each node's
//! steps in order, through local connections and fake nodes (no hosts).

use std::sync::Mutex;
use std::time::Duration;

use super::*;
use crate::node::fake::FakeNodes;
use crate::node::section::Section;
use crate::plan::tests::redis_todo;
use crate::transport::Output;

/// Every event as "node: what", in the order heard.
#[derive(Default)]
struct Recording(Mutex<Vec<(String, String)>>);

impl Recording {
    fn push(&self, node: &str, what: String) {
        self.0.lock().unwrap().push((node.to_string(), what));
    }
    fn of(&self, node: &str) -> Vec<String> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, w)| w.clone())
            .collect()
    }
}

impl ReadProgress for Recording {
    fn connecting(&self, node: &str) {
        self.push(node, "connecting".into());
    }
    fn reading(&self, node: &str) {
        self.push(node, "reading".into());
    }
    fn read(&self, node: &str, containers: usize, _: Duration) {
        self.push(node, format!("read {containers}"));
    }
    fn failed(&self, node: &str, reason: &str) {
        self.push(node, format!("failed: {reason}"));
    }
}

/// What a node running `containers` of topology todo answers to `Observe`.
fn observed(containers: &[&str]) -> Output {
    let line = |s: Section| s.header() + "\n";
    let inspect: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            serde_json::json!({"Id": format!("id-{c}"), "Name": format!("todo-{c}"),
                "State": {"Status": "exited", "Pid": 0},
                "Config": {"Image": "busybox", "Labels": {"geartopo.topology": "todo", "geartopo.container": c}},
                "HostConfig": {"PortBindings": {}}})
        })
        .collect();
    let stdout = line(Section::Tcp)
        + &line(Section::Udp)
        + &line(Section::Ports)
        + &line(Section::Inspect)
        + &serde_json::Value::Array(inspect).to_string()
        + "\n"
        + &line(Section::End);
    Output {
        status: 0,
        stdout: stdout.into_bytes(),
        stderr: vec![],
    }
}

#[test]
fn each_node_is_heard_connecting_then_reading_then_read_or_failed() {
    let mut t = redis_todo();
    // `local` connects without I/O; the reads go to fake nodes instead.
    for n in t.nodes.values_mut() {
        n.address = NodeAddress::Local;
    }
    let heard = Recording::default();
    connect_all(&t, &ConnectOptions::default(), 4, &heard).unwrap();
    let nodes = FakeNodes::new(|node, _| match node {
        "node1" => Ok(observed(&["app1", "old"])),
        _ => Ok(Output {
            status: 3,
            stdout: vec![],
            stderr: b"geartopo: 'podman ps' failed on this node".to_vec(),
        }),
    });
    let errors = observe_with(&t, &mut nodes.connections(&t), 4, None, &heard).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(heard.of("node1"), ["connecting", "reading", "read 2"]);
    assert_eq!(
        heard.of("node4"),
        [
            "connecting",
            "reading",
            "failed: node node4: reading state failed (exit 3): geartopo: 'podman ps' failed on this node"
        ]
    );
}

#[test]
fn a_node_that_cannot_be_reached_is_heard_failing_and_never_reading() {
    let mut t = redis_todo();
    t.nodes.get_mut("node1").unwrap().address = NodeAddress::Local;
    // Nothing listens on port 1 of loopback: refused at once.
    let node4 = t.nodes.get_mut("node4").unwrap();
    node4.address = NodeAddress::Remote("127.0.0.1".into());
    node4.port = 1;
    let heard = Recording::default();
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    assert!(connect_all(&t, &options, 4, &heard).is_err());
    assert_eq!(heard.of("node1"), ["connecting"]);
    let node4 = heard.of("node4");
    assert_eq!(node4.len(), 2, "{node4:?}");
    assert_eq!(node4[0], "connecting");
    assert!(
        node4[1].starts_with("failed: node node4: cannot connect to 127.0.0.1:1"),
        "{node4:?}"
    );
}

/// The runtime network's subnets (one more runtime run on the node) are read
/// only for a topology with a private port, the one thing that needs them.
#[test]
fn the_network_is_read_only_for_a_topology_with_private_ports() {
    let subnets_asked = |t: &crate::topology::model::Topology| {
        let nodes = FakeNodes::succeeding();
        let _ = observe(t, &mut nodes.connections(t), 4);
        let asked: Vec<bool> = nodes
            .ops()
            .into_iter()
            .filter_map(|(_, op)| match op {
                NodeOp::Observe { subnets, .. } => Some(subnets),
                _ => None,
            })
            .collect();
        assert!(!asked.is_empty());
        asked
    };
    let mut t = redis_todo();
    assert!(subnets_asked(&t).iter().all(|s| !s));
    t.containers[0].publish[0].private = true;
    assert!(subnets_asked(&t).iter().all(|s| *s));
}
