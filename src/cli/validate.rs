//! `geartopo validate`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
}

pub fn run(_args: ValidateArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
