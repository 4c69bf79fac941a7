//! The validated topology: what every later stage (graph, plan, apply, lab) works on.
//! No serde, no spans, no raw input here: a `Topology` is only ever built by
//! `topology::check` from a file that passed validation, so every name in it is
//! safe to put into a remote command line and every reference resolves.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

/// A whole validated topology, with replicas and views expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// `[a-z0-9-]`, at most 32 characters; prefixes every runtime name.
    pub name: String,
    /// The topology's id (hex digits or a UUID, lowercased), recorded on every
    /// container it creates; `None` in files written before ids (ownership by name).
    pub id: Option<String>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, Node>,
    /// Concrete containers after replica expansion (`db-1`, `db-2`, ...), in file order.
    pub containers: Vec<Container>,
    /// Views, with their members expanded to concrete container names.
    pub views: Vec<View>,
}

/// Where a node is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeAddress {
    /// This machine, no SSH.
    Local,
    /// An IP address or a DNS name, reached over SSH.
    Remote(String),
}

/// The container runtime on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Runtime {
    Podman,
    Docker,
}

impl Runtime {
    /// The runtime's binary name, as run on the node.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Podman => "podman",
            Runtime::Docker => "docker",
        }
    }
}

/// How a node's container firewalls are driven: which program's rules carry a
/// container's links, route_localnet guard and marker in its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Firewall {
    /// Owned chains (`GEARTOPO-*`) in the nat and filter tables, written with
    /// `iptables-restore --noflush`, read with `iptables-save`. The default: see
    /// docs/design-notes.md ("Firewall backend: iptables by default").
    #[default]
    Iptables,
    /// One table of geartopo's own, `table ip geartopo`, written with one
    /// `nft -f` transaction, read with `nft -j` (docs/nftables.md).
    Nftables,
}

impl Firewall {
    /// The name in the topology file (and in a rules file's first line).
    pub fn as_str(self) -> &'static str {
        match self {
            Firewall::Iptables => "iptables",
            Firewall::Nftables => "nftables",
        }
    }
}

/// An inclusive range of host ports to pick from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// One host, with the defaults already merged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub address: NodeAddress,
    pub user: String,
    pub port: u16,
    /// Explicit key file (tilde expanded); `None`: ssh-agent, then `~/.ssh/id_*`.
    pub identity: Option<PathBuf>,
    /// Tilde expanded.
    pub known_hosts: PathBuf,
    pub runtime: Runtime,
    /// The firewall backend of its containers' namespaces.
    pub firewall: Firewall,
    pub host_ports: PortRange,
    /// Where SSH connects when not `address` (which stays the target of links).
    pub ssh_host: Option<String>,
    /// Every remote script runs through `sudo -n` (a non-root `user`).
    pub sudo: bool,
    /// `Some`: reached with the system's OpenSSH client, with what the topology
    /// itself sets (the rest comes from ssh_config); `None`: the built-in client.
    pub openssh: Option<OpenSsh>,
}

/// What the topology sets for a node reached with OpenSSH: it wins over
/// ssh_config, which wins over geartopo's defaults (which are not passed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenSsh {
    /// `user` of the node or `[defaults]`, when written.
    pub user: Option<String>,
    /// `port` of the node or `[defaults]`, when written.
    pub port: Option<u16>,
    /// `known_hosts` of the node or `[defaults]`, when written.
    pub known_hosts: Option<PathBuf>,
    /// `ssh_jump`: the node (of the same topology) SSH reaches this one through.
    pub jump: Option<Box<Node>>,
}

impl Node {
    /// The host SSH connects to: `ssh_host`, else the address; `None` for `local`.
    pub fn ssh_target(&self) -> Option<&str> {
        match (&self.ssh_host, &self.address) {
            (Some(h), _) => Some(h),
            (None, NodeAddress::Remote(a)) => Some(a),
            (None, NodeAddress::Local) => None,
        }
    }
}

