//! Cases for real fleets (issue 14) on the lab: node3 of tests/e2e/lab.toml logs
//! in as `gtfleet`, a user the lab creates with passwordless sudo, so every
//! script there runs through `sudo -n`; plan, apply, show, the lock and destroy
//! must work as they do as root, and a sudo that wants a password must stop the
//! run with a clear error before anything changed.

use std::path::{Path, PathBuf};

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

/// The lab node whose SSH user is not root (tests/e2e/lab.toml).
const SUDO_NODE: &str = "node3";
const SUDO_USER: &str = "gtfleet";

/// A topology over the lab's nodes in which `SUDO_NODE` logs in as `SUDO_USER`
/// with `sudo = true`.
fn fleet_topology(ctx: &Ctx, name: &str, body: &str) -> PathBuf {
    let file = ctx.topology(name, body);
    let text = std::fs::read_to_string(&file).expect("topology written");
    let address = ctx.address(SUDO_NODE);
    let text = text.replacen(
        &format!("[nodes.{SUDO_NODE}]\naddress = \"{address}\"\n"),
        &format!(
            "[nodes.{SUDO_NODE}]\naddress = \"{address}\"\nuser = \"{SUDO_USER}\"\nsudo = true\n"
        ),
        1,
    );
    assert!(text.contains("sudo = true"), "node3 not found in {text}");
    std::fs::write(&file, text).expect("write topology");
    file
}

fn server(name: &str, node: &str, port: u16, host_port: u16) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"tcp\", \"{port}\", \"{name}\"]\n\
         publish = [{{ port = {port}, host_port = {host_port} }}]\n\n"
    )
}

fn client(name: &str, node: &str, links: &str) -> String {
    format!("[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\nlinks = [{links}]\n\n")
}

/// The lab's sudoers file for the sudo user, replaced for the case and put back
/// when dropped (also when the case fails).
struct SudoersSwap {
    path: PathBuf,
    saved: String,
}

impl SudoersSwap {
    fn new(ctx: &Ctx, text: &str) -> Result<SudoersSwap, String> {
        let layout = geartopo::lab::Layout::new(
            Path::new(geartopo::lab::LAB_ROOT),
            &format!("e2e-{}", ctx.run_id),
        );
        let path = geartopo::lab::users::sudoers_file(&layout, SUDO_USER);
        let saved = std::fs::read_to_string(&path)
            .map_err(|e| format!("the lab made no sudoers file {}: {e}", path.display()))?;
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(SudoersSwap { path, saved })
    }
}

impl Drop for SudoersSwap {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.saved);
    }
}

