//! The plan: a pure function of (validated model, observed state). It resolves what
//! each container should be (host ports picked or kept, links resolved to node
//! addresses, rules rendered) and compares it with what was observed. No I/O here,
//! so every case is unit-testable on captured state.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::rules::{render_rules, ResolvedLink};
use crate::state::{short_hash, ObservedContainer, ObservedState, ProtocolName, RunState};
use crate::topology::model::{
    Container, EnvValue, LinkTarget, NodeAddress, Protocol, Runtime, Topology,
};

/// What a container should be, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
    #[serde(skip)]
    pub runtime: Runtime,
    pub image: String,
    pub command: Vec<String>,
    #[serde(skip)]
    pub env: Vec<(String, EnvValue)>,
    /// (protocol, container port, host port)
    #[serde(skip)]
    pub publish: Vec<(Protocol, u16, u16)>,
    #[serde(skip)]
    pub links: Vec<ResolvedLink>,
    /// The owned chains' rules, as iptables-save prints them.
    #[serde(skip)]
    pub rules: Vec<String>,
    /// Per attribute hashes, recorded in the `geartopo.spec` label.
    #[serde(skip)]
    pub spec: BTreeMap<String, String>,
}

impl Desired {
    /// The `geartopo.spec` label value.
    pub fn spec_label(&self) -> String {
        self.spec
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What happens to one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Action {
    /// `+`
    Create,
    /// `-/+`, with the attributes that force it.
    Replace { forced_by: Vec<String> },
    /// `~`: rules, sysctls, or starting a stopped container; no restart.
    Update,
    /// `-`
    Delete,
}

/// One change in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
    pub action: Action,
    /// The container's process must be started (new, replaced or stopped).
    pub start: bool,
    /// Live owned rules; `None` when there is no namespace to read them from.
    pub rules_before: Option<Vec<String>>,
    /// Planned owned rules (empty for a delete).
    pub rules_after: Vec<String>,
    /// Why an update is needed, in words (`rules`, `sysctls`, `stopped`, `jumps`...).
    pub reasons: Vec<String>,
    /// The runtime id of the container that exists now, if any.
    pub observed_id: Option<String>,
    /// The observed image, for replace output.
    pub observed_image: Option<String>,
    #[serde(skip)]
    pub desired: Option<Desired>,
}

/// A change made outside geartopo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub container: String,
    pub node: String,
    pub what: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub topology: String,
    /// Fingerprint of the observed state this plan was made against.
    pub fingerprint: String,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    /// Every container's resolved form, changed or not (for `links`, `show`).
    #[serde(skip)]
    pub desired: Vec<Desired>,
}

/// Counts as terraform does: a replace is one add and one destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Replace { .. } => {
                    s.add += 1;
                    s.destroy += 1
                }
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }
}

/// Why no plan could be made. Names the node or container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("node {node}: no free host port for {container} {port}/{protocol} in {first}-{last}")]
    NoFreePort {
        node: String,
        container: String,
        port: u16,
        protocol: &'static str,
        first: u16,
        last: u16,
    },
    #[error("node {node}: host port {host_port}/{protocol} for {container} is already taken by something geartopo does not own")]
    PortTaken {
        node: String,
        container: String,
        host_port: u16,
        protocol: &'static str,
    },
    #[error("{container} links to {target}, whose node {node} has address \"local\", which other hosts cannot reach")]
    LocalTarget {
        container: String,
        target: String,
        node: String,
    },
    #[error("{name} was not resolved to an IPv4 address")]
    Unresolved { name: String },
    #[error("node {node}: a container named {name} exists that this topology does not own; rename one of them")]
    NameTaken { node: String, name: String },
    #[error("node {node} was not read")]
    NotObserved { node: String },
}

