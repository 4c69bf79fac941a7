//! The command line: one clap struct per subcommand, each with a `run` in its own
//! file that returns the process exit code. The binary (`main.rs`) only calls `main`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod apply;
pub mod fmt;
pub mod graph;
pub mod import;
pub mod lab;
pub mod links;
pub mod plan;
pub mod session;
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
    /// The dependency graph (start order).
    Graph(graph::GraphArgs),
    /// Read live state from every node and show what apply would change.
    Plan(plan::PlanArgs),
    /// Plan, confirm, and make the topology happen.
    Apply(apply::ApplyArgs),
    /// Remove everything the topology owns, in reverse order.
    Destroy(apply::DestroyArgs),
    /// Live status: containers, published ports, links in force.
    Show(show::ShowArgs),
    /// Rewrite a topology file in the canonical layout (`--check`: only show the diff).
    Fmt(fmt::FmtArgs),
    /// Turn a geard deployment descriptor into a topology.
    Import(import::ImportArgs),
    /// The topology's nodes as real local hosts (network namespaces, sshd, podman).
    #[command(subcommand)]
    Lab(lab::LabCommand),
}

/// Options shared by every command that talks to nodes.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Record unknown SSH host keys in known_hosts (changed keys are always refused).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// How many nodes to work on at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub parallelism: u32,
    /// Seconds to wait for a node to answer a connection.
    #[arg(long, default_value_t = 10)]
    pub connect_timeout: u64,
}

impl ConnectArgs {
    pub fn options(&self) -> crate::transport::ConnectOptions {
        crate::transport::ConnectOptions {
            accept_new_host_keys: self.accept_new_host_keys,
            connect_timeout: std::time::Duration::from_secs(self.connect_timeout),
            ..Default::default()
        }
    }
}

/// Loads a topology for a command that needs no network; on failure prints every
/// diagnostic and returns `None` (the command exits 1).
pub fn load_or_report(path: &std::path::Path) -> Option<crate::topology::Topology> {
    crate::topology::load(path)
        .map_err(|invalid| eprint!("{}", invalid.render()))
        .ok()
}

/// The topology file argument, `./geartopo.toml` when omitted.
pub fn topology_path(file: Option<PathBuf>) -> PathBuf {
    file.unwrap_or_else(|| PathBuf::from("geartopo.toml"))
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Links(a) => links::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Apply(a) => apply::run_apply(a),
        Command::Destroy(a) => apply::run_destroy(a),
        Command::Show(a) => show::run(a),
        Command::Fmt(a) => fmt::run(a),
        Command::Import(a) => import::run(a),
        Command::Lab(c) => lab::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    }
}
