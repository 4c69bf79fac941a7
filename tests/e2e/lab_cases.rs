//! Cases about the lab itself: nodes are real SSH hosts with verified host keys,
//! separate podman stores, published ports reachable between nodes, images loaded
//! from tarballs, and `down` cleaning up after an interrupted `up`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ensure;
use crate::harness::{namespaces_with_prefix, Ctx, Outcome, IMAGE};

/// Plain OpenSSH from where geartopo runs, with the key and known_hosts `lab exec`
/// hands out; strict host key checking, so a wrong key would fail the case.
pub fn ssh_with_verified_host_key(ctx: &Ctx) -> Outcome {
    for (node, address) in &ctx.nodes {
        let run = ctx
            .in_control(&format!(
                "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
                 -o UserKnownHostsFile=\"$GEARTOPO_KNOWN_HOSTS\" -o GlobalKnownHostsFile=/dev/null \
                 -o IdentitiesOnly=yes -i \"$GEARTOPO_IDENTITY\" root@{address} \
                 'echo \"$GEARTOPO_LAB_NODE $(podman info --format {{{{.Store.GraphRoot}}}})\"'"
            ))
            .ok()?;
        let out = run.stdout.trim();
        ensure!(
            out.starts_with(&format!("{node} ")),
            "ssh to {address} reached {out:?}, not {node}"
        );
        ensure!(
            out.ends_with(&format!("/nodes/{node}/storage")),
            "podman over ssh on {node} uses store {out:?}"
        );
    }
    // The same ssh with an empty known_hosts must refuse: verification is real.
    let run = ctx.in_control(
        "kh=$(mktemp); ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile=$kh -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes \
         -i \"$GEARTOPO_IDENTITY\" root@198.18.0.1 true; rc=$?; rm -f $kh; exit $rc",
    );
    ensure!(
        run.code == 255,
        "ssh without the host key should fail (255)\n{}",
        run.describe()
    );
    ensure!(
        run.stderr.contains("Host key verification failed"),
        "unexpected ssh error\n{}",
        run.describe()
    );
    Ok(())
}

/// Two nodes do not see each other's containers.
pub fn node_stores_are_separate(ctx: &Ctx) -> Outcome {
    let name = format!("e2e-lab-sep-{}", ctx.run_id);
    ctx.on_node(
        "node1",
        &format!("podman run -d --name {name} {IMAGE} sleep inf"),
    )
    .ok()?;
    let seen = |node: &str| -> Result<bool, String> {
        let run = ctx
            .on_node(node, "podman ps --all --format '{{.Names}}'")
            .ok()?;
        Ok(run.stdout.lines().any(|l| l == name))
    };
    let result = (|| {
        ensure!(
            seen("node1")?,
            "node1 does not list its own container {name}"
        );
        for node in ["node2", "node3", "node4", "node5"] {
            ensure!(!seen(node)?, "{node} sees node1's container {name}");
        }
        // A docker node's dockerd keeps its data in the node's own directory.
        for node in &ctx.docker_nodes {
            let root = ctx
                .on_node(node, "docker info --format '{{.DockerRootDir}}'")
                .ok()?;
            ensure!(
                root.stdout
                    .trim()
                    .ends_with(&format!("/nodes/{node}/docker")),
                "{node}'s dockerd keeps its data in {:?}",
                root.stdout.trim()
            );
        }
        Ok(())
    })();
    ctx.on_node("node1", &format!("podman rm -f -t 0 {name}"))
        .ok()?;
    result
}

/// `podman run -p` on node4 answers on node4's address, from a container on node1
/// and from the control namespace; TCP and UDP.
pub fn published_port_between_nodes(ctx: &Ctx) -> Outcome {
    let (tcp, udp) = (
        format!("e2e-lab-tcp-{}", ctx.run_id),
        format!("e2e-lab-udp-{}", ctx.run_id),
    );
    let client = format!("e2e-lab-client-{}", ctx.run_id);
    let result = (|| {
        ctx.on_node(
            "node4",
            &format!(
                "podman run -d --name {tcp} -p 50090:7000 {IMAGE} gt-serve tcp 7000 tcp-node4"
            ),
        )
        .ok()?;
        ctx.on_node(
            "node4",
            &format!(
                "podman run -d --name {udp} -p 50091:7001/udp {IMAGE} gt-serve udp 7001 udp-node4"
            ),
        )
        .ok()?;
        ctx.on_node(
            "node1",
            &format!("podman run -d --name {client} {IMAGE} sleep inf"),
        )
        .ok()?;
        let node4 = ctx.address("node4");
        let reply = ask_retrying(ctx, "node1", &client, "tcp", node4, 50090)?;
        ensure!(
            reply == "tcp-node4 hello",
            "TCP reply from node4: {reply:?}"
        );
        let reply = ask_retrying(ctx, "node1", &client, "udp", node4, 50091)?;
        ensure!(
            reply == "udp-node4 hello",
            "UDP reply from node4: {reply:?}"
        );
        let run = ctx
            .in_control("echo from-control | socat -T 5 - TCP4:198.18.0.4:50090")
            .ok()?;
        ensure!(
            run.stdout.trim() == "tcp-node4 from-control",
            "reply in the control namespace: {:?}",
            run.stdout
        );
        Ok(())
    })();
    ctx.on_node("node4", &format!("podman rm -f -t 0 {tcp} {udp}"))
        .ok()?;
    ctx.on_node("node1", &format!("podman rm -f -t 0 {client}"))
        .ok()?;
    result
}

