//! Cases for plan and apply themselves on real hosts (issues 3 and 4): one round
//! trip per node read, host keys checked from the command line, saved plans
//! refused when stale, the apply lock, a failure half-way that the next apply
//! converges from, an unreachable node, and `show`.

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

fn server(name: &str, node: &str, image: &str, port: u16, host_port: u16) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{image}\"\n\
         command = [\"gt-serve\", \"tcp\", \"{port}\", \"{name}\"]\n\
         publish = [{{ port = {port}, host_port = {host_port} }}]\n\n"
    )
}

fn client(name: &str, node: &str, links: &str) -> String {
    format!("[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\nlinks = [{links}]\n\n")
}

/// Reading state is one connection and one round trip per node, whatever the
/// number of containers on it (GEARTOPO_TRACE prints one line per remote command).
pub fn plan_reads_each_node_in_one_round_trip(ctx: &Ctx) -> Outcome {
    let name = "e2e-trips";
    let body = server("s1", "node2", IMAGE, 7101, 51101)
        + &server("s2", "node2", IMAGE, 7102, 51102)
        + &server("s3", "node2", IMAGE, 7103, 51103)
        + &client(
            "c1",
            "node1",
            r#"{ to = "s1:7101" }, { to = "s2:7102" }, { to = "s3:7103" }"#,
        );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let run = ctx
        .in_control(&format!(
            "GEARTOPO_TRACE=1 {} plan {} --detailed-exitcode",
            ctx.bin.display(),
            file.display()
        ))
        .ok()?;
    let trace: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("geartopo-trace:"))
        .collect();
    ensure!(
        trace.len() == ctx.nodes.len(),
        "expected one remote command per node ({}), got:\n{}",
        ctx.nodes.len(),
        run.describe()
    );
    for (node, _) in &ctx.nodes {
        ensure!(
            trace
                .iter()
                .filter(|l| l.contains(&format!("node={node} ")))
                .count()
                == 1
                && trace
                    .iter()
                    .any(|l| l.contains(&format!("node={node} run=1 "))),
            "{node} was not read in exactly one round trip:\n{}",
            run.describe()
        );
    }
    ensure!(
        run.stdout.contains("No changes."),
        "plan after apply:\n{}",
        run.describe()
    );
    // An apply with the approval given takes each node's lock in its read and
    // releases it with the node's last step: a change of c1's links (one rules
    // step on node1) is two round trips there, and two on every other node (the
    // read with its lock, the unlock); no lock is left.
    let changed = body.replace(r#", { to = "s3:7103" }"#, "");
    ctx.topology(name, &changed);
    let run = ctx
        .in_control(&format!(
            "GEARTOPO_TRACE=1 {} apply {} --auto-approve",
            ctx.bin.display(),
            file.display()
        ))
        .ok()?;
    ensure!(
        run.stdout.contains("1 changed"),
        "the apply of the new links:\n{}",
        run.describe()
    );
    for (node, _) in &ctx.nodes {
        let trips = run
            .stderr
            .lines()
            .filter(|l| l.starts_with("geartopo-trace:") && l.contains(&format!("node={node} ")))
            .count();
        ensure!(
            trips == 2,
            "{node}: {trips} round trips in the apply, expected 2:\n{}",
            run.describe()
        );
        ensure!(
            !crate::fault_cases::lock_present(ctx, node)?,
            "{node}: a lock left after the apply"
        );
    }
    ctx.plan(&file).ok()?;
    Ok(())
}

