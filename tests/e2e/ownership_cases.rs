//! Cases about who owns what on shared nodes (issue 15): two topologies with the
//! same name and different ids side by side, and a node removed from the file
//! cleaned with `destroy --node`. Each case has its own names and host ports.

use std::path::PathBuf;

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome};
use crate::lab_cases::ask_retrying;
use crate::topology_cases::{client, server};

/// A topology file at `file_name` (in the case's directory): `name`, `id` when
/// given, every lab node, and `body`.
fn file_with_id(ctx: &Ctx, name: &str, id: &str, file_name: &str, body: &str) -> PathBuf {
    let written = ctx.topology(name, body);
    let text = std::fs::read_to_string(&written).expect("read topology");
    let text = text.replacen('\n', &format!("\nid = \"{id}\"\n"), 1);
    let path = written.with_file_name(file_name);
    std::fs::write(&path, text).expect("write topology");
    path
}

/// Two teams both call their topology `e2e-owner` and share node1 and node3: with
/// different ids, each plans only its own, and applying and destroying one leaves
/// the other's containers running (same pid) and linked. A third file of the same
/// name that wants a container the second one has is refused, naming both ids.
pub fn same_name_two_ids_side_by_side(ctx: &Ctx) -> Outcome {
    let name = "e2e-owner";
    let (id_a, id_b, id_c) = (
        "aaaaaaaaaaaaaaaa0000000000000001",
        "bbbbbbbbbbbbbbbb0000000000000002",
        "cccccccccccccccc0000000000000003",
    );
    let body = |suffix: &str, host_port: u16| {
        server(
            &format!("db-{suffix}"),
            "node3",
            "tcp",
            6379,
            host_port,
            &format!("db-of-{suffix}"),
        ) + &client(
            &format!("app-{suffix}"),
            "node1",
            &[&format!(r#"{{ to = "db-{suffix}:6379" }}"#)],
        )
    };
    let file_a = file_with_id(ctx, name, id_a, "owner-a.toml", &body("a", 50070));
    let file_b = file_with_id(ctx, name, id_b, "owner-b.toml", &body("b", 50071));
    let _guard_a = Guard::new(ctx, &file_a, name);
    let _guard_b = Guard::new(ctx, &file_b, name);

    ctx.apply(&file_a)?;
    ctx.apply(&file_b)?;
    // Without ids, each plan would destroy the other's two containers.
    ctx.plan(&file_a).expect(0)?;
    ctx.plan(&file_b).expect(0)?;
    ensure!(
        ask_retrying(ctx, "node1", "e2e-owner-app-a", "tcp", "127.0.0.1", 6379)? == "db-of-a hello",
        "a's link"
    );
    ensure!(
        ask_retrying(ctx, "node1", "e2e-owner-app-b", "tcp", "127.0.0.1", 6379)? == "db-of-b hello",
        "b's link"
    );
    let pid_b = ctx.container_pid("node1", "e2e-owner-app-b")?;

    // A third file of the same name wanting b's app: a plan error naming both ids.
    let file_c = file_with_id(ctx, name, id_c, "owner-c.toml", &body("b", 50072));
    let clash = ctx.plan(&file_c).expect(1)?;
    ensure!(
        clash.stderr.contains("e2e-owner-app-b")
            && clash.stderr.contains(id_b)
            && clash.stderr.contains(id_c),
        "the clash names the container and both ids: {}",
        clash.stderr
    );

    ctx.geartopo(&["destroy", &file_a.display().to_string(), "--auto-approve"])
        .ok()?;
    ensure!(
        ctx.containers_of("node1", name)? == ["e2e-owner-app-b"],
        "destroying a left node1 with {:?}",
        ctx.containers_of("node1", name)?
    );
    ensure!(
        ctx.containers_of("node3", name)? == ["e2e-owner-db-b"],
        "destroying a left node3 with {:?}",
        ctx.containers_of("node3", name)?
    );
    ensure!(
        ctx.container_pid("node1", "e2e-owner-app-b")? == pid_b,
        "destroying a restarted b's app"
    );
    ensure!(
        ask_retrying(ctx, "node1", "e2e-owner-app-b", "tcp", "127.0.0.1", 6379)? == "db-of-b hello",
        "b's link after a's destroy"
    );
    ctx.plan(&file_b).expect(0)?;
    Ok(())
}

/// A node taken out of the file while it still runs a container of the topology:
/// plan no longer reads it (so shows nothing for it), and `destroy --node
/// NAME=ADDR` removes that container and nothing else.
pub fn destroy_node_cleans_a_node_removed_from_the_file(ctx: &Ctx) -> Outcome {
    let name = "e2e-gone";
    let id = "dddddddddddddddd0000000000000004";
    let db = server("db", "node3", "tcp", 6379, 50073, "db-on-node3");
    let both = db.clone() + &client("app", "node2", &[r#"{ to = "db:6379" }"#]);
    let file = file_with_id(ctx, name, id, "gone.toml", &both);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    ensure!(
        ctx.containers_of("node2", name)? == ["e2e-gone-app"],
        "app on node2"
    );
    let db_pid = ctx.container_pid("node3", "e2e-gone-db")?;

    // node2 and its app leave the file.
    let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
    let node2 = format!("[nodes.node2]\naddress = \"{}\"\n\n", ctx.address("node2"));
    ensure!(text.contains(&node2), "the file lists node2");
    let app = client("app", "node2", &[r#"{ to = "db:6379" }"#]);
    std::fs::write(&file, text.replace(&node2, "").replace(&app, "")).map_err(|e| e.to_string())?;
    // Documented: plan does not read a node that is not in the file.
    ctx.plan(&file).expect(0)?;
    ensure!(
        ctx.containers_of("node2", name)? == ["e2e-gone-app"],
        "app still on node2"
    );

    let node_arg = format!("node2={}", ctx.address("node2"));
    let run = ctx
        .geartopo(&[
            "destroy",
            &file.display().to_string(),
            "--node",
            &node_arg,
            "--auto-approve",
        ])
        .ok()?;
    ensure!(
        run.stdout.contains("e2e-gone-app"),
        "destroy shows the app: {}",
        run.stdout
    );
    ensure!(
        ctx.containers_of("node2", name)?.is_empty(),
        "app left on node2"
    );
    ensure!(
        ctx.containers_of("node3", name)? == ["e2e-gone-db"],
        "db removed too"
    );
    ensure!(
        ctx.container_pid("node3", "e2e-gone-db")? == db_pid,
        "db restarted"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}