/// Servers in freshly started containers need a moment to listen.
pub fn ask_retrying(
    ctx: &Ctx,
    node: &str,
    container: &str,
    proto: &str,
    host: &str,
    port: u16,
) -> Result<String, String> {
    let mut last = String::new();
    for _ in 0..10 {
        match ctx.ask(node, container, proto, host, port, "hello") {
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    Err(last)
}

/// `lab load` of a root filesystem tarball (the image archive is loaded by the
/// harness itself): every node can run it.
pub fn load_rootfs_tarball(ctx: &Ctx) -> Outcome {
    let rootfs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("images/out/geartopo-busybox-rootfs.tar");
    let lab = ctx.lab.display().to_string();
    let run = ctx
        .geartopo_here(&[
            "lab",
            "load",
            &lab,
            &rootfs.display().to_string(),
            "localhost/e2e-rootfs:latest",
        ])
        .ok()?;
    ensure!(
        run.stdout.contains("imported root filesystem"),
        "rootfs not imported:\n{}",
        run.describe()
    );
    for (node, _) in &ctx.nodes {
        let out = ctx
            .on_node(
                node,
                &format!(
                    "{} run --rm localhost/e2e-rootfs:latest /bin/busybox echo rootfs-runs",
                    ctx.runtime(node)
                ),
            )
            .ok()?;
        ensure!(
            out.stdout.trim() == "rootfs-runs",
            "{node}: {}",
            out.describe()
        );
    }
    Ok(())
}

/// `up` on a lab that is up is refused; without root every command says so.
pub fn refuses_second_up_and_non_root(ctx: &Ctx) -> Outcome {
    let lab = ctx.lab.display().to_string();
    let run = ctx.geartopo_here(&["lab", "up", &lab]).expect(1)?;
    ensure!(
        run.stderr.contains("already up"),
        "second up:\n{}",
        run.describe()
    );
    let status = ctx.geartopo_here(&["lab", "status", &lab]).ok()?;
    // One sshd per node, one dockerd per docker node.
    ensure!(
        status.stdout.matches("alive").count() == ctx.nodes.len() + ctx.docker_nodes.len(),
        "status after refused up:\n{}",
        status.describe()
    );
    for args in [
        vec!["up", lab.as_str()],
        vec!["down", lab.as_str()],
        vec!["exec", lab.as_str(), "--", "true"],
        vec!["status", lab.as_str()],
        vec!["load", lab.as_str(), "/nonexistent.tar", "x"],
    ] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&ctx.bin)
            .arg("lab")
            .args(&args)
            .output()
            .map_err(|e| format!("setpriv: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(
            out.status.code() == Some(1),
            "lab {args:?} as nobody exited {:?}: {stderr}",
            out.status.code()
        );
        ensure!(
            stderr.contains("needs root"),
            "lab {args:?} as nobody: {stderr}"
        );
    }
    Ok(())
}

/// A `lab up` killed half way (as by Ctrl-C) leaves a lab that `down` removes
/// entirely: namespaces, sshd and dockerd processes, files. It is killed once its
/// dockerd (started after every sshd) is up, before the nodes are checked.
pub fn down_after_interrupted_up(ctx: &Ctx) -> Outcome {
    let name = format!("e2e-broken-{}", ctx.run_id);
    let file = ctx.topology(&name, "");
    // Other addresses than the shared lab's: the two labs are unrelated anyway.
    let text = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())?
        .replace("198.18.0.", "198.18.1.");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let layout = geartopo::lab::Layout::new(Path::new(geartopo::lab::LAB_ROOT), &name);

    let mut child = Command::new(&ctx.bin)
        .args(["lab", "up"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut seen = Vec::new();
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let stop = line.contains("dockerd pid");
        seen.push(line);
        if stop {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let sshd: Vec<i32> = ctx
        .nodes
        .iter()
        .filter_map(|(node, _)| std::fs::read_to_string(layout.node(node).sshd_pid()).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let dockerd: Vec<i32> = ctx
        .docker_nodes
        .iter()
        .filter_map(|node| std::fs::read_to_string(layout.node(node).dockerd_pid()).ok())
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let status = ctx.geartopo_here(&["lab", "status", &file.display().to_string()]);
    ensure!(
        !sshd.is_empty(),
        "the interrupted up started no sshd; output:\n{}",
        seen.join("\n")
    );
    ensure!(
        dockerd.len() == ctx.docker_nodes.len(),
        "the interrupted up started no dockerd; output:\n{}",
        seen.join("\n")
    );
    ensure!(
        !namespaces_with_prefix(&layout.ns_prefix()).is_empty(),
        "the interrupted up made no namespace"
    );

    ctx.geartopo_here(&["lab", "down", &file.display().to_string()])
        .ok()?;
    let left = namespaces_with_prefix(&layout.ns_prefix());
    ensure!(left.is_empty(), "namespaces left after down: {left:?}");
    ensure!(
        !layout.dir.exists(),
        "{} left after down",
        layout.dir.display()
    );
    for pid in sshd {
        ensure!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "sshd {pid} still running"
        );
    }
    for pid in dockerd {
        ensure!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "dockerd {pid} still running"
        );
    }
    // And down again is a no-op that succeeds.
    let again = ctx
        .geartopo_here(&["lab", "down", &file.display().to_string()])
        .ok()?;
    ensure!(
        again.stdout.contains("not up"),
        "second down:\n{}\n(status was {})",
        again.describe(),
        status.code
    );
    Ok(())
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
                .unwrap_or(true)
        })
        .unwrap_or(true)
}

