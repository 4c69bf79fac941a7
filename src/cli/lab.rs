//! `geartopo lab`. (Stub.)
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Make every node of FILE a local host: namespace, sshd, podman store.
    Up { file: Option<PathBuf> },
    /// Remove the lab and everything it made.
    Down { file: Option<PathBuf> },
    /// What the lab has running.
    Status { file: Option<PathBuf> },
    /// Run a command where the lab's nodes are reachable (or on one node with --node).
    Exec {
        file: Option<PathBuf>,
        #[arg(long)]
        node: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Load a rootfs or image tarball into every node's store as NAME.
    Load {
        file: Option<PathBuf>,
        tarball: PathBuf,
        name: String,
    },
}

pub fn run(_cmd: LabCommand) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}