/// Transport protocol of a published port or a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A container port published on its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Publish {
    /// The port inside the container.
    pub port: u16,
    /// The port on the node; `None`: picked at plan time, then kept.
    pub host_port: Option<u16>,
    pub protocol: Protocol,
    /// Open only to the nodes whose containers link to it (an owned chain in the
    /// node's filter table); `false`: open to every host that reaches the node.
    pub private: bool,
}

/// An environment value; secret ones are never printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvValue {
    pub value: String,
    pub secret: bool,
}

/// What a link leads to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkTarget {
    /// A container of this topology and one of its published container ports;
    /// resolved at plan time to the target node's address and host port.
    Container { container: String, port: u16 },
    /// A raw endpoint (geard's `-n` form or `HOST:PORT`).
    Raw { host: String, port: u16 },
    /// The container itself (a view member reaching its own view address):
    /// DNAT to 127.0.0.1 and this container port.
    Loopback { port: u16 },
}

/// Why a link exists; used in rule comments and in `links` output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkOrigin {
    /// Declared in `links`, the N-th entry (0-based) of the declaring container.
    Declared { index: usize },
    /// Comes from view membership or observation.
    View { view: String },
}

/// One concrete link inside a container's network namespace:
/// traffic to `listen_ip:listen_port` goes to `target`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub listen_ip: Ipv4Addr,
    pub listen_port: u16,
    pub protocol: Protocol,
    pub target: LinkTarget,
    pub origin: LinkOrigin,
}

/// One concrete container (a replica is one container).
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// `app1`, or `db-2` for replica 2 of `db`.
    pub name: String,
    /// The name as declared (`db` for `db-2`).
    pub declared: String,
    /// 1-based replica number for replicated containers.
    pub replica: Option<u32>,
    pub node: String,
    pub image: String,
    /// Empty: the image's default command.
    pub command: Vec<String>,
    /// User environment, then the identity environment (`GEARTOPO_*`), merged.
    pub env: BTreeMap<String, EnvValue>,
    pub publish: Vec<Publish>,
    /// Concrete links after view expansion, in a stable order.
    pub links: Vec<Link>,
    /// What the runtime does when its process ends (and at a node's boot).
    pub restart: RestartPolicy,
    /// A check geartopo runs itself (docs/rolling.md); never part of the spec hash:
    /// changing it replaces nothing.
    pub health: Option<Health>,
    /// At most this many of the container's replicas are down at once during a
    /// rolling replacement (default 1).
    pub max_unavailable: u32,
    /// Named volumes and bind mounts, in file order (docs/volumes.md).
    pub volumes: Vec<Mount>,
    /// Limits, user, capabilities, stop behaviour, labels.
    pub options: ContainerOptions,
}

/// What makes a container healthy: a TCP port that accepts a connection on
/// 127.0.0.1 in its network namespace, or a command run inside it that exits 0.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    Tcp(u16),
    Command(Vec<String>),
}

/// A health check: tried up to `retries` times, `interval_ms` apart, each try
/// given `timeout_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Health {
    pub probe: Probe,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
}

/// One mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub source: MountSource,
    /// Absolute, normalized, of characters safe on a command line.
    pub target: String,
    pub read_only: bool,
}

/// What a mount mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A volume the topology owns, by its name in the file (`data`); on the
    /// node it is `volume_name(runtime name, name)`.
    Volume(String),
    /// A node path: absolute, normalized, allowed on its node.
    Bind(String),
}

/// The name a named volume has on its node: `<runtime name>.<volume>`
/// (`shop-db-2.data`). A volume name has no `.`, so the split is unique.
pub fn volume_name(runtime_name: &str, volume: &str) -> String {
    format!("{runtime_name}.{volume}")
}

