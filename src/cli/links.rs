//! `geartopo links`: what every container will see, each address and where it leads,
//! after replicas and views are expanded. Rendering only; no network.
use std::path::PathBuf;

use crate::output::links::{host_port, node_address, LinksDocument};
use crate::topology::model::{LinkOrigin, LinkTarget, Topology};

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
        outln!(
            "{}",
            serde_json::to_string_pretty(&LinksDocument::new(&t.topology))?
        )?;
    } else {
        out!("{}", text(&t.topology))?;
    }
    Ok(0)
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
