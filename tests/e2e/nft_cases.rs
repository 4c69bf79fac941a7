//! The core cases on nodes whose firewall is nftables (issue 17): each case
//! writes a topology over the shared lab's nodes with `[defaults] firewall =
//! "nftables"` (the backend is the topology's choice per node, so the lab itself
//! is unchanged): the seed with real traffic, a link added without restart, a
//! container namespace where `iptables-save` shows nothing of geartopo's, drift
//! (a rule deleted, the table deleted) repaired, foreign iptables rules and nft
//! tables byte-identical through apply and destroy, and a switch of backends in
//! place, both ways. The same-view etcd case runs from `views` with the backend
//! as a parameter.

use crate::ensure;
use crate::harness::{lines_with, Ctx, Guard, Outcome};
use crate::lab_cases::ask_retrying;
use crate::topology_cases::{client, server};

/// What a body needs to put every node of its topology on nftables.
pub(crate) const NFTABLES: &str = "[defaults]\nfirewall = \"nftables\"\n\n";

/// `nft ARGS` inside a container's network namespace.
pub(crate) fn container_nft(
    ctx: &Ctx,
    node: &str,
    container: &str,
    args: &str,
) -> Result<String, String> {
    let pid = ctx.container_pid(node, container)?;
    Ok(ctx
        .on_node(node, &format!("nsenter -t {pid} -n nft {args}"))
        .ok()?
        .stdout)
}

/// geartopo's table in a container's namespace, as `nft list` prints it.
pub(crate) fn container_table(ctx: &Ctx, node: &str, container: &str) -> Result<String, String> {
    container_nft(ctx, node, container, "list table ip geartopo")
}

/// Every table of `iptables-save` in a container's namespace, without its
/// time-stamped comments and counters.
fn container_iptables_save(ctx: &Ctx, node: &str, container: &str) -> Result<String, String> {
    let pid = ctx.container_pid(node, container)?;
    let out = ctx
        .on_node(node, &format!("nsenter -t {pid} -n iptables-save"))
        .ok()?
        .stdout;
    Ok(out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.find(" [") {
            Some(i) if l.starts_with(':') => format!("{}\n", &l[..i]),
            _ => format!("{l}\n"),
        })
        .collect())
}

/// `nft list ruleset` without geartopo's table and without counter values:
/// everything that is not geartopo's, as text to compare byte for byte.
fn ruleset_outside_ours(ruleset: &str) -> String {
    let mut out = String::new();
    let mut ours = false;
    for line in ruleset.lines() {
        if line == "table ip geartopo {" {
            ours = true;
        }
        if !ours {
            let line = match line.find("counter packets ") {
                Some(i) => format!("{}counter", &line[..i]),
                None => line.to_string(),
            };
            out.push_str(&line);
            out.push('\n');
        }
        if ours && line == "}" {
            ours = false;
        }
    }
    out
}

