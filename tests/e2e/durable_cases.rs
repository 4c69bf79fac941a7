//! Durable links (docs/durable.md): a container's links survive a restart, a
//! crash restarted by its policy and a node reboot as the runtime's boot
//! mechanism does it, with no geartopo command in between; after each, real
//! traffic goes through the link and `plan --detailed-exitcode` exits 0. A
//! container made before durable links is shown as "not durable" and made
//! durable only on request.

use std::time::{Duration, Instant};

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome};
use crate::lab_cases::ask_retrying;
use crate::topology_cases::{client, server};

/// server on node4 (`db`), client on node1 (`app`) linked to it at 127.0.0.1:6379.
fn seed(ctx: &Ctx, name: &str, host_port: u16) -> Result<std::path::PathBuf, String> {
    let body = server("db", "node4", "tcp", 6379, host_port, "db-on-node4")
        + &client("app", "node1", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    ctx.apply(&file)?;
    let app = format!("{name}-app");
    let reply = ask_retrying(ctx, "node1", &app, "tcp", "127.0.0.1", 6379)?;
    ensure!(reply == "db-on-node4 hello", "link before: {reply:?}");
    Ok(file)
}

/// The link works again (retrying while the container comes back), and plan
/// finds nothing to do.
fn link_back_and_no_changes(ctx: &Ctx, name: &str, file: &std::path::Path) -> Outcome {
    let app = format!("{name}-app");
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        match ask_retrying(ctx, "node1", &app, "tcp", "127.0.0.1", 6379) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => {}
        }
    };
    ensure!(reply == "db-on-node4 hello", "link after: {reply:?}");
    let plan = ctx.plan(file);
    ensure!(
        plan.code == 0,
        "plan after the restart is not `no changes`:\n{}",
        plan.describe()
    );
    Ok(())
}

/// `podman restart` of a linked container: a fresh namespace, rules back by the
/// hook before the process runs.
pub fn restart_of_a_linked_container(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-restart";
    let file = seed(ctx, name, 50301)?;
    let _guard = Guard::new(ctx, &file, name);
    let before = ctx.container_pid("node1", &format!("{name}-app"))?;
    ctx.on_node("node1", &format!("podman restart -t 1 {name}-app"))
        .ok()?;
    let after = ctx.container_pid("node1", &format!("{name}-app"))?;
    ensure!(before != after, "podman restart kept pid {before}");
    link_back_and_no_changes(ctx, name, &file)
}

