//! Captured states for tests and benchmarks: what empty nodes and a successful
//! apply look like to `observe`. Pure data builders, no I/O; not part of the
//! tool's surface (hidden from the docs), and built only for tests and benches
//! (`cfg(test)` or the `testing` feature).

use crate::plan::Plan;
use crate::rules::{rules_hash, CHAINS};
use crate::state::{
    NodeState, ObservedContainer, ObservedState, OwnedChains, PublishedPort, RunState,
};
use crate::topology::model::{Firewall, Topology};

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
    let mut s = empty_state(t);
    for (i, d) in p.desired.iter().enumerate() {
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
            },
        );
    }
    s
}
