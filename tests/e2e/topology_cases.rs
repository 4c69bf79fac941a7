//! Cases about plan/apply/destroy on real hosts, against the CLI contract of
//! DESIGN.md: real traffic through links, exit codes, drift repaired, links added
//! in place (same pid), foreign rules untouched, destroy complete, topologies
//! independent, UDP, environment values passed verbatim. Each case has its own
//! topology name and host ports so that cases stay independent.

use crate::ensure;
use crate::harness::{lines_with, Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

/// A server on `node` answering "`reply` <line>" on `port`, published at `host_port`.
pub(crate) fn server(
    name: &str,
    node: &str,
    proto: &str,
    port: u16,
    host_port: u16,
    reply: &str,
) -> String {
    let protocol = if proto == "udp" {
        ", protocol = \"udp\""
    } else {
        ""
    };
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"{proto}\", \"{port}\", \"{reply}\"]\n\
         publish = [{{ port = {port}, host_port = {host_port}{protocol} }}]\n\n"
    )
}

/// A long-running client on `node` with `links` (TOML array items).
pub(crate) fn client(name: &str, node: &str, links: &[&str]) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\nlinks = [{}]\n\n",
        links.join(", ")
    )
}

/// The seed's redis-todo shape: redis on node4 published 6379 -> 50000; app1 on
/// node1 reaches it at 127.0.0.1:6379 with real TCP through the link. Plan shows
/// the creates and exits 2 before apply, 0 after.
pub fn redis_todo_shape(ctx: &Ctx) -> Outcome {
    let name = "e2e-redis";
    let body = server("redisdb", "node4", "tcp", 6379, 50000, "redisdb-on-node4")
        + &client("app1", "node1", &[r#"{ to = "redisdb:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);

    let plan = ctx.plan(&file).expect(2)?;
    let out = plan.stdout.clone();
    ensure!(
        out.contains("redisdb") && out.contains("app1"),
        "plan does not name both containers:\n{}",
        plan.describe()
    );
    ensure!(
        out.lines().any(|l| l.trim_start().starts_with('+')),
        "plan shows no `+` create:\n{}",
        plan.describe()
    );
    ensure!(
        out.contains("2 to add"),
        "plan summary is not `2 to add`:\n{}",
        plan.describe()
    );
    ensure!(
        ctx.containers_of("node4", name)?.is_empty(),
        "plan created something on node4"
    );

    ctx.apply(&file)?;
    ensure!(
        ctx.containers_of("node4", name)? == ["e2e-redis-redisdb"],
        "node4 containers after apply"
    );
    ensure!(
        ctx.containers_of("node1", name)? == ["e2e-redis-app1"],
        "node1 containers after apply"
    );
    let reply = ask_retrying(ctx, "node1", "e2e-redis-app1", "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "redisdb-on-node4 hello",
        "app1 -> 127.0.0.1:6379 answered {reply:?}"
    );

    let again = ctx.plan(&file).expect(0)?;
    ensure!(
        again.stdout.contains("No changes"),
        "plan after apply:\n{}",
        again.describe()
    );
    // `geartopo check`: the link carries a connection; with its server stopped
    // it is refused, and check says so with exit status 1.
    let f = file.display().to_string();
    let check = ctx.geartopo(&["check", &f, "--json"]).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&check.stdout)
        .map_err(|e| format!("check --json is not JSON ({e}):\n{}", check.describe()))?;
    ensure!(
        doc["failed"] == 0
            && doc["links"][0]["container"] == "app1"
            && doc["links"][0]["result"] == "ok",
        "check of a working link:\n{}",
        check.describe()
    );
    ctx.on_node("node4", "podman stop -t 1 e2e-redis-redisdb")
        .ok()?;
    let check = ctx.geartopo(&["check", &f]).expect(1)?;
    ensure!(
        check
            .stdout
            .starts_with("refused       app1 on node1: 127.0.0.1:6379/tcp -> redisdb:6379"),
        "check of a link to a stopped server:\n{}",
        check.describe()
    );
    Ok(())
}

/// A rule deleted by hand inside the container's namespace shows as drift; the
/// next apply restores it, without restarting the container.
pub fn drift_is_shown_and_repaired(ctx: &Ctx) -> Outcome {
    let name = "e2e-drift";
    let body = server("db", "node3", "tcp", 6379, 50010, "db-on-node3")
        + &client("app", "node2", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let app = "e2e-drift-app";
    ensure!(
        ask_retrying(ctx, "node2", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link before drift"
    );
    let pid = ctx.container_pid("node2", app)?;

    let nat = ctx.container_nat("node2", app)?;
    let owned = lines_with(&nat, "-A GEARTOPO-OUTPUT");
    let Some(index) = owned
        .iter()
        .position(|l| l.contains("DNAT") && l.contains("6379"))
    else {
        return Err(format!("no DNAT for 6379 in GEARTOPO-OUTPUT:\n{nat}"));
    };
    // Delete exactly that rule, by its number in the chain.
    ctx.container_iptables(
        "node2",
        app,
        &format!("-t nat -D GEARTOPO-OUTPUT {}", index + 1),
    )?;
    ensure!(
        ctx.ask("node2", app, "tcp", "127.0.0.1", 6379, "hello")
            .is_err(),
        "the link still works without its rule"
    );

    let plan = ctx.plan(&file).expect(2)?;
    let said = plan.output().to_lowercase();
    ensure!(
        said.contains("drift") || said.contains("outside geartopo"),
        "plan does not call the hand edit a change made outside geartopo (drift):\n{}",
        plan.describe()
    );

    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, "node2", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link after repair"
    );
    ensure!(
        ctx.container_pid("node2", app)? == pid,
        "repairing a rule restarted the container"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// A link added to the file is applied to the running container: same pid, the
/// new link carries traffic, the old one still does.
pub fn link_added_in_place(ctx: &Ctx) -> Outcome {
    let name = "e2e-addlink";
    let servers = server("one", "node3", "tcp", 7001, 50021, "one-on-node3")
        + &server("two", "node4", "tcp", 7002, 50022, "two-on-node4");
    let file = ctx.topology(
        name,
        &(servers.clone() + &client("app", "node1", &[r#"{ to = "one:7001" }"#])),
    );
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let app = "e2e-addlink-app";
    ensure!(
        ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 7001)? == "one-on-node3 hello",
        "first link"
    );
    let pid = ctx.container_pid("node1", app)?;

    ctx.topology(
        name,
        &(servers
            + &client(
                "app",
                "node1",
                &[r#"{ to = "one:7001" }"#, r#"{ to = "two:7002" }"#],
            )),
    );
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        !plan.stdout.contains("-/+"),
        "adding a link plans a replacement:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    ensure!(
        ctx.container_pid("node1", app)? == pid,
        "adding a link restarted the container (pid changed)"
    );
    ensure!(
        ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 7002)? == "two-on-node4 hello",
        "added link"
    );
    ensure!(
        ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 7001)? == "one-on-node3 hello",
        "first link after"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// Rules geartopo does not own, in the node's nat and filter tables (put there
/// before the first apply) and in the container's (before a later apply), are
/// byte-identical after apply and after destroy. (The container's filter table
/// holds geartopo's guard chain beside them.)
pub fn foreign_rules_untouched(ctx: &Ctx) -> Outcome {
    let name = "e2e-foreign";
    let node = "node2";
    let marker = format!("E2EFOREIGN{}", ctx.run_id);
    // A foreign chain, a jump to it, and a plain rule in a built-in chain; they
    // match only a range no test traffic uses.
    let add = |prefix: &str| {
        format!(
            "{prefix} -t nat -N {marker} && \
             {prefix} -t nat -A {marker} -s 198.19.77.0/24 -j RETURN && \
             {prefix} -t nat -I PREROUTING 1 -s 198.19.77.0/24 -j {marker} && \
             {prefix} -t nat -A OUTPUT -d 198.19.78.1/32 -m comment --comment {marker} -j RETURN && \
             {prefix} -t nat -I POSTROUTING 1 -d 198.19.78.2/32 -m comment --comment {marker} -j RETURN && \
             {prefix} -t filter -A INPUT -s 198.19.77.9/32 -m comment --comment {marker} -j RETURN"
        )
    };
    let remove = |prefix: &str| {
        format!(
            "{prefix} -t nat -D PREROUTING -s 198.19.77.0/24 -j {marker}; \
             {prefix} -t nat -F {marker}; {prefix} -t nat -X {marker}; \
             {prefix} -t nat -D OUTPUT -d 198.19.78.1/32 -m comment --comment {marker} -j RETURN; \
             {prefix} -t nat -D POSTROUTING -d 198.19.78.2/32 -m comment --comment {marker} -j RETURN; \
             {prefix} -t filter -D INPUT -s 198.19.77.9/32 -m comment --comment {marker} -j RETURN; true"
        )
    };
    ctx.on_node(node, &add("iptables")).ok()?;
    let result = (|| {
        let node_before = lines_with(&ctx.node_nat(node)?, &marker);
        ensure!(
            node_before.len() == 5,
            "foreign rules on {node}: {node_before:?}"
        );
        let node_filter_before = lines_with(&ctx.node_filter(node)?, &marker);
        ensure!(
            node_filter_before.len() == 1,
            "foreign filter rule on {node}: {node_filter_before:?}"
        );

        let servers = server("db", "node4", "tcp", 6379, 50040, "db-on-node4")
            + &server("cache", "node3", "tcp", 6380, 50041, "cache-on-node3");
        let file = ctx.topology(
            name,
            &(servers.clone() + &client("app", node, &[r#"{ to = "db:6379" }"#])),
        );
        let _guard = Guard::new(ctx, &file, name);
        ctx.apply(&file)?;
        ensure!(
            lines_with(&ctx.node_nat(node)?, &marker) == node_before,
            "apply changed the node's foreign rules"
        );

        let app = "e2e-foreign-app";
        let pid = ctx.container_pid(node, app)?;
        ctx.on_node(node, &add(&format!("nsenter -t {pid} -n iptables")))
            .ok()?;
        let container_before = lines_with(&ctx.container_nat(node, app)?, &marker);
        ensure!(
            container_before.len() == 5,
            "foreign rules in {app}: {container_before:?}"
        );
        let container_filter_before = lines_with(&ctx.container_filter(node, app)?, &marker);
        ensure!(
            container_filter_before.len() == 1,
            "foreign filter rule in {app}: {container_filter_before:?}"
        );

        // A rule change (one link more) and a no-op apply, each with foreign rules present.
        ctx.topology(
            name,
            &(servers
                + &client(
                    "app",
                    node,
                    &[r#"{ to = "db:6379" }"#, r#"{ to = "cache:6380" }"#],
                )),
        );
        ctx.apply(&file)?;
        ensure!(
            ask_retrying(ctx, node, app, "tcp", "127.0.0.1", 6380)? == "cache-on-node3 hello",
            "added link"
        );
        ensure!(
            lines_with(&ctx.container_nat(node, app)?, &marker) == container_before,
            "apply changed the container's foreign rules"
        );
        ctx.apply(&file)?;
        ensure!(
            lines_with(&ctx.container_nat(node, app)?, &marker) == container_before,
            "a no-op apply changed the container's foreign rules"
        );
        let filter = ctx.container_filter(node, app)?;
        ensure!(
            lines_with(&filter, &marker) == container_filter_before,
            "apply changed the container's foreign filter rule:\n{filter}"
        );
        ensure!(
            lines_with(&filter, "-j GEARTOPO-INPUT").len() == 1,
            "the guard's jump is not there exactly once:\n{filter}"
        );
        ensure!(
            lines_with(&ctx.node_filter(node)?, &marker) == node_filter_before,
            "apply changed the node's foreign filter rule"
        );
        ensure!(
            lines_with(&ctx.node_nat(node)?, &marker) == node_before,
            "apply changed the node's foreign rules"
        );

        ctx.geartopo(&["destroy", &file.display().to_string(), "--auto-approve"])
            .ok()?;
        ensure!(
            lines_with(&ctx.node_nat(node)?, &marker) == node_before,
            "destroy changed the node's foreign rules"
        );
        ensure!(
            lines_with(&ctx.node_filter(node)?, &marker) == node_filter_before,
            "destroy changed the node's foreign filter rule"
        );
        Ok(())
    })();
    ctx.on_node(node, &remove("iptables")).ok()?;
    result
}

/// After destroy: no container of the topology on any node, no owned chain left
/// anywhere, and a plan shows everything to create again.
pub fn destroy_leaves_nothing(ctx: &Ctx) -> Outcome {
    let name = "e2e-destroy";
    let body = server("db", "node4", "tcp", 6379, 50050, "db-on-node4")
        + &client("app", "node1", &[r#"{ to = "db:6379" }"#])
        + &client("app2", "node2", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    // apply --json: one document on stdout, every step done.
    let applied = ctx
        .geartopo(&[
            "apply",
            &file.display().to_string(),
            "--auto-approve",
            "--json",
        ])
        .ok()?;
    let doc: serde_json::Value = serde_json::from_str(&applied.stdout).map_err(|e| {
        format!(
            "apply --json printed no JSON document ({e}):\n{}",
            applied.describe()
        )
    })?;
    ensure!(
        doc["format_version"] == 1 && doc["result"] == "complete",
        "apply --json: {doc:#}"
    );
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    // Three containers, each created, given its rules and started (podman: no init for new ones).
    ensure!(steps.len() == 9, "apply --json steps: {doc:#}");
    ensure!(
        steps.iter().all(|s| s["outcome"] == "done"),
        "apply --json: a step not done: {doc:#}"
    );
    ensure!(
        doc["summary"]["add"] == 3 && doc["summary"]["done"] == 9,
        "apply --json summary: {doc:#}"
    );
    ensure!(
        ask_retrying(ctx, "node2", "e2e-destroy-app2", "tcp", "127.0.0.1", 6379)?
            == "db-on-node4 hello",
        "link"
    );
    let pid = ctx.container_pid("node1", "e2e-destroy-app")?;

    let destroyed = ctx
        .geartopo(&["destroy", &file.display().to_string(), "--auto-approve"])
        .ok()?;
    ensure!(
        destroyed
            .stdout
            .ends_with("\nDestroy complete! 3 containers destroyed.\n"),
        "destroy's summary:\n{}",
        destroyed.describe()
    );
    for (node, _) in &ctx.nodes {
        let left = ctx.containers_of(node, name)?;
        ensure!(left.is_empty(), "{node} still has {left:?}");
        let names = ctx
            .on_node(node, "podman ps --all --format '{{.Names}}'")
            .ok()?
            .stdout;
        ensure!(
            !names.lines().any(|n| n.starts_with("e2e-destroy-")),
            "{node} still runs {names}"
        );
        let nat = ctx.node_nat(node)?;
        ensure!(
            lines_with(&nat, "GEARTOPO").is_empty(),
            "{node}'s own nat table has owned chains:\n{nat}"
        );
    }
    // The client's namespace went with its process.
    // (Its parent may take a moment to reap it.)
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

/// Two topologies on the same nodes, even with the same listen address in their
/// clients: applying, planning and destroying one leaves the other alone.
pub fn two_topologies_independent(ctx: &Ctx) -> Outcome {
    let (a, b) = ("e2e-two-a", "e2e-two-b");
    let body = |reply: &str, host_port: u16| {
        server("db", "node3", "tcp", 6379, host_port, reply)
            + &client("app", "node1", &[r#"{ to = "db:6379" }"#])
    };
    let file_a = ctx.topology(a, &body("db-of-a", 50060));
    let file_b = ctx.topology(b, &body("db-of-b", 50061));
    let _guard_a = Guard::new(ctx, &file_a, a);
    let _guard_b = Guard::new(ctx, &file_b, b);

    ctx.apply(&file_a)?;
    ctx.apply(&file_b)?;
    ctx.plan(&file_a).expect(0)?;
    ctx.plan(&file_b).expect(0)?;
    ensure!(
        ask_retrying(ctx, "node1", "e2e-two-a-app", "tcp", "127.0.0.1", 6379)? == "db-of-a hello",
        "a's link"
    );
    ensure!(
        ask_retrying(ctx, "node1", "e2e-two-b-app", "tcp", "127.0.0.1", 6379)? == "db-of-b hello",
        "b's link"
    );
    let pid_b = ctx.container_pid("node1", "e2e-two-b-app")?;

    ctx.geartopo(&["destroy", &file_a.display().to_string(), "--auto-approve"])
        .ok()?;
    ensure!(
        ctx.containers_of("node1", a)?.is_empty() && ctx.containers_of("node3", a)?.is_empty(),
        "a not destroyed"
    );
    ensure!(
        ctx.containers_of("node1", b)? == ["e2e-two-b-app"],
        "destroying a removed b's app"
    );
    ensure!(
        ctx.containers_of("node3", b)? == ["e2e-two-b-db"],
        "destroying a removed b's db"
    );
    ensure!(
        ctx.container_pid("node1", "e2e-two-b-app")? == pid_b,
        "destroying a restarted b's app"
    );
    ensure!(
        ask_retrying(ctx, "node1", "e2e-two-b-app", "tcp", "127.0.0.1", 6379)? == "db-of-b hello",
        "b after a"
    );
    ctx.plan(&file_b).expect(0)?;
    Ok(())
}

/// A UDP link carries real datagrams both ways.
pub fn udp_link(ctx: &Ctx) -> Outcome {
    let name = "e2e-udp";
    let body = server("dns", "node3", "udp", 5353, 50053, "dns-on-node3")
        + &client(
            "app",
            "node2",
            &[r#"{ to = "dns:5353", protocol = "udp" }"#],
        );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let reply = ask_retrying(ctx, "node2", "e2e-udp-app", "udp", "127.0.0.1", 5353)?;
    ensure!(
        reply == "dns-on-node3 hello",
        "UDP through the link answered {reply:?}"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// Environment values reach the container verbatim and run nothing anywhere.
pub fn env_passed_verbatim(ctx: &Ctx) -> Outcome {
    let name = "e2e-env";
    let (p1, p2) = (
        format!("/tmp/gt-e2e-pwned-{}", ctx.run_id),
        format!("/tmp/gt-e2e-pwned2-{}", ctx.run_id),
    );
    let evil = format!("$(touch {p1}); echo");
    let quotes = format!("it's `touch {p2}` \"q\" \\ $HOME ;|&");
    let toml_str = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let body = format!(
        "[containers.c]\nnode = \"node1\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
         env = {{ EVIL = {}, QUOTES = {} }}\n",
        toml_str(&evil),
        toml_str(&quotes)
    );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    for (var, want) in [("EVIL", &evil), ("QUOTES", &quotes)] {
        let run = ctx
            .on_node(
                "node1",
                &format!("podman exec e2e-env-c sh -c 'printf %s \"${var}\"'"),
            )
            .ok()?;
        ensure!(
            &run.stdout == want,
            "{var} in the container is {:?}, not {want:?}",
            run.stdout
        );
    }
    for p in [&p1, &p2] {
        // Nodes share this machine's /tmp: a file there means a node's shell ran it.
        ensure!(
            !std::path::Path::new(p).exists(),
            "{p} exists: an env value was run by a shell"
        );
        ctx.on_node("node1", &format!("podman exec e2e-env-c test ! -e {p}"))
            .ok()?;
    }
    Ok(())
}
