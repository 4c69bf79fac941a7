//! Terraform's targeting habits on real hosts: `apply --replace` gives a container
//! a new identity while its link keeps carrying traffic, and `destroy --target`
//! removes the target and what links to it, nothing else.

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

/// The runtime id of a container.
fn container_id(ctx: &Ctx, node: &str, container: &str) -> Result<String, String> {
    let run = ctx
        .on_node(
            node,
            &format!("podman inspect --format '{{{{.Id}}}}' {container}"),
        )
        .ok()?;
    let id = run.stdout.trim().to_string();
    ensure!(!id.is_empty(), "no id for {container} on {node}");
    Ok(id)
}

/// redis-todo plus a bystander: `apply --replace redisdb` replaces it (new id; the
/// link from app1 still answers; plan exits 0 after), then `destroy --target
/// redisdb` removes redisdb and app1 (which links to it) and leaves the bystander.
pub fn replace_and_destroy_target(ctx: &Ctx) -> Outcome {
    let name = "e2e-target";
    let body = format!(
        "[containers.redisdb]\nnode = \"node4\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"tcp\", \"6379\", \"redisdb-on-node4\"]\n\
         publish = [{{ port = 6379, host_port = 50060 }}]\n\n\
         [containers.app1]\nnode = \"node1\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
         links = [{{ to = \"redisdb:6379\" }}]\n\n\
         [containers.bystander]\nnode = \"node2\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\n"
    );
    let file = ctx.topology(name, &body);
    let path = file.display().to_string();
    let _guard = Guard::new(ctx, &file, name);

    ctx.apply(&file)?;
    let reply = ask_retrying(ctx, "node1", "e2e-target-app1", "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "redisdb-on-node4 hello",
        "app1 -> 127.0.0.1:6379 answered {reply:?}"
    );
    let before = container_id(ctx, "node4", "e2e-target-redisdb")?;

    // Nothing changed, yet the plan replaces it, as requested; a typo is named.
    let plan = ctx
        .geartopo(&["plan", &path, "--detailed-exitcode", "--replace", "redisdb"])
        .expect(2)?;
    ensure!(
        plan.stdout
            .contains("# redisdb on node4 will be replaced, as requested")
            && plan.stdout.contains("1 to add, 0 to change, 1 to destroy"),
        "plan --replace:\n{}",
        plan.describe()
    );
    let typo = ctx
        .geartopo(&["plan", &path, "--replace", "redisd"])
        .expect(1)?;
    ensure!(
        typo.stderr.contains("--replace redisd: no such container")
            && typo.stderr.contains("did you mean redisdb?"),
        "a mistyped --replace:\n{}",
        typo.describe()
    );
    let both = ctx
        .geartopo(&["plan", &path, "--target", "app1", "--exclude", "redisdb"])
        .expect(1)?;
    ensure!(
        both.stderr
            .contains("'--target <CONTAINER>' cannot be used with '--exclude <CONTAINER>'")
            && both.stdout.is_empty(),
        "--target with --exclude:\n{}",
        both.describe()
    );

    ctx.geartopo(&["apply", &path, "--auto-approve", "--replace", "redisdb"])
        .ok()?;
    let after = container_id(ctx, "node4", "e2e-target-redisdb")?;
    ensure!(
        before != after,
        "redisdb kept its id {before} through --replace"
    );
    let reply = ask_retrying(ctx, "node1", "e2e-target-app1", "tcp", "127.0.0.1", 6379)?;
    ensure!(
        reply == "redisdb-on-node4 hello",
        "after the replace, app1 -> 127.0.0.1:6379 answered {reply:?}"
    );
    ctx.plan(&file).expect(0)?;

    let destroy = ctx
        .geartopo(&["destroy", &path, "--auto-approve", "--target", "redisdb"])
        .ok()?;
    ensure!(
        destroy.stderr.contains("resource targeting is in effect"),
        "destroy --target gave no targeting warning:\n{}",
        destroy.describe()
    );
    ensure!(
        destroy
            .stdout
            .contains("0 to add, 0 to change, 2 to destroy"),
        "destroy --target plan:\n{}",
        destroy.describe()
    );
    ensure!(
        ctx.containers_of("node4", name)?.is_empty(),
        "redisdb left on node4"
    );
    ensure!(
        ctx.containers_of("node1", name)?.is_empty(),
        "app1 left on node1"
    );
    ensure!(
        ctx.containers_of("node2", name)? == ["e2e-target-bystander"],
        "destroy --target touched the bystander"
    );
    ctx.container_pid("node2", "e2e-target-bystander")?;
    Ok(())
}
