//! `geartopo lab`: the nodes of a topology as real hosts on this machine. Each node
//! is a network namespace on a private bridge (itself in a lab namespace), with its
//! own sshd and podman store; a control namespace on the same bridge is where
//! `lab exec` runs the client. Nothing is created in the machine's root namespace.
//!
//! This module decides what to create and remove; `spec` reads the topology,
//! `layout` names and renders everything (pure), `sys` runs programs and handles
//! namespaces, pids and mounts, `preflight` checks root and packages. It must not
//! touch anything it did not create: processes are stopped by pid file or because
//! they live in the lab's own namespaces, never by name.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod layout;
pub mod preflight;
pub mod spec;
pub(crate) mod sys;

pub use layout::{Layout, LAB_ROOT};
pub use spec::{LabNode, LabSpec};
use sys::Cmd;

/// Environment variable naming the SSH key `lab exec` hands to geartopo.
pub const ENV_IDENTITY: &str = "GEARTOPO_IDENTITY";
/// Environment variable naming the known_hosts file `lab exec` hands to geartopo.
pub const ENV_KNOWN_HOSTS: &str = "GEARTOPO_KNOWN_HOSTS";

/// Everything that can go wrong in the lab; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("the lab needs root (it creates network namespaces and runs sshd and podman); run it with sudo")]
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

/// Brings the lab up; on any failure takes down what was made and returns the error.
pub fn up(spec: &LabSpec, out: &mut dyn Write) -> Result<(), LabError> {
    let tools = preflight::check()?;
    let layout = layout_for(&spec.name);
    let leftover_ns = sys::netns_with_prefix(&layout.ns_prefix());
    if layout.dir.exists() || !leftover_ns.is_empty() {
        return Err(LabError::AlreadyUp {
            name: spec.name.clone(),
            dir: layout.dir.display().to_string(),
        });
    }
    let started = Instant::now();
    say(
        out,
        format!(
            "lab {}: bringing up {} node(s) in namespaces {}*",
            spec.name,
            spec.nodes.len(),
            layout.ns_prefix()
        ),
    );
    match build(spec, &layout, &tools, out) {
        Ok(()) => {
            say(
                out,
                format!(
                    "lab {} is up ({:.1}s):",
                    spec.name,
                    started.elapsed().as_secs_f64()
                ),
            );
            for node in &spec.nodes {
                say(
                    out,
                    format!(
                        "  {:<12} {}:{}  ns {}  sshd ok, podman ok",
                        node.name,
                        node.address,
                        node.port,
                        layout.node_ns(&node.name)
                    ),
                );
            }
            say(
                out,
                format!(
                    "  control      {}  ns {}  (where `lab exec` runs)",
                    spec.control_address(),
                    layout.control_ns()
                ),
            );
            say(
                out,
                format!("  {ENV_IDENTITY}={}", layout.client_key().display()),
            );
            say(
                out,
                format!("  {ENV_KNOWN_HOSTS}={}", layout.known_hosts().display()),
            );
            Ok(())
        }
        Err(e) => {
            say(
                out,
                "lab up failed (the error follows); taking down what was made",
            );
            if let Err(t) = teardown(&layout, out) {
                say(out, format!("{t}"));
            }
            Err(e)
        }
    }
}

