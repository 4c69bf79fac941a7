//! `geartopo graph`: print the topology (nodes, containers, links) or the
//! dependency graph of its steps (create, rules, start per container).
use std::path::PathBuf;

use crate::topology_graph;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart (renders in Markdown on GitHub and GitLab).
    Mermaid,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GraphView {
    /// The start order: create, rules and start of every container.
    Steps,
    /// Nodes as groups, their containers, and every link labelled with its addresses.
    Topology,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Output language.
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
    /// What to draw.
    #[arg(long, value_enum, default_value = "steps")]
    pub view: GraphView,
}

pub fn run(args: GraphArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    let Some(loaded) = super::load_or_report(&path) else {
        return Ok(1);
    };
    let t = &loaded.topology;
    let text = match (args.view, args.format) {
        (GraphView::Topology, GraphFormat::Dot) => topology_graph::to_dot(t),
        (GraphView::Topology, GraphFormat::Mermaid) => topology_graph::to_mermaid(t),
        (GraphView::Steps, GraphFormat::Dot) => loaded.graph.to_dot(),
        (GraphView::Steps, GraphFormat::Mermaid) => loaded.graph.to_mermaid(),
    };
    out!("{text}")?;
    Ok(0)
}
