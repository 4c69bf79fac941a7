//! Serde types that mirror the TOML, with spans, and the reader that fills them.
//! No validation beyond the file's shape (keys and value types) happens here:
//! `check` turns these into the model. Nothing outside `topology` sees these types.
//!
//! The file is parsed once with `toml_edit`, then every entry of `[nodes]`,
//! `[containers]` and `[views]` is deserialized on its own, so that one bad entry
//! (a typo'd key, a string where a port goes) does not hide the problems of the others.

use std::collections::BTreeMap;
use std::ops::Range;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_spanned::Spanned;
use toml_edit::Item;

use super::diag::Problem;

// The whole file as one type: the JSON Schema is generated from it. The reader
// fills `Document` instead, so that entries keep their file order and their
// problems are found one entry at a time.
/// A geartopo topology: nodes, containers, and same-view clusters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "geartopo topology")]
pub struct RawTopology {
    /// The topology's name: `[a-z0-9-]`, 1 to 32 characters. It owns everything it
    /// creates and prefixes every container's runtime name.
    pub name: String,
    /// Who owns what this topology creates, beside its name: 16 to 64 hex digits or a
    /// UUID, made once (`geartopo validate` prints a fresh one) and never changed. A
    /// topology with an id leaves containers of another id alone, so two topologies
    /// of the same name can share nodes.
    #[schemars(regex(
        pattern = r"^([0-9a-fA-F]{16,64}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    ))]
    pub id: Option<String>,
    /// What every node inherits.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Hosts, by name.
    #[serde(default)]
    pub nodes: BTreeMap<String, RawNode>,
    /// Containers, by name; a replicated container expands to `NAME-1`, `NAME-2`, ...
    #[serde(default)]
    pub containers: BTreeMap<String, RawContainer>,
    /// Same-view clusters, by name.
    #[serde(default)]
    pub views: BTreeMap<String, RawView>,
}

/// The container runtime on a node.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawRuntime {
    Podman,
    Docker,
}

/// The firewall backend of a node's containers.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawFirewall {
    Iptables,
    Nftables,
}

/// A transport protocol.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawProtocol {
    Tcp,
    Udp,
}

/// `[defaults]`: what every node inherits.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// SSH user (default `root`).
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// SSH port (default 22).
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// SSH key file; `~` is the home directory. Default: ssh-agent, then `~/.ssh/id_*`.
    #[schemars(with = "Option<String>")]
    pub identity: Option<Spanned<String>>,
    /// Known hosts file (default `~/.ssh/known_hosts`).
    #[schemars(with = "Option<String>")]
    pub known_hosts: Option<Spanned<String>>,
    /// Container runtime (default `podman`).
    #[schemars(with = "Option<RawRuntime>")]
    pub runtime: Option<Spanned<RawRuntime>>,
    /// Firewall backend in each container's namespace (default `iptables`).
    #[schemars(with = "Option<RawFirewall>")]
    pub firewall: Option<Spanned<RawFirewall>>,
    /// Where host ports are picked when a publish gives none: `"FIRST-LAST"` (default `"4000-60000"`).
    #[schemars(with = "Option<String>")]
    pub host_ports: Option<Spanned<String>>,
    /// Every published port is private (docs/private-ports.md) unless a container
    /// or a publish says otherwise (default `false`).
    #[schemars(with = "Option<bool>")]
    pub private_ports: Option<Spanned<bool>>,
    /// Every container's restart policy, as podman and docker name it: `no`,
    /// `on-failure`, `on-failure:N`, `always` (default), `unless-stopped`.
    #[schemars(with = "Option<String>")]
    pub restart: Option<Spanned<String>>,
    /// Run every remote script through `sudo -n` (default `false`): for a `user`
    /// that is not root but may become root without a password.
    #[schemars(with = "Option<bool>")]
    pub sudo: Option<Spanned<bool>>,
    /// SSH client: `ssh2` (built in, the default) or `openssh` (the system's `ssh`,
    /// which reads `~/.ssh/config`).
    #[schemars(with = "Option<RawTransport>")]
    pub transport: Option<Spanned<RawTransport>>,
    /// System paths (`/`, `/etc`, `/run`, the runtime's storage, ...) that
    /// containers on every node may bind-mount: the path and what is under it.
    #[schemars(with = "Option<Vec<String>>")]
    pub allow_binds: Option<Spanned<Vec<Spanned<String>>>>,
}