/// Host keys from the command line: an unknown key stops the run naming the node
/// and the fingerprint; --accept-new-host-keys records it; a changed key is refused
/// even with --accept-new-host-keys.
pub fn host_keys_are_verified(ctx: &Ctx) -> Outcome {
    let name = "e2e-hostkeys";
    let file = ctx.topology(name, &client("c", "node1", ""));
    let bin = ctx.bin.display();
    let f = file.display();
    let dir = format!("/tmp/geartopo-e2e-hostkeys-{}", ctx.run_id);
    let script = format!(
        r#"set -u
d={dir}; rm -rf "$d"; mkdir -p "$d"; trap 'rm -rf "$d"' EXIT
: > "$d/known_hosts"
echo "== unknown"
GEARTOPO_KNOWN_HOSTS="$d/known_hosts" {bin} plan {f} 2>&1; echo "rc=$?"
echo "== accept"
GEARTOPO_KNOWN_HOSTS="$d/known_hosts" {bin} plan {f} --accept-new-host-keys >/dev/null; echo "rc=$?"
echo "recorded=$(wc -l < "$d/known_hosts")"
echo "== again"
GEARTOPO_KNOWN_HOSTS="$d/known_hosts" {bin} plan {f} >/dev/null; echo "rc=$?"
echo "== changed"
ssh-keygen -q -t ed25519 -N '' -f "$d/other" >/dev/null
grep -v '^198.18.0.1 ' "$d/known_hosts" > "$d/kh2"
echo "198.18.0.1 $(cut -d' ' -f1,2 "$d/other.pub")" >> "$d/kh2"
GEARTOPO_KNOWN_HOSTS="$d/kh2" {bin} plan {f} --accept-new-host-keys 2>&1; echo "rc=$?"
"#
    );
    let run = ctx.in_control(&script).ok()?;
    let out = run.stdout.clone();
    let section = |from: &str, to: &str| -> String {
        let a = out.find(from).unwrap_or(0);
        let b = out[a..].find(to).map(|b| a + b).unwrap_or(out.len());
        out[a..b].to_string()
    };
    let unknown = section("== unknown", "== accept");
    ensure!(
        unknown.contains("rc=1")
            && unknown.contains("node node1")
            && unknown.contains("SHA256:")
            && unknown.contains("--accept-new-host-keys"),
        "unknown key not refused clearly:\n{}",
        run.describe()
    );
    let accept = section("== accept", "== again");
    ensure!(
        accept.contains("rc=0") && accept.contains(&format!("recorded={}", ctx.nodes.len())),
        "accept-new did not record every node's key:\n{}",
        run.describe()
    );
    ensure!(
        section("== again", "== changed").contains("rc=0"),
        "recorded keys not accepted:\n{}",
        run.describe()
    );
    let changed = section("== changed", "\u{0}");
    ensure!(
        changed.contains("rc=1")
            && changed.contains("HAS CHANGED")
            && changed.contains("node node1"),
        "changed key not refused:\n{}",
        run.describe()
    );
    Ok(())
}

/// A saved plan applies exactly; one made against a state that has moved since is
/// refused as stale and changes nothing.
pub fn stale_saved_plan_is_refused(ctx: &Ctx) -> Outcome {
    let name = "e2e-saved";
    let file = ctx.topology(name, &server("s", "node3", IMAGE, 7201, 51201));
    let _guard = Guard::new(ctx, &file, name);
    let plan_path = format!("/tmp/geartopo-e2e-saved-{}.json", ctx.run_id);
    let stale = format!("/tmp/geartopo-e2e-stale-{}.json", ctx.run_id);
    let result = (|| {
        ctx.geartopo(&["plan", &file.display().to_string(), "-o", &stale])
            .ok()?;
        ctx.geartopo(&["plan", &file.display().to_string(), "-o", &plan_path])
            .ok()?;
        let applied = ctx.geartopo(&["apply", &plan_path]).ok()?;
        ensure!(
            applied.stdout.contains("1 added"),
            "saved plan not applied:\n{}",
            applied.describe()
        );
        let pid = ctx.container_pid("node3", "e2e-saved-s")?;
        // The stale plan was made against empty nodes; the nodes have moved on.
        let refused = ctx.geartopo(&["apply", &stale]).expect(1)?;
        ensure!(
            refused.stderr.contains("stale plan"),
            "no stale-plan error:\n{}",
            refused.describe()
        );
        ensure!(
            ctx.container_pid("node3", "e2e-saved-s")? == pid,
            "a stale plan changed something"
        );
        ensure!(
            ctx.containers_of("node3", name)?.len() == 1,
            "a stale plan created something"
        );
        Ok(())
    })();
    let _ = std::fs::remove_file(&plan_path);
    let _ = std::fs::remove_file(&stale);
    result
}

