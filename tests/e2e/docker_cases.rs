//! The core cases on a docker node (node5, its own dockerd): the seed scenario in
//! both directions between docker and podman nodes, a link changed without a
//! restart, drift repaired, and destroy. Before these, no test ever ran geartopo's
//! docker scripts. Each case has its own topology name and host ports.

use crate::ensure;
use crate::harness::{lines_with, Ctx, Guard, Outcome};
use crate::lab_cases::ask_retrying;
use crate::topology_cases::{client, server};

/// The docker node of the shared lab.
const DOCKER: &str = "node5";

/// The container's id as its runtime knows it (changes when it is replaced).
fn container_id(ctx: &Ctx, node: &str, container: &str) -> Result<String, String> {
    let run = ctx
        .on_node(
            node,
            &format!(
                "{} inspect --format '{{{{.Id}}}}' {container}",
                ctx.runtime(node)
            ),
        )
        .ok()?;
    Ok(run.stdout.trim().to_string())
}

/// A container on the docker node links to a server on a podman node, and a
/// container on a podman node links to a server published by the docker node:
/// real TCP both ways; plan exits 2 before apply and 0 after.
pub fn seed_both_ways(ctx: &Ctx) -> Outcome {
    ensure!(
        ctx.runtime(DOCKER) == "docker",
        "{DOCKER} is not a docker node"
    );
    let name = "e2e-dk-seed";
    let body = server("redisdb", "node4", "tcp", 6379, 50100, "redisdb-on-node4")
        + &client("app", DOCKER, &[r#"{ to = "redisdb:6379" }"#])
        + &server("cache", DOCKER, "tcp", 7000, 50101, "cache-on-node5")
        + &client("web", "node1", &[r#"{ to = "cache:7000" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);

    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        plan.stdout.contains("4 to add"),
        "plan summary is not `4 to add`:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    let mut on_docker = ctx.containers_of(DOCKER, name)?;
    on_docker.sort();
    ensure!(
        on_docker == ["e2e-dk-seed-app", "e2e-dk-seed-cache"],
        "docker containers on {DOCKER} after apply: {on_docker:?}"
    );
    // podman on the docker node knows none of them: they are docker's.
    let podman = ctx
        .on_node(DOCKER, "podman ps --all --format '{{.Names}}'")
        .ok()?;
    ensure!(
        !podman.stdout.contains("e2e-dk-seed"),
        "podman on {DOCKER} lists {}",
        podman.stdout
    );
    let reply = ask_retrying(ctx, DOCKER, "e2e-dk-seed-app", "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "redisdb-on-node4 hello",
        "docker app -> 127.0.0.1:6379 answered {reply:?}"
    );
    let reply = ask_retrying(ctx, "node1", "e2e-dk-seed-web", "tcp", "127.0.0.1", 7000)?;
    ensure!(
        reply == "cache-on-node5 hello",
        "podman web -> docker cache answered {reply:?}"
    );
    let again = ctx.plan(&file).expect(0)?;
    ensure!(
        again.stdout.contains("No changes"),
        "plan after apply:\n{}",
        again.describe()
    );
    // `geartopo check` probes from inside the docker and the podman container.
    let check = ctx.geartopo(&["check", &file.display().to_string()]).ok()?;
    ensure!(
        check
            .stdout
            .contains("ok            app on node5: 127.0.0.1:6379/tcp -> redisdb:6379")
            && check
                .stdout
                .contains("ok            web on node1: 127.0.0.1:7000/tcp -> cache:7000")
            && check.stdout.contains("2 links checked: 2 ok, 0 failed."),
        "check of both links:\n{}",
        check.describe()
    );
    Ok(())
}

/// A link of a docker container changed in the file is changed in the running
/// container: same container id and pid, the new link carries traffic, the old
/// one is gone.
pub fn link_changed_in_place(ctx: &Ctx) -> Outcome {
    let name = "e2e-dk-relink";
    let servers = server("one", "node3", "tcp", 7001, 50111, "one-on-node3")
        + &server("two", "node4", "tcp", 7002, 50112, "two-on-node4");
    let file = ctx.topology(
        name,
        &(servers.clone() + &client("app", DOCKER, &[r#"{ to = "one:7001" }"#])),
    );
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let app = "e2e-dk-relink-app";
    ensure!(
        ask_retrying(ctx, DOCKER, app, "tcp", "127.0.0.1", 7001)? == "one-on-node3 hello",
        "first link"
    );
    let (id, pid) = (
        container_id(ctx, DOCKER, app)?,
        ctx.container_pid(DOCKER, app)?,
    );

    ctx.topology(
        name,
        &(servers + &client("app", DOCKER, &[r#"{ to = "two:7002" }"#])),
    );
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        !plan.stdout.contains("-/+"),
        "changing a link plans a replacement:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    ensure!(
        container_id(ctx, DOCKER, app)? == id,
        "changing a link replaced the container (id changed)"
    );
    ensure!(
        ctx.container_pid(DOCKER, app)? == pid,
        "changing a link restarted the container (pid changed)"
    );
    ensure!(
        ask_retrying(ctx, DOCKER, app, "tcp", "127.0.0.1", 7002)? == "two-on-node4 hello",
        "changed link"
    );
    ensure!(
        ctx.ask(DOCKER, app, "tcp", "127.0.0.1", 7001, "hello")
            .is_err(),
        "the old link still answers"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// A rule deleted by hand in a docker container's namespace is drift in plan;
/// apply restores it without restarting the container.
pub fn drift_repaired(ctx: &Ctx) -> Outcome {
    let name = "e2e-dk-drift";
    let body = server("db", "node3", "tcp", 6379, 50120, "db-on-node3")
        + &client("app", DOCKER, &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let app = "e2e-dk-drift-app";
    ensure!(
        ask_retrying(ctx, DOCKER, app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link before drift"
    );
    let pid = ctx.container_pid(DOCKER, app)?;
    let nat = ctx.container_nat(DOCKER, app)?;
    let owned = lines_with(&nat, "-A GEARTOPO-OUTPUT");
    let Some(index) = owned
        .iter()
        .position(|l| l.contains("DNAT") && l.contains("6379"))
    else {
        return Err(format!("no DNAT for 6379 in GEARTOPO-OUTPUT:\n{nat}"));
    };
    ctx.container_iptables(
        DOCKER,
        app,
        &format!("-t nat -D GEARTOPO-OUTPUT {}", index + 1),
    )?;
    ensure!(
        ctx.ask(DOCKER, app, "tcp", "127.0.0.1", 6379, "hello")
            .is_err(),
        "the link still works without its rule"
    );
    let plan = ctx.plan(&file).expect(2)?;
    let said = plan.output().to_lowercase();
    ensure!(
        said.contains("drift") || said.contains("outside geartopo"),
        "plan does not call the hand edit drift:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, DOCKER, app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link after repair"
    );
    ensure!(
        ctx.container_pid(DOCKER, app)? == pid,
        "repairing a rule restarted the container"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// After destroy, nothing of the topology is left on the docker node: no
/// container (docker's or podman's), no owned chain, no published port's DNAT in
/// the node's nat table, the client's process gone; plan wants it all again.
pub fn destroy_leaves_nothing(ctx: &Ctx) -> Outcome {
    let name = "e2e-dk-destroy";
    let body = server("db", DOCKER, "tcp", 6379, 50130, "db-on-node5")
        + &client("app", DOCKER, &[r#"{ to = "db:6379" }"#])
        + &client("app2", "node2", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    for (node, app) in [
        (DOCKER, "e2e-dk-destroy-app"),
        ("node2", "e2e-dk-destroy-app2"),
    ] {
        ensure!(
            ask_retrying(ctx, node, app, "tcp", "127.0.0.1", 6379)? == "db-on-node5 hello",
            "link from {app} on {node}"
        );
    }
    let pid = ctx.container_pid(DOCKER, "e2e-dk-destroy-app")?;
    ensure!(
        ctx.node_nat(DOCKER)?.contains("--dport 50130"),
        "docker published no port 50130 on {DOCKER}"
    );

    ctx.geartopo(&["destroy", &file.display().to_string(), "--auto-approve"])
        .ok()?;
    let left = ctx.containers_of(DOCKER, name)?;
    ensure!(left.is_empty(), "{DOCKER} still has {left:?}");
    let names = ctx
        .on_node(
            DOCKER,
            "docker ps --all --format '{{.Names}}'; podman ps --all --format '{{.Names}}'",
        )
        .ok()?
        .stdout;
    ensure!(
        !names.lines().any(|n| n.starts_with("e2e-dk-destroy-")),
        "{DOCKER} still runs {names}"
    );
    let nat = ctx.node_nat(DOCKER)?;
    ensure!(
        lines_with(&nat, "GEARTOPO").is_empty() && !nat.contains("--dport 50130"),
        "{DOCKER}'s nat table keeps the topology's rules:\n{nat}"
    );
    let gone = (0..50).any(|_| {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|st| {
                st.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if alive {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        !alive
    });
    ensure!(gone, "app's process {pid} still runs after destroy");
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        plan.stdout.contains("3 to add"),
        "plan after destroy:\n{}",
        plan.describe()
    );
    Ok(())
}
