//! `geartopo validate`: parse and check a topology, report every problem; no network.
use std::path::PathBuf;

use crate::topology;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
}

/// Exit 0 with a one-line summary on stdout, or 1 with the full report on stderr.
pub fn run(args: ValidateArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    match super::load_or_report(&path) {
        Some(t) => {
            println!("{}", summary(&path.display().to_string(), &t));
            Ok(0)
        }
        None => Ok(1),
    }
}

/// `todo.toml: topology "todo" is valid: 2 nodes, 2 containers, 0 views, 3 links`.
pub(crate) fn summary(file: &str, t: &topology::Topology) -> String {
    let links: usize = t.containers.iter().map(|c| c.links.len()).sum();
    format!(
        "{file}: topology \"{}\" is valid: {}, {}, {}, {}",
        t.name,
        count(t.nodes.len(), "node"),
        count(t.containers.len(), "container"),
        count(t.views.len(), "view"),
        count(links, "link"),
    )
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