/// The SSH client a node is reached with.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawTransport {
    Ssh2,
    Openssh,
}

/// `[nodes.NAME]`: one host.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// An IPv4 address, a DNS name, or `local` (this machine, no SSH).
    #[schemars(with = "String")]
    pub address: Spanned<String>,
    /// Overrides `defaults.user`.
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Overrides `defaults.port`.
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// Overrides `defaults.identity`.
    #[schemars(with = "Option<String>")]
    pub identity: Option<Spanned<String>>,
    /// Overrides `defaults.known_hosts`.
    #[schemars(with = "Option<String>")]
    pub known_hosts: Option<Spanned<String>>,
    /// Overrides `defaults.runtime`.
    #[schemars(with = "Option<RawRuntime>")]
    pub runtime: Option<Spanned<RawRuntime>>,
    /// Overrides `defaults.firewall`.
    #[schemars(with = "Option<RawFirewall>")]
    pub firewall: Option<Spanned<RawFirewall>>,
    /// Overrides `defaults.host_ports`.
    #[schemars(with = "Option<String>")]
    pub host_ports: Option<Spanned<String>>,
    /// Where SSH connects, when not `address`: a DNS name, an IP address (with the
    /// OpenSSH transport also a `~/.ssh/config` Host alias). `address` stays what
    /// links lead to.
    #[schemars(with = "Option<String>")]
    pub ssh_host: Option<Spanned<String>>,
    /// Overrides `defaults.sudo`.
    #[schemars(with = "Option<bool>")]
    pub sudo: Option<Spanned<bool>>,
    /// Overrides `defaults.transport`.
    #[schemars(with = "Option<RawTransport>")]
    pub transport: Option<Spanned<RawTransport>>,
    /// Another node of the topology through which SSH reaches this one (a
    /// bastion: ProxyJump as geartopo reaches that node). Needs `transport =
    /// "openssh"`; jumps that only ssh_config knows need no setting here.
    #[schemars(with = "Option<String>")]
    pub ssh_jump: Option<Spanned<String>>,
    /// System paths that containers on this node may bind-mount (`/etc/ssl`): the
    /// path and what is under it. Adds to `defaults.allow_binds`.
    #[schemars(with = "Option<Vec<String>>")]
    pub allow_binds: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[containers.NAME]`: one container, or `replicas` of it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawContainer {
    /// The node it runs on (or, for a replicated container, where all replicas run).
    #[schemars(with = "Option<String>")]
    pub node: Option<Spanned<String>>,
    /// Replicated containers: the nodes replicas are placed on, round-robin.
    #[schemars(with = "Option<Vec<String>>")]
    pub nodes: Option<Spanned<Vec<Spanned<String>>>>,
    /// How many replicas (`NAME-1` ... `NAME-N`).
    #[schemars(with = "Option<u32>", range(min = 1, max = 256))]
    pub replicas: Option<Spanned<i64>>,
    /// The image reference.
    #[schemars(with = "String")]
    pub image: Spanned<String>,
    /// Command and arguments; omitted: the image's default.
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Environment: `KEY = "value"` or `KEY = { value = "...", secret = true }`.
    #[schemars(with = "Option<BTreeMap<String, RawEnvValue>>")]
    pub env: Option<Spanned<BTreeMap<Spanned<String>, Spanned<RawEnvValue>>>>,
    /// Published container ports.
    #[schemars(with = "Option<Vec<RawPublish>>")]
    pub publish: Option<Vec<Spanned<RawPublish>>>,
    /// This container's published ports are private: open only to the nodes that
    /// link to them (docs/private-ports.md). Overrides `defaults.private_ports`.
    #[schemars(with = "Option<bool>")]
    pub private_ports: Option<Spanned<bool>>,
    /// Links: `{ to = "CONTAINER:PORT" }` or geard's `"[LOCAL_IP:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT"`.
    #[schemars(with = "Option<Vec<RawLink>>")]
    pub links: Option<Vec<Spanned<RawLink>>>,
    /// Overrides `defaults.restart`.
    #[schemars(with = "Option<String>")]
    pub restart: Option<Spanned<String>>,
    /// A health check geartopo runs (docs/rolling.md):
    /// `{ tcp = 2379 }` or `{ command = ["CMD", "ARG"] }`, with `interval`,
    /// `timeout` (`1s`, `500ms`) and `retries`.
    #[schemars(with = "Option<RawHealth>")]
    pub health: Option<Spanned<RawHealth>>,
    /// At most this many replicas are down at once while they are replaced one
    /// after another (default 1).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_unavailable: Option<Spanned<i64>>,
    /// Mounts: `{ name = "data", target = "/data" }` (a named volume the topology
    /// owns, one per replica) or `{ source = "/srv/conf", target = "/conf" }` (a
    /// bind mount of a node path); `read_only = true` for either (docs/volumes.md).
    #[schemars(with = "Option<Vec<RawVolume>>")]
    pub volumes: Option<Vec<Spanned<RawVolume>>>,
    /// Memory limit: a number of bytes with an optional unit b, k, m or g (`512m`).
    #[schemars(with = "Option<String>")]
    pub memory: Option<Spanned<String>>,
    /// CPU limit, in CPUs (`1.5`).
    #[schemars(with = "Option<f64>")]
    pub cpus: Option<Spanned<RawNumber>>,
    /// The user the process runs as: `NAME`, `UID` or `UID:GID` (`999:999`).
    #[schemars(with = "Option<String>")]
    pub user: Option<Spanned<String>>,
    /// Capabilities added (`NET_ADMIN`, or `CAP_NET_ADMIN`).
    #[schemars(with = "Option<Vec<String>>")]
    pub cap_add: Option<Spanned<Vec<Spanned<String>>>>,
    /// Capabilities dropped (`ALL` drops every one).
    #[schemars(with = "Option<Vec<String>>")]
    pub cap_drop: Option<Spanned<Vec<Spanned<String>>>>,
    /// The signal that stops the container (`SIGTERM`, `SIGINT`, ...).
    #[schemars(with = "Option<String>")]
    pub stop_signal: Option<Spanned<String>>,
    /// How long a stop waits before killing: `"30s"`, `"2m"`, or seconds.
    #[schemars(with = "Option<String>")]
    pub stop_timeout: Option<Spanned<RawNumber>>,
    /// A read-only root filesystem (default `false`).
    #[schemars(with = "Option<bool>")]
    pub read_only: Option<Spanned<bool>>,
    /// Extra labels on the container; keys must not start with `geartopo.`.
    #[schemars(with = "Option<BTreeMap<String, String>>")]
    pub labels: Option<Spanned<BTreeMap<Spanned<String>, Spanned<String>>>>,
}

/// A health check: exactly one of `tcp` and `command`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// A port that accepts a TCP connection on 127.0.0.1 inside the container.
    #[schemars(with = "Option<u16>")]
    pub tcp: Option<Spanned<u16>>,
    /// A command run inside the container (`podman exec`); exit 0 is healthy.
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
    /// Time between two tries (default `1s`).
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    /// How long one try may take (default `2s`).
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// How many tries before the container counts as unhealthy (default 30).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub retries: Option<Spanned<i64>>,
}

/// One mount of a container: a named volume (`name`) or a node path (`source`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVolume {
    /// A named volume of the topology: `[a-z0-9_]`, 1 to 32 characters.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// A bind mount: an absolute, normalized path on the node.
    #[schemars(with = "Option<String>")]
    pub source: Option<Spanned<String>>,
    /// Where the container sees it: an absolute, normalized path.
    #[schemars(with = "String")]
    pub target: Spanned<String>,
    /// Mounted read-only (default `false`).
    #[schemars(with = "Option<bool>")]
    pub read_only: Option<Spanned<bool>>,
}

/// A number or a string as written (`cpus = 2`, `cpus = 1.5`, `stop_timeout = "30s"`).
#[derive(Debug, Clone, PartialEq)]
pub enum RawNumber {
    Int(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawNumber, E> {
                Ok(RawNumber::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawNumber, E> {
                Ok(RawNumber::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawNumber, E> {
                Ok(RawNumber::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNumber, E> {
                Ok(RawNumber::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One published port.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPublish {
    /// The port inside the container.
    #[schemars(with = "u16")]
    pub port: Spanned<u16>,
    /// The port on the node; omitted: picked from `host_ports`, then kept.
    #[schemars(with = "Option<u16>")]
    pub host_port: Option<Spanned<u16>>,
    /// Default `tcp`.
    #[schemars(with = "Option<RawProtocol>")]
    pub protocol: Option<Spanned<RawProtocol>>,
    /// Open only to the nodes that link to it (docs/private-ports.md). Overrides
    /// the container's `private_ports`.
    #[schemars(with = "Option<bool>")]
    pub private: Option<Spanned<bool>>,
}

/// An environment value: a plain string, or a table that can mark it secret.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawEnvValue {
    Plain(String),
    Table(RawEnvTable),
}

/// `{ value = "...", secret = true }`: a secret value is never printed. Instead of
/// `value`, `from_env = "NAME"` (the geartopo process's environment) or
/// `from_file = "PATH"` (beside the topology, mode 0600 or 0400): both are secret.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvTable {
    /// The value, written in the file.
    #[serde(default, deserialize_with = "some_unechoed_string")]
    pub value: Option<String>,
    /// The name of a variable of geartopo's own environment that holds the value.
    pub from_env: Option<String>,
    /// A file holding the value (one trailing newline dropped), relative to the
    /// topology file's folder; group and others must have no access to it.
    pub from_file: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

fn some_unechoed_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    unechoed_string(d).map(Some)
}

/// A string; any other type is refused without echoing the value (serde's own
/// message would print it, and this value may be a secret).
fn unechoed_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
            Err(E::invalid_type(de::Unexpected::Other("an integer"), &self))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
            Err(E::invalid_type(de::Unexpected::Other("an integer"), &self))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
            Err(E::invalid_type(de::Unexpected::Other("a float"), &self))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
            Err(E::invalid_type(de::Unexpected::Other("a boolean"), &self))
        }
    }
    d.deserialize_any(V)
}

/// A link: the table form or geard's string form.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum RawLink {
    /// geard's `-n` form: `"[LOCAL_IP:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT"`.
    Geard(String),
    Table(RawLinkTable),
}

/// `{ to = "CONTAINER:PORT" | "HOST:PORT", listen = "IP:PORT", protocol = "tcp" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLinkTable {
    /// `CONTAINER:PORT` (a container of this topology, or a replica such as `db-2`)
    /// or a raw `HOST:PORT` (IPv4 address or fully qualified DNS name).
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    /// Where the container sees it; default `127.0.0.1` and the target port.
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// Default `tcp`.
    #[schemars(with = "Option<RawProtocol>")]
    pub protocol: Option<Spanned<RawProtocol>>,
}

/// `[views.NAME]`: every member and observer reaches member i at the subnet's
/// i-th host address, on every port of `ports`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawView {
    /// Containers or replicated containers, in order (member 1 first).
    #[schemars(with = "Vec<String>")]
    pub members: Spanned<Vec<Spanned<String>>>,
    /// Containers that see the view without being in it.
    #[schemars(with = "Option<Vec<String>>")]
    pub observers: Option<Spanned<Vec<Spanned<String>>>>,
    /// An IPv4 network in CIDR form, e.g. `192.168.1.0/24`.
    #[schemars(with = "String")]
    pub subnet: Spanned<String>,
    /// TCP ports every member publishes and every participant sees.
    #[schemars(with = "Vec<u16>")]
    pub ports: Spanned<Vec<Spanned<u16>>>,
    /// At most this many members are down at once while they are replaced one
    /// after another (default 1).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_unavailable: Option<Spanned<i64>>,
}

