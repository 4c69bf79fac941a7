//! `geartopo links`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct LinksArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(_args: LinksArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
