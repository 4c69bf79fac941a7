//! `geartopo lab`: argument handling only; the lab itself lives in `crate::lab`.
use std::path::PathBuf;

use crate::lab::{self, LabSpec};

#[derive(Debug, clap::Subcommand)]
pub enum LabCommand {
    /// Make every node of FILE a local host: namespace, sshd, podman store.
    Up {
        /// Topology file (default ./geartopo.toml).
        file: Option<PathBuf>,
    },
    /// Remove the lab and everything it made.
    Down {
        /// Topology file (default ./geartopo.toml).
        file: Option<PathBuf>,
        /// Take down the lab of this topology name instead of reading FILE
        /// (when the file is gone or no longer parses).
        #[arg(long, conflicts_with = "file")]
        name: Option<String>,
    },
    /// What the lab has running (exit 1 when it is not up or a node is broken).
    Status {
        /// Topology file (default ./geartopo.toml).
        file: Option<PathBuf>,
    },
    /// Run a command where the lab's nodes are reachable (or on one node with --node).
    Exec {
        /// Topology file (default ./geartopo.toml).
        file: Option<PathBuf>,
        /// Run the command on this node, as its sshd runs commands.
        #[arg(long)]
        node: Option<String>,
        /// The command and its arguments, after `--`; its exit code is geartopo's.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Load a rootfs or image tarball into every node's store as NAME.
    // FILE is required here: an optional positional cannot precede required ones.
    Load {
        /// Topology file.
        file: PathBuf,
        /// A rootfs tarball or an image archive (`podman save`).
        tarball: PathBuf,
        /// The image name to give it, e.g. localhost/geartopo-test:latest.
        name: String,
    },
}

/// The lab's view of the topology file, loaded the way every command loads it
/// (one `error:` line for an unreadable file; the full report, then one line, for
/// an invalid one).
fn spec(file: Option<PathBuf>) -> anyhow::Result<LabSpec> {
    let path = super::topology_path(file);
    let (topology, _, _) = super::session::load_saying(&path, "no lab was touched")?;
    Ok(LabSpec::from_topology(&topology)?)
}

pub fn run(cmd: LabCommand) -> anyhow::Result<i32> {
    lab::require_root()?;
    let mut out = std::io::stdout();
    match cmd {
        LabCommand::Up { file } => {
            lab::up(&spec(file)?, &mut out)?;
            Ok(0)
        }
        LabCommand::Down { file, name } => {
            let name = match name {
                Some(n) => n,
                None => spec(file)?.name,
            };
            lab::down(&name, &mut out)?;
            Ok(0)
        }
        LabCommand::Status { file } => Ok(if lab::status(&spec(file)?, &mut out)? {
            0
        } else {
            1
        }),
        LabCommand::Exec {
            file,
            node,
            command,
        } => Ok(lab::exec(&spec(file)?, node.as_deref(), &command)?),
        LabCommand::Load {
            file,
            tarball,
            name,
        } => {
            lab::load(&spec(Some(file))?, &tarball, &name, &mut out)?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::LabCommand;
    use crate::cli::{Cli, Command};

    #[test]
    fn the_command_line_is_well_formed() {
        // clap checks positional order and the like only when it builds the parser.
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_the_double_dash() {
        let cli = Cli::try_parse_from([
            "geartopo", "lab", "exec", "lab.toml", "--node", "node4", "--", "podman", "ps", "-a",
        ])
        .unwrap();
        let Command::Lab(LabCommand::Exec {
            file,
            node,
            command,
        }) = cli.command
        else {
            panic!("not lab exec")
        };
        assert_eq!(file.unwrap().to_str(), Some("lab.toml"));
        assert_eq!(node.as_deref(), Some("node4"));
        assert_eq!(command, ["podman", "ps", "-a"]);
    }

    #[test]
    fn load_takes_file_tarball_and_name() {
        let cli = Cli::try_parse_from([
            "geartopo",
            "lab",
            "load",
            "lab.toml",
            "img.tar",
            "localhost/x:latest",
        ])
        .unwrap();
        let Command::Lab(LabCommand::Load { tarball, name, .. }) = cli.command else {
            panic!("not lab load")
        };
        assert_eq!(
            (tarball.to_str(), name.as_str()),
            (Some("img.tar"), "localhost/x:latest")
        );
    }
}
