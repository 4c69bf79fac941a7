//! `geartopo check`: probes every link from inside its container (one round trip
//! per node, `linkcheck`), prints each link's result, exits 1 when one failed.
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::session::{load, Session};
use crate::linkcheck::{self, LinkCheck};

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Print the results as one JSON document on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds one connect may take before it counts as timed out.
    #[arg(long, value_name = "SECONDS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub probe_timeout: u32,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

/// `check --json` (format_version 1).
#[derive(Debug, Serialize)]
pub struct CheckDocument {
    pub format_version: u32,
    pub topology: String,
    pub links: Vec<LinkCheck>,
    /// Links whose result is not `ok` (UDP's `not checkable` aside).
    pub failed: usize,
}

pub fn run(args: CheckArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let mut checks = linkcheck::links(&topology);
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    session.connected();
    linkcheck::check(
        &session.topology,
        &mut session.conns,
        session.parallelism,
        args.probe_timeout,
        &mut checks,
    );
    let failed = checks.iter().filter(|c| c.failed()).count();
    if args.json {
        let doc = CheckDocument {
            format_version: 1,
            topology: session.topology.name.clone(),
            links: checks,
            failed,
        };
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        out!("{}", text(&checks, failed))?;
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// One line per link, then the count.
fn text(checks: &[LinkCheck], failed: usize) -> String {
    if checks.is_empty() {
        return "No links to check.\n".into();
    }
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!(
            "{:<13} {} on {}: {}/{} -> {}\n",
            c.result, c.container, c.node, c.listen, c.protocol, c.target
        ));
    }
    out.push_str(&format!(
        "\n{} links checked: {} ok, {failed} failed.\n",
        checks.len(),
        checks.iter().filter(|c| c.result == "ok").count()
    ));
    out
}