/// The seed on nftables nodes (app1 on podman node1, the server on docker node5):
/// real TCP through the link; in app1's namespace `iptables-save` shows no rule,
/// chain or comment of geartopo's while `nft` lists the link's DNAT in `table ip
/// geartopo`; a link added later is planned as an nft rule diff and applied
/// without a restart (same pid); destroy leaves no container.
pub fn seed_link_added_and_destroy(ctx: &Ctx) -> Outcome {
    let name = "e2e-nft-seed";
    let servers = server("db", "node5", "tcp", 6379, 50170, "db-on-node5")
        + &server("cache", "node4", "tcp", 6380, 50171, "cache-on-node4");
    let body = |links: &[&str]| format!("{NFTABLES}{servers}{}", client("app1", "node1", links));
    let file = ctx.topology(name, &body(&[r#"{ to = "db:6379" }"#]));
    let _guard = Guard::new(ctx, &file, name);
    let app = "e2e-nft-seed-app1";

    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        plan.stdout.contains("3 to add"),
        "first plan:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    let reply = ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "db-on-node5 hello",
        "app1 -> 127.0.0.1:6379 answered {reply:?}"
    );

    let save = container_iptables_save(ctx, "node1", app)?;
    ensure!(
        !save.to_lowercase().contains("geartopo"),
        "iptables-save in {app} shows geartopo's rules on an nftables node:\n{save}"
    );
    let table = container_table(ctx, "node1", app)?;
    ensure!(
        table.contains("dnat to 198.18.0.5:50170") && table.contains("applied "),
        "table ip geartopo in {app}:\n{table}"
    );
    let again = ctx.plan(&file).expect(0)?;
    ensure!(
        again.stdout.contains("No changes"),
        "plan after apply:\n{}",
        again.describe()
    );

    // A link more: an nft rule diff, applied in place.
    let pid = ctx.container_pid("node1", app)?;
    ctx.topology(
        name,
        &body(&[
            r#"{ to = "db:6379" }"#,
            r#"{ to = "cache:6380", listen = "127.0.0.2:7000" }"#,
        ]),
    );
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        plan.stdout
            .contains("rules (table ip geartopo, in nft syntax)")
            && plan.stdout.lines().any(|l| l.trim_start().starts_with('+')
                && l.contains("ip daddr 127.0.0.2 tcp dport 7000 dnat to 198.18.0.4:50171")),
        "plan of the added link is not an nft rule diff:\n{}",
        plan.describe()
    );
    ensure!(
        plan.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "summary:\n{}",
        plan.describe()
    );
    ctx.apply(&file)?;
    ensure!(
        ctx.container_pid("node1", app)? == pid,
        "adding a link restarted {app}"
    );
    let reply = ask_retrying(ctx, "node1", app, "tcp", "127.0.0.2", 7000)?;
    ensure!(
        reply == "cache-on-node4 hello",
        "added link answered {reply:?}"
    );
    ensure!(
        ctx.ask("node1", app, "tcp", "127.0.0.1", 6379, "hello")? == "db-on-node5 hello",
        "first link after the change"
    );

    ctx.geartopo(&["destroy", &file.display().to_string(), "--auto-approve"])
        .ok()?;
    for node in ["node1", "node4", "node5"] {
        ensure!(
            ctx.containers_of(node, name)?.is_empty(),
            "destroy left containers on {node}"
        );
    }
    Ok(())
}

/// The DNAT rule deleted from the table by hand, then the whole table deleted:
/// each is drift in the plan (named), the link is dead, and apply repairs it in
/// place; the plan after is empty.
pub fn drift_repaired(ctx: &Ctx) -> Outcome {
    let name = "e2e-nft-drift";
    let body = format!(
        "{NFTABLES}{}{}",
        server("db", "node3", "tcp", 6379, 50172, "db-on-node3"),
        client("app", "node2", &[r#"{ to = "db:6379" }"#])
    );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let app = "e2e-nft-drift-app";
    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, "node2", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link before drift"
    );
    let pid = ctx.container_pid("node2", app)?;

    let listed = container_nft(ctx, "node2", app, "-a list chain ip geartopo output")?;
    let handle = listed
        .lines()
        .find(|l| l.contains("dnat to"))
        .and_then(|l| l.rsplit("# handle ").next())
        .map(str::trim)
        .ok_or_else(|| format!("no DNAT rule with a handle:\n{listed}"))?
        .to_string();
    let edits = [
        (
            format!("delete rule ip geartopo output handle {handle}"),
            "rules in table ip geartopo were changed",
        ),
        (
            "delete table ip geartopo".to_string(),
            "table ip geartopo is missing",
        ),
    ];
    for (edit, what) in edits {
        container_nft(ctx, "node2", app, &edit)?;
        ensure!(
            ctx.ask("node2", app, "tcp", "127.0.0.1", 6379, "hello")
                .is_err(),
            "the link still works after `nft {edit}`"
        );
        let plan = ctx.plan(&file).expect(2)?;
        ensure!(
            plan.stdout.contains("changed outside geartopo") && plan.stdout.contains(what),
            "plan after `nft {edit}` does not report {what:?} as drift:\n{}",
            plan.describe()
        );
        ctx.apply(&file)?;
        ensure!(
            ctx.container_pid("node2", app)? == pid,
            "repairing restarted {app}"
        );
        ensure!(
            ask_retrying(ctx, "node2", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
            "link after repairing `nft {edit}`"
        );
        ctx.plan(&file).expect(0)?;
    }
    Ok(())
}

/// Foreign iptables rules and a foreign nft table, on the node and inside the
/// container's namespace: the node's stay byte-identical through apply and
/// destroy; the container's whole `iptables-save` and whole `nft list ruleset`
/// outside geartopo's table stay byte-identical through a rule-changing apply
/// and a no-op apply.
pub fn foreign_rules_and_tables_untouched(ctx: &Ctx) -> Outcome {
    let name = "e2e-nft-foreign";
    let node = "node2";
    let marker = format!("e2enftforeign{}", ctx.run_id);
    // Match only ranges no test traffic uses.
    let add = |prefix: &str| {
        format!(
            "{prefix} iptables -t nat -A OUTPUT -d 198.19.78.1/32 -m comment --comment {marker} -j RETURN && \
             {prefix} iptables -t filter -A INPUT -s 198.19.77.9/32 -m comment --comment {marker} -j RETURN && \
             printf '%s\\n' 'table inet {marker} {{' ' chain c {{' '  type filter hook output priority 10; policy accept;' '  ip daddr 198.19.78.3 counter return' ' }}' '}}' | {prefix} nft -f -"
        )
    };
    let remove = format!(
        "iptables -t nat -D OUTPUT -d 198.19.78.1/32 -m comment --comment {marker} -j RETURN; \
         iptables -t filter -D INPUT -s 198.19.77.9/32 -m comment --comment {marker} -j RETURN; \
         nft delete table inet {marker}; true"
    );
    ctx.on_node(node, &add("")).ok()?;
    let result = (|| {
        let node_state = || -> Result<String, String> {
            let nat = lines_with(&ctx.node_nat(node)?, &marker).join("\n");
            let filter = lines_with(&ctx.node_filter(node)?, &marker).join("\n");
            let table = ctx
                .on_node(node, &format!("nft list table inet {marker}"))
                .ok()?
                .stdout;
            Ok(format!("{nat}\n{filter}\n{table}"))
        };
        let node_before = node_state()?;
        ensure!(
            node_before.matches(&marker).count() >= 3,
            "foreign rules on {node}:\n{node_before}"
        );
        let servers = server("db", "node4", "tcp", 6379, 50173, "db-on-node4")
            + &server("cache", "node3", "tcp", 6380, 50174, "cache-on-node3");
        let body = |links: &[&str]| format!("{NFTABLES}{servers}{}", client("app", node, links));
        let file = ctx.topology(name, &body(&[r#"{ to = "db:6379" }"#]));
        let _guard = Guard::new(ctx, &file, name);
        ctx.apply(&file)?;
        ensure!(
            node_state()? == node_before,
            "apply changed the node's foreign rules or table"
        );

        let app = "e2e-nft-foreign-app";
        let pid = ctx.container_pid(node, app)?;
        ctx.on_node(node, &add(&format!("nsenter -t {pid} -n")))
            .ok()?;
        let inside = || -> Result<(String, String), String> {
            let save = container_iptables_save(ctx, node, app)?;
            let ruleset = ruleset_outside_ours(&container_nft(ctx, node, app, "list ruleset")?);
            Ok((save, ruleset))
        };
        let before = inside()?;
        ensure!(
            before.0.matches(&marker).count() == 2
                && before.1.contains(&format!("table inet {marker}")),
            "foreign rules in {app}:\n{}\n{}",
            before.0,
            before.1
        );
        ensure!(
            !before.1.contains("geartopo"),
            "the ruleset outside geartopo's table names it:\n{}",
            before.1
        );

        ctx.topology(
            name,
            &body(&[r#"{ to = "db:6379" }"#, r#"{ to = "cache:6380" }"#]),
        );
        ctx.apply(&file)?;
        ensure!(
            ask_retrying(ctx, node, app, "tcp", "127.0.0.1", 6380)? == "cache-on-node3 hello",
            "added link"
        );
        ensure!(
            inside()? == before,
            "a rule-changing apply changed what is not geartopo's in {app}:\nbefore:\n{}\n{}\nafter:\n{:?}",
            before.0,
            before.1,
            inside()?
        );
        ctx.apply(&file)?;
        ensure!(
            inside()? == before,
            "a no-op apply changed what is not geartopo's in {app}"
        );
        ensure!(
            node_state()? == node_before,
            "apply changed the node's foreign rules or table"
        );
        ctx.geartopo(&["destroy", &file.display().to_string(), "--auto-approve"])
            .ok()?;
        ensure!(
            node_state()? == node_before,
            "destroy changed the node's foreign rules or table"
        );
        Ok(())
    })();
    let _ = ctx.on_node(node, &remove);
    result
}

/// A topology applied on iptables, switched to nftables, then back: each switch
/// is planned as an update in place (`~ firewall`, no add or destroy), leaves the
/// same pids, the link answering, and only the new backend's rules: after the
/// switch to nftables `iptables-save` shows nothing of geartopo's; after the one
/// back there is no `table ip geartopo`.
pub fn backend_switch_in_place(ctx: &Ctx) -> Outcome {
    let name = "e2e-nft-switch";
    let body = server("db", "node4", "tcp", 6379, 50175, "db-on-node4")
        + &client("app", "node3", &[r#"{ to = "db:6379" }"#]);
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let app = "e2e-nft-switch-app";
    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, "node3", app, "tcp", "127.0.0.1", 6379)? == "db-on-node4 hello",
        "link on iptables"
    );
    let pid = ctx.container_pid("node3", app)?;
    ensure!(
        !lines_with(&ctx.container_nat("node3", app)?, "-A GEARTOPO-OUTPUT").is_empty(),
        "no iptables rules before the switch"
    );

    for (to, body) in [
        ("nftables", format!("{NFTABLES}{body}")),
        ("iptables", body.clone()),
    ] {
        let from = if to == "nftables" {
            "iptables"
        } else {
            "nftables"
        };
        ctx.topology(name, &body);
        let plan = ctx.plan(&file).expect(2)?;
        ensure!(
            plan.stdout
                .contains(&format!("~ firewall = \"{from}\" -> \"{to}\""))
                && plan
                    .stdout
                    .contains("Plan: 0 to add, 2 to change, 0 to destroy.")
                && !plan.stdout.contains("outside geartopo"),
            "the switch to {to} is not planned as an update in place:\n{}",
            plan.describe()
        );
        ctx.apply(&file)?;
        ensure!(
            ctx.container_pid("node3", app)? == pid,
            "the switch to {to} restarted {app}"
        );
        ensure!(
            ask_retrying(ctx, "node3", app, "tcp", "127.0.0.1", 6379)? == "db-on-node4 hello",
            "link after the switch to {to}"
        );
        let save = container_iptables_save(ctx, "node3", app)?;
        let tables = container_nft(ctx, "node3", app, "list tables")?;
        if to == "nftables" {
            ensure!(
                !save.to_lowercase().contains("geartopo"),
                "iptables rules of geartopo's left after the switch:\n{save}"
            );
            ensure!(tables.contains("table ip geartopo"), "no table:\n{tables}");
        } else {
            ensure!(
                !tables.contains("geartopo"),
                "table ip geartopo left after the switch back:\n{tables}"
            );
            ensure!(
                lines_with(&save, "-j GEARTOPO-OUTPUT").len() == 1,
                "iptables rules after the switch back:\n{save}"
            );
        }
        let again = ctx.plan(&file).expect(0)?;
        ensure!(
            again.stdout.contains("No changes"),
            "plan after the switch to {to}:\n{}",
            again.describe()
        );
    }
    Ok(())
}

/// The same-view etcd cluster (`views`) with every node on nftables.
pub fn views_etcd_cluster(ctx: &Ctx) -> Outcome {
    crate::views::etcd_cluster_forms_and_scales_on(ctx, "nftables")
}
