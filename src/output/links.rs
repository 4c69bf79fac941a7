//! `links --json` (format_version 1): what every container will see, after
//! replicas and views are expanded. Built from the validated topology alone.

use schemars::JsonSchema;
use serde::Serialize;

use super::{FormatVersion, Protocol};
use crate::topology::model::{Link, LinkOrigin, LinkTarget, NodeAddress, Topology};

/// The links of every container, as `geartopo links --json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "geartopo links")]
pub struct LinksDocument {
    pub format_version: FormatVersion<1>,
    /// The topology's name.
    pub topology: String,
    /// Every container (replicas and view members expanded), in file order.
    pub containers: Vec<LinksContainer>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LinksContainer {
    /// The container's name (`db-2`).
    pub name: String,
    pub node: String,
    pub links: Vec<LinksLink>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LinksLink {
    /// `IP:PORT` as the container sees it.
    pub listen: String,
    pub listen_ip: String,
    pub listen_port: u16,
    pub protocol: Protocol,
    pub target: LinksTarget,
    pub origin: LinksOrigin,
}

/// Where a link leads.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LinksTarget {
    /// Another container of the topology, reached on its node.
    Container {
        container: String,
        port: u16,
        node: String,
        /// The node's address, or `local`.
        node_address: String,
        /// `null`: picked at apply.
        host_port: Option<u16>,
    },
    /// A raw endpoint outside the topology.
    Raw { host: String, port: u16 },
    /// The container itself (its own view address).
    Loopback { port: u16 },
}

/// Why the container has the link.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LinksOrigin {
    /// Written in the container's `links`, at this index.
    Declared { index: usize },
    /// From membership of this view.
    View { view: String },
}

/// The address a node is reached at, or `local`.
pub fn node_address(t: &Topology, node: &str) -> String {
    match t.node(node).map(|n| &n.address) {
        Some(NodeAddress::Remote(a)) => a.clone(),
        Some(NodeAddress::Local) | None => "local".into(),
    }
}

/// The published host port of `container`'s `port`/protocol, if fixed in the file.
pub fn host_port(t: &Topology, container: &str, port: u16, link: &Link) -> Option<u16> {
    t.container(container)?
        .publish
        .iter()
        .find(|p| p.port == port && p.protocol == link.protocol)?
        .host_port
}

impl LinksDocument {
    pub fn new(t: &Topology) -> Self {
        LinksDocument {
            format_version: FormatVersion,
            topology: t.name.clone(),
            containers: t
                .containers
                .iter()
                .map(|c| LinksContainer {
                    name: c.name.clone(),
                    node: c.node.clone(),
                    links: c.links.iter().map(|l| link(t, l)).collect(),
                })
                .collect(),
        }
    }
}

fn link(t: &Topology, l: &Link) -> LinksLink {
    LinksLink {
        listen: format!("{}:{}", l.listen_ip, l.listen_port),
        listen_ip: l.listen_ip.to_string(),
        listen_port: l.listen_port,
        protocol: l.protocol.into(),
        target: match &l.target {
            LinkTarget::Container { container, port } => {
                let node = t
                    .container(container)
                    .map(|c| c.node.clone())
                    .unwrap_or_default();
                LinksTarget::Container {
                    container: container.clone(),
                    port: *port,
                    node_address: node_address(t, &node),
                    node,
                    host_port: host_port(t, container, *port, l),
                }
            }
            LinkTarget::Raw { host, port } => LinksTarget::Raw {
                host: host.clone(),
                port: *port,
            },
            LinkTarget::Loopback { port } => LinksTarget::Loopback { port: *port },
        },
        origin: match &l.origin {
            LinkOrigin::Declared { index } => LinksOrigin::Declared { index: *index },
            LinkOrigin::View { view } => LinksOrigin::View { view: view.clone() },
        },
    }
}