/// A second apply against a node whose lock is held fails naming the holder, and
/// changes nothing anywhere.
pub fn apply_lock_names_the_holder(ctx: &Ctx) -> Outcome {
    let name = "e2e-lock";
    let file = ctx.topology(name, &server("s", "node2", IMAGE, 7301, 51301));
    let _guard = Guard::new(ctx, &file, name);
    let lock = r#"d="${GEARTOPO_RUN_DIR:-/run/geartopo}/apply.lock""#;
    ctx.on_node(
        "node2",
        &format!("{lock}; mkdir -p \"$d\" && echo 'ops-laptop apply of billing' > \"$d/holder\""),
    )
    .ok()?;
    let result = (|| {
        let run = ctx
            .geartopo(&["apply", &file.display().to_string(), "--auto-approve"])
            .expect(1)?;
        ensure!(
            run.stderr.contains("node node2") && run.stderr.contains("ops-laptop apply of billing"),
            "lock error does not name node and holder:\n{}",
            run.describe()
        );
        ensure!(
            ctx.containers_of("node2", name)?.is_empty(),
            "apply under someone else's lock created something"
        );
        Ok(())
    })();
    ctx.on_node("node2", &format!("{lock}; rm -rf \"$d\""))
        .ok()?;
    result?;
    let run = ctx.apply(&file)?;
    ensure!(
        run.stdout.contains("1 added"),
        "apply after the lock was released:\n{}",
        run.describe()
    );
    // Our own lock is gone after the apply.
    ctx.on_node("node2", &format!("{lock}; test ! -e \"$d\""))
        .ok()?;
    Ok(())
}