/// Create-time options beyond image, command, env and publish; all optional.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerOptions {
    /// `--memory`, normalized (`512m`).
    pub memory: Option<String>,
    /// `--cpus`, as written in decimal (`1.5`).
    pub cpus: Option<String>,
    /// `--user`.
    pub user: Option<String>,
    /// Upper case, without `CAP_`.
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `SIGTERM` form.
    pub stop_signal: Option<String>,
    /// Seconds.
    pub stop_timeout: Option<u32>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// Extra labels (none with geartopo's own prefix).
    pub labels: BTreeMap<String, String>,
}

impl ContainerOptions {
    /// Whether nothing is set (a container whose spec label has no `options`).
    pub fn is_empty(&self) -> bool {
        *self == ContainerOptions::default()
    }

    /// The runtime's create arguments for these options, in a fixed order (the
    /// same on podman and docker).
    pub fn create_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut push = |k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        if let Some(m) = &self.memory {
            push("--memory", m.clone());
        }
        if let Some(c) = &self.cpus {
            push("--cpus", c.clone());
        }
        if let Some(u) = &self.user {
            push("--user", u.clone());
        }
        for c in &self.cap_add {
            push("--cap-add", c.clone());
        }
        for c in &self.cap_drop {
            push("--cap-drop", c.clone());
        }
        if let Some(s) = &self.stop_signal {
            push("--stop-signal", s.clone());
        }
        if let Some(t) = self.stop_timeout {
            push("--stop-timeout", t.to_string());
        }
        if self.read_only {
            a.push("--read-only".to_string());
        }
        for (k, v) in &self.labels {
            a.push("--label".to_string());
            a.push(format!("{k}={v}"));
        }
        a
    }
}

/// A restart policy, as podman and docker name it (`--restart`). The default,
/// `always`, is the one under which a rebooted node brings the container back by
/// the runtime's own boot mechanism (podman's `podman-restart` service starts
/// exactly the containers whose policy is `always`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    No,
    /// `on-failure`, or `on-failure:N` (at most N restarts).
    OnFailure(Option<u32>),
    #[default]
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses the runtime's own spelling; `None` for anything else.
    pub fn parse(text: &str) -> Option<RestartPolicy> {
        match text {
            "no" => Some(RestartPolicy::No),
            "on-failure" => Some(RestartPolicy::OnFailure(None)),
            "always" => Some(RestartPolicy::Always),
            "unless-stopped" => Some(RestartPolicy::UnlessStopped),
            _ => {
                let n = text.strip_prefix("on-failure:")?;
                // Digits only: `+3` or ` 3` would parse as a number but are not
                // what the runtime's own parser takes.
                if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(RestartPolicy::OnFailure(Some(n.parse().ok()?)))
            }
        }
    }

    /// The value of `--restart`, as the runtime spells it.
    pub fn as_arg(self) -> String {
        match self {
            RestartPolicy::No => "no".into(),
            RestartPolicy::OnFailure(None) => "on-failure".into(),
            RestartPolicy::OnFailure(Some(n)) => format!("on-failure:{n}"),
            RestartPolicy::Always => "always".into(),
            RestartPolicy::UnlessStopped => "unless-stopped".into(),
        }
    }
}

impl Container {
    /// The name the runtime knows it by on its node: `<topology>-<container>`.
    pub fn runtime_name(&self, topology: &str) -> String {
        format!("{topology}-{}", self.name)
    }
}

/// A same-view cluster: member i is seen at `subnet`'s i-th host address by every
/// member and observer, on every port of `ports`.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub name: String,
    /// Concrete container names, in order (member 1 first).
    pub members: Vec<String>,
    /// Concrete container names.
    pub observers: Vec<String>,
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    pub ports: Vec<u16>,
    /// At most this many members are down at once during a rolling replacement
    /// (default 1).
    pub max_unavailable: u32,
}

impl View {
    /// The view address of member `i` (1-based).
    pub fn address(&self, i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) + i)
    }
}

impl Topology {
    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name == name)
    }
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }
}
