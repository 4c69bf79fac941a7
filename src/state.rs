//! What geartopo observed on the nodes: containers carrying this topology's labels,
//! their owned chains and sysctls, and the ports already taken. Plain data, built by
//! `observe`, read by `plan`; serializable so a saved plan can fingerprint it.
//! No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::nft::NftTable;
use crate::private_ports::NodeFilter;
use crate::topology::model::Protocol;

/// Everything read from every node in one observation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedState {
    /// By node name; every node of the topology has an entry.
    pub nodes: BTreeMap<String, NodeState>,
    /// DNS names used by the topology (node addresses, raw link hosts), resolved here.
    pub resolved: BTreeMap<String, Ipv4Addr>,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Containers carrying this topology's label, by container name (`db-2`).
    pub containers: BTreeMap<String, ObservedContainer>,
    /// Host ports taken on the node: listening sockets and every container's
    /// published ports (any owner).
    pub taken_ports: BTreeSet<(ProtocolName, u16)>,
    /// The name of every container on the node, whoever owns it.
    #[serde(default)]
    pub names: BTreeSet<String>,
    /// Further containers carrying this topology's label and a container name
    /// already in `containers` (copies made outside geartopo): to be removed.
    #[serde(default)]
    pub extras: Vec<ObservedContainer>,
    /// The private-ports chains in the node's own filter table, and its container
    /// networks (`private_ports`). Left out of the JSON when empty, so that a
    /// node without them fingerprints as before.
    #[serde(default, skip_serializing_if = "NodeFilter::is_empty")]
    pub filter: NodeFilter,
    /// What the node keeps for durable links; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable: Option<DurableState>,
    /// The file's images that are not on the node, and the registries its
    /// runtime's auth files have a login for (docs/fleets.md, "Private
    /// registries"); empty when every image is there.
    #[serde(default, skip_serializing_if = "ImageState::is_empty")]
    pub images: ImageState,
    /// Health checks tried by `show` (docs/rolling.md): runtime name -> healthy.
    /// Empty (and left out of the JSON and the fingerprint) for every other read.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, bool>,
    /// The node's volumes whose name starts with `<topology>-` (those this
    /// topology's named volumes could be), by name: the values of their
    /// `geartopo.topology` and `geartopo.id` labels (empty when absent). `None`
    /// when not read (the topology has no named volume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, (String, String)>>,
    /// The canonical lines of the read this state came from, for the lock's
    /// re-check by digest (`observe::digest`); none for a state not read from
    /// a podman node's observe output. Not part of the state's value.
    #[serde(skip)]
    pub canonical: crate::observe::digest::Canonical,
}

/// What plan needs to warn about images a node would have to pull.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageState {
    /// Images of this node's containers in the file that the runtime does not have.
    pub missing: BTreeSet<String>,
    /// Keys of the runtime's auth files (registry host names, never credentials);
    /// `*` when a credential helper or store may know any registry.
    pub logins: BTreeSet<String>,
}

impl ImageState {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.logins.is_empty()
    }
}

/// The node's hook program, hook file and rules files (docs/durable.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    /// `GEARTOPO_STATE_DIR` as the node resolves it (`-`: unusable).
    pub state_dir: String,
    /// `GEARTOPO_HOOKS_DIR` as the node resolves it.
    pub hooks_dir: String,
    /// `none` without systemd, else `systemctl is-enabled podman-restart.service`.
    pub systemd: String,
    /// Every file found, by path: (octal mode, sha256).
    pub files: BTreeMap<String, (String, String)>,
    /// On a docker node: the path dockerd has the runtime `geartopo` registered
    /// with (`Some("")`: not registered); `None` on podman.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_runtime: Option<String>,
}

/// `tcp` / `udp`, serializable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolName {
    Tcp,
    Udp,
}

impl From<Protocol> for ProtocolName {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => ProtocolName::Tcp,
            Protocol::Udp => ProtocolName::Udp,
        }
    }
}