/// plan, apply, show, the lock and destroy on a node reached as a non-root user
/// with passwordless sudo: real TCP through the link into that node, the lock
/// found in the node's own run directory (the lab's GEARTOPO_RUN_DIR, which
/// survives sudo's env_reset only because scripts pass it).
pub fn sudo_user_plan_apply_show_lock_destroy(ctx: &Ctx) -> Outcome {
    let name = "e2e-fleet";
    let body =
        server("web", SUDO_NODE, 7501, 51501) + &client("app", "node1", r#"{ to = "web:7501" }"#);
    let file = fleet_topology(ctx, name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let f = file.display().to_string();

    ctx.plan(&file).expect(2)?;
    ctx.apply(&file)?;
    let reply = ask_retrying(
        ctx,
        "node1",
        &format!("{name}-app"),
        "tcp",
        "127.0.0.1",
        7501,
    )?;
    ensure!(reply == "web hello", "through the link: {reply:?}");
    ctx.plan(&file).expect(0)?;
    let show = ctx.geartopo(&["show", &f]).ok()?;
    ensure!(
        show.stdout
            .contains(&format!("{name}-web on {SUDO_NODE}: running"))
            && show.stdout.contains("links match the file"),
        "show on the sudo node:\n{}",
        show.describe()
    );

    // Someone else's lock in the node's run directory stops an apply there.
    let lock = r#"d="${GEARTOPO_RUN_DIR:?}/apply.lock""#;
    ctx.on_node(
        SUDO_NODE,
        &format!("{lock}; mkdir -p \"$d\" && echo 'ops-laptop apply of billing' > \"$d/holder\""),
    )
    .ok()?;
    let changed = fleet_topology(
        ctx,
        name,
        &(body.clone() + &server("web2", SUDO_NODE, 7502, 51502)),
    );
    let held = ctx
        .geartopo(&["apply", &changed.display().to_string(), "--auto-approve"])
        .expect(1);
    ctx.on_node(SUDO_NODE, &format!("{lock}; rm -rf \"$d\""))
        .ok()?;
    let held = held?;
    ensure!(
        held.stderr.contains(&format!("node {SUDO_NODE}"))
            && held.stderr.contains("ops-laptop apply of billing"),
        "the lock on the sudo node is not reported:\n{}",
        held.describe()
    );
    ensure!(
        ctx.containers_of(SUDO_NODE, name)?.len() == 1,
        "apply under someone else's lock created something"
    );
    let run = ctx.apply(&changed)?;
    ensure!(run.stdout.contains("1 added"), "{}", run.describe());
    // Our own lock went with the apply, from the same directory.
    ctx.on_node(SUDO_NODE, &format!("{lock}; test ! -e \"$d\""))
        .ok()?;

    ctx.geartopo(&["destroy", &f, "--auto-approve"]).ok()?;
    ensure!(
        ctx.containers_of(SUDO_NODE, name)?.is_empty()
            && ctx.containers_of("node1", name)?.is_empty(),
        "destroy through sudo left containers"
    );
    Ok(())
}

/// A sudo that wants a password: plan and apply stop at once with an error that
/// names the node, the user and the sudoers line to add; nothing is created on
/// any node (the node1 container of the same topology included); no hang.
pub fn sudo_wanting_a_password_is_a_clear_error(ctx: &Ctx) -> Outcome {
    let name = "e2e-fleet-pw";
    let body =
        server("web", SUDO_NODE, 7511, 51511) + &client("app", "node1", r#"{ to = "web:7511" }"#);
    let file = fleet_topology(ctx, name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let swap = SudoersSwap::new(ctx, &format!("{SUDO_USER} ALL=(root) ALL\n"))?;
    let plan = ctx.plan(&file).expect(1)?;
    let apply = ctx
        .geartopo(&["apply", &file.display().to_string(), "--auto-approve"])
        .expect(1)?;
    for run in [&plan, &apply] {
        ensure!(
            run.stderr.contains(&format!(
                "node {SUDO_NODE}: `sudo -n` as {SUDO_USER} was refused (sudo: a password is required)"
            )) && run
                .stderr
                .contains(&format!("{SUDO_USER} ALL=(root) NOPASSWD: ALL")),
            "no clear sudo error:\n{}",
            run.describe()
        );
        let quick = run.secs < 30.0;
        ensure!(
            quick,
            "took {:.0}s: did sudo wait for a password?",
            run.secs
        );
    }
    for node in [SUDO_NODE, "node1"] {
        ensure!(
            ctx.containers_of(node, name)?.is_empty(),
            "an apply that could not become root on {SUDO_NODE} created something on {node}"
        );
    }
    drop(swap);
    // Passwordless again: the same file applies.
    ctx.apply(&file)?;
    Ok(())
}

/// Secrets kept out of the file: one from geartopo's environment, a multi-line
/// one from a private file beside the topology, on a podman and a docker node.
/// The saved plan holds neither value (only salted hashes); applying it after the
/// variable changed is refused with nothing created; with the same value it
/// applies and the containers see both values exactly; no output shows them; a
/// file readable by others is refused.
pub fn secrets_from_env_and_file(ctx: &Ctx) -> Outcome {
    let name = "e2e-fleet-secrets";
    let token = format!("tok-{}-e2e", ctx.run_id);
    let cert = "-----BEGIN TEST-----\nc2VjcmV0IGxpbmUgdHdv\n-----END TEST-----";
    let docker = ctx.docker_nodes[0].clone();
    let body = |node: &str, c: &str| {
        format!(
            "[containers.{c}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
             env = {{ TOKEN = {{ from_env = \"GT_E2E_TOKEN\" }}, CERT = {{ from_file = \"{name}.cert\" }} }}\n\n"
        )
    };
    let file = ctx.topology(name, &(body("node1", "p") + &body(&docker, "d")));
    let _guard = Guard::new(ctx, &file, name);
    let dir = file.parent().expect("in the run's folder");
    let cert_file = dir.join(format!("{name}.cert"));
    std::fs::write(&cert_file, format!("{cert}\n")).map_err(|e| e.to_string())?;
    let chmod = |mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cert_file, std::fs::Permissions::from_mode(mode))
    };
    let bin = ctx.bin.display().to_string();
    let f = file.display().to_string();
    let saved = dir.join(format!("{name}.plan")).display().to_string();
    let with_token = |value: &str, args: &str| {
        ctx.in_control(&format!("GT_E2E_TOKEN='{value}' NO_COLOR=1 {bin} {args}"))
    };

    chmod(0o644).map_err(|e| e.to_string())?;
    let refused = with_token(&token, &format!("validate {f}")).expect(1)?;
    ensure!(
        refused.stderr.contains("group or others may read it")
            && refused.stderr.contains("chmod 600"),
        "a world-readable secret file was not refused:\n{}",
        refused.describe()
    );
    chmod(0o600).map_err(|e| e.to_string())?;

    let plan = with_token(&token, &format!("plan {f} -o {saved}")).ok()?;
    let text = std::fs::read_to_string(&saved).map_err(|e| e.to_string())?;
    for (what, out) in [
        ("saved plan", text.as_str()),
        ("plan output", &plan.output()),
    ] {
        ensure!(
            !out.contains(&token) && !out.contains("c2VjcmV0IGxpbmUgdHdv"),
            "the {what} holds a secret value:\n{out}"
        );
    }
    ensure!(
        text.contains("\"secret_hashes\""),
        "no secret hashes in the saved plan"
    );

    let changed = with_token("another", &format!("apply {saved}")).expect(1)?;
    ensure!(
        changed.stderr.contains("has changed since")
            && changed.stderr.contains("nothing was changed"),
        "a changed secret was not refused:\n{}",
        changed.describe()
    );
    ensure!(
        ctx.containers_of("node1", name)?.is_empty()
            && ctx.containers_of(&docker, name)?.is_empty(),
        "an apply refused for a changed secret created something"
    );

    let applied = with_token(&token, &format!("apply {saved}")).ok()?;
    ensure!(
        !applied.output().contains(&token),
        "apply output shows the secret:\n{}",
        applied.describe()
    );
    for (node, c) in [("node1", "p"), (docker.as_str(), "d")] {
        let seen = ctx
            .on_node(
                node,
                &format!(
                    "{} exec {name}-{c} sh -c 'printf \"%s|%s\" \"$TOKEN\" \"$CERT\"'",
                    ctx.runtime(node)
                ),
            )
            .ok()?;
        ensure!(
            seen.stdout == format!("{token}|{cert}"),
            "{node}: the container sees {:?}",
            seen.stdout
        );
    }
    let _ = with_token(&token, &format!("destroy {f} --auto-approve"));
    Ok(())
}

/// `transport = "openssh"` (the system's ssh) on every node, node3 as the sudo
/// user: plan, apply, a no-op plan and destroy work; the master connections live
/// in the private control folder, are reused (a second plan opens no new ones)
/// and go with `ssh -O exit`.
pub fn openssh_transport_plan_apply_destroy(ctx: &Ctx) -> Outcome {
    let name = "e2e-fleet-openssh";
    let body = "[defaults]\ntransport = \"openssh\"\nuser = \"root\"\n\n".to_string()
        + &server("web", SUDO_NODE, 7521, 51521)
        + &client("app", "node1", r#"{ to = "web:7521" }"#);
    let file = fleet_topology(ctx, name, &body);
    let _guard = Guard::new(ctx, &file, name);
    let control = file.with_file_name(format!("{name}-cm"));
    let bin = ctx.bin.display().to_string();
    let f = file.display().to_string();
    let gt = |args: &str| {
        ctx.in_control(&format!(
            "GEARTOPO_SSH_CONTROL_DIR={} NO_COLOR=1 {bin} {args}",
            control.display()
        ))
    };
    let result = (|| {
        gt(&format!("plan {f} --detailed-exitcode")).expect(2)?;
        gt(&format!("apply {f} --auto-approve")).ok()?;
        let reply = ask_retrying(
            ctx,
            "node1",
            &format!("{name}-app"),
            "tcp",
            "127.0.0.1",
            7521,
        )?;
        ensure!(reply == "web hello", "through the link: {reply:?}");
        let masters = std::fs::read_dir(&control)
            .map_err(|e| e.to_string())?
            .count();
        ensure!(
            masters == ctx.nodes.len(),
            "{masters} master sockets for {} nodes",
            ctx.nodes.len()
        );
        gt(&format!("plan {f} --detailed-exitcode")).expect(0)?;
        let again = std::fs::read_dir(&control)
            .map_err(|e| e.to_string())?
            .count();
        ensure!(
            again == masters,
            "a no-op plan opened new masters ({again})"
        );
        gt(&format!("destroy {f} --auto-approve")).ok()?;
        ensure!(
            ctx.containers_of(SUDO_NODE, name)?.is_empty(),
            "destroy over openssh left containers"
        );
        Ok(())
    })();
    for (node, address) in &ctx.nodes {
        let user = if node == SUDO_NODE { SUDO_USER } else { "root" };
        let _ = ctx.in_control(&format!(
            "ssh -o ControlPath={}/%C -O exit {user}@{address}",
            control.display()
        ));
    }
    result
}