// The two either-or types dispatch on the value's TOML type by hand: serde's
// untagged enums buffer the value and lose the spans inside it.
impl<'de> Deserialize<'de> for RawLink {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawLink;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a link table `{ to = \"CONTAINER:PORT\" }` or a string \
                     \"[LOCAL_IP:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT\"",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawLink, E> {
                Ok(RawLink::Geard(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawLink, A::Error> {
                RawLinkTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawLink::Table)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawEnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEnvValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a table `{ value = \"...\", secret = true }` (or `{ from_env = \"NAME\" }`, `{ from_file = \"PATH\" }`)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEnvValue, E> {
                Ok(RawEnvValue::Plain(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEnvValue, A::Error> {
                RawEnvTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawEnvValue::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[section.NAME]` entry: its name, where the name is, and its value when
/// the value had the right shape (`None`: a problem was already reported).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub name: String,
    pub key_span: Range<usize>,
    pub value: Option<T>,
}

/// The file as read: what had the right shape, in file order.
#[derive(Debug, Default)]
pub(crate) struct Document {
    /// `None`: missing or not a string (reported).
    pub name: Option<Spanned<String>>,
    /// `None`: absent (a warning) or not a string (reported).
    pub id: Option<Spanned<String>>,
    pub defaults: RawDefaults,
    pub nodes: Vec<Entry<RawNode>>,
    pub containers: Vec<Entry<RawContainer>>,
    pub views: Vec<Entry<RawView>>,
    /// Where env values written in the table form are: masked in reports, since
    /// that form is how a value is marked secret (even when the table has a typo).
    pub masked: Vec<Range<usize>>,
}

/// The top-level keys, for "unknown key" help.
const TOP_KEYS: &[&str] = &["name", "id", "defaults", "nodes", "containers", "views"];

/// Reads `source` into a [`Document`], pushing a problem for every shape error.
/// Returns `None` only when the file is not TOML at all.
pub(crate) fn read(source: &str, problems: &mut Vec<Problem>) -> Option<Document> {
    let first = problems.len();
    let doc = read_document(source, problems);
    // Serde labels a missing key on the whole table; a `[header]` table spans many
    // lines, so keep only its first line (the header) to point at.
    for p in &mut problems[first..] {
        for l in &mut p.labels {
            if let Some(text) = source.get(l.span.clone()) {
                if let Some(nl) = text.find('\n') {
                    l.span.end = l.span.start + text[..nl].trim_end().len();
                }
            }
        }
    }
    doc
}

/// The label for a TOML syntax error. toml_edit 0.25's parser words some errors
/// differently from the 0.22 one that users (and the golden reports) know; those
/// keep their earlier wording and place. Any other error reads as the parser says.
fn syntax_error(message: &str, span: Range<usize>) -> (String, Range<usize>) {
    match message.trim_end() {
        "integer number overflowed" => (
            "number too large to fit in target type".to_owned(),
            span.start..span.start + 1,
        ),
        "unclosed table, expected `]`" => {
            ("invalid table header\nexpected `.`, `]`".to_owned(), span)
        }
        other => (other.to_owned(), span),
    }
}

fn read_document(source: &str, problems: &mut Vec<Problem>) -> Option<Document> {
    let doc = match toml_edit::Document::parse(source.to_owned()) {
        Ok(doc) => doc,
        Err(e) => {
            let (message, span) = syntax_error(e.message(), e.span().unwrap_or(0..0));
            problems.push(Problem::at("this is not valid TOML", span, message));
            return None;
        }
    };
    let root = doc.as_table();
    let masked = table_form_env_values(root);
    let mut out = Document::default();
    for (key, item) in root.iter() {
        let key_span = root.key(key).and_then(|k| k.span()).unwrap_or(0..0);
        match key {
            "name" => out.name = value(item.clone(), key_span, problems),
            "id" => out.id = value(item.clone(), key_span, problems),
            "defaults" => {
                if let Some(d) = value(item.clone(), key_span, problems) {
                    out.defaults = d;
                }
            }
            "nodes" => out.nodes = entries(item, key, key_span, problems),
            "containers" => out.containers = entries(item, key, key_span, problems),
            "views" => out.views = entries(item, key, key_span, problems),
            other => {
                let mut p = Problem::at(
                    format!("unknown key `{other}`"),
                    key_span,
                    "not a topology key",
                );
                p = p.help(
                    match super::names::closest(other, TOP_KEYS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("the top-level keys are {}", TOP_KEYS.join(", ")),
                    },
                );
                problems.push(p);
            }
        }
    }
    if out.name.is_none() && root.get("name").is_none() {
        problems.push(
            Problem::at(
                "the topology has no `name`",
                0..0,
                "expected `name = \"...\"` here",
            )
            .help("add a first line like `name = \"todo\"` ([a-z0-9-], at most 32 characters)"),
        );
    }
    out.masked = masked;
    Some(out)
}

/// Spans of `value` in every `env = { KEY = { value = "..." } }`, whatever else is wrong.
fn table_form_env_values(root: &toml_edit::Table) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let containers = root.get("containers").and_then(Item::as_table_like);
    for (_, c) in containers.into_iter().flat_map(|t| t.iter()) {
        let env = c
            .as_table_like()
            .and_then(|c| c.get("env"))
            .and_then(Item::as_table_like);
        for (_, v) in env.into_iter().flat_map(|t| t.iter()) {
            if let Some(span) = v
                .as_table_like()
                .and_then(|t| t.get("value"))
                .and_then(Item::span)
            {
                spans.push(span);
            }
        }
    }
    spans
}

/// Deserializes one item; a shape error becomes a problem labelled where it is.
/// Unknown keys are removed and the item tried again, so that every typo in an
/// entry is reported at once and the entry is still checked; any other shape error
/// gives up on the entry (`None`), because guessing its meaning would only add noise.
fn value<T: serde::de::DeserializeOwned>(
    mut item: Item,
    fallback: Range<usize>,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let fallback = item.span().unwrap_or(fallback);
    // Each round removes one key; the bound only guards against a parser surprise.
    for _ in 0..1000 {
        let e = match deserialize::<T>(item.clone()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let span = e.span().unwrap_or_else(|| fallback.clone());
        let (problem, unknown) = shape_problem(e.message(), span.clone());
        problems.push(problem);
        if !unknown {
            return None;
        }
        // Every other unknown key beside it goes in the same round: one round per
        // key made thousands of typos cost seconds (bench/hostile.sh,
        // `unknown-keys`: a deserialization of the whole entry per key).
        let allowed = unknown_field(e.message())
            .map(|(_, a)| a)
            .unwrap_or_default();
        let others = remove_key_and_unknown_siblings(&mut item, &span, &allowed)?;
        // Past the first MAX_SUGGESTIONS, no "did you mean" search (one edit
        // distance per allowed key each): thousands of typos in one entry stay cheap.
        let expected = expected_part(e.message());
        for (n, (key, key_span)) in others.into_iter().enumerate() {
            if n >= super::names::MAX_SUGGESTIONS {
                problems.push(
                    Problem::at(format!("unknown key `{key}`"), key_span, "unknown key")
                        .help(format!("allowed keys here: {}", allowed.join(", "))),
                );
                continue;
            }
            let message = format!("unknown field `{key}`, {expected}");
            problems.push(shape_problem(&message, key_span).0);
        }
    }
    None
}

/// `(key, allowed keys)` of serde's "unknown field `KEY`, expected ..." message.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.trim_end().strip_prefix("unknown field `")?;
    let (key, expected) = rest.split_once('`')?;
    Some((key, expected.split('`').skip(1).step_by(2).collect()))
}

/// The "expected ..." part of serde's unknown-field message.
fn expected_part(message: &str) -> &str {
    message
        .trim_end()
        .split_once("`, ")
        .map_or("there are no fields", |(_, e)| e)
}

/// Removes the key whose name is at `span` and, in the same table, every key
/// not in `allowed`; returns those others with their spans, in the table's order.
/// `None` when no key is at `span`.
fn remove_key_and_unknown_siblings(
    item: &mut Item,
    span: &Range<usize>,
    allowed: &[&str],
) -> Option<Vec<(String, Range<usize>)>> {
    /// Both kinds of table, with the `retain` each has (one pass: removing
    /// keys one by one shifts the rest each time, quadratic in the keys).
    trait Retain: toml_edit::TableLike {
        fn keep_only(&mut self, keep: &dyn Fn(&str) -> bool);
    }
    impl Retain for toml_edit::Table {
        fn keep_only(&mut self, keep: &dyn Fn(&str) -> bool) {
            self.retain(|k, _| keep(k));
        }
    }
    impl Retain for toml_edit::InlineTable {
        fn keep_only(&mut self, keep: &dyn Fn(&str) -> bool) {
            self.retain(|k, _| keep(k));
        }
    }
    fn in_table<T: Retain>(
        t: &mut T,
        span: &Range<usize>,
        allowed: &[&str],
    ) -> Option<Vec<(String, Range<usize>)>> {
        let hit = t
            .iter()
            .map(|(k, _)| k.to_owned())
            .find(|k| t.key(k).and_then(|k| k.span()).as_ref() == Some(span));
        if let Some(hit) = hit {
            let unknown: Vec<(String, Range<usize>)> = t
                .iter()
                .filter(|(k, _)| *k != hit && !allowed.contains(k))
                .filter_map(|(k, _)| Some((k.to_owned(), t.key(k)?.span()?)))
                .collect();
            let gone: std::collections::HashSet<&str> =
                unknown.iter().map(|(k, _)| k.as_str()).collect();
            t.keep_only(&|k| k != hit && !gone.contains(k));
            return Some(unknown);
        }
        t.iter_mut()
            .find_map(|(_, item)| in_item(item, span, allowed))
    }
    fn in_value(
        v: &mut toml_edit::Value,
        span: &Range<usize>,
        allowed: &[&str],
    ) -> Option<Vec<(String, Range<usize>)>> {
        match v {
            toml_edit::Value::InlineTable(t) => in_table(t, span, allowed),
            toml_edit::Value::Array(a) => a.iter_mut().find_map(|v| in_value(v, span, allowed)),
            _ => None,
        }
    }
    fn in_item(
        item: &mut Item,
        span: &Range<usize>,
        allowed: &[&str],
    ) -> Option<Vec<(String, Range<usize>)>> {
        match item {
            Item::Value(v) => in_value(v, span, allowed),
            Item::Table(t) => in_table(t, span, allowed),
            Item::ArrayOfTables(a) => a.iter_mut().find_map(|t| in_table(t, span, allowed)),
            Item::None => None,
        }
    }
    in_item(item, span, allowed)
}

/// Deserializes an item, keeping spans. A `[header]` table goes through a document:
/// `Item::into_value` would reformat its keys and drop their spans.
fn deserialize<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, toml_edit::de::Error> {
    match item {
        Item::Table(t) => T::deserialize(toml_edit::de::Deserializer::from(
            toml_edit::DocumentMut::from(t),
        )),
        Item::Value(v) => T::deserialize(serde::de::IntoDeserializer::into_deserializer(v)),
        Item::None => Err(serde::de::Error::custom("expected a value")),
        other => match other.into_value() {
            Ok(v) => T::deserialize(serde::de::IntoDeserializer::into_deserializer(v)),
            Err(_) => Err(serde::de::Error::custom("expected a value")),
        },
    }
}

/// Turns a serde message into a problem; `true` when it is about an unknown key.
fn shape_problem(message: &str, span: Range<usize>) -> (Problem, bool) {
    let m = message.trim_end();
    if let Some(rest) = m.strip_prefix("unknown field `") {
        if let Some((key, expected)) = rest.split_once('`') {
            let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
            let help = match super::names::closest(key, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if allowed.is_empty() => "no keys are allowed here".to_owned(),
                None => format!("allowed keys here: {}", allowed.join(", ")),
            };
            let p = Problem::at(format!("unknown key `{key}`"), span, "unknown key").help(help);
            return (p, true);
        }
    }
    if let Some(rest) = m.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        let p = Problem::at(
            format!("missing key `{key}`"),
            span,
            format!("`{key}` is required here"),
        );
        return (p, false);
    }
    let text = m
        .replace("expected u16", "expected a port number from 1 to 65535")
        .replace("expected i64", "expected an integer")
        .replace("invalid type: ", "wrong type: ");
    let label = if text.starts_with("wrong type") {
        "wrong type"
    } else if text.starts_with("unknown variant") {
        "not an allowed value"
    } else if text.starts_with("invalid value") {
        "invalid value"
    } else {
        "here"
    };
    (Problem::at(text, span, label), false)
}

/// Reads `[section]`: a table of named entries, each deserialized on its own.
fn entries<T: serde::de::DeserializeOwned>(
    item: &Item,
    section: &str,
    section_span: Range<usize>,
    problems: &mut Vec<Problem>,
) -> Vec<Entry<T>> {
    let Some(table) = item.as_table_like() else {
        problems.push(Problem::at(
            format!("`{section}` must be a table of named entries"),
            item.span().unwrap_or(section_span),
            "not a table",
        ));
        return Vec::new();
    };
    let mut out: Vec<Entry<T>> = Vec::new();
    for (name, entry) in table.iter() {
        let key_span = table
            .get_key_value(name)
            .and_then(|(k, _)| k.span())
            .unwrap_or_else(|| section_span.clone());
        let value = if entry.is_table_like() {
            value(entry.clone(), key_span.clone(), problems)
        } else {
            problems.push(Problem::at(
                format!("`{section}.{name}` must be a table"),
                entry.span().unwrap_or_else(|| key_span.clone()),
                "not a table",
            ));
            None
        };
        out.push(Entry {
            name: name.to_owned(),
            key_span,
            value,
        });
    }
    // File order, whatever order the parser kept them in.
    out.sort_by_key(|e| e.key_span.start);
    out
}