/// A missing image on node4: its container fails, the client that links to it is
/// prepared but never started, an independent container on node2 finishes; the
/// report lists what was done and what was not; fixed, the next apply converges
/// with nothing duplicated and real traffic flows.
pub fn failure_half_way_then_converges(ctx: &Ctx) -> Outcome {
    let name = "e2e-fail";
    let missing = "localhost/geartopo-no-such-image:1";
    let body = |image: &str| {
        server("db", "node4", image, 7401, 51401)
            + &client("app", "node1", r#"{ to = "db:7401" }"#)
            + &server("other", "node2", IMAGE, 7402, 51402)
    };
    let file = ctx.topology(name, &body(missing));
    let _guard = Guard::new(ctx, &file, name);
    let run = ctx
        .geartopo(&["apply", &file.display().to_string(), "--auto-approve"])
        .expect(1)?;
    let out = &run.stdout;
    ensure!(
        out.contains("FAILED      node4: create e2e-fail-db"),
        "the failed step is not reported:\n{}",
        run.describe()
    );
    ensure!(
        out.contains("not started node1: rules e2e-fail-app")
            && out.contains("not started node1: start e2e-fail-app"),
        "dependent steps not reported as not started:\n{}",
        run.describe()
    );
    ensure!(
        out.contains("done        node2: start e2e-fail-other"),
        "independent work did not finish:\n{}",
        run.describe()
    );
    let state = ctx
        .on_node(
            "node1",
            "podman inspect -f '{{.State.Status}}' e2e-fail-app",
        )
        .ok()?;
    ensure!(
        state.stdout.trim() != "running",
        "app started without its link: {}",
        state.stdout
    );
    // Fixed: converge.
    let file = ctx.topology(name, &body(IMAGE));
    let run = ctx.apply(&file)?;
    ensure!(
        run.stdout.contains("1 added, 1 changed"),
        "second apply should add db and start app:\n{}",
        run.describe()
    );
    for (node, want) in [
        ("node1", "e2e-fail-app"),
        ("node2", "e2e-fail-other"),
        ("node4", "e2e-fail-db"),
    ] {
        ensure!(
            ctx.containers_of(node, name)? == [want],
            "{node} holds {:?}",
            ctx.containers_of(node, name)?
        );
    }
    let reply = ask_retrying(ctx, "node1", "e2e-fail-app", "tcp", "127.0.0.1", 7401)?;
    ensure!(
        reply == "db hello",
        "app -> 127.0.0.1:7401 answered {reply:?}"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// A node nobody answers for: a clear error naming it, exit 1, and no plan shown.
pub fn unreachable_node_is_named(ctx: &Ctx) -> Outcome {
    let name = "e2e-ghost";
    let body = "[nodes.ghost]\naddress = \"198.18.0.99\"\n\n".to_string()
        + &server("s", "ghost", IMAGE, 7501, 51501);
    let file = ctx.topology(name, &body);
    let run = ctx
        .geartopo(&[
            "plan",
            &file.display().to_string(),
            "--connect-timeout",
            "3",
        ])
        .expect(1)?;
    ensure!(
        run.stderr.contains("node ghost") && run.stderr.contains("198.18.0.99"),
        "error does not name the node:\n{}",
        run.describe()
    );
    ensure!(
        !run.stdout.contains("Plan:") && !run.stdout.contains("No changes"),
        "a partial plan was shown:\n{}",
        run.describe()
    );
    Ok(())
}

/// `show` reports containers, ports and the links in force, matching the file.
pub fn show_reports_links_in_force(ctx: &Ctx) -> Outcome {
    let name = "e2e-show";
    let body = server("s", "node3", IMAGE, 7601, 51601)
        + &client(
            "c",
            "node1",
            r#"{ to = "s:7601", listen = "127.0.0.9:80" }"#,
        );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    let run = ctx
        .geartopo(&["show", &file.display().to_string(), "--json"])
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&run.stdout)
        .map_err(|e| format!("show --json: {e}\n{}", run.describe()))?;
    let c = v["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["container"] == "c"))
        .ok_or("no c in show")?;
    ensure!(
        c["state"] == "running" && c["matches_file"] == true,
        "c: {c}"
    );
    let want = format!("{}:51601", ctx.address("node3"));
    ensure!(
        c["links"][0]["listen"] == "127.0.0.9:80" && c["links"][0]["destination"] == want.as_str(),
        "c links: {c}"
    );
    let s = v["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["container"] == "s"))
        .ok_or("no s in show")?;
    ensure!(s["published"][0]["host_port"] == 51601, "s: {s}");
    Ok(())
}

/// A secret value reaches the container exactly, through a root-only file, and is
/// shown in no plan.
pub fn secret_env_reaches_the_container_unshown(ctx: &Ctx) -> Outcome {
    let name = "e2e-secret";
    let secret = "s3cr3t 'quoted' $(touch /tmp/geartopo-e2e-pwned)";
    let body = format!(
        "[containers.c]\nnode = \"node2\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\nenv = {{ TOKEN = {{ value = {secret:?}, secret = true }}, PLAIN = \"visible\" }}\n\n"
    );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        !plan.output().contains("s3cr3t"),
        "the plan shows the secret:\n{}",
        plan.describe()
    );
    ensure!(
        plan.stdout.contains("TOKEN = (sensitive value)"),
        "the plan does not mark the secret:\n{}",
        plan.describe()
    );
    let run = ctx.apply(&file)?;
    ensure!(
        !run.output().contains("s3cr3t"),
        "apply shows the secret:\n{}",
        run.describe()
    );
    let env = ctx
        .on_node(
            "node2",
            r#"podman exec e2e-secret-c sh -c 'printf "%s" "$TOKEN"'"#,
        )
        .ok()?;
    ensure!(env.stdout == secret, "TOKEN inside is {:?}", env.stdout);
    ctx.on_node("node2", "test ! -e /tmp/geartopo-e2e-pwned")
        .ok()?;
    ensure!(
        !std::path::Path::new("/tmp/geartopo-e2e-pwned").exists(),
        "the secret ran as a command"
    );
    Ok(())
}
