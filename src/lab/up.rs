//! `lab up`: builds the lab (keys, namespaces on the bridge, sshd and podman per
//! node, dockerd per docker node, the control namespace) and checks every node answers before it returns.
//! On any failure it takes down what it made (`down::teardown`); it creates nothing
//! in the machine's root namespace.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::down::teardown;
use super::sys::{self, Cmd};
use super::{
    create_dir, io_err, ip, layout_for, read, say, write_file, LabError, LabNode, LabSpec, Layout,
    State, StateNode, ENV_IDENTITY, ENV_KNOWN_HOSTS,
};
use super::{layout, preflight, users};
use crate::topology::model::Runtime;

/// Brings the lab up; on any failure takes down what was made and returns the error.
pub fn up(spec: &LabSpec, out: &mut dyn Write) -> Result<(), LabError> {
    let tools = preflight::check(spec.has_docker())?;
    let layout = layout_for(&spec.name);
    let leftover_ns = sys::netns_with_prefix(&layout.ns_prefix());
    if layout.dir.exists() || !leftover_ns.is_empty() {
        return Err(LabError::AlreadyUp {
            name: spec.name.clone(),
            dir: layout.dir.display().to_string(),
        });
    }
    for node in spec.nodes.iter().filter(|n| n.runtime == Runtime::Docker) {
        layout
            .node(&node.name)
            .check_docker_socket_paths()
            .map_err(|reason| LabError::Node {
                node: node.name.clone(),
                reason,
            })?;
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
                        "  {:<12} {}:{}  ns {}  sshd ok, podman ok{}",
                        node.name,
                        node.address,
                        node.port,
                        layout.node_ns(&node.name),
                        if node.runtime == Runtime::Docker {
                            ", dockerd ok"
                        } else {
                            ""
                        }
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

pub(super) fn build(
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
                docker: n.runtime == Runtime::Docker,
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
    let users = spec.users();
    if users.is_empty() {
        write_file(&layout.authorized_keys(), &client_pub, 0o600)?;
    } else {
        // sshd reads a user's authorized keys as that user: the lab's users must
        // reach this (public) file through the lab directory, whose private files
        // stay 0600.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&layout.dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io_err(&layout.dir))?;
        write_file(&layout.authorized_keys(), &client_pub, 0o644)?;
        say(
            out,
            format!(
                "  users: {}",
                users
                    .iter()
                    .map(|(u, sudo)| if *sudo {
                        format!(
                            "{u} (passwordless sudo, {})",
                            users::sudoers_file(layout, u).display()
                        )
                    } else {
                        u.clone()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        users::create(layout, &users)?;
    }
    let driver = sys::storage_driver_for(&layout.dir);
    let mut known_hosts = String::new();
    for node in &spec.nodes {
        let nl = layout.node(&node.name);
        create_dir(&nl.dir)?;
        create_dir(&nl.run_dir())?;
        for d in nl.podman_dirs() {
            create_dir(&d)?;
        }
        if node.runtime == Runtime::Docker {
            create_dir(&nl.docker_data_root())?;
            create_dir(&nl.docker_exec_root())?;
            write_file(&nl.daemon_json(), "{}\n", 0o644)?;
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

    // A node behind a jump host: its sshd port answers its bastion only (a TCP
    // reset for everyone else, the control namespace included), in the node's
    // own namespace, which goes with the lab.
    for node in &spec.nodes {
        if let Some(jump) = &node.jump {
            say(
                out,
                format!(
                    "  {}: SSH only from {} ({})",
                    node.name, jump.name, jump.address
                ),
            );
            Cmd::new("iptables")
                .args([
                    "-w",
                    "-A",
                    "INPUT",
                    "-p",
                    "tcp",
                    "--dport",
                    &node.port.to_string(),
                ])
                .args(["!", "-s", &format!("{}/32", jump.address)])
                .args(["-j", "REJECT", "--reject-with", "tcp-reset"])
                .in_netns(&layout.node_ns(&node.name))
                .run()?;
        }
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

    // One dockerd per docker node, in the node's namespace, after every sshd (a
    // `lab up` cut short there has started sshds only, or dockerds too).
    for node in spec.nodes.iter().filter(|n| n.runtime == Runtime::Docker) {
        let dockerd = tools.dockerd.as_ref().expect("checked with docker nodes");
        let pid = start_dockerd(layout, node, dockerd, driver)?;
        say(
            out,
            format!(
                "  {}: dockerd pid {pid}, DOCKER_HOST={}",
                node.name,
                layout.node(&node.name).docker_host()
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

/// Starts a docker node's dockerd and waits until it answers on its socket, with
/// the client the node's sessions use; returns its pid (from its pid file).
fn start_dockerd(
    layout: &Layout,
    node: &LabNode,
    dockerd: &Path,
    driver: &str,
) -> Result<i32, LabError> {
    let nl = layout.node(&node.name);
    let env = nl.env(&node.name, node.runtime);
    let ns = layout.node_ns(&node.name);
    // Its containerd, runc and docker-proxy are found on the node's PATH.
    Cmd::new(dockerd)
        .args(nl.dockerd_args(driver))
        .envs(&env)
        .in_netns(&ns)
        .spawn_detached(&nl.dockerd_log())?;
    let answers = || {
        Cmd::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .envs(&env)
            .in_netns(&ns)
            .run()
            .ok()
    };
    let started = wait_for(Duration::from_secs(60), || {
        let pid = sys::read_pid(&nl.dockerd_pid()).filter(|p| sys::alive(*p))?;
        answers().map(|_| pid)
    });
    started.ok_or_else(|| {
        let log = std::fs::read_to_string(nl.dockerd_log()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        LabError::Node {
            node: node.name.clone(),
            reason: format!(
                "dockerd did not answer on {} within 60s; the end of {}:\n{}",
                nl.docker_host(),
                nl.dockerd_log().display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        }
    })
}

/// One node answers ssh (verified host key, lab key) and runs podman on its own
/// store; a docker node's sessions also reach its own dockerd with /usr/bin/docker.
pub(super) fn check_node(layout: &Layout, node: &LabNode) -> Result<(), LabError> {
    let nl = layout.node(&node.name);
    let (probe, want) = match node.runtime {
        Runtime::Podman => (
            "podman info --format '{{.Store.GraphRoot}}'",
            nl.dir.join("storage").display().to_string(),
        ),
        Runtime::Docker => (
            "podman info --format '{{.Store.GraphRoot}}' && command -v docker && \
             docker info --format '{{.DockerRootDir}}'",
            format!(
                "{}\n/usr/bin/docker\n{}",
                nl.dir.join("storage").display(),
                nl.docker_data_root().display()
            ),
        ),
    };
    let got =
        wait_for(Duration::from_secs(5), || ssh(layout, node, probe).ok()).ok_or_else(|| {
            LabError::Node {
                node: node.name.clone(),
                reason: match ssh(layout, node, probe) {
                    Err(e) => format!("ssh from the control namespace failed: {e}"),
                    Ok(_) => "ssh failed".into(),
                },
            }
        })?;
    if got.trim() != want {
        return Err(LabError::Node {
            node: node.name.clone(),
            reason: format!(
                "over ssh, the node's store (and docker client and data root) is\n{}\ninstead of\n{want}",
                got.trim()
            ),
        });
    }
    if node.user != "root" {
        // The topology's own user logs in, and becomes root without a password.
        let probe = if node.sudo { "sudo -n true" } else { "true" };
        ssh_as(layout, node, &node.user, probe).map_err(|e| LabError::Node {
            node: node.name.clone(),
            reason: format!("ssh as {} (`{probe}`) failed: {e}", node.user),
        })?;
    }
    Ok(())
}

/// Runs `command` on a node with plain OpenSSH from the control namespace, host key
/// verified against the lab's known_hosts only.
pub(super) fn ssh(layout: &Layout, node: &LabNode, command: &str) -> Result<String, LabError> {
    ssh_as(layout, node, "root", command)
}

/// `ssh` as `user` (through the node's bastion when it has one).
fn ssh_as(layout: &Layout, node: &LabNode, user: &str, command: &str) -> Result<String, LabError> {
    let mut args = lab_ssh_options(layout);
    if let Some(jump) = &node.jump {
        let mut proxy = vec!["ssh".to_string()];
        proxy.extend(lab_ssh_options(layout));
        proxy.extend([
            "-p".into(),
            jump.port.to_string(),
            "-W".into(),
            "%h:%p".into(),
            format!("root@{}", jump.address),
        ]);
        args.extend([
            "-o".into(),
            format!("ProxyCommand={}", crate::transport::shell::join(&proxy)),
        ]);
    }
    Cmd::new("ssh")
        .args(&args)
        .args([
            "-p",
            &node.port.to_string(),
            &format!("{user}@{}", node.address),
            command,
        ])
        .in_netns(&layout.control_ns())
        .run()
        .map(|f| f.stdout)
}

/// The lab's own ssh options: no ssh_config, the lab key, its known_hosts only.
fn lab_ssh_options(layout: &Layout) -> Vec<String> {
    let kh = layout.known_hosts().display().to_string();
    [
        "-F",
        "/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        &format!("UserKnownHostsFile={kh}"),
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
        "-i",
        &layout.client_key().display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub(super) fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
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

pub(super) fn pub_of(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

pub(super) fn keygen(path: &Path, comment: &str) -> Result<(), LabError> {
    Cmd::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .run()
        .map(|_| ())
}

/// Creates namespace `ns` plugged into the bridge with `address`: the veth is made
/// inside the lan namespace with its peer moved straight into `ns`, so no interface
/// ever appears in the root namespace. A /32 with an on-link default route lets
/// nodes of any addresses reach each other over the bridge without a shared subnet.
pub(super) fn plug(lan: &str, port: &str, ns: &str, address: Ipv4Addr) -> Result<(), LabError> {
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
