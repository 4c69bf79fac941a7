//! Planning private published ports, node by node: which sources each private
//! port of a node accepts (the nodes whose containers link to it, by the links
//! resolved for every container of the file), and the change that brings the
//! node's own chain there. Pure: no I/O. Only this topology's chain
//! (`private_ports::chain_name`) is ever compared or changed.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::resolve::{address_of, ByName};
use super::{Desired, Drift};
use crate::private_ports::{chain_name, render_rules, PrivatePort, Source};
use crate::state::ObservedState;
use crate::topology::model::{NodeAddress, Topology};

/// A change to a node's own private-ports chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeChange {
    pub node: String,
    pub chain: String,
    /// The chain's rules as read; `None`: the chain does not exist.
    pub rules_before: Option<Vec<String>>,
    /// Empty: the chain and its jump are removed.
    pub rules_after: Vec<String>,
    /// In words: `rules`, `jump`, `removed`.
    pub reasons: Vec<String>,
}

/// The private ports of every node, with their accepted sources.
fn private_ports(
    topology: &Topology,
    by_name: &ByName,
    state: &ObservedState,
    desired: &[Desired],
) -> BTreeMap<String, Vec<PrivatePort>> {
    let ip_of = |node: &str| match &topology.nodes.get(node)?.address {
        NodeAddress::Local => None,
        NodeAddress::Remote(a) => address_of(&state.resolved, a).ok(),
    };
    let mut out: BTreeMap<String, Vec<PrivatePort>> = BTreeMap::new();
    for d in desired {
        let Some(model) = by_name.get(d.container.as_str()) else {
            continue;
        };
        let Some(ip) = ip_of(&d.node) else { continue };
        for (protocol, port, host_port) in &d.publish {
            let private = model
                .publish
                .iter()
                .any(|p| p.private && p.protocol == *protocol && p.port == *port);
            if !private {
                continue;
            }
            let mut sources = BTreeSet::new();
            for linker in desired {
                let reaches = linker.links.iter().any(|l| {
                    l.dest_ip == ip && l.dest_port == *host_port && l.protocol == *protocol
                });
                if !reaches {
                    continue;
                }
                if linker.node == d.node {
                    // Same node: the flow comes from the container's own address
                    // on the runtime's network (its link SNATs to it).
                    let nets = state.nodes.get(&d.node).map(|n| &n.filter.subnets);
                    sources.extend(nets.into_iter().flatten().cloned().map(Source::Network));
                } else if let Some(from) = ip_of(&linker.node) {
                    // Another node: its runtime masquerades the flow to its address.
                    sources.insert(Source::Node(from));
                }
            }
            out.entry(d.node.clone()).or_default().push(PrivatePort {
                container: d.container.clone(),
                protocol: *protocol,
                port: *port,
                host_port: *host_port,
                sources: sources.into_iter().collect(),
            });
        }
    }
    for ports in out.values_mut() {
        ports.sort_by_key(|p| (p.host_port, p.protocol));
    }
    out
}

/// The changes that bring every node's chain of this topology to what the file
/// asks (none where it already is); a missing or repeated jump is drift.
pub(super) fn plan_nodes(
    topology: &Topology,
    by_name: &ByName,
    state: &ObservedState,
    desired: &[Desired],
    drift: &mut Vec<Drift>,
) -> Vec<NodeChange> {
    let chain = chain_name(&topology.name, topology.id.as_deref());
    let wanted = private_ports(topology, by_name, state, desired);
    let mut changes = Vec::new();
    for (node, ns) in &state.nodes {
        let after = wanted
            .get(node)
            .map(|ports| render_rules(&topology.name, &chain, ports))
            .unwrap_or_default();
        let before = ns.filter.chains.get(&chain).cloned();
        let jumps = ns.filter.jumps.get(&chain).copied().unwrap_or(0);
        let mut reasons = Vec::new();
        if after.is_empty() {
            if before.is_some() || jumps > 0 {
                reasons.push("removed".to_string());
            }
        } else {
            if before.as_ref() != Some(&after) {
                reasons.push("rules".to_string());
            }
            if jumps != 1 {
                reasons.push("jump".to_string());
                if before.is_some() {
                    drift.push(Drift {
                        container: chain.clone(),
                        node: node.clone(),
                        what: format!("FORWARD jumps into {chain} {jumps} times, not once"),
                    });
                }
            }
        }
        if !reasons.is_empty() {
            changes.push(NodeChange {
                node: node.clone(),
                chain: chain.clone(),
                rules_before: before,
                rules_after: after,
                reasons,
            });
        }
    }
    changes
}

/// For `destroy`: this topology's chain removed from every node that has it.
pub(super) fn remove_all(
    topology: &str,
    id: Option<&str>,
    state: &ObservedState,
) -> Vec<NodeChange> {
    let chain = chain_name(topology, id);
    state
        .nodes
        .iter()
        .filter(|(_, ns)| {
            ns.filter.chains.contains_key(&chain) || ns.filter.jumps.contains_key(&chain)
        })
        .map(|(node, ns)| NodeChange {
            node: node.clone(),
            chain: chain.clone(),
            rules_before: ns.filter.chains.get(&chain).cloned(),
            rules_after: Vec::new(),
            reasons: vec!["removed".to_string()],
        })
        .collect()
}

/// Whether reading a node for `topology` needs the runtime network's subnets:
/// only the sources of a private port on its own node come from them.
pub(crate) fn needs_subnets(topology: &Topology) -> bool {
    topology
        .containers
        .iter()
        .any(|c| c.publish.iter().any(|p| p.private))
}
