//! `geartopo show`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run(_args: ShowArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
