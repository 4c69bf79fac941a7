//! `lab down`: takes a lab down from its name alone (after a failed or partial `up`
//! too), stopping processes (sshd, dockerd) by pid file or because they live in the lab's own
//! namespaces, never by name, and reports anything it could not remove.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::spec;
use super::sys::{self, Cmd};
use super::{ip, layout_for, require_root, say, LabError, Layout};
use crate::topology::model::Runtime;

/// How long dockerd may take to stop (it stops its containers first; the lab
/// removed them already, so this is a bound, not a wait).
const DOCKERD_STOP: Duration = Duration::from_secs(30);

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

pub(super) fn teardown(layout: &Layout, out: &mut dyn Write) -> Result<(), LabError> {
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
                .envs(&nl.env(node, Runtime::Podman))
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

    // 2. A docker node's dockerd: its containers removed through it, then dockerd
    //    stopped by its pid file (only if that pid is still a dockerd), waiting
    //    until it is gone (it takes its containerd with it). A dockerd that an
    //    interrupted `up` started before writing its pid file lives in the node's
    //    namespace and goes in step 3.
    for node in &nodes {
        stop_dockerd(layout, node, out, &mut problems);
    }

    // 2b. OpenSSH master connections geartopo left to the lab's nodes
    //     (`transport = "openssh"`): asked to exit through their sockets.
    stop_ssh_masters(layout, out);

    // 3. sshd, by its pid file only, and only if that pid is still an sshd.
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

    // 4. Whatever still runs inside the lab's own namespaces was started in the lab
    //    (ssh sessions, a stray conmon or containerd, a `lab exec` still running).
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

    // 4b. The login users the lab made, now that no session of theirs runs.
    let user_problems = super::users::remove(layout);
    problems.extend(user_problems);

    // 5. Mounts podman and dockerd left under the lab directory, then the directory.
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

    // 6. Check, rather than trust, that nothing is left.
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

/// Removes a docker node's containers through its dockerd, then stops that dockerd
/// by the pid in its pid file, if that pid is a live dockerd.
fn stop_dockerd(layout: &Layout, node: &str, out: &mut dyn Write, problems: &mut Vec<String>) {
    let nl = layout.node(node);
    let Some(pid) = sys::read_pid(&nl.dockerd_pid()) else {
        return;
    };
    if !sys::alive(pid) || sys::process_name(pid).as_deref() != Some("dockerd") {
        return;
    }
    let ns = layout.node_ns(node);
    let env = nl.env(node, Runtime::Docker);
    let docker = |args: &[&str]| Cmd::new("docker").args(args).envs(&env).in_netns(&ns);
    if sys::netns_exists(&ns) {
        match docker(&["ps", "--all", "--quiet"]).run() {
            Ok(f) => {
                let ids: Vec<&str> = f.stdout.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "--force"];
                    args.extend(&ids);
                    match docker(&args).run() {
                        Ok(_) => say(
                            out,
                            format!("  {node}: removed {} docker container(s)", ids.len()),
                        ),
                        Err(e) => problems.push(format!("{node}: {e}")),
                    }
                }
            }
            Err(e) => problems.push(format!("{node}: docker containers not listed: {e}")),
        }
    }
    if sys::terminate(pid, DOCKERD_STOP) {
        say(out, format!("  {node}: stopped dockerd (pid {pid})"));
    } else {
        problems.push(format!("{node}: dockerd pid {pid} did not stop"));
    }
}

/// `ssh -O exit` for every master connection the OpenSSH transport may hold to a
/// node of this lab, as root or as a user the lab made (found through its control
/// socket, so only masters that exist answer; nothing is killed by name).
fn stop_ssh_masters(layout: &Layout, out: &mut dyn Write) {
    let Ok(dir) = crate::transport::openssh::control_dir_path() else {
        return;
    };
    if std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none()) {
        return;
    }
    let Some(state) = std::fs::read_to_string(layout.state_file())
        .ok()
        .and_then(|t| serde_json::from_str::<super::State>(&t).ok())
    else {
        return;
    };
    let mut users = vec!["root".to_string()];
    users.extend(super::users::listed(layout));
    for node in &state.nodes {
        for user in &users {
            let stopped = Cmd::new("ssh")
                .args(["-o", &format!("ControlPath={}/%C", dir.display())])
                .args(["-p", &node.port.to_string(), "-O", "exit"])
                .arg(format!("{user}@{}", node.address))
                .run()
                .is_ok();
            if stopped {
                say(
                    out,
                    format!("  {}: stopped the ssh master of {user}", node.name),
                );
            }
        }
    }
}
