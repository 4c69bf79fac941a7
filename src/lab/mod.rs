//! `geartopo lab`: the nodes of a topology as real hosts on this machine. Each node
//! is a network namespace on a private bridge (itself in a lab namespace), with its
//! own sshd and podman store (and, on a docker node, its own dockerd); a control namespace on the same bridge is where
//! `lab exec` runs the client. Nothing is created in the machine's root namespace.
//!
//! This module holds what every lab command shares (errors, the recorded state,
//! `exec`, `status`); `up` creates, `down` removes, `images` loads images; `spec`
//! reads the topology, `layout` names and renders everything (pure), `sys` runs programs and handles
//! namespaces, pids and mounts, `preflight` checks root and packages. It must not
//! touch anything it did not create: processes are stopped by pid file or because
//! they live in the lab's own namespaces, never by name.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

mod down;
mod images;
pub mod layout;
pub mod preflight;
pub mod spec;
pub(crate) mod sys;
mod up;
pub mod users;

use crate::topology::model::Runtime;
pub use down::down;
pub use images::{load, tarball_kind, TarballKind};
pub use layout::{Layout, LAB_ROOT};
pub use spec::{LabJump, LabNode, LabSpec};
use sys::Cmd;
pub use up::up;

/// Environment variable naming the SSH key `lab exec` hands to geartopo.
pub const ENV_IDENTITY: &str = "GEARTOPO_IDENTITY";
/// Environment variable naming the known_hosts file `lab exec` hands to geartopo.
pub const ENV_KNOWN_HOSTS: &str = "GEARTOPO_KNOWN_HOSTS";

/// Everything that can go wrong in the lab; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (it creates network namespaces and runs sshd and podman); run it as root: `sudo geartopo lab ...` (with the full path of geartopo when ~/.cargo/bin is not on root's PATH), or `su -c` where sudo is missing")]
    NotRoot,
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Spec(String),
    #[error("lab {name} is already up (or was left half up) in {dir}; run `geartopo lab down` for it first")]
    AlreadyUp { name: String, dir: String },
    #[error("lab {name} is not up; run `geartopo lab up` first")]
    NotUp { name: String },
    #[error("lab {name} has no node {node} (nodes: {known}); if the file changed since `lab up`, run `lab down` and `lab up` again")]
    UnknownNode {
        name: String,
        node: String,
        known: String,
    },
    #[error("cannot run `{command}`: {reason}")]
    Spawn { command: String, reason: String },
    #[error("`{command}` failed (exit status {status}): {stderr}")]
    Failed {
        command: String,
        status: i32,
        stderr: String,
    },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("node {node}: {reason}")]
    Node { node: String, reason: String },
    #[error("lab down left things behind:\n  {}", .0.join("\n  "))]
    Teardown(Vec<String>),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |e| LabError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// What `up` records, so that `status`, `exec` and `load` can tell whether the lab
/// they are pointed at is the one the file describes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct State {
    name: String,
    control_address: Ipv4Addr,
    nodes: Vec<StateNode>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StateNode {
    name: String,
    address: Ipv4Addr,
    port: u16,
    namespace: String,
    /// The node runs its own dockerd (absent in the state of older labs: podman).
    #[serde(default)]
    docker: bool,
}

impl StateNode {
    fn runtime(&self) -> Runtime {
        if self.docker {
            Runtime::Docker
        } else {
            Runtime::Podman
        }
    }

    /// The environment of commands on this node (as its sshd's sessions have it).
    fn env(&self, layout: &Layout) -> Vec<(String, String)> {
        layout.node(&self.name).env(&self.name, self.runtime())
    }
}

/// Every lab command needs root: checked before anything else (even reading the
/// file), so the user hears the real reason first.
pub fn require_root() -> Result<(), LabError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(LabError::NotRoot);
    }
    Ok(())
}

fn layout_for(name: &str) -> Layout {
    Layout::new(Path::new(LAB_ROOT), name)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), LabError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(contents.as_bytes()).map_err(io_err(path))
}

fn create_dir(path: &Path) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(io_err(path))
}

fn say(out: &mut dyn Write, line: impl AsRef<str>) {
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

fn read(path: &Path) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    Cmd::new("ip").args(args).run().map(|_| ())
}