fn build(
    spec: &LabSpec,
    layout: &Layout,
    tools: &preflight::Tools,
    out: &mut dyn Write,
) -> Result<(), LabError> {
    create_dir(&layout.nodes_dir())?;
    {
        use std::os::unix::fs::PermissionsExt;
        // Holds the lab's private keys.
        std::fs::set_permissions(&layout.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(&layout.dir))?;
    }
    let state = State {
        name: spec.name.clone(),
        control_address: spec.control_address(),
        nodes: spec
            .nodes
            .iter()
            .map(|n| StateNode {
                name: n.name.clone(),
                address: n.address,
                port: n.port,
                namespace: layout.node_ns(&n.name),
            })
            .collect(),
    };
    let state_json = serde_json::to_string_pretty(&state).expect("plain data serializes");
    write_file(&layout.state_file(), &(state_json + "\n"), 0o644)?;

    say(out, "  keys: lab client key and one host key per node");
    keygen(
        &layout.client_key(),
        &format!("geartopo-lab-{}-client", spec.name),
    )?;
    let client_pub = read(&pub_of(&layout.client_key()))?;
    write_file(&layout.authorized_keys(), &client_pub, 0o600)?;
    let driver = sys::storage_driver_for(&layout.dir);
    let mut known_hosts = String::new();
    for node in &spec.nodes {
        let nl = layout.node(&node.name);
        create_dir(&nl.dir)?;
        create_dir(&nl.run_dir())?;
        for d in nl.podman_dirs() {
            create_dir(&d)?;
        }
        keygen(
            &nl.host_key(),
            &format!("geartopo-lab-{}-{}", spec.name, node.name),
        )?;
        known_hosts.push_str(&layout::known_hosts_line(
            node,
            &read(&pub_of(&nl.host_key()))?,
        ));
        write_file(&nl.containers_conf(), &nl.render_containers_conf(), 0o644)?;
        write_file(&nl.storage_conf(), &nl.render_storage_conf(driver), 0o644)?;
        write_file(
            &nl.sshd_config(),
            &nl.render_sshd_config(node, &layout.authorized_keys()),
            0o600,
        )?;
    }
    write_file(&layout.known_hosts(), &known_hosts, 0o644)?;

    say(
        out,
        format!(
            "  network: bridge in {}, control {} in {}",
            layout.lan_ns(),
            spec.control_address(),
            layout.control_ns()
        ),
    );
    let lan = layout.lan_ns();
    ip(&["netns", "add", &lan])?;
    ip(&["-n", &lan, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &lan, "link", "set", "br0", "up"])?;
    plug(&lan, "c0", &layout.control_ns(), spec.control_address())?;
    for (i, node) in spec.nodes.iter().enumerate() {
        plug(
            &lan,
            &format!("v{i}"),
            &layout.node_ns(&node.name),
            node.address,
        )?;
    }

    // /run/sshd is sshd's privilege separation directory, which the package
    // normally creates at boot; sshd refuses to start without it.
    create_dir(Path::new("/run/sshd"))?;
    for node in &spec.nodes {
        let nl = layout.node(&node.name);
        let sshd = tools.sshd.display().to_string();
        let config = nl.sshd_config().display().to_string();
        Cmd::new(&sshd).args(["-t", "-f", &config]).run()?;
        Cmd::new(&sshd)
            .args(["-f", &config])
            .in_netns(&layout.node_ns(&node.name))
            .run()?;
        let pid = wait_for(Duration::from_secs(5), || {
            sys::read_pid(&nl.sshd_pid()).filter(|p| sys::alive(*p))
        })
        .ok_or_else(|| LabError::Node {
            node: node.name.clone(),
            reason: "sshd did not start (no live pid in its pid file after 5s)".into(),
        })?;
        say(
            out,
            format!(
                "  {}: sshd pid {pid} on {}:{}",
                node.name, node.address, node.port
            ),
        );
    }

    // Prove each node is what the tests will use: plain ssh from the control
    // namespace with the lab key and a verified host key, and the node's own store.
    // All nodes at once: each check is a full ssh handshake and a podman start.
    let checks: Vec<Result<(), LabError>> = std::thread::scope(|s| {
        let handles: Vec<_> = spec
            .nodes
            .iter()
            .map(|node| s.spawn(move || check_node(layout, node)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a node check panicked"))
            .collect()
    });
    checks.into_iter().collect()
}

/// One node answers ssh (verified host key, lab key) and runs podman on its own store.
fn check_node(layout: &Layout, node: &LabNode) -> Result<(), LabError> {
    const PROBE: &str = "podman info --format '{{.Store.GraphRoot}}'";
    let want = layout
        .node(&node.name)
        .dir
        .join("storage")
        .display()
        .to_string();
    let got =
        wait_for(Duration::from_secs(5), || ssh(layout, node, PROBE).ok()).ok_or_else(|| {
            LabError::Node {
                node: node.name.clone(),
                reason: match ssh(layout, node, PROBE) {
                    Err(e) => format!("ssh from the control namespace failed: {e}"),
                    Ok(_) => "ssh failed".into(),
                },
            }
        })?;
    if got.trim() != want {
        return Err(LabError::Node {
            node: node.name.clone(),
            reason: format!(
                "podman over ssh uses store {} instead of {want}",
                got.trim()
            ),
        });
    }
    Ok(())
}

/// Runs `command` on a node with plain OpenSSH from the control namespace, host key
/// verified against the lab's known_hosts only.
fn ssh(layout: &Layout, node: &LabNode, command: &str) -> Result<String, LabError> {
    let kh = layout.known_hosts().display().to_string();
    Cmd::new("ssh")
        .args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .args([
            "-o",
            &format!("UserKnownHostsFile={kh}"),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
        ])
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg("-i")
        .arg(layout.client_key())
        .args([
            "-p",
            &node.port.to_string(),
            &format!("root@{}", node.address),
            command,
        ])
        .in_netns(&layout.control_ns())
        .run()
        .map(|f| f.stdout)
}

fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn pub_of(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn read(path: &Path) -> Result<String, LabError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

fn keygen(path: &Path, comment: &str) -> Result<(), LabError> {
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .run()
        .map(|_| ())
}

fn ip(args: &[&str]) -> Result<(), LabError> {
    Cmd::new("ip").args(args).run().map(|_| ())
}

/// Creates namespace `ns` plugged into the bridge with `address`: the veth is made
/// inside the lan namespace with its peer moved straight into `ns`, so no interface
/// ever appears in the root namespace. A /32 with an on-link default route lets
/// nodes of any addresses reach each other over the bridge without a shared subnet.
fn plug(lan: &str, port: &str, ns: &str, address: Ipv4Addr) -> Result<(), LabError> {
    ip(&["netns", "add", ns])?;
    ip(&[
        "-n", lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns,
    ])?;
    ip(&["-n", lan, "link", "set", port, "master", "br0", "up"])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        ns,
        "addr",
        "add",
        &format!("{address}/32"),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", ns, "link", "set", "eth0", "up"])?;
    ip(&["-n", ns, "route", "add", "default", "dev", "eth0"])
}

/// Takes the lab of topology `name` down: works from the name alone, after a failed
/// or partial `up`, and when nothing is up (then it says so and succeeds).
pub fn down(name: &str, out: &mut dyn Write) -> Result<(), LabError> {
    require_root()?;
    // The name becomes a directory that is removed: never let it climb out.
    spec::check_name("topology name", name).map_err(LabError::Spec)?;
    let layout = layout_for(name);
    if !layout.dir.exists() && sys::netns_with_prefix(&layout.ns_prefix()).is_empty() {
        say(out, format!("lab {name} is not up; nothing to remove"));
        return Ok(());
    }
    teardown(&layout, out)
}

fn teardown(layout: &Layout, out: &mut dyn Write) -> Result<(), LabError> {
    let mut problems: Vec<String> = Vec::new();
    let name = &layout.name;
    let nodes: Vec<String> = std::fs::read_dir(layout.nodes_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();

    // 1. Containers, through podman, inside the node's namespace: removing them
    //    also runs netavark's teardown, which must never run in the root namespace.
    //    If the node's namespace is gone, an empty one stands in for it.
    for node in &nodes {
        let nl = layout.node(node);
        // Both files, or podman would fall back to the machine's own store: an
        // `up` killed between writing them leaves no containers of its own anyway.
        if !nl.containers_conf().exists()
            || !nl.storage_conf().exists()
            || sys::find_program("podman").is_none()
        {
            continue;
        }
        let ns = layout.node_ns(node);
        if !sys::netns_exists(&ns) {
            if let Err(e) = ip(&["netns", "add", &ns]) {
                problems.push(format!(
                    "{node}: containers not removed, cannot make a namespace for podman: {e}"
                ));
                continue;
            }
        }
        let podman = |args: &[&str]| {
            Cmd::new("podman")
                .args(args)
                .envs(&nl.env(node))
                .in_netns(&ns)
        };
        // The namespaces podman made for this node's containers (/run/netns/netns-*),
        // to check after the removal that they went with the containers.
        let sandboxes: Vec<String> = podman(&["ps", "--all", "--quiet"])
            .run()
            .ok()
            .map(|f| {
                f.stdout
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|ids| !ids.is_empty())
            .and_then(|ids| {
                let mut args = vec!["inspect", "--format", "{{.NetworkSettings.SandboxKey}}"];
                args.extend(ids.iter().map(String::as_str));
                podman(&args).run().ok()
            })
            .map(|f| {
                f.stdout
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("/run/netns/"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        match podman(&["rm", "--all", "--force", "--time", "0"]).run() {
            Ok(f) => {
                let n = f.stdout.lines().filter(|l| !l.trim().is_empty()).count();
                if n > 0 {
                    say(out, format!("  {node}: removed {n} container(s)"));
                }
            }
            Err(e) => problems.push(format!("{node}: {e}")),
        }
        for sandbox in sandboxes {
            let Some(name) = sandbox.strip_prefix("/run/netns/") else {
                continue;
            };
            if Path::new(&sandbox).exists() {
                match ip(&["netns", "del", name]) {
                    Ok(()) => say(
                        out,
                        format!("  {node}: removed container namespace {name} podman left"),
                    ),
                    Err(e) => {
                        problems.push(format!("{node}: container namespace {name} left: {e}"))
                    }
                }
            }
        }
    }

    // 2. sshd, by its pid file only, and only if that pid is still an sshd.
    for node in &nodes {
        let pid_file = layout.node(node).sshd_pid();
        if let Some(pid) = sys::read_pid(&pid_file) {
            if sys::alive(pid) && sys::process_name(pid).as_deref() == Some("sshd") {
                if sys::terminate(pid, Duration::from_secs(3)) {
                    say(out, format!("  {node}: stopped sshd (pid {pid})"));
                } else {
                    problems.push(format!("{node}: sshd pid {pid} did not stop"));
                }
            }
        }
    }

    // 3. Whatever still runs inside the lab's own namespaces was started in the lab
    //    (ssh sessions, a stray conmon, a `lab exec` still running).
    let namespaces = sys::netns_with_prefix(&layout.ns_prefix());
    for ns in &namespaces {
        for pid in sys::pids_in_netns(ns) {
            let what = sys::process_name(pid).unwrap_or_default();
            if sys::terminate(pid, Duration::from_secs(3)) {
                say(out, format!("  stopped pid {pid} ({what}) left in {ns}"));
            } else {
                problems.push(format!("pid {pid} ({what}) in {ns} did not stop"));
            }
        }
    }

    // 4. Mounts podman left under the lab directory, then the directory.
    for m in sys::mounts_under(&layout.dir) {
        if let Err(e) = sys::unmount(&m) {
            problems.push(format!("cannot unmount {}: {e}", m.display()));
        }
    }
    for ns in &namespaces {
        if let Err(e) = ip(&["netns", "del", ns]) {
            problems.push(e.to_string());
        }
    }
    if !namespaces.is_empty() {
        say(
            out,
            format!(
                "  deleted {} namespace(s) {}*",
                namespaces.len(),
                layout.ns_prefix()
            ),
        );
    }
    if layout.dir.exists() {
        match std::fs::remove_dir_all(&layout.dir) {
            Ok(()) => say(out, format!("  removed {}", layout.dir.display())),
            Err(e) => problems.push(format!("cannot remove {}: {e}", layout.dir.display())),
        }
    }
    // The shared parent goes with the last lab (remove_dir fails on a non-empty one).
    if let Some(root) = layout.dir.parent() {
        let _ = std::fs::remove_dir(root);
    }

    // 5. Check, rather than trust, that nothing is left.
    for ns in sys::netns_with_prefix(&layout.ns_prefix()) {
        problems.push(format!("namespace {ns} still exists"));
    }
    if problems.is_empty() {
        say(out, format!("lab {name} is down"));
        Ok(())
    } else {
        Err(LabError::Teardown(problems))
    }
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
            (n.namespace.clone(), layout.node(node).env(node))
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

/// Prints the lab's state; true when every node is up (namespace, sshd).
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
            "  {:<12} {:<20} {:<26} {:<16} {}",
            "NODE", "ADDRESS", "NAMESPACE", "SSHD", "CONTAINERS"
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
        let containers = if ns_ok {
            match Cmd::new("podman")
                .args(["ps", "--all", "--quiet"])
                .envs(&nl.env(&n.name))
                .in_netns(&n.namespace)
                .run()
            {
                Ok(f) => f
                    .stdout
                    .lines()
                    .filter(|l| !l.is_empty())
                    .count()
                    .to_string(),
                Err(_) => "? (podman failed)".to_string(),
            }
        } else {
            "-".to_string()
        };
        let ns = if ns_ok {
            n.namespace.clone()
        } else {
            format!("{} MISSING", n.namespace)
        };
        say(
            out,
            format!(
                "  {:<12} {:<20} {:<26} {:<16} {}",
                n.name,
                format!("{}:{}", n.address, n.port),
                ns,
                sshd,
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

/// What a tarball holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarballKind {
    /// A root filesystem: `podman import`.
    Rootfs,
    /// A docker-archive or OCI archive (`podman save`): `podman load`.
    ImageArchive,
}

/// An image archive has its manifest at the top; a root filesystem does not.
pub fn tarball_kind(entries: &str) -> TarballKind {
    let archive = entries
        .lines()
        .map(|l| l.trim_start_matches("./"))
        .any(|e| e == "manifest.json" || e == "oci-layout" || e == "index.json");
    if archive {
        TarballKind::ImageArchive
    } else {
        TarballKind::Rootfs
    }
}

/// The image names `podman load` reports ("Loaded image: a" or "Loaded image(s): a,b").
fn loaded_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Loaded image"))
        .filter_map(|rest| rest.split_once(": ").map(|(_, names)| names))
        .flat_map(|names| names.split(',').map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// Loads a rootfs or image tarball into every node's store as `image`.
pub fn load(
    spec: &LabSpec,
    tarball: &Path,
    image: &str,
    out: &mut dyn Write,
) -> Result<(), LabError> {
    preflight::check()?;
    let layout = layout_for(&spec.name);
    let state = state(spec, &layout)?;
    let tarball = std::fs::canonicalize(tarball).map_err(io_err(tarball))?;
    let listing = Cmd::new("tar").arg("-tf").arg(&tarball).run()?;
    let kind = tarball_kind(&listing.stdout);
    let results: Vec<(String, Result<String, LabError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = state
            .nodes
            .iter()
            .map(|n| {
                let (layout, tarball) = (&layout, &tarball);
                s.spawn(move || (n.name.clone(), load_into(layout, n, tarball, kind, image)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    });
    let mut failed = Vec::new();
    for (node, result) in results {
        match result {
            Ok(how) => say(out, format!("  {node}: {image} ({how})")),
            Err(e) => failed.push(format!("{node}: {e}")),
        }
    }
    if failed.is_empty() {
        say(
            out,
            format!("loaded {image} into {} node(s)", state.nodes.len()),
        );
        Ok(())
    } else {
        Err(LabError::Node {
            node: "load".into(),
            reason: failed.join("; "),
        })
    }
}

fn load_into(
    layout: &Layout,
    node: &StateNode,
    tarball: &Path,
    kind: TarballKind,
    image: &str,
) -> Result<String, LabError> {
    let env = layout.node(&node.name).env(&node.name);
    let podman = |args: &[&str]| {
        Cmd::new("podman")
            .args(args)
            .envs(&env)
            .in_netns(&node.namespace)
    };
    let path = tarball.display().to_string();
    match kind {
        TarballKind::Rootfs => {
            podman(&["import", "--quiet", &path, image]).run()?;
            Ok("imported root filesystem".into())
        }
        TarballKind::ImageArchive => {
            let loaded = podman(&["load", "--input", &path]).run()?;
            let names = loaded_names(&loaded.stdout);
            let first = names.first().ok_or_else(|| LabError::Node {
                node: node.name.clone(),
                reason: format!("podman load named no image: {}", loaded.stdout.trim()),
            })?;
            if first != image {
                podman(&["tag", first, image]).run()?;
            }
            Ok(format!("loaded image archive, {first}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_archives_are_told_from_root_filesystems() {
        assert_eq!(
            tarball_kind("manifest.json\nabc/layer.tar\n"),
            TarballKind::ImageArchive
        );
        assert_eq!(
            tarball_kind("./\n./oci-layout\n./index.json\n./blobs/\n"),
            TarballKind::ImageArchive
        );
        assert_eq!(
            tarball_kind("./\n./bin/\n./bin/busybox\n./etc/manifest.json\n"),
            TarballKind::Rootfs
        );
    }

    #[test]
    fn podman_load_output_gives_the_loaded_names() {
        assert_eq!(
            loaded_names("Getting image source signatures\nLoaded image: localhost/a:latest\n"),
            ["localhost/a:latest"]
        );
        assert_eq!(
            loaded_names("Loaded image(s): localhost/a:1,localhost/b:2\n"),
            ["localhost/a:1", "localhost/b:2"]
        );
        assert!(loaded_names("nothing\n").is_empty());
    }
}
