//! `geartopo plan`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Write the plan here, to apply it later exactly.
    #[arg(short = 'o', long)]
    pub out: Option<PathBuf>,
    /// Exit 0: no changes, 1: error, 2: changes present.
    #[arg(long)]
    pub detailed_exitcode: bool,
    #[arg(long)]
    pub json: bool,
    /// Limit the plan to these containers and what they need.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run(_args: PlanArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