/// A `lab up` that fails half way (here: its ssh check, with an `ssh` that always
/// fails first in PATH) reports why and takes down what it made by itself.
pub fn failed_up_cleans_up(ctx: &Ctx) -> Outcome {
    let name = format!("e2e-failing-{}", ctx.run_id);
    let file = ctx.topology(&name, "");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| e.to_string())?
        .replace("198.18.0.", "198.18.2.");
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let layout = geartopo::lab::Layout::new(Path::new(geartopo::lab::LAB_ROOT), &name);
    let fake = std::env::temp_dir().join(format!("gt-e2e-fakebin-{}", ctx.run_id));
    std::fs::create_dir_all(&fake).map_err(|e| e.to_string())?;
    std::fs::write(
        fake.join("ssh"),
        "#!/bin/sh\necho 'fake ssh: refused' >&2\nexit 255\n",
    )
    .map_err(|e| e.to_string())?;
    std::process::Command::new("chmod")
        .arg("755")
        .arg(fake.join("ssh"))
        .status()
        .map_err(|e| e.to_string())?;
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(&ctx.bin)
        .args(["lab", "up"])
        .arg(&file)
        .env("PATH", path)
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&fake);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let left = namespaces_with_prefix(&layout.ns_prefix());
    let dir_left = layout.dir.exists();
    if !left.is_empty() || dir_left {
        // Leave nothing behind for the next run, whatever this case concludes.
        let _ = ctx.geartopo_here(&["lab", "down", &file.display().to_string()]);
    }
    ensure!(
        out.status.code() == Some(1),
        "failing up exited {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    ensure!(
        stderr.contains("fake ssh: refused"),
        "the error does not say why:\n{stderr}"
    );
    ensure!(
        stdout.contains("sshd pid"),
        "up failed before starting sshd, which proves less:\n{stdout}"
    );
    ensure!(
        stdout.contains("is down"),
        "up did not take itself down:\n{stdout}"
    );
    ensure!(
        left.is_empty(),
        "namespaces left after a failed up: {left:?}"
    );
    ensure!(!dir_left, "{} left after a failed up", layout.dir.display());
    let pids: Vec<i32> = stdout
        .lines()
        .filter_map(|l| l.split("sshd pid ").nth(1))
        .filter_map(|r| r.split_whitespace().next()?.parse().ok())
        .collect();
    ensure!(!pids.is_empty(), "no sshd pid in the output:\n{stdout}");
    // The ssh check fails after the dockerds started: they go too.
    let dockerd: Vec<i32> = stdout
        .lines()
        .filter_map(|l| l.split("dockerd pid ").nth(1))
        .filter_map(|r| r.split(',').next()?.trim().parse().ok())
        .collect();
    ensure!(
        dockerd.len() == ctx.docker_nodes.len(),
        "no dockerd pid in the output:\n{stdout}"
    );
    for pid in pids {
        ensure!(
            !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "sshd {pid} still running"
        );
    }
    for pid in dockerd {
        ensure!(
            !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(pid),
            "dockerd {pid} still running"
        );
    }
    Ok(())
}

/// While the lab is up (and after every case before this one ran its containers),
/// the machine's own network namespace is as it was before the lab: no interface,
/// address, route or rule of the lab's is there, though each docker node's dockerd
/// has made docker0 and its chains in its node.
pub fn root_namespace_untouched(ctx: &Ctx) -> Outcome {
    for node in &ctx.docker_nodes {
        ctx.on_node(
            node,
            "ip -o link show docker0 && iptables-save -t nat | grep -q '^:DOCKER '",
        )
        .ok()?;
    }
    let now = crate::harness::root_namespace_snapshot();
    ensure!(
        now == ctx.root_before,
        "the machine's root network namespace changed while the lab is up:\n{}",
        crate::harness::snapshot_difference(&ctx.root_before, &now)
    );
    Ok(())
}
