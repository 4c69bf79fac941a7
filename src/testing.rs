//! Captured states for tests and benchmarks: what empty nodes and a successful
//! apply look like to `observe`. Pure data builders, no I/O; not part of the
//! tool's surface (hidden from the docs), and built only for tests and benches
//! (`cfg(test)` or the `testing` feature).

use crate::node::durable;
use crate::plan::Plan;
use crate::rules::{rules_hash, CHAINS};
use crate::state::{
    DurableState, NodeState, ObservedContainer, ObservedState, OwnedChains, PublishedPort, RunState,
};
use crate::topology::model::{Firewall, Topology};

/// The lock of another apply of topology todo, on another machine: nothing
/// tells whether it still runs.
pub fn holder_elsewhere() -> crate::node::lock::LockHolder {
    crate::node::lock::LockHolder {
        topology: "todo".into(),
        user: "alice".into(),
        host: "elsewhere".into(),
        pid: 7,
        start_ticks: 1,
        boot_id: "another-boot".into(),
        since: 1,
    }
}

/// Every node of `t` observed, with nothing on it.
pub fn empty_state(t: &Topology) -> ObservedState {
    let mut s = ObservedState::default();
    for n in t.nodes.keys() {
        s.nodes.insert(n.clone(), NodeState::default());
    }
    s
}

/// What `observe` reads back after a successful apply of `p`: every container
/// running, its ports kept, its chains intact and marked, its sysctls set.
pub fn applied_state(t: &Topology, p: &Plan) -> ObservedState {
    applied_state_on(t, p, None)
}

/// As `applied_state`, for one node's containers only when `only` names it (a
/// benchmark of 1,000 nodes builds each node's output: the whole state per
/// node was quadratic).
fn applied_state_on(t: &Topology, p: &Plan, only: Option<&str>) -> ObservedState {
    let mut s = empty_state(t);
    for (i, d) in p.desired.iter().enumerate() {
        if only.is_some_and(|n| n != d.node) {
            continue;
        }
        let ns = s.nodes.get_mut(&d.node).unwrap();
        let published: Vec<PublishedPort> = d
            .publish
            .iter()
            .map(|(p, port, hp)| PublishedPort {
                protocol: (*p).into(),
                port: *port,
                host_port: *hp,
            })
            .collect();
        for p in &published {
            ns.taken_ports.insert((p.protocol, p.host_port));
        }
        ns.containers.insert(
            d.container.clone(),
            ObservedContainer {
                id: format!("id-{}", d.container),
                runtime_name: d.runtime_name.clone(),
                container: d.container.clone(),
                spec: d.spec.clone(),
                owner_id: t.id.clone(),
                image: d.image.clone(),
                state: RunState::Running,
                pid: Some(1000 + i as u32),
                published,
                chains: Some(match d.firewall {
                    Firewall::Iptables => OwnedChains {
                        declared: CHAINS.iter().map(|(_, _, o)| o.to_string()).collect(),
                        rules: d.rules.clone(),
                        marker: Some(rules_hash(&d.rules)),
                        jumps: CHAINS.iter().map(|(_, b, _)| (b.to_string(), 1)).collect(),
                    },
                    // iptables-save there shows nothing of geartopo's.
                    Firewall::Nftables => OwnedChains::default(),
                }),
                nft: (d.firewall == Firewall::Nftables)
                    .then(|| crate::nft::desired(&t.name, &d.container, &d.links)),
                sysctls: crate::node::SYSCTLS
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                host_network: false,
                rules_file: Some(d.runtime_name.clone()),
                oci_runtime: (d.runtime == crate::topology::model::Runtime::Docker)
                    .then(|| d.oci_runtime.clone().unwrap_or_else(|| "runc".into())),
            },
        );
        let durable = ns.durable.get_or_insert_with(|| node_durable(t, &d.node));
        let rules = crate::node::OwnedRules {
            topology: t.name.clone(),
            container: d.container.clone(),
            rules: d.rules.clone(),
            file: Some(d.runtime_name.clone()),
            firewall: d.firewall,
            clear_other: false,
        };
        let profile = crate::node::NodeProfile::of(&t.nodes[&d.node]);
        durable.files.insert(
            format!("{DEFAULT_STATE_DIR}/rules/{}", d.runtime_name),
            (
                durable::RULES_MODE.into(),
                durable::sha256(&durable::rules_file(&profile, &rules)),
            ),
        );
    }
    s
}

/// Where a real node keeps geartopo's state (`GEARTOPO_STATE_DIR` unset).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/geartopo";
/// The hooks directory podman reads by default.
pub const DEFAULT_HOOKS_DIR: &str = "/etc/containers/oci/hooks.d";

