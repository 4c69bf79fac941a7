//! `geartopo graph`: print the dependency graph (create, rules, start per container).
use std::path::PathBuf;

use crate::graph::DepGraph;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

pub fn run(args: GraphArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    let Some(t) = super::load_or_report(&path) else {
        return Ok(1);
    };
    // A cycle is a validation error, so a loaded topology always has a graph.
    let graph = DepGraph::build(&t)?;
    match args.format {
        GraphFormat::Dot => print!("{}", graph.to_dot()),
        GraphFormat::Mermaid => print!("{}", graph.to_mermaid()),
    }
    Ok(0)
}
