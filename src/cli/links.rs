//! `geartopo links`: what every container will see, each address and where it leads,
//! after replicas and views are expanded. Rendering only; no network.
use std::path::PathBuf;

use serde::Serialize;

use crate::topology::model::{LinkOrigin, LinkTarget, NodeAddress, Topology};

#[derive(Debug, clap::Args)]
pub struct LinksArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LinksArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    let Some(t) = super::load_or_report(&path) else {
        return Ok(1);
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json(&t))?);
    } else {
        print!("{}", text(&t));
    }
    Ok(0)
}

/// The `--json` document. Field names are part of the stable interface (README).
#[derive(Debug, Serialize)]
pub(crate) struct LinksJson {
    pub topology: String,
    pub containers: Vec<ContainerJson>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ContainerJson {
    pub name: String,
    pub node: String,
    pub links: Vec<LinkJson>,
}

#[derive(Debug, Serialize)]
pub(crate) struct LinkJson {
    /// `IP:PORT` as the container sees it.
    pub listen: String,
    pub listen_ip: String,
    pub listen_port: u16,
    pub protocol: &'static str,
    pub target: TargetJson,
    pub origin: OriginJson,
}

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum TargetJson {
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

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(crate) enum OriginJson {
    Declared { index: usize },
    View { view: String },
}

fn node_address(t: &Topology, node: &str) -> String {
    match t.node(node).map(|n| &n.address) {
        Some(NodeAddress::Remote(a)) => a.clone(),
        Some(NodeAddress::Local) | None => "local".into(),
    }
}

/// The published host port of `container`'s `port`/protocol, if fixed in the file.
fn host_port(
    t: &Topology,
    container: &str,
    port: u16,
    link: &crate::topology::model::Link,
) -> Option<u16> {
    t.container(container)?
        .publish
        .iter()
        .find(|p| p.port == port && p.protocol == link.protocol)?
        .host_port
}

pub(crate) fn json(t: &Topology) -> LinksJson {
    LinksJson {
        topology: t.name.clone(),
        containers: t
            .containers
            .iter()
            .map(|c| ContainerJson {
                name: c.name.clone(),
                node: c.node.clone(),
                links: c
                    .links
                    .iter()
                    .map(|l| LinkJson {
                        listen: format!("{}:{}", l.listen_ip, l.listen_port),
                        listen_ip: l.listen_ip.to_string(),
                        listen_port: l.listen_port,
                        protocol: l.protocol.as_str(),
                        target: match &l.target {
                            LinkTarget::Container { container, port } => {
                                let node = t
                                    .container(container)
                                    .map(|c| c.node.clone())
                                    .unwrap_or_default();
                                TargetJson::Container {
                                    container: container.clone(),
                                    port: *port,
                                    node_address: node_address(t, &node),
                                    node,
                                    host_port: host_port(t, container, *port, l),
                                }
                            }
                            LinkTarget::Raw { host, port } => TargetJson::Raw {
                                host: host.clone(),
                                port: *port,
                            },
                            LinkTarget::Loopback { port } => TargetJson::Loopback { port: *port },
                        },
                        origin: match &l.origin {
                            LinkOrigin::Declared { index } => {
                                OriginJson::Declared { index: *index }
                            }
                            LinkOrigin::View { view } => OriginJson::View { view: view.clone() },
                        },
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// One block per container: `LISTEN/PROTO -> TARGET (where)`.
pub(crate) fn text(t: &Topology) -> String {
    let mut out = String::new();
    for c in &t.containers {
        out.push_str(&format!("{} ({})\n", c.name, c.node));
        if c.links.is_empty() {
            out.push_str("  (no links)\n");
        }
        for l in &c.links {
            let target = match &l.target {
                LinkTarget::Container { container, port } => {
                    let node = t
                        .container(container)
                        .map(|c| c.node.as_str())
                        .unwrap_or("?");
                    let host = match host_port(t, container, *port, l) {
                        Some(h) => h.to_string(),
                        None => "host port picked at apply".into(),
                    };
                    format!(
                        "{container}:{port} ({node} {}:{host})",
                        node_address(t, node)
                    )
                }
                LinkTarget::Raw { host, port } => format!("{host}:{port}"),
                LinkTarget::Loopback { port } => {
                    format!("{}:{port} (itself, 127.0.0.1:{port})", c.name)
                }
            };
            let origin = match &l.origin {
                LinkOrigin::Declared { .. } => String::new(),
                LinkOrigin::View { view } => format!(" [view {view}]"),
            };
            out.push_str(&format!(
                "  {}:{}/{} -> {target}{origin}\n",
                l.listen_ip,
                l.listen_port,
                l.protocol.as_str()
            ));
        }
    }
    out
}