/// A node's durable state after an apply: its hook program and hook file in
/// place, no systemd (rules files are added per container).
pub fn node_durable(t: &Topology, node: &str) -> DurableState {
    let mut d = DurableState {
        state_dir: DEFAULT_STATE_DIR.into(),
        hooks_dir: DEFAULT_HOOKS_DIR.into(),
        systemd: "none".into(),
        ..Default::default()
    };
    d.files.insert(
        format!("{DEFAULT_STATE_DIR}/hook"),
        (durable::HOOK_MODE.into(), durable::sha256(durable::HOOK)),
    );
    if t.nodes[node].runtime == crate::topology::model::Runtime::Podman {
        d.files.insert(
            format!("{DEFAULT_HOOKS_DIR}/{}", durable::HOOK_FILE),
            (
                durable::HOOK_FILE_MODE.into(),
                durable::sha256(&durable::hook_file(DEFAULT_STATE_DIR)),
            ),
        );
    }
    d
}

/// What a podman node's observe script prints after a successful apply of `p`
/// (as `applied_state`, but as text, so that a benchmark also pays for parsing):
/// its one `ps -a --format json` listing, and each container's namespace read.
pub fn applied_output(t: &Topology, p: &Plan, node: &str) -> String {
    use crate::node::section::Section;
    let line = |s: Section| s.header() + "\n";
    let mut out = line(Section::Tcp) + &line(Section::Udp) + &line(Section::List);
    let mine: Vec<(usize, &crate::plan::Desired)> = p
        .desired
        .iter()
        .enumerate()
        .filter(|(_, d)| d.node == node)
        .collect();
    let list: Vec<serde_json::Value> = mine
        .iter()
        .map(|(i, d)| {
            let mut labels = serde_json::Map::new();
            labels.insert("geartopo.topology".into(), t.name.clone().into());
            labels.insert("geartopo.container".into(), d.container.clone().into());
            labels.insert("geartopo.spec".into(), d.spec_label().into());
            if let Some(id) = &t.id {
                labels.insert("geartopo.id".into(), id.clone().into());
            }
            labels.insert(
                crate::node::durable::LABEL.into(),
                d.runtime_name.clone().into(),
            );
            let ports: Vec<serde_json::Value> = d
                .publish
                .iter()
                .map(|(proto, port, hp)| {
                    serde_json::json!({"host_ip": "", "container_port": port, "host_port": hp,
                        "range": 1, "protocol": proto.as_str()})
                })
                .collect();
            serde_json::json!({"Id": format!("id-{}", d.container), "Names": [d.runtime_name],
                "State": "running", "Pid": 1000 + i, "Image": d.image, "Labels": labels,
                "Ports": ports})
        })
        .collect();
    out.push_str(&serde_json::to_string_pretty(&list).expect("json"));
    out.push('\n');
    for (i, d) in &mine {
        out.push_str(&format!(
            "{} id-{} {}\n",
            Section::Namespace.header(),
            d.container,
            1000 + i
        ));
        let values: Vec<&str> = crate::node::SYSCTLS.iter().map(|(_, v)| *v).collect();
        out.push_str(&format!(
            "{} {}\n",
            Section::Sysctl.header(),
            values.join(" ")
        ));
        // As iptables-save shows the restored chains and their jumps.
        let restore = crate::rules::render_restore(&t.name, &d.container, &d.rules);
        for l in restore.lines() {
            out.push_str(l);
            out.push('\n');
            if let Some(table) = l.strip_prefix('*') {
                for (_, b, o) in CHAINS.iter().filter(|(tb, _, _)| *tb == table) {
                    out.push_str(&format!("-A {b} -j {o}\n"));
                }
            }
        }
    }
    // The hook and the rules files, as `applied_state` has them.
    if let Some(d) = &applied_state_on(t, p, Some(node)).nodes[node].durable {
        out.push_str(&format!(
            "{} {} {} {}\n",
            Section::Durable.header(),
            d.state_dir,
            d.hooks_dir,
            d.systemd
        ));
        for (path, (mode, sha)) in &d.files {
            out.push_str(&format!("mode {mode} {path}\nsha {sha}  {path}\n"));
        }
    }
    out.push_str(&line(Section::End));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text a benchmark feeds the parser reads back as `applied_state`.
    #[test]
    fn applied_output_reads_back_as_applied_state() {
        let t = crate::plan::tests::redis_todo();
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        let state = applied_state(&t, &p);
        for node in t.nodes.keys() {
            let read =
                crate::observe::parse_node(node, &t.name, &applied_output(&t, &p, node)).unwrap();
            assert_eq!(read.containers, state.nodes[node].containers, "{node}");
        }
        let mut read = state.clone();
        for (node, s) in read.nodes.iter_mut() {
            *s = crate::observe::parse_node(node, &t.name, &applied_output(&t, &p, node)).unwrap();
        }
        assert!(!crate::plan::plan(&t, &read, None).unwrap().has_changes());
    }
}