/// The same restart on nftables nodes: the hook replays the rules file's `nft -f`
/// document (docs/durable.md, docs/nftables.md); the link comes back, the table
/// is there and `iptables-save` in the namespace still shows no rule of geartopo's.
pub fn restart_on_nftables(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-nft";
    let body = "[defaults]\nfirewall = \"nftables\"\n\n".to_string()
        + &server("db", "node4", "tcp", 6379, 50306, "db-on-node4")
        + &client("app", "node1", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let app = format!("{name}-app");
    let reply = ask_retrying(ctx, "node1", &app, "tcp", "127.0.0.1", 6379)?;
    ensure!(reply == "db-on-node4 hello", "link before: {reply:?}");
    let before = ctx.container_pid("node1", &app)?;
    ctx.on_node("node1", &format!("podman restart -t 1 {app}"))
        .ok()?;
    let pid = ctx.container_pid("node1", &app)?;
    ensure!(before != pid, "podman restart kept pid {before}");
    link_back_and_no_changes(ctx, name, &file)?;
    let table = ctx
        .on_node(
            "node1",
            &format!("nsenter -t {pid} -n nft list table ip geartopo"),
        )
        .ok()?
        .output();
    ensure!(
        table.contains("dnat to 198.18.0.4:50306"),
        "after the restart, table ip geartopo has no link:\n{table}"
    );
    let save = ctx
        .on_node("node1", &format!("nsenter -t {pid} -n iptables-save"))
        .ok()?
        .output();
    ensure!(
        !save.contains("GEARTOPO"),
        "iptables-save after the restart shows geartopo's rules on an nftables node:\n{save}"
    );
    Ok(())
}

/// `kill -9` of the container's process under the default policy (`always`):
/// podman starts it again, the hook puts its rules back.
pub fn kill_9_under_the_default_policy(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-kill";
    let file = seed(ctx, name, 50302)?;
    let _guard = Guard::new(ctx, &file, name);
    let app = format!("{name}-app");
    let policy = ctx
        .on_node(
            "node1",
            &format!("podman inspect -f '{{{{.HostConfig.RestartPolicy.Name}}}}' {app}"),
        )
        .ok()?;
    ensure!(
        policy.stdout.trim() == "always",
        "policy: {}",
        policy.describe()
    );
    let before = ctx.container_pid("node1", &app)?;
    ctx.on_node("node1", &format!("kill -9 {before}")).ok()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match ctx.container_pid("node1", &app) {
            Ok(p) if p != before => break,
            _ if Instant::now() > deadline => {
                return Err(format!("{app} did not come back after kill -9 of {before}"))
            }
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    }
    link_back_and_no_changes(ctx, name, &file)
}

/// A node reboot as podman's boot service does it: every container of the node
/// stopped, then `podman start --all --filter restart-policy=always`.
pub fn node_reboot_by_the_boot_service(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-reboot";
    let file = seed(ctx, name, 50303)?;
    let _guard = Guard::new(ctx, &file, name);
    for node in ["node1", "node4"] {
        ctx.on_node(node, "podman stop --all -t 1 >/dev/null")
            .ok()?;
    }
    for node in ["node4", "node1"] {
        ctx.on_node(
            node,
            "podman start --all --filter restart-policy=always >/dev/null",
        )
        .ok()?;
    }
    link_back_and_no_changes(ctx, name, &file)
}

/// The link's target restarted: its published port comes back, the link with it.
pub fn target_restarted(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-target";
    let file = seed(ctx, name, 50304)?;
    let _guard = Guard::new(ctx, &file, name);
    ctx.on_node("node4", &format!("podman restart -t 1 {name}-db"))
        .ok()?;
    link_back_and_no_changes(ctx, name, &file)
}

/// A container made before durable links (no label, no annotation, no restart
/// policy, no `restart` in its spec): plan names it "not durable", apply leaves
/// it alone, `apply --make-durable` replaces it, and from then on a restart
/// keeps its link.
pub fn old_container_made_durable_on_request(ctx: &Ctx) -> Outcome {
    let name = "e2e-dur-old";
    let file = seed(ctx, name, 50305)?;
    let _guard = Guard::new(ctx, &file, name);
    let app = format!("{name}-app");
    // Made again as a geartopo before durable links made it.
    let spec = ctx
        .on_node(
            "node1",
            &format!("podman inspect -f '{{{{index .Config.Labels \"geartopo.spec\"}}}}' {app}"),
        )
        .ok()?
        .stdout;
    let old_spec: Vec<&str> = spec
        .trim()
        .split(',')
        .filter(|kv| !kv.starts_with("restart="))
        .collect();
    let sd = ctx
        .on_node("node1", "echo $GEARTOPO_STATE_DIR")
        .ok()?
        .stdout;
    ctx.on_node(
        "node1",
        &format!(
            "set -e; podman rm -f {app} >/dev/null; rm -f {sd}/rules/{app}; \
             podman create --name {app} --label geartopo.topology={name} --label geartopo.container=app \
             --label geartopo.spec={} --sysctl net.ipv4.ip_forward=1 \
             --sysctl net.ipv4.conf.all.route_localnet=1 --env GEARTOPO_TOPOLOGY={name} \
             --env GEARTOPO_CONTAINER=app {} sleep inf >/dev/null",
            old_spec.join(","),
            crate::harness::IMAGE,
            sd = sd.trim(),
        ),
    )
    .ok()?;
    // Its rules are missing (a fresh container): apply restores them, and
    // replaces nothing.
    ctx.apply(&file)?;
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0
            && plan.stdout.contains(&format!(
                "app on node1 (\"{app}\"): not durable: replace to make it durable"
            )),
        "plan of an old container:\n{}",
        plan.describe()
    );
    let reply = ask_retrying(ctx, "node1", &app, "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "db-on-node4 hello",
        "old container's link: {reply:?}"
    );
    ctx.geartopo(&[
        "apply",
        &file.display().to_string(),
        "--auto-approve",
        "--make-durable",
    ])
    .ok()?;
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0 && !plan.stdout.contains("not durable"),
        "plan after --make-durable:\n{}",
        plan.describe()
    );
    ctx.on_node("node1", &format!("podman restart -t 1 {app}"))
        .ok()?;
    link_back_and_no_changes(ctx, name, &file)
}
