//! Private published ports (issue 15) on real hosts: a port published with
//! `private = true` answers the nodes whose containers link to it (another podman
//! node, the docker node, a container on the same node) and refuses a lab host that
//! does not link; a link added from a new node opens it to that node, a link
//! removed closes it; the node's other filter rules stay byte-identical; destroy
//! leaves nothing of the chain.

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

const NAME: &str = "e2e-private";
const ID: &str = "5eed0000feedbeef0123";
const HOST_PORT: u16 = 50170;

fn server(private: bool) -> String {
    let private = if private { ", private = true" } else { "" };
    format!(
        "[containers.srv]\nnode = \"node1\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"tcp\", \"7000\", \"srv\"]\n\
         publish = [{{ port = 7000, host_port = {HOST_PORT}{private} }}]\n\n"
    )
}

fn client(name: &str, node: &str) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
         links = [{{ to = \"srv:7000\" }}]\n\n"
    )
}

/// The topology file with its id (the chain is named after it).
fn file(ctx: &Ctx, body: &str) -> std::path::PathBuf {
    let path = ctx.topology(NAME, body);
    let text = std::fs::read_to_string(&path).expect("topology written");
    let text = text.replacen(
        &format!("name = \"{NAME}\"\n"),
        &format!("name = \"{NAME}\"\nid = \"{ID}\"\n"),
        1,
    );
    std::fs::write(&path, text).expect("write topology");
    path
}

/// From `node`'s own namespace (no link, no container): one line to node1's
/// published port; the reply, or `None` when refused or silent.
fn from_host(ctx: &Ctx, node: &str) -> Option<String> {
    let run = ctx.on_node(
        node,
        &format!(
            "echo hello | timeout 5 socat -T 3 - TCP:{}:{HOST_PORT},connect-timeout=3",
            ctx.address("node1")
        ),
    );
    let out = run.stdout.trim().to_string();
    (run.code == 0 && !out.is_empty()).then_some(out)
}

/// node1's filter table without iptables-save's comment lines (dates).
fn filter(ctx: &Ctx) -> Result<Vec<String>, String> {
    Ok(ctx
        .node_filter("node1")?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

fn without_ours(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.contains("GEARTOPO-PP-"))
        .cloned()
        .collect()
}

const FOREIGN: &str =
    "iptables -N E2E-FOREIGN && iptables -A E2E-FOREIGN -s 198.18.0.99/32 -j RETURN \
    && iptables -A FORWARD -s 198.18.0.98/32 -m comment --comment \"e2e foreign\" -j ACCEPT \
    && iptables -I FORWARD 1 -j E2E-FOREIGN";
const FOREIGN_GONE: &str = "iptables -D FORWARD -j E2E-FOREIGN; \
    iptables -D FORWARD -s 198.18.0.98/32 -m comment --comment \"e2e foreign\" -j ACCEPT; \
    iptables -F E2E-FOREIGN; iptables -X E2E-FOREIGN; true";

/// Removes the hand-made foreign rules when dropped (after the topology's guard).
struct Foreign<'a>(&'a Ctx);
impl Drop for Foreign<'_> {
    fn drop(&mut self) {
        let _ = self.0.on_node("node1", FOREIGN_GONE);
    }
}

pub fn linked_nodes_only(ctx: &Ctx) -> Outcome {
    let linkers = client("near", "node1") + &client("cli2", "node2") + &client("cli5", "node5");
    let public = file(ctx, &(server(false) + &linkers));
    let _foreign = Foreign(ctx);
    let _guard = Guard::new(ctx, &public, NAME);
    ctx.apply(&public)?;
    ensure!(
        ask_retrying(ctx, "node2", "e2e-private-cli2", "tcp", "127.0.0.1", 7000)? == "srv hello",
        "cli2 through its link while the port is public"
    );
    // The control: published as usual, any host reaches it.
    ensure!(
        from_host(ctx, "node3").as_deref() == Some("srv hello"),
        "node3 could not reach the public port (the case would prove nothing)"
    );

    ctx.on_node("node1", FOREIGN).ok()?;
    let before = filter(ctx)?;

    let private = file(ctx, &(server(true) + &linkers));
    let plan = ctx.plan(&private).expect(2)?;
    ensure!(
        plan.stdout
            .contains("private ports chain on node1 will be created")
            && plan
                .stdout
                .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "plan of the private port:\n{}",
        plan.describe()
    );
    ctx.apply(&private)?;
    for (node, c) in [("node2", "cli2"), ("node1", "near"), ("node5", "cli5")] {
        let reply = ask_retrying(
            ctx,
            node,
            &format!("e2e-private-{c}"),
            "tcp",
            "127.0.0.1",
            7000,
        )?;
        ensure!(
            reply == "srv hello",
            "{c} on {node} through its link: {reply:?}"
        );
    }
    ensure!(
        from_host(ctx, "node3").is_none(),
        "node3, which does not link, still reaches the private port"
    );
    let after = filter(ctx)?;
    ensure!(
        without_ours(&after) == before,
        "node1's other filter rules changed:\nbefore:\n{}\nafter:\n{}",
        before.join("\n"),
        after.join("\n")
    );
    ensure!(
        after
            .iter()
            .find(|l| l.starts_with("-A FORWARD"))
            .is_some_and(|l| l.starts_with("-A FORWARD -j GEARTOPO-PP-")),
        "the chain's jump is not first in FORWARD:\n{}",
        after.join("\n")
    );
    let again = ctx.plan(&private).expect(0)?;
    ensure!(again.stdout.contains("No changes"), "{}", again.describe());

    // A link from a new node opens the port to it; a link removed closes it.
    let moved = file(
        ctx,
        &(server(true)
            + &client("near", "node1")
            + &client("cli3", "node3")
            + &client("cli5", "node5")),
    );
    ctx.apply(&moved)?;
    ensure!(
        ask_retrying(ctx, "node3", "e2e-private-cli3", "tcp", "127.0.0.1", 7000)? == "srv hello",
        "cli3 on node3 through its new link"
    );
    ensure!(
        from_host(ctx, "node2").is_none(),
        "node2 still reaches the private port after its link was removed"
    );

    ctx.geartopo(&["destroy", &moved.display().to_string(), "--auto-approve"])
        .ok()?;
    let gone = filter(ctx)?;
    ensure!(
        !gone.iter().any(|l| l.contains("GEARTOPO-PP-")),
        "destroy left the chain:\n{}",
        gone.join("\n")
    );
    for foreign in [
        ":E2E-FOREIGN - [0:0]",
        "-A FORWARD -j E2E-FOREIGN",
        "-A E2E-FOREIGN -s 198.18.0.99/32 -j RETURN",
        "-A FORWARD -s 198.18.0.98/32 -m comment --comment \"e2e foreign\" -j ACCEPT",
    ] {
        ensure!(
            gone.iter().any(|l| l == foreign),
            "destroy touched a foreign rule ({foreign}):\n{}",
            gone.join("\n")
        );
    }
    Ok(())
}
