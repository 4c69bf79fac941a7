//! The plan: a pure function of (validated model, observed state). It resolves what
//! each container should be (host ports picked or kept, links resolved to node
//! addresses, rules rendered) and compares it with what was observed. No I/O here,
//! so every case is unit-testable on captured state.
//!
//! This file holds the plan's types and the walk over every container; `resolve`
//! works out what one container should be, `diff` compares it with what runs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::Digest as _;

use crate::rules::ResolvedLink;
use crate::state::{ObservedContainer, ObservedState};
use crate::topology::model::{
    ContainerOptions, EnvValue, Firewall, Protocol, RestartPolicy, Runtime, Topology,
};

mod diff;
mod durable;
pub mod early;
mod owner;
mod par;
pub(crate) mod private;
pub mod reach;
mod registry;
mod resolve;
pub mod roll;
pub mod select;
pub mod volumes;

use diff::{diff_one, replace_requested};
pub use private::NodeChange;
use resolve::{assign_host_ports, resolve};
pub use select::{select, Limit, Mode, Scope, SelectError, Selection};

/// What a container should be, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
    #[serde(skip)]
    pub runtime: Runtime,
    /// Its node's firewall backend: the form of `rules`.
    #[serde(skip)]
    pub firewall: Firewall,
    pub image: String,
    pub command: Vec<String>,
    #[serde(skip)]
    pub env: Vec<(String, EnvValue)>,
    /// (protocol, container port, host port)
    #[serde(skip)]
    pub publish: Vec<(Protocol, u16, u16)>,
    #[serde(skip)]
    pub links: Vec<ResolvedLink>,
    /// The owned rules in the form of the node's backend: as iptables-save prints
    /// them (iptables), or the lines of `table ip geartopo`, marker included, in
    /// nft syntax (nftables).
    #[serde(skip)]
    pub rules: Vec<String>,
    /// Per attribute hashes, recorded in the `geartopo.spec` label.
    #[serde(skip)]
    pub spec: BTreeMap<String, String>,
    #[serde(skip)]
    pub restart: RestartPolicy,
    /// `--runtime` at create: the wrapper, on a docker node where dockerd has it
    /// registered (`geartopo node prepare`); `None` elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oci_runtime: Option<String>,
    /// Checked by geartopo after a start (docs/rolling.md); not in the spec.
    #[serde(skip)]
    pub health: Option<crate::topology::model::Health>,
    /// Mounts as the runtime takes them (docs/volumes.md).
    #[serde(skip)]
    pub mounts: Vec<volumes::ResolvedMount>,
    /// Create-time options (memory, cpus, user, ...).
    #[serde(skip)]
    pub options: ContainerOptions,
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
    /// Live owned rules, of both backends (iptables-save lines, then the lines of
    /// geartopo's nft table); `None` when there is no namespace to read them from.
    pub rules_before: Option<Vec<String>>,
    /// Planned owned rules (empty for a delete).
    pub rules_after: Vec<String>,
    /// Why an update is needed, in words (`rules`, `sysctls`, `start`, `firewall`:
    /// the other backend holds rules to remove).
    pub reasons: Vec<String>,
    /// The runtime id of the container that exists now, if any.
    pub observed_id: Option<String>,
    /// The observed image, for replace output.
    pub observed_image: Option<String>,
    #[serde(skip)]
    pub desired: Option<Desired>,
    /// The rules file the container keeps on its node (docs/durable.md): set for
    /// every container made durable; `None` for one made before.
    #[serde(skip)]
    pub rules_file: Option<String>,
}

/// A change made outside geartopo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub container: String,
    pub node: String,
    pub what: String,
}

/// A container of this topology made before topology ids (no `geartopo.id`
/// label): the topology with an id takes it over as it is. A runtime sets labels
/// only at create, so it carries the id once it is next replaced; adopting it
/// changes nothing on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Adopted {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
}

/// A container made before durable links (no rules file, no hook, no restart
/// policy, which podman can only set at create): shown as its own kind of change,
/// made only when the operator asks (`--make-durable`, or `--replace`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotDurable {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
}