/// Reads and checks what `up` recorded against the file's nodes.
fn state(spec: &LabSpec, layout: &Layout) -> Result<State, LabError> {
    let path = layout.state_file();
    if !path.exists() {
        return Err(LabError::NotUp {
            name: spec.name.clone(),
        });
    }
    let state: State = serde_json::from_str(&read(&path)?).map_err(|e| LabError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok(state)
}

fn require_node<'a>(
    spec: &LabSpec,
    state: &'a State,
    node: &str,
) -> Result<&'a StateNode, LabError> {
    state
        .nodes
        .iter()
        .find(|n| n.name == node)
        .ok_or_else(|| LabError::UnknownNode {
            name: spec.name.clone(),
            node: node.to_string(),
            known: state
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Runs `command` in the control namespace (with the lab's SSH identity and
/// known_hosts in the environment), or on `node` exactly as the node's sshd runs
/// commands. Returns the command's exit code.
pub fn exec(spec: &LabSpec, node: Option<&str>, command: &[String]) -> Result<i32, LabError> {
    require_root()?;
    let layout = layout_for(&spec.name);
    let state = state(spec, &layout)?;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| LabError::Spec("no command to run".into()))?;
    let (ns, env) = match node {
        None => (
            layout.control_ns(),
            vec![
                (
                    ENV_IDENTITY.to_string(),
                    layout.client_key().display().to_string(),
                ),
                (
                    ENV_KNOWN_HOSTS.to_string(),
                    layout.known_hosts().display().to_string(),
                ),
                ("GEARTOPO_LAB".to_string(), spec.name.clone()),
            ],
        ),
        Some(node) => {
            let n = require_node(spec, &state, node)?;
            (n.namespace.clone(), n.env(&layout))
        }
    };
    if !sys::netns_exists(&ns) {
        return Err(LabError::NotUp {
            name: spec.name.clone(),
        });
    }
    Cmd::new(program)
        .args(args)
        .envs(&env)
        .in_netns(&ns)
        .run_inherit()
}

/// Prints the lab's state; true when every node is up (namespace, sshd, and a
/// docker node's dockerd).
pub fn status(spec: &LabSpec, out: &mut dyn Write) -> Result<bool, LabError> {
    let layout = layout_for(&spec.name);
    let state = match state(spec, &layout) {
        Ok(s) => s,
        Err(LabError::NotUp { .. }) => {
            let stray = sys::netns_with_prefix(&layout.ns_prefix());
            if stray.is_empty() {
                say(out, format!("lab {} is not up", spec.name));
            } else {
                say(
                    out,
                    format!(
                        "lab {} is not up, but namespaces are left: {}; run `lab down`",
                        spec.name,
                        stray.join(" ")
                    ),
                );
            }
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let mut healthy = true;
    say(
        out,
        format!("lab {} ({})", state.name, layout.dir.display()),
    );
    say(
        out,
        format!(
            "  {:<12} {:<20} {:<26} {:<16} {:<16} {}",
            "NODE", "ADDRESS", "NAMESPACE", "SSHD", "DOCKERD", "CONTAINERS"
        ),
    );
    for n in &state.nodes {
        let nl = layout.node(&n.name);
        let ns_ok = sys::netns_exists(&n.namespace);
        let sshd = match sys::read_pid(&nl.sshd_pid()) {
            Some(pid) if sys::alive(pid) => format!("pid {pid} alive"),
            Some(pid) => format!("pid {pid} DEAD"),
            None => "no pid file".to_string(),
        };
        healthy &= ns_ok && sshd.ends_with("alive");
        let dockerd = if n.docker {
            let d = match sys::read_pid(&nl.dockerd_pid()) {
                Some(pid) if sys::alive(pid) => format!("pid {pid} alive"),
                Some(pid) => format!("pid {pid} DEAD"),
                None => "no pid file".to_string(),
            };
            healthy &= d.ends_with("alive");
            d
        } else {
            "-".to_string()
        };
        let count = |program: &str| match Cmd::new(program)
            .args(["ps", "--all", "--quiet"])
            .envs(&n.env(&layout))
            .in_netns(&n.namespace)
            .run()
        {
            Ok(f) => f
                .stdout
                .lines()
                .filter(|l| !l.is_empty())
                .count()
                .to_string(),
            Err(_) => format!("? ({program} failed)"),
        };
        let containers = match (ns_ok, n.docker) {
            (false, _) => "-".to_string(),
            (true, false) => count("podman"),
            (true, true) => format!("{} (podman), {} (docker)", count("podman"), count("docker")),
        };
        let ns = if ns_ok {
            n.namespace.clone()
        } else {
            format!("{} MISSING", n.namespace)
        };
        say(
            out,
            format!(
                "  {:<12} {:<20} {:<26} {:<16} {:<16} {}",
                n.name,
                format!("{}:{}", n.address, n.port),
                ns,
                sshd,
                dockerd,
                containers
            ),
        );
    }
    let ctl_ok = sys::netns_exists(&layout.control_ns());
    healthy &= ctl_ok;
    say(
        out,
        format!(
            "  control      {:<20} {}{}",
            state.control_address,
            layout.control_ns(),
            if ctl_ok { "" } else { " MISSING" }
        ),
    );
    for node in &spec.nodes {
        if !state.nodes.iter().any(|n| n.name == node.name) {
            healthy = false;
            say(
                out,
                format!(
                    "  node {} is in the file but not in the lab: run `lab down` and `lab up`",
                    node.name
                ),
            );
        }
    }
    Ok(healthy)
}
