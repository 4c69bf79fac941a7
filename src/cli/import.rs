//! `geartopo import`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A geard deployment descriptor (JSON).
    pub descriptor: PathBuf,
    /// NAME=ADDRESS, once per node, in geard's host order.
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// Where to write the topology (default: stdout).
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
}

pub fn run(_args: ImportArgs) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