impl From<ProtocolName> for Protocol {
    fn from(p: ProtocolName) -> Self {
        match p {
            ProtocolName::Tcp => Protocol::Tcp,
            ProtocolName::Udp => Protocol::Udp,
        }
    }
}

/// The run state of a container, as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Running,
    /// Created or initialized (podman `init`), not started.
    Created,
    /// Exited, stopped, dead, paused...: whatever it is, not running.
    Stopped(String),
}

/// A container owned by this topology, as found on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedContainer {
    /// The runtime's id.
    pub id: String,
    /// The runtime name (`todo-app1`).
    pub runtime_name: String,
    /// Label `geartopo.container`.
    pub container: String,
    /// Label `geartopo.spec`: per attribute hashes, `image=..,command=..`.
    pub spec: BTreeMap<String, String>,
    /// Label `geartopo.rules`: the name of its rules file, for a container made
    /// durable (docs/durable.md); `None` for one made before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_file: Option<String>,
    /// Label `geartopo.id`: the id of the topology that created it; `None` for
    /// containers made before ids (or by a file without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// The image as the runtime reports it.
    pub image: String,
    pub state: RunState,
    /// Docker's `HostConfig.Runtime` (`runc`, `geartopo`); `None` on podman.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_runtime: Option<String>,
    /// The namespace's pid, when there is a namespace.
    pub pid: Option<u32>,
    /// Published ports, sorted.
    pub published: Vec<PublishedPort>,
    /// The owned chains in its nat and filter tables; `None` when it has no namespace.
    pub chains: Option<OwnedChains>,
    /// geartopo's nft table (`table ip geartopo`) in its namespace, normalized
    /// (`nft::read`); `None` when there is none, no namespace, or no nft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nft: Option<NftTable>,
    /// `net.ipv4.ip_forward` and `net.ipv4.conf.all.route_localnet`, when readable.
    pub sysctls: BTreeMap<String, String>,
    /// Its network namespace is the node's own (host networking, made or changed
    /// by hand): nothing was read in it, and plan refuses to touch it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub host_network: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One published port of an observed container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PublishedPort {
    pub protocol: ProtocolName,
    /// Inside the container.
    pub port: u16,
    /// On the node.
    pub host_port: u16,
}

impl ObservedContainer {
    /// The host port a container port is published on.
    pub fn host_port(&self, protocol: Protocol, port: u16) -> Option<u16> {
        let protocol = ProtocolName::from(protocol);
        self.published
            .iter()
            .find(|p| p.protocol == protocol && p.port == port)
            .map(|p| p.host_port)
    }
}

/// The owned part of a container's nat and filter tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedChains {
    /// Which of the owned chains exist.
    pub declared: BTreeSet<String>,
    /// Rule lines (`-A GEARTOPO-...`) in iptables-save's form, in order, without the marker.
    pub rules: Vec<String>,
    /// The hash recorded in the marker rule by the last apply, if present.
    pub marker: Option<String>,
    /// How many times each built-in chain jumps into its owned chain.
    pub jumps: BTreeMap<String, usize>,
}

impl OwnedChains {
    /// Nothing of geartopo's in the iptables tables (a namespace on nftables, or
    /// one never given rules).
    pub fn is_empty(&self) -> bool {
        self.declared.is_empty()
            && self.rules.is_empty()
            && self.marker.is_none()
            && self.jumps.values().all(|n| *n == 0)
    }
}

impl ObservedState {
    /// A stable fingerprint of everything observed (empty state included), for saved plans.
    pub fn fingerprint(&self) -> String {
        // The JSON is hashed as it is written: at 10,000 containers it is tens of
        // megabytes that need never be held at once.
        let mut hasher = HashWriter(Sha256::new());
        serde_json::to_writer(&mut hasher, self).expect("observed state serializes");
        hex(&hasher.0.finalize())[..32].to_string()
    }
}

