//! Resolving the model against the observed state: host ports (given, kept or
//! picked), links to node addresses, rules and spec hashes, per container. Pure:
//! no I/O, no comparison with what runs (that is `diff`).

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::net::Ipv4Addr;

use crate::nft::{self, table_lines};
use crate::rules::{render_rules, ResolvedLink};
use crate::state::{short_hash, NodeState, ObservedState, ProtocolName};
use crate::topology::model::{
    Container, EnvValue, Firewall, LinkTarget, NodeAddress, Protocol, Topology,
};

use super::{Desired, PlanError};

/// Containers of the topology by name.
pub(super) type ByName<'a> = HashMap<&'a str, &'a Container>;

/// `topology`'s containers by name (the first of a name, as the file is
/// checked to have one): a plan looks one up per link.
pub(super) fn by_name(topology: &Topology) -> ByName<'_> {
    let mut by_name = ByName::with_capacity(topology.containers.len());
    for c in &topology.containers {
        by_name.entry(c.name.as_str()).or_insert(c);
    }
    by_name
}

/// (container, protocol, container port).
pub(super) type PortKey<'a> = (&'a str, Protocol, u16);

/// Host ports for every published port: given, else kept from the running
/// container, else the lowest free one in the node's range. Picked ports avoid every
/// port taken on the node and every port given or kept in the file.
pub(super) fn assign_host_ports<'a>(
    topology: &'a Topology,
    state: &ObservedState,
    errors: &mut Vec<PlanError>,
) -> HashMap<PortKey<'a>, u16> {
    let all: Vec<&Container> = topology.containers.iter().collect();
    assign_ports(topology, &all, |node| &state.nodes[node], errors)
}

/// `assign_host_ports` for `containers` (in the file's order), each node's
/// state from `node_state`. Every choice depends only on the containers of the
/// same node and that node's state, so one node's containers alone get the
/// ports they get among all (`early`, as each node's read arrives).
pub(super) fn assign_ports<'a, 's>(
    topology: &'a Topology,
    containers: &[&'a Container],
    node_state: impl Fn(&str) -> &'s NodeState,
    errors: &mut Vec<PlanError>,
) -> HashMap<PortKey<'a>, u16> {
    let mut assigned: HashMap<PortKey, u16> = HashMap::new();
    // (node, protocol, host port) of every port in `assigned`, so that "is this host
    // port already given to another container on this node" is one lookup.
    let mut held: HashSet<(&str, Protocol, u16)> = HashSet::new();
    // Ports taken on each node (as read, then as given here), and those held
    // by this topology's own containers there.
    let mut used: HashMap<&str, BTreeSet<(ProtocolName, u16)>> = HashMap::new();
    let mut own: HashMap<&str, BTreeSet<(ProtocolName, u16)>> = HashMap::new();
    for c in containers {
        if !used.contains_key(c.node.as_str()) {
            let ns = node_state(&c.node);
            used.insert(&c.node, ns.taken_ports.clone());
            own.insert(
                &c.node,
                ns.containers
                    .values()
                    .flat_map(|oc| oc.published.iter().map(|p| (p.protocol, p.host_port)))
                    .collect(),
            );
        }
    }
    // Given ports first, then kept ones, so a pick never takes either.
    for &c in containers {
        for p in &c.publish {
            if let Some(hp) = p.host_port {
                let key = (p.protocol.into(), hp);
                let observed_same = node_state(&c.node)
                    .containers
                    .get(&c.name)
                    .and_then(|oc| oc.host_port(p.protocol, p.port))
                    == Some(hp);
                if node_state(&c.node).taken_ports.contains(&key)
                    && !own[c.node.as_str()].contains(&key)
                    && !observed_same
                {
                    errors.push(PlanError::PortTaken {
                        node: c.node.clone(),
                        container: c.name.clone(),
                        host_port: hp,
                        protocol: p.protocol.as_str(),
                    });
                }
                used.get_mut(c.node.as_str()).unwrap().insert(key);
                assigned.insert((&c.name, p.protocol, p.port), hp);
                held.insert((&c.node, p.protocol, hp));
            }
        }
    }
    for &c in containers {
        let observed = node_state(&c.node).containers.get(&c.name);
        for p in c.publish.iter().filter(|p| p.host_port.is_none()) {
            if let Some(hp) = observed.and_then(|oc| oc.host_port(p.protocol, p.port)) {
                let given_elsewhere = held.contains(&(c.node.as_str(), p.protocol, hp));
                if !given_elsewhere {
                    used.get_mut(c.node.as_str())
                        .unwrap()
                        .insert((p.protocol.into(), hp));
                    assigned.insert((&c.name, p.protocol, p.port), hp);
                    held.insert((&c.node, p.protocol, hp));
                }
            }
        }
    }
    // Where the search for the lowest free port starts, per node and protocol: this
    // pass only takes ports, so every port below the last pick stays taken.
    let mut lowest: HashMap<(&str, Protocol), u16> = HashMap::new();
    for &c in containers {
        let range = topology.nodes[&c.node].host_ports;
        for p in c.publish.iter().filter(|p| p.host_port.is_none()) {
            let key = (c.name.as_str(), p.protocol, p.port);
            if assigned.contains_key(&key) {
                continue;
            }
            let taken = used.get_mut(c.node.as_str()).unwrap();
            let from = lowest
                .get(&(c.node.as_str(), p.protocol))
                .copied()
                .unwrap_or(range.first);
            match (from..=range.last).find(|hp| !taken.contains(&(p.protocol.into(), *hp))) {
                Some(hp) => {
                    taken.insert((p.protocol.into(), hp));
                    assigned.insert(key, hp);
                    lowest.insert((&c.node, p.protocol), hp);
                }
                None => errors.push(PlanError::NoFreePort {
                    node: c.node.clone(),
                    container: c.name.clone(),
                    port: p.port,
                    protocol: p.protocol.as_str(),
                    first: range.first,
                    last: range.last,
                }),
            }
        }
    }
    assigned
}

