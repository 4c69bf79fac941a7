//! The command line: one clap struct per subcommand, each with a `run` in its own
//! file that returns the process exit code. The binary (`main.rs`) only calls `main`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `print!` on stdout as an `io::Result`: a closed pipe is an error the command
/// returns (`main` ends quietly, docs/exit-codes.md), never a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)
    }};
}

/// `println!` on stdout as an `io::Result` (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// `eprintln!` as an `io::Result` (see `out!`).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stderr(), $($arg)*)
    }};
}

pub mod apply;
pub mod check;
pub mod fmt;
pub mod force_unlock;
pub mod graph;
pub mod import;
pub mod lab;
pub mod links;
pub mod node;
pub mod plan;
pub mod progress;
pub mod session;
pub mod shell;
pub mod show;
pub mod validate;

/// Link containers across hosts with iptables, declaratively.
#[derive(Debug, Parser)]
#[command(name = "geartopo", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and check a topology; no network.
    Validate(validate::ValidateArgs),
    /// What every container will see: each address and where it leads.
    Links(links::LinksArgs),
    /// Draw the topology (nodes, containers, links) or its start order, as DOT or Mermaid.
    Graph(graph::GraphArgs),
    /// Read live state from every node and show what apply would change.
    Plan(plan::PlanArgs),
    /// Plan, confirm, and make the topology happen.
    Apply(apply::ApplyArgs),
    /// Remove everything the topology owns, in reverse order.
    Destroy(apply::DestroyArgs),
    /// Live status: containers, published ports, links in force.
    Show(show::ShowArgs),
    /// Whether every link carries traffic: a TCP connect from inside each
    /// container to each of its links (exit 1 when one fails).
    Check(check::CheckArgs),
    /// Rewrite a topology file in the canonical layout (`--check`: only show the diff).
    Fmt(fmt::FmtArgs),
    /// Turn a geard deployment descriptor into a topology.
    Import(import::ImportArgs),
    /// The topology's nodes as real local hosts (network namespaces, sshd, podman).
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// Print a completion script for bash, zsh or fish on stdout.
    Completions(shell::CompletionsArgs),
    /// Write manual pages for geartopo and each of its commands.
    Man(shell::ManArgs),
    /// Remove the apply lock of nodes whose apply was killed, after showing its holder.
    ForceUnlock(force_unlock::ForceUnlockArgs),
    /// One-time node preparation (docker: geartopo's runtime wrapper registered
    /// with dockerd, for durable links); only when asked.
    #[command(subcommand)]
    Node(node::NodeCommand),
}

/// Options shared by every command that talks to nodes.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Record unknown SSH host keys in known_hosts (changed keys are always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many nodes to work on at once.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: u32,
    /// Seconds to wait for a node to answer a connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// How long one round trip on a node may run (`300s`, `5m`, `90s`; a bare
    /// number is seconds). A script that runs longer is ended on the node through
    /// its pid file; if the node cannot be reached for that, its lock stays.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_command_timeout)]
    pub command_timeout: std::time::Duration,
}

/// A duration (`apply::parse_duration`) that is not zero.
fn parse_command_timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = apply::parse_duration(text)?;
    if d.is_zero() {
        return Err("a command time-out of 0 would fail every command".into());
    }
    Ok(d)
}

impl ConnectArgs {
    pub fn options(&self) -> crate::transport::ConnectOptions {
        crate::transport::ConnectOptions {
            accept_new_host_keys: self.accept_new_host_keys,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout),
            command_timeout: self.command_timeout,
        }
    }
}

/// Loads a topology for a command that needs no network; on failure prints every
/// diagnostic and returns `None` (the command exits 1). A file that cannot be read
/// has no place to point at: it is one `error:` line, as on the commands that
/// talk to nodes.
pub fn load_or_report(path: &std::path::Path) -> Option<crate::topology::Loaded> {
    crate::topology::load(path).map_err(report_invalid).ok()
}

/// How every command shows a file it cannot use: the full report with places, or,
/// when no problem has a place (the file cannot be read), one `error:` line each.
pub fn report_invalid(invalid: crate::topology::Invalid) {
    // A closed stderr leaves nowhere to report to; the command still fails.
    match without_place(&invalid) {
        Some(message) => {
            let _ = errln!("error: {message}");
        }
        None => {
            use std::io::Write as _;
            let _ = write!(std::io::stderr(), "{}", invalid.render());
        }
    }
}

