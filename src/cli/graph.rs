//! `geartopo graph`. (Stub.)
use std::path::PathBuf;

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

pub fn run(_args: GraphArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