/// The plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub topology: String,
    /// Fingerprint of the observed state this plan was made against.
    pub fingerprint: String,
    /// What the lock's re-check reads of each node to compute the fingerprint
    /// again (`observe::recheck`).
    #[serde(skip)]
    pub recheck: BTreeMap<String, NodeCheck>,
    pub changes: Vec<Change>,
    pub drift: Vec<Drift>,
    /// Owned containers without an id, taken over by this topology's id.
    pub adopted: Vec<Adopted>,
    /// Changes to the nodes' own private-ports chains (`private_ports`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_changes: Vec<NodeChange>,
    /// Containers that are not durable and stay as they are (`NotDurable`).
    pub not_durable: Vec<NotDurable>,
    /// Warnings about a node (its boot service), in words; change nothing.
    pub warnings: Vec<String>,
    /// Groups replaced a few members at a time (docs/rolling.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolls: Vec<roll::Roll>,
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
        !self.changes.is_empty() || !self.node_changes.is_empty()
    }

    /// Keeps only the changes on `nodes` (`destroy --node`: nodes no longer in the
    /// file, whose containers nothing else reaches).
    pub fn retain_nodes(&mut self, nodes: &BTreeSet<String>) {
        self.changes.retain(|c| nodes.contains(&c.node));
        self.node_changes.retain(|c| nodes.contains(&c.node));
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
        // A node's private-ports chain changes in place.
        s.change += self.node_changes.len();
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
    #[error("node {node}: container {name} belongs to another topology of the same name (its id {theirs}, this file's id {ours}); rename one of the topologies")]
    OwnedByOther {
        node: String,
        name: String,
        ours: String,
        theirs: String,
    },
    #[error("node {node}: a volume named {name} exists that this topology does not own; rename the container or the volume")]
    VolumeTaken { node: String, name: String },
    #[error("node {node} was not read")]
    NotObserved { node: String },
    #[error("node {node}: container {runtime_name} ({container}) carries this topology's labels but runs in the node's own network namespace (host networking, made or changed outside geartopo); geartopo will not put rules or sysctls there: remove it (geartopo destroy, or rm it by hand) and apply again")]
    HostNetwork {
        node: String,
        container: String,
        runtime_name: String,
    },
}

/// What of `state` this topology owns: with `id`, containers carrying another id
/// are left out (they belong to another topology of the same name); without one,
/// everything observed (`show` reports only these).
pub fn owned_state(id: Option<&str>, state: &ObservedState) -> ObservedState {
    owner::owned(id, state).state.into_owned()
}

/// Computes the plan. `needed` (when given) limits it to those containers (a
/// target and what it needs, from the dependency graph).
pub fn plan(
    topology: &Topology,
    state: &ObservedState,
    needed: Option<&BTreeSet<String>>,
) -> Result<Plan, Vec<PlanError>> {
    let selection = Selection {
        limit: needed.map_or(Limit::All, |n| Limit::Only(n.clone())),
        replace: BTreeSet::new(),
        make_durable: false,
    };
    plan_selected(topology, state, &selection)
}

/// One container's comparison with what runs on its node: its change, and its
/// drift and not-durable notes.
pub(crate) type Compared = (Option<Change>, Vec<Drift>, Vec<NotDurable>);

/// Compares `d` with what runs on its node (`ns`, as the topology owns it).
fn compare_one(
    topology: &Topology,
    selection: &Selection,
    d: &Desired,
    ns: &crate::state::NodeState,
) -> Compared {
    let (mut drift, mut not_durable) = (Vec::new(), Vec::new());
    if !selection.limit.allows(&d.container) {
        return (None, drift, not_durable);
    }
    let observed = ns.containers.get(&d.container);
    let mut change = diff_one(d, observed, &mut drift);
    if selection.replace.contains(&d.container) {
        change = replace_requested(d, observed, change);
    }
    change = durable::check(
        topology,
        d,
        observed,
        ns,
        change,
        selection.make_durable,
        &mut drift,
        &mut not_durable,
    );
    (change, drift, not_durable)
}

/// Computes the plan for the containers `selection` allows (`--target`,
/// `--exclude`), replacing those it names for replacement (`--replace`).
pub fn plan_selected(
    topology: &Topology,
    state: &ObservedState,
    selection: &Selection,
) -> Result<Plan, Vec<PlanError>> {
    plan_with(topology, state, selection, None)
}