impl ObservedContainer {
    /// This container by its identity alone (what a removal depends on): its
    /// process, ports, chains and sysctls left out.
    fn by_identity(&self) -> ObservedContainer {
        ObservedContainer {
            state: RunState::Created,
            pid: None,
            published: vec![],
            chains: None,
            sysctls: BTreeMap::new(),
            host_network: false,
            nft: None,
            ..self.clone()
        }
    }
}

impl ObservedState {
    /// This state with each node's taken ports and container names cut down to
    /// `ports` and `names` of that node (what a plan depends on; see
    /// `plan::fingerprint_for`). Containers the plan keeps are kept whole; one it
    /// only removes, by its identity.
    pub fn narrowed(
        &self,
        ports: &BTreeMap<String, BTreeSet<(ProtocolName, u16)>>,
        names: &BTreeMap<String, BTreeSet<String>>,
    ) -> ObservedState {
        let none_p = BTreeSet::new();
        let none_n = BTreeSet::new();
        let nodes = self
            .nodes
            .iter()
            .map(|(node, ns)| {
                let ports = ports.get(node).unwrap_or(&none_p);
                let names = names.get(node).unwrap_or(&none_n);
                // A container the plan only removes (its name is not one the plan's
                // containers take) matters by its identity alone: its process
                // coming and going (a crash loop under a restart policy) does not
                // change what the removal does.
                let containers = ns
                    .containers
                    .iter()
                    .map(|(k, c)| {
                        let c = if names.contains(&c.runtime_name) {
                            c.clone()
                        } else {
                            c.by_identity()
                        };
                        (k.clone(), c)
                    })
                    .collect();
                let ns = NodeState {
                    containers,
                    taken_ports: ns.taken_ports.intersection(ports).copied().collect(),
                    names: ns.names.intersection(names).cloned().collect(),
                    extras: ns.extras.clone(),
                    // The node's own chains; and of its durable-link files, the
                    // hook's and this topology's rules files only: another
                    // topology's apply on the node is not a change to this plan.
                    filter: ns.filter.clone(),
                    durable: ns.durable.as_ref().map(|d| {
                        let ours: BTreeSet<&str> = ns
                            .containers
                            .values()
                            .filter_map(|c| c.rules_file.as_deref())
                            .collect();
                        let mut d = d.clone();
                        d.files.retain(|path, _| {
                            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
                            !dir.ends_with("/rules") || ours.contains(file)
                        });
                        d
                    }),
                    // Missing images only make a warning: not part of a plan.
                    images: Default::default(),
                    // What show tried: not part of what a plan depends on.
                    health: BTreeMap::new(),
                    // Not re-checked (nor in the node's digest): the create step
                    // itself refuses a volume of that name owned by another.
                    volumes: None,
                    canonical: ns.canonical.clone(),
                };
                (node.clone(), ns)
            })
            .collect();
        ObservedState {
            nodes,
            resolved: self.resolved.clone(),
        }
    }
}

/// Feeds what is written into a hash.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// A short stable hash of text.
pub fn short_hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_state_and_is_stable() {
        let empty = ObservedState::default();
        assert_eq!(empty.fingerprint(), ObservedState::default().fingerprint());
        let mut other = ObservedState::default();
        other.nodes.insert("node1".into(), NodeState::default());
        assert_ne!(empty.fingerprint(), other.fingerprint());
    }

    #[test]
    fn fingerprint_is_the_hash_of_the_state_as_json() {
        // Saved plans record it: hashing as the JSON is written must give what
        // hashing the whole JSON at once gave.
        let mut state = ObservedState::default();
        state.nodes.insert("node1".into(), NodeState::default());
        state
            .resolved
            .insert("db.example".into(), Ipv4Addr::new(198, 18, 0, 9));
        let json = serde_json::to_vec(&state).unwrap();
        let whole: String = Sha256::digest(&json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(state.fingerprint(), whole[..32]);
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
