//! `geartopo apply` and `geartopo destroy`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Topology file or saved plan (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub auto_approve: bool,
    #[arg(long = "target")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run_apply(_args: ApplyArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}

pub fn run_destroy(_args: DestroyArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