/// Computes the plan. `targets` (container names, possibly empty) limits it to those
/// containers and what they need (`needed`, from the dependency graph).
pub fn plan(
    topology: &Topology,
    state: &ObservedState,
    needed: Option<&BTreeSet<String>>,
) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    for node in topology.nodes.keys() {
        if !state.nodes.contains_key(node) {
            errors.push(PlanError::NotObserved { node: node.clone() });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Containers by name: a plan looks one up per link and per observed container,
    // and a scan of the list each time made planning quadratic.
    let mut by_name: ByName = HashMap::with_capacity(topology.containers.len());
    for c in &topology.containers {
        by_name.entry(c.name.as_str()).or_insert(c);
    }
    let ports = assign_host_ports(topology, state, &mut errors);
    let mut desired = Vec::with_capacity(topology.containers.len());
    for c in &topology.containers {
        match resolve(topology, &by_name, state, c, &ports) {
            Ok(d) => desired.push(d),
            Err(e) => errors.push(e),
        }
    }
    // A container of another owner with the name ours would get: creating ours
    // would fail, and acting on it by name would touch what is not ours.
    for d in &desired {
        let ns = &state.nodes[&d.node];
        let ours = ns
            .containers
            .values()
            .chain(&ns.extras)
            .any(|oc| oc.runtime_name == d.runtime_name);
        if !ours && ns.names.contains(&d.runtime_name) {
            errors.push(PlanError::NameTaken {
                node: d.node.clone(),
                name: d.runtime_name.clone(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let in_scope = |name: &str| needed.is_none_or(|n| n.contains(name));
    let mut changes = Vec::new();
    let mut drift = Vec::new();
    // Owned containers no longer in the file, or found on another node than planned.
    for (node, ns) in &state.nodes {
        for (name, oc) in &ns.containers {
            let wanted_here = by_name.get(name.as_str()).is_some_and(|c| &c.node == node);
            if !wanted_here && needed.is_none_or(|n| n.contains(name)) {
                changes.push(delete_change(node, oc));
            }
        }
        // Copies carrying the label of a container that is already there.
        for oc in &ns.extras {
            if needed.is_none_or(|n| n.contains(&oc.container)) {
                changes.push(delete_change(node, oc));
            }
        }
    }
    for d in &desired {
        if !in_scope(&d.container) {
            continue;
        }
        let observed = state.nodes[&d.node].containers.get(&d.container);
        if let Some(change) = diff_one(d, observed, &mut drift) {
            changes.push(change);
        }
    }
    Ok(Plan {
        topology: topology.name.clone(),
        fingerprint: state.fingerprint(),
        changes,
        drift,
        desired,
    })
}

/// The plan for `destroy`: every container observed under this topology's label,
/// on every node (also ones no longer in the file, and copies), to delete.
pub fn destroy(topology: &str, state: &ObservedState) -> Plan {
    let changes = state
        .nodes
        .iter()
        .flat_map(|(node, ns)| {
            ns.containers
                .values()
                .chain(&ns.extras)
                .map(move |oc| delete_change(node, oc))
        })
        .collect();
    Plan {
        topology: topology.to_string(),
        fingerprint: state.fingerprint(),
        changes,
        drift: vec![],
        desired: vec![],
    }
}

fn delete_change(node: &str, oc: &ObservedContainer) -> Change {
    Change {
        container: oc.container.clone(),
        node: node.to_string(),
        runtime_name: oc.runtime_name.clone(),
        action: Action::Delete,
        start: false,
        rules_before: oc.chains.as_ref().map(|c| c.rules.clone()),
        rules_after: Vec::new(),
        reasons: Vec::new(),
        observed_id: Some(oc.id.clone()),
        observed_image: Some(oc.image.clone()),
        desired: None,
    }
}

/// Compares one desired container with what was observed of it.
fn diff_one(
    d: &Desired,
    observed: Option<&ObservedContainer>,
    drift: &mut Vec<Drift>,
) -> Option<Change> {
    // Built only when there is a change: a no-op plan of a large topology would
    // otherwise copy every container's rules and resolved form to throw them away.
    let change = |action: Action, start: bool, reasons: Vec<String>| Change {
        container: d.container.clone(),
        node: d.node.clone(),
        runtime_name: d.runtime_name.clone(),
        action,
        start,
        rules_before: observed.and_then(|oc| oc.chains.as_ref().map(|c| c.rules.clone())),
        rules_after: d.rules.clone(),
        reasons,
        observed_id: observed.map(|oc| oc.id.clone()),
        observed_image: observed.map(|oc| oc.image.clone()),
        desired: Some(d.clone()),
    };
    let Some(oc) = observed else {
        return Some(change(Action::Create, true, Vec::new()));
    };

    let forced_by: Vec<String> = d
        .spec
        .iter()
        .filter(|(k, v)| oc.spec.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    if !forced_by.is_empty() {
        return Some(change(Action::Replace { forced_by }, true, Vec::new()));
    }

    let mut note = |what: String| {
        drift.push(Drift {
            container: d.container.clone(),
            node: d.node.clone(),
            what,
        })
    };
    let start = oc.state != RunState::Running;
    let mut reasons: Vec<String> = Vec::new();
    if let RunState::Stopped(s) = &oc.state {
        note(format!(
            "{} is {s}: it was stopped outside geartopo",
            d.runtime_name
        ));
        reasons.push("start".into());
    } else if oc.state == RunState::Created {
        reasons.push("start".into());
    }
    match &oc.chains {
        None => reasons.push("rules".into()),
        Some(chains) => {
            if !chains.intact() {
                let mut what = Vec::new();
                if chains.marker.is_none() && chains.rules.is_empty() {
                    what.push("owned chains are missing".to_string());
                } else if chains.marker.as_deref()
                    != Some(crate::rules::rules_hash(&chains.rules).as_str())
                {
                    what.push("rules in the owned chains were changed".to_string());
                }
                for (builtin, owned) in crate::rules::CHAINS {
                    let n = chains.jumps.get(builtin).copied().unwrap_or(0);
                    if n != 1 {
                        what.push(format!("{builtin} jumps to {owned} {n} times"));
                    }
                }
                if !what.is_empty() && oc.state == RunState::Running {
                    note(what.join("; "));
                }
                reasons.push("rules".into());
            } else if chains.rules != d.rules {
                reasons.push("rules".into());
            }
            let wrong: Vec<String> = crate::node::SYSCTLS
                .iter()
                .filter(|(k, v)| oc.sysctls.get(*k).map(String::as_str) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "{k} is {} (want {v})",
                        oc.sysctls
                            .get(*k)
                            .map(String::as_str)
                            .unwrap_or("unreadable")
                    )
                })
                .collect();
            if !wrong.is_empty() {
                note(wrong.join("; "));
                reasons.push("sysctls".into());
            }
        }
    }
    reasons.dedup();
    if reasons.is_empty() {
        None
    } else {
        Some(change(Action::Update, start, reasons))
    }
}

/// Containers of the topology by name.
type ByName<'a> = HashMap<&'a str, &'a Container>;

/// (container, protocol, container port).
type PortKey<'a> = (&'a str, Protocol, u16);

/// Host ports for every published port: given, else kept from the running
/// container, else the lowest free one in the node's range. Picked ports avoid every
/// port taken on the node and every port given or kept in the file.
fn assign_host_ports<'a>(
    topology: &'a Topology,
    state: &ObservedState,
    errors: &mut Vec<PlanError>,
) -> HashMap<PortKey<'a>, u16> {
    let mut assigned: HashMap<PortKey, u16> = HashMap::new();
    // (node, protocol, host port) of every port in `assigned`, so that "is this host
    // port already given to another container on this node" is one lookup.
    let mut held: HashSet<(&str, Protocol, u16)> = HashSet::new();
    let mut used: BTreeMap<String, BTreeSet<(ProtocolName, u16)>> = BTreeMap::new();
    for (name, ns) in &state.nodes {
        used.insert(name.clone(), ns.taken_ports.clone());
    }
    // Ports held by this topology's own containers on each node.
    let own: BTreeMap<&str, BTreeSet<(ProtocolName, u16)>> = state
        .nodes
        .iter()
        .map(|(n, ns)| {
            (
                n.as_str(),
                ns.containers
                    .values()
                    .flat_map(|c| c.published.iter().map(|p| (p.protocol, p.host_port)))
                    .collect(),
            )
        })
        .collect();
    // Given ports first, then kept ones, so a pick never takes either.
    for c in &topology.containers {
        for p in &c.publish {
            if let Some(hp) = p.host_port {
                let key = (p.protocol.into(), hp);
                let observed_same = state.nodes[&c.node]
                    .containers
                    .get(&c.name)
                    .and_then(|oc| oc.host_port(p.protocol, p.port))
                    == Some(hp);
                if state.nodes[&c.node].taken_ports.contains(&key)
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
                used.get_mut(&c.node).unwrap().insert(key);
                assigned.insert((&c.name, p.protocol, p.port), hp);
                held.insert((&c.node, p.protocol, hp));
            }
        }
    }
    for c in &topology.containers {
        let observed = state.nodes[&c.node].containers.get(&c.name);
        for p in c.publish.iter().filter(|p| p.host_port.is_none()) {
            if let Some(hp) = observed.and_then(|oc| oc.host_port(p.protocol, p.port)) {
                let given_elsewhere = held.contains(&(c.node.as_str(), p.protocol, hp));
                if !given_elsewhere {
                    used.get_mut(&c.node)
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
    for c in &topology.containers {
        let range = topology.nodes[&c.node].host_ports;
        for p in c.publish.iter().filter(|p| p.host_port.is_none()) {
            let key = (c.name.as_str(), p.protocol, p.port);
            if assigned.contains_key(&key) {
                continue;
            }
            let taken = used.get_mut(&c.node).unwrap();
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

fn address_of(state: &ObservedState, name: &str) -> Result<Ipv4Addr, PlanError> {
    name.parse::<Ipv4Addr>()
        .ok()
        .or_else(|| state.resolved.get(name).copied())
        .ok_or_else(|| PlanError::Unresolved {
            name: name.to_string(),
        })
}

/// Resolves one container: host ports, links, rules, spec hashes.
fn resolve(
    topology: &Topology,
    by_name: &ByName,
    state: &ObservedState,
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
                (address_of(state, host)?, *port, format!("{host}:{port}"))
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
                    NodeAddress::Remote(a) => address_of(state, a)?,
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
    let rules = render_rules(&topology.name, &c.name, &links);
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
    Ok(Desired {
        container: c.name.clone(),
        node: c.node.clone(),
        runtime_name: c.runtime_name(&topology.name),
        runtime: node.runtime,
        image: c.image.clone(),
        command: c.command.clone(),
        env,
        publish,
        links,
        rules,
        spec,
    })
}

/// `GEARTOPO_VIEW_<NAME>_MEMBERS`: the view's member list, not the container's identity.
fn is_view_members_env(key: &str) -> bool {
    key.starts_with("GEARTOPO_VIEW_") && key.ends_with("_MEMBERS")
}

#[cfg(test)]
pub(crate) mod tests;
