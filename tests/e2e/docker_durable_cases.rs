//! Durable links on the docker node (node5, its own dockerd; docs/durable.md):
//! geartopo's runtime wrapper, registered with dockerd only by `geartopo node
//! prepare`, adds the hook to every start of a container geartopo created. One
//! lab setup, the events chained, each followed by real TCP through the links
//! with no geartopo command in between, then `plan --detailed-exitcode` 0:
//! `docker restart` of a linked container, `kill -9` of its process under the
//! default policy, a node "reboot" as docker does it (dockerd stopped and
//! started: the containers come back by their restart policy), and a link
//! target restarted (its published port comes back).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome};
use crate::lab_cases::ask_retrying;
use crate::topology_cases::{client, server};

const DOCKER: &str = "node5";

/// `container` on `node` gets `want` through 127.0.0.1:`port` (retrying while it
/// comes back).
fn answers(ctx: &Ctx, node: &str, container: &str, port: u16, want: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(30);
    let reply = loop {
        match ask_retrying(ctx, node, container, "tcp", "127.0.0.1", port) {
            Ok(r) => break r,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    };
    ensure!(
        reply == want,
        "{container} on {node} -> 127.0.0.1:{port} answered {reply:?}, want {want:?}"
    );
    Ok(())
}

/// Both links answer and plan finds nothing to do (exit 0), after `event`.
fn links_back(ctx: &Ctx, name: &str, file: &Path, event: &str) -> Outcome {
    answers(
        ctx,
        DOCKER,
        &format!("{name}-app"),
        6379,
        "db-on-node4 hello",
    )
    .map_err(|e| format!("after {event}: {e}"))?;
    answers(
        ctx,
        "node1",
        &format!("{name}-web"),
        7000,
        "cache-on-node5 hello",
    )
    .map_err(|e| format!("after {event}: {e}"))?;
    let plan = ctx.plan(file);
    ensure!(
        plan.code == 0,
        "plan after {event} is not exit 0:\n{}",
        plan.describe()
    );
    Ok(())
}

/// Waits until `container` runs with a pid other than `before`.
fn new_pid(ctx: &Ctx, container: &str, before: u32, what: &str) -> Result<u32, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match ctx.container_pid(DOCKER, container) {
            Ok(p) if p != before && p != 0 => return Ok(p),
            _ if Instant::now() > deadline => {
                return Err(format!("{container} did not come back after {what}"))
            }
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Stops the node's dockerd (its pid file, waiting until it is gone: it stops
/// the containers first) and starts it again with the same command line, in its
/// own session, as a boot would start it; waits until it answers.
fn restart_dockerd(ctx: &Ctx) -> Result<(), String> {
    ctx.on_node(
        DOCKER,
        r#"set -e
pf=$GEARTOPO_DOCKER_PIDFILE; pid=$(cat "$pf")
[ "$(cat /proc/$pid/comm)" = dockerd ]
args=$(tr '\0' ' ' < /proc/$pid/cmdline)
kill "$pid"
i=0; while kill -0 "$pid" 2>/dev/null; do i=$((i + 1)); [ $i -lt 600 ]; sleep 0.1; done
# shellcheck disable=SC2086 # the lab's dockerd arguments hold no spaces
setsid $args >> "${pf%/*}/dockerd.log" 2>&1 < /dev/null &
i=0; until docker version >/dev/null 2>&1; do i=$((i + 1)); [ $i -lt 600 ]; sleep 0.1; done
[ "$(cat "$pf")" != "$pid" ]
"#,
    )
    .ok()?;
    Ok(())
}

pub fn docker_restarts_keep_links(ctx: &Ctx) -> Outcome {
    ensure!(
        ctx.runtime(DOCKER) == "docker",
        "{DOCKER} is not a docker node"
    );
    let name = "e2e-dkdur";
    let body = server("db", "node4", "tcp", 6379, 50311, "db-on-node4")
        + &client("app", DOCKER, &[r#"{ to = "db:6379" }"#])
        + &server("cache", DOCKER, "tcp", 7000, 50312, "cache-on-node5")
        + &client("web", "node1", &[r#"{ to = "cache:7000" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let f = file.display().to_string();
    let (app, cache) = (format!("{name}-app"), format!("{name}-cache"));

    // Unprepared: containers as before (runc), and plan names the fix.
    ctx.apply(&file)?;
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0
            && plan
                .stdout
                .contains(&format!("node {DOCKER}: dockerd has no runtime geartopo"))
            && plan
                .stdout
                .contains(&format!("geartopo node prepare FILE --node {DOCKER}")),
        "plan on an unprepared docker node:\n{}",
        plan.describe()
    );
    let runtime_of = |c: &str| -> Result<String, String> {
        Ok(ctx
            .on_node(
                DOCKER,
                &format!("docker inspect -f '{{{{.HostConfig.Runtime}}}}' {c}"),
            )
            .ok()?
            .stdout
            .trim()
            .to_string())
    };
    ensure!(
        runtime_of(&app)? == "runc",
        "before prepare: {}",
        runtime_of(&app)?
    );

    // Prepared on request: dockerd's configuration gets the runtime, the
    // containers made before are listed as not durable, and replaced on request.
    let prep = ctx
        .geartopo(&["node", "prepare", &f, "--node", DOCKER])
        .ok()?;
    ensure!(
        prep.stdout
            .contains(&format!("{DOCKER}: prepared: runtime geartopo at")),
        "node prepare:\n{}",
        prep.describe()
    );
    let again = ctx
        .geartopo(&["node", "prepare", &f, "--node", DOCKER])
        .ok()?;
    ensure!(
        again
            .stdout
            .contains(&format!("{DOCKER}: already prepared")),
        "node prepare a second time:\n{}",
        again.describe()
    );
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0
            && plan.stdout.contains(&format!(
                "app on {DOCKER} (\"{app}\"): not durable: replace to make it durable"
            ))
            && plan
                .stdout
                .contains(&format!("cache on {DOCKER} (\"{cache}\"): not durable"))
            && !plan.stdout.contains("dockerd has no runtime"),
        "plan after node prepare:\n{}",
        plan.describe()
    );
    ctx.geartopo(&["apply", &f, "--auto-approve", "--make-durable"])
        .ok()?;
    ensure!(
        runtime_of(&app)? == "geartopo",
        "after --make-durable: {}",
        runtime_of(&app)?
    );
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0 && !plan.stdout.contains("not durable") && !plan.stdout.contains("Warning"),
        "plan after --make-durable:\n{}",
        plan.describe()
    );
    links_back(ctx, name, &file, "apply --make-durable")?;

    // 1. docker restart of the linked container: a fresh namespace.
    let before = ctx.container_pid(DOCKER, &app)?;
    ctx.on_node(DOCKER, &format!("docker restart -t 1 {app} >/dev/null"))
        .ok()?;
    new_pid(ctx, &app, before, "docker restart")?;
    links_back(ctx, name, &file, "docker restart")?;

    // 2. kill -9 of its process under the default policy (always).
    let before = ctx.container_pid(DOCKER, &app)?;
    ctx.on_node(DOCKER, &format!("kill -9 {before}")).ok()?;
    new_pid(ctx, &app, before, "kill -9")?;
    links_back(ctx, name, &file, "kill -9 under restart=always")?;

    // 3. A node reboot as docker does it: dockerd stopped and started.
    let before = ctx.container_pid(DOCKER, &app)?;
    restart_dockerd(ctx)?;
    new_pid(ctx, &app, before, "dockerd stopped and started")?;
    links_back(ctx, name, &file, "dockerd stopped and started")?;

    // 4. The link target on the docker node restarted: its port comes back.
    let before = ctx.container_pid(DOCKER, &cache)?;
    ctx.on_node(DOCKER, &format!("docker restart -t 1 {cache} >/dev/null"))
        .ok()?;
    new_pid(ctx, &cache, before, "docker restart of the target")?;
    links_back(ctx, name, &file, "docker restart of the link target")
}