/// The message of a file that has no place to point at (it cannot be read), or
/// `None` when its problems have places and want the full report.
pub fn without_place(invalid: &crate::topology::Invalid) -> Option<String> {
    invalid
        .problems
        .iter()
        .all(|p| p.labels.is_empty())
        .then(|| {
            invalid
                .problems
                .iter()
                .map(|p| p.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

/// Reads a file a command was given, failing with the same message as every
/// other command's (`cannot read FILE: REASON`).
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        let invalid = crate::topology::Invalid::unreadable(path, &e);
        anyhow::anyhow!("{}", without_place(&invalid).unwrap_or_default())
    })
}

/// The topology file argument, `./geartopo.toml` when omitted.
pub fn topology_path(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from("geartopo.toml"))
}

/// Runs the command line; returns the exit code (docs/exit-codes.md).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(&e),
    };
    let result = match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Links(a) => links::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Apply(a) => apply::run_apply(a),
        Command::Destroy(a) => apply::run_destroy(a),
        Command::Show(a) => show::run(a),
        Command::Check(a) => check::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Import(a) => import::run(a),
        Command::Lab(c) => lab::run(c),
        Command::Completions(a) => shell::run_completions(a),
        Command::Man(a) => shell::run_man(a),
        Command::ForceUnlock(a) => force_unlock::run(a),
        Command::Node(c) => node::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) if closed_output(&e) => CLOSED_OUTPUT,
        Err(e) => {
            // Nowhere to say it when stderr is closed too: the status says it.
            let _ = errln!("{}", error_line(&e));
            1
        }
    }
}

/// How a command's error is printed: `error: ` and the whole chain of causes,
/// with control characters escaped, since node errors carry what the node wrote
/// (its stderr, a lock holder, a server's disconnect message).
pub fn error_line(e: &anyhow::Error) -> String {
    format!("error: {}", crate::text::escape_controls(&format!("{e:#}")))
}

/// The exit status when stdout or stderr was closed before geartopo was done
/// writing (`geartopo links F | head -1`): 141, what a shell reports for a
/// program ended by SIGPIPE, so that `set -o pipefail` scripts see what they see
/// from other tools; nothing is printed (docs/exit-codes.md).
pub const CLOSED_OUTPUT: i32 = 141;

/// Whether `e` is a write to a closed pipe.
fn closed_output(e: &anyhow::Error) -> bool {
    let pipe = Some(std::io::ErrorKind::BrokenPipe);
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == pipe
            // serde_json's error hides the io::Error it wraps from the chain.
            || c.downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == pipe
    })
}

/// Prints what clap has to say and returns the exit code: 0 for `--help` and
/// `--version` (printed on stdout), 1 for a usage error. Not clap's own 2: with
/// `plan --detailed-exitcode`, 2 means "changes present", and a mistyped flag
/// must not read as that in a CI job.
fn usage(e: &clap::Error) -> i32 {
    // A closed stdout or stderr leaves nothing to report to.
    let _ = e.print();
    if e.use_stderr() {
        1
    } else {
        0
    }
}

/// `--node NAME` values that name no node of `topology` (read from `path`): an
/// error listing the nodes there are.
pub(crate) fn known_nodes(
    topology: &crate::topology::model::Topology,
    names: &[String],
    path: &std::path::Path,
) -> anyhow::Result<()> {
    for n in names {
        if !topology.nodes.contains_key(n) {
            let known: Vec<&str> = topology.nodes.keys().map(String::as_str).collect();
            anyhow::bail!(
                "--node {n}: no such node in {} (nodes: {})",
                path.display(),
                known.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::transport::TransportError;

    #[test]
    fn a_transport_error_carrying_a_nodes_text_is_printed_escaped() {
        // What a server or a node's shell said, as the transport reports it.
        let e = anyhow::Error::from(TransportError::Io {
            node: "node1".into(),
            reason: "sh: \x1b[31mfake\x1b[0m\tpassword:\u{9b}".into(),
        })
        .context("cannot reach every node");
        assert_eq!(
            super::error_line(&e),
            "error: cannot reach every node: node node1: sh: \\x1b[31mfake\\x1b[0m\\x09password:\\u{9b}"
        );
    }
}