pub(super) fn address_of(
    resolved: &BTreeMap<String, Ipv4Addr>,
    name: &str,
) -> Result<Ipv4Addr, PlanError> {
    name.parse::<Ipv4Addr>()
        .ok()
        .or_else(|| resolved.get(name).copied())
        .ok_or_else(|| PlanError::Unresolved {
            name: name.to_string(),
        })
}

/// Resolves one container: host ports, links, rules, spec hashes. Of the read
/// state it needs only the names resolved (`resolved`) and its own node's state
/// (`ns`); of the other nodes, only the host ports `ports` gives their containers.
pub(super) fn resolve(
    topology: &Topology,
    by_name: &ByName,
    resolved: &BTreeMap<String, Ipv4Addr>,
    ns: Option<&NodeState>,
    c: &Container,
    ports: &HashMap<PortKey, u16>,
) -> Result<Desired, PlanError> {
    let node = &topology.nodes[&c.node];
    let publish: Vec<(Protocol, u16, u16)> = c
        .publish
        .iter()
        .filter_map(|p| {
            ports
                .get(&(c.name.as_str(), p.protocol, p.port))
                .map(|hp| (p.protocol, p.port, *hp))
        })
        .collect();
    let mut links = Vec::new();
    for l in &c.links {
        let (dest_ip, dest_port, describe) = match &l.target {
            LinkTarget::Loopback { port } => (
                Ipv4Addr::LOCALHOST,
                *port,
                format!("{}:{port} (itself)", c.name),
            ),
            LinkTarget::Raw { host, port } => {
                (address_of(resolved, host)?, *port, format!("{host}:{port}"))
            }
            LinkTarget::Container { container, port } => {
                let t = by_name
                    .get(container.as_str())
                    .expect("validated link target");
                let tnode = &topology.nodes[&t.node];
                let addr = match &tnode.address {
                    NodeAddress::Local => {
                        return Err(PlanError::LocalTarget {
                            container: c.name.clone(),
                            target: container.clone(),
                            node: t.node.clone(),
                        })
                    }
                    NodeAddress::Remote(a) => address_of(resolved, a)?,
                };
                let hp = ports.get(&(container.as_str(), l.protocol, *port)).copied();
                let Some(hp) = hp else {
                    // The target's port could not be assigned; that error is already reported.
                    return Err(PlanError::NoFreePort {
                        node: t.node.clone(),
                        container: container.clone(),
                        port: *port,
                        protocol: l.protocol.as_str(),
                        first: tnode.host_ports.first,
                        last: tnode.host_ports.last,
                    });
                };
                (addr, hp, format!("{container}:{port}"))
            }
        };
        links.push(ResolvedLink {
            listen_ip: l.listen_ip,
            listen_port: l.listen_port,
            protocol: l.protocol,
            dest_ip,
            dest_port,
            describe,
        });
    }
    let rules = match node.firewall {
        Firewall::Iptables => render_rules(&topology.name, &c.name, &links),
        Firewall::Nftables => table_lines(&nft::desired(&topology.name, &c.name, &links)),
    };
    let env: Vec<(String, EnvValue)> = c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut spec = BTreeMap::new();
    spec.insert("image".to_string(), short_hash(&c.image));
    spec.insert(
        "command".to_string(),
        short_hash(&serde_json::to_string(&c.command).unwrap()),
    );
    // A view's member list changes whenever the view is scaled; that must not
    // replace (restart, and for a database wipe) every member already running.
    // Only a container's own identity forces a replacement; its members list is
    // read at first start, and clustered servers learn of new members themselves.
    let env_text: Vec<String> = env
        .iter()
        .filter(|(k, _)| !is_view_members_env(k))
        .map(|(k, v)| format!("{k}={}", v.value))
        .collect();
    spec.insert(
        "env".to_string(),
        short_hash(&serde_json::to_string(&env_text).unwrap()),
    );
    let mut pub_text: Vec<String> = publish
        .iter()
        .map(|(p, port, hp)| format!("{port}/{}:{hp}", p.as_str()))
        .collect();
    pub_text.sort();
    spec.insert("publish".to_string(), short_hash(&pub_text.join(",")));
    // Podman 4.3 sets a restart policy only at create: changing it replaces.
    spec.insert("restart".to_string(), c.restart.as_arg());
    // Recorded only when set, so that a container made before volumes and
    // options (which records neither) is not replaced by a new geartopo.
    let mounts = super::volumes::resolve_mounts(topology, ns, c)?;
    if !mounts.is_empty() {
        let text: Vec<String> = mounts.iter().map(|m| m.arg()).collect();
        spec.insert("volumes".to_string(), short_hash(&text.join(",")));
    }
    if !c.options.is_empty() {
        spec.insert(
            "options".to_string(),
            short_hash(&serde_json::to_string(&c.options.create_args()).unwrap()),
        );
    }
    Ok(Desired {
        container: c.name.clone(),
        node: c.node.clone(),
        runtime_name: c.runtime_name(&topology.name),
        runtime: node.runtime,
        firewall: node.firewall,
        image: c.image.clone(),
        command: c.command.clone(),
        env,
        publish,
        links,
        rules,
        spec,
        restart: c.restart,
        oci_runtime: super::durable::docker_runtime(node.runtime, ns),
        health: c.health.clone(),
        mounts,
        options: c.options.clone(),
    })
}

/// `GEARTOPO_VIEW_<NAME>_MEMBERS`: the view's member list, not the container's identity.
pub(super) fn is_view_members_env(key: &str) -> bool {
    key.starts_with("GEARTOPO_VIEW_") && key.ends_with("_MEMBERS")
}