/// `plan_selected`, using what `early` planned while the nodes were read
/// (`early::Early`): the same plan, with less left to do after the last read.
/// `early` must have been fed by the very read that made `state` (its nodes
/// and its names resolved), as `observe::connect_and_observe` does.
pub fn plan_with(
    topology: &Topology,
    state: &ObservedState,
    selection: &Selection,
    early: Option<early::Early>,
) -> Result<Plan, Vec<PlanError>> {
    let mut errors = Vec::new();
    for node in topology.nodes.keys() {
        if !state.nodes.contains_key(node) {
            errors.push(PlanError::NotObserved { node: node.clone() });
        }
    }
    // A container of ours in the node's own namespace: any rules step would write
    // into the node's firewall (the rules script refuses too; this says it first).
    for (node, ns) in &state.nodes {
        for oc in ns.containers.values().chain(&ns.extras) {
            if oc.host_network {
                errors.push(PlanError::HostNetwork {
                    node: node.clone(),
                    container: oc.container.clone(),
                    runtime_name: oc.runtime_name.clone(),
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let full = state;
    let owned = owner::owned(topology.id.as_deref(), full);
    let state: &ObservedState = &owned.state;
    // Containers by name: a plan looks one up per link and per observed container,
    // and a scan of the list each time made planning quadratic.
    let by_name = resolve::by_name(topology);
    let mut head = early.and_then(early::Early::head);
    let ports = match &mut head {
        Some(h) => std::mem::take(&mut h.ports),
        None => assign_host_ports(topology, state, &mut errors),
    };
    let mut desired = Vec::with_capacity(topology.containers.len());
    // What was compared early, by the index of its container in `desired`.
    let mut compared: Vec<Option<Compared>> = Vec::with_capacity(topology.containers.len());
    let same_selection = head
        .as_ref()
        .is_some_and(|h| h.selection.as_ref() == Some(selection));
    // On this thread, not `par::map`: what it makes is kept (the plan's
    // `desired`), and made on other threads it went to other malloc arenas
    // than the memory this thread has freed, 75 MB more at 1,000 nodes.
    for c in &topology.containers {
        if let Some(done) = head.as_mut().and_then(|h| h.done.remove(c.name.as_str())) {
            desired.push(done.desired);
            compared.push(done.compared.filter(|_| same_selection));
            continue;
        }
        match resolve(
            topology,
            &by_name,
            &state.resolved,
            state.nodes.get(&c.node),
            c,
            &ports,
        ) {
            Ok(d) => {
                desired.push(d);
                compared.push(None);
            }
            Err(e) => errors.push(e),
        }
    }
    let early_checks = head.map(|h| h.checks);
    // A container of another owner with the name ours would get: creating ours
    // would fail, and acting on it by name would touch what is not ours.
    for d in &desired {
        let ns = &state.nodes[&d.node];
        let ours = ns
            .containers
            .values()
            .chain(&ns.extras)
            .any(|oc| oc.runtime_name == d.runtime_name);
        let other = owned
            .foreign
            .iter()
            .find(|f| f.node == d.node && f.runtime_name == d.runtime_name);
        if let (false, Some(f), Some(id)) = (ours, other, &topology.id) {
            errors.push(PlanError::OwnedByOther {
                node: d.node.clone(),
                name: d.runtime_name.clone(),
                ours: id.clone(),
                theirs: f.id.clone(),
            });
        } else if !ours && ns.names.contains(&d.runtime_name) {
            errors.push(PlanError::NameTaken {
                node: d.node.clone(),
                name: d.runtime_name.clone(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let in_scope = |name: &str| selection.limit.allows(name);
    let mut changes = Vec::new();
    let mut drift = Vec::new();
    let mut not_durable = Vec::new();
    let mut warnings = Vec::new();
    // Owned containers no longer in the file, or found on another node than planned.
    for (node, ns) in &state.nodes {
        for (name, oc) in &ns.containers {
            let wanted_here = by_name.get(name.as_str()).is_some_and(|c| &c.node == node);
            if !wanted_here && in_scope(name) {
                changes.push(delete_change(node, oc));
            }
        }
        // Copies carrying the label of a container that is already there.
        for oc in &ns.extras {
            if in_scope(&oc.container) {
                changes.push(delete_change(node, oc));
            }
        }
    }
    // Each container's comparison on its own (its drift and not-durable notes
    // with it), those not compared early on the machine's cores, then joined
    // in the containers' order.
    let todo: Vec<usize> = (0..desired.len())
        .filter(|&i| compared[i].is_none())
        .collect();
    let computed = par::map(&todo, |&i| {
        let d = &desired[i];
        compare_one(topology, selection, d, &state.nodes[&d.node])
    });
    for (i, c) in todo.into_iter().zip(computed) {
        compared[i] = Some(c);
    }
    for (change, d, n) in compared.into_iter().flatten() {
        changes.extend(change);
        drift.extend(d);
        not_durable.extend(n);
    }
    registry::warn_missing_images(&desired, state, &mut warnings);
    let node_changes = private::plan_nodes(topology, &by_name, state, &desired, &mut drift);
    for (node, ns) in &state.nodes {
        durable::check_node(
            topology,
            node,
            ns,
            &mut changes,
            &mut drift,
            &mut warnings,
            &in_scope,
            &desired,
        );
    }
    let rolls = roll::rolls(topology, &changes);
    // Of what this plan depends on: the lock's re-read compares the same part.
    let (recheck, fingerprint) = match early_checks {
        Some(mut checks) if full.nodes.keys().all(|n| checks.contains_key(n.as_str())) => {
            let mut recheck = BTreeMap::new();
            let mut digests = BTreeMap::new();
            for node in full.nodes.keys() {
                let (check, digest) = checks.remove(node.as_str()).expect("every node");
                recheck.insert(node.clone(), check);
                digests.insert(node.clone(), digest);
            }
            (recheck, combined_fingerprint(&digests, &full.resolved))
        }
        _ => {
            let recheck = recheck_for(&desired, full);
            let fingerprint = fingerprint_with(&recheck, full);
            (recheck, fingerprint)
        }
    };
    Ok(Plan {
        topology: topology.name.clone(),
        fingerprint,
        recheck,
        changes,
        drift,
        adopted: owned.adopted,
        node_changes,
        not_durable,
        warnings,
        rolls,
        desired,
    })
}

/// The fingerprint of the part of `state` a plan of `desired` depends on: every
/// container of the topology (with its chains, sysctls and ports), and of the
/// rest of each node only the host ports its containers publish there and the
/// runtime names they take. Sockets and containers of others coming and going
/// elsewhere on a node do not change it; one taking a port or a name the plan
/// needs does. Saved plans and the lock's re-check compare this.
pub fn fingerprint_for(desired: &[Desired], state: &ObservedState) -> String {
    fingerprint_with(&recheck_for(desired, state), state)
}

/// `fingerprint_for` with the scope already worked out (`recheck_for`): each
/// node's digest on its own, on the machine's cores.
fn fingerprint_with(checks: &BTreeMap<String, NodeCheck>, state: &ObservedState) -> String {
    let none = NodeCheck::default();
    let nodes: Vec<_> = state.nodes.iter().collect();
    let digests = par::map(&nodes, |(node, ns)| {
        let check = checks.get(*node).unwrap_or(&none);
        ((*node).clone(), node_digest(check, node, ns))
    });
    combined_fingerprint(&digests.into_iter().collect(), &state.resolved)
}

/// One node's part of the fingerprint: the digest of what `check` scopes of
/// the node's read, as the lock's round trip computes it on the node.
fn node_digest(check: &NodeCheck, node: &str, ns: &crate::state::NodeState) -> String {
    match (&check.digest, &ns.canonical.0) {
        (Some(scope), Some(lines)) => {
            format!("canon {}", crate::observe::digest::digest(lines, scope))
        }
        _ => format!("json {}", check.narrowed_digest(node, ns)),
    }
}

/// What a plan of `desired` depends on in each node of `state` (see
/// `fingerprint_for`): the host ports and names its containers take there, and
/// for a node read from podman's listing, the scope of the node's digest.
pub fn recheck_for(desired: &[Desired], state: &ObservedState) -> BTreeMap<String, NodeCheck> {
    let mut on_node: BTreeMap<&str, Vec<&Desired>> = BTreeMap::new();
    for d in desired {
        on_node.entry(&d.node).or_default().push(d);
    }
    let mut checks: BTreeMap<String, NodeCheck> = BTreeMap::new();
    for (node, ds) in on_node {
        checks.insert(
            node.to_string(),
            node_check(ds.into_iter(), state.nodes.get(node)),
        );
    }
    for (node, ns) in &state.nodes {
        if !checks.contains_key(node) {
            checks.insert(node.clone(), node_check(std::iter::empty(), Some(ns)));
        }
    }
    checks
}

/// `recheck_for` on one node: `desired` are the plan's containers there, `ns`
/// the node as read (all of it, not only what the topology owns).
fn node_check<'d>(
    desired: impl Iterator<Item = &'d Desired>,
    ns: Option<&crate::state::NodeState>,
) -> NodeCheck {
    let mut c = NodeCheck::default();
    for d in desired {
        for (protocol, _, host_port) in &d.publish {
            c.ports.insert(((*protocol).into(), *host_port));
        }
        c.names.insert(d.runtime_name.clone());
    }
    let Some(ns) = ns.filter(|ns| ns.canonical.0.is_some()) else {
        return c;
    };
    let word = |p: &crate::state::ProtocolName| match p {
        crate::state::ProtocolName::Tcp => "tcp",
        crate::state::ProtocolName::Udp => "udp",
    };
    // As `ObservedState::narrowed`: a container whose name the plan's
    // containers take, and every copy, in full; the rest by identity.
    let full = ns
        .containers
        .values()
        .filter(|oc| c.names.contains(&oc.runtime_name))
        .chain(&ns.extras)
        .map(|oc| oc.id.clone())
        .collect::<BTreeSet<_>>();
    let files = ns
        .containers
        .values()
        .filter_map(|oc| oc.rules_file.clone())
        .collect::<BTreeSet<_>>();
    c.digest = Some(crate::node::script::digest::DigestScope {
        listen: c
            .ports
            .iter()
            .map(|(p, n)| format!("{}:{n:04X}", word(p)))
            .collect(),
        publish: c
            .ports
            .iter()
            .map(|(p, n)| format!("{}:{n}", word(p)))
            .collect(),
        names: c.names.iter().cloned().collect(),
        full: full.into_iter().collect(),
        files: files.into_iter().collect(),
    });
    c
}

/// What a plan depends on in one node (`recheck_for`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeCheck {
    /// Host ports its containers take there.
    pub ports: BTreeSet<(crate::state::ProtocolName, u16)>,
    /// Runtime names its containers take there.
    pub names: BTreeSet<String>,
    /// For a node read from podman's listing: the scope of its digest, which
    /// the lock's round trip computes on the node. `None`: the lock's round
    /// trip reads the node in full (docker) and narrows it here.
    pub digest: Option<crate::node::script::digest::DigestScope>,
}

impl NodeCheck {
    /// The hash of `ns` narrowed to this scope (`ObservedState::narrowed`), as JSON.
    pub fn narrowed_digest(&self, node: &str, ns: &crate::state::NodeState) -> String {
        let one = ObservedState {
            nodes: [(node.to_string(), ns.clone())].into(),
            resolved: BTreeMap::new(),
        };
        let ports = [(node.to_string(), self.ports.clone())].into();
        let names = [(node.to_string(), self.names.clone())].into();
        let narrowed = one.narrowed(&ports, &names);
        let json = serde_json::to_vec(&narrowed.nodes[node]).expect("node state serializes");
        crate::state::hex(&sha2::Sha256::digest(&json))
    }
}

/// The plan's fingerprint from each node's digest (`canon HEX` or `json HEX`)
/// and the DNS names resolved.
pub fn combined_fingerprint(
    nodes: &BTreeMap<String, String>,
    resolved: &BTreeMap<String, std::net::Ipv4Addr>,
) -> String {
    let mut h = sha2::Sha256::new();
    for (node, digest) in nodes {
        h.update(format!("node {node} {digest}\n").as_bytes());
    }
    h.update(b"resolved ");
    h.update(serde_json::to_vec(resolved).expect("names serialize"));
    crate::state::hex(&h.finalize())[..32].to_string()
}

impl Plan {
    /// The fingerprint of `state` as this plan sees it (`fingerprint_for`): equal
    /// to `self.fingerprint` when nothing the plan depends on moved.
    pub fn fingerprint_of(&self, state: &ObservedState) -> String {
        fingerprint_for(&self.desired, state)
    }
}

/// The plan for `destroy`: every container observed under this topology's label,
/// on every node (also ones no longer in the file, and copies), to delete. For a
/// topology with an id, see [`destroy_selected`].
pub fn destroy(topology: &str, state: &ObservedState) -> Plan {
    destroy_selected(topology, None, state, &Limit::All)
}

/// The plan for `destroy --target` / `--exclude`: as [`destroy`], only for the
/// containers `limit` allows (see `select` for what it pulls in). With `id`, a
/// container that carries another id is never part of it.
pub fn destroy_selected(
    topology: &str,
    id: Option<&str>,
    state: &ObservedState,
    limit: &Limit,
) -> Plan {
    let owned = owner::owned(id, state);
    let changes = owned
        .state
        .nodes
        .iter()
        .flat_map(|(node, ns)| {
            ns.containers
                .values()
                .chain(&ns.extras)
                .filter(|oc| limit.allows(&oc.container))
                .map(move |oc| delete_change(node, oc))
        })
        .collect();
    // The chain goes with the whole topology; a targeted destroy leaves it (the
    // next apply of the file keeps it in step with what remains).
    let node_changes = match limit {
        Limit::All => private::remove_all(topology, id, &owned.state),
        _ => Vec::new(),
    };
    Plan {
        topology: topology.to_string(),
        fingerprint: fingerprint_for(&[], state),
        recheck: recheck_for(&[], state),
        changes,
        drift: vec![],
        adopted: vec![],
        node_changes,
        not_durable: vec![],
        warnings: vec![],
        rolls: vec![],
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
        rules_before: diff::live_rules(oc),
        rules_after: Vec::new(),
        reasons: Vec::new(),
        observed_id: Some(oc.id.clone()),
        observed_image: Some(oc.image.clone()),
        desired: None,
        rules_file: oc.rules_file.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
