//! Read progress as a user meets it, through the real binary: one line per node on
//! a terminal's stderr while plan reads the nodes, nothing at all when stderr is a
//! pipe, and stdout (text or `--json`) as without it.
//!
//! The node is `local` (commands run on this machine) with a stand-in `podman` on
//! PATH that answers every call with nothing: the read only looks at /proc/net
//! and that stand-in, so these tests change nothing and need neither root nor a
//! container engine.

use std::path::Path;
use std::process::{Command, Output};

const TOPOLOGY: &str = "name = \"demo\"\n\n[nodes.node1]\naddress = \"local\"\n\n\
    [containers.web]\nnode = \"node1\"\nimage = \"localhost/busybox:latest\"\n";

/// A temp dir with the topology in `geartopo.toml` and an empty podman in `bin/`.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("geartopo.toml"), TOPOLOGY).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(bin.join("podman"), "#!/bin/sh\nexit 0\n").unwrap();
    let mut perms = std::fs::metadata(bin.join("podman")).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(bin.join("podman"), perms).unwrap();
    dir
}

/// `program` in `dir`, the stand-in podman first on PATH.
fn command(dir: &Path, program: &str) -> Command {
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut c = Command::new(program);
    c.current_dir(dir).env("PATH", path).env("NO_COLOR", "1");
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `shell_command` on a pseudo-terminal (util-linux `script`); what the
/// terminal showed.
fn on_terminal(dir: &Path, shell_command: &str) -> Output {
    let out = command(dir, "script")
        .args(["-qec", shell_command, "/dev/null"])
        .output()
        .expect("util-linux script runs");
    assert!(out.status.success(), "{}", text(&out.stdout));
    out
}

#[test]
fn plan_on_a_pipe_writes_nothing_on_stderr_and_the_plan_on_stdout() {
    let dir = setup();
    let out = command(dir.path(), env!("CARGO_BIN_EXE_geartopo"))
        .arg("plan")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("geartopo will perform the following actions:\n"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("Plan: 1 to add, 0 to change, 0 to destroy.\n"),
        "{stdout}"
    );
}

#[test]
fn an_unreachable_node_on_a_pipe_gets_only_the_error_on_stderr() {
    let dir = setup();
    // Nothing listens on port 1 of loopback: refused at once.
    std::fs::write(
        dir.path().join("geartopo.toml"),
        TOPOLOGY.replace("address = \"local\"", "address = \"127.0.0.1\"\nport = 1"),
    )
    .unwrap();
    let out = command(dir.path(), env!("CARGO_BIN_EXE_geartopo"))
        .args(["plan", "--connect-timeout", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("node node1: cannot connect to 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!stderr.contains("connecting..."), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}

#[test]
fn plan_on_a_terminal_shows_each_node_read_then_the_plan() {
    let dir = setup();
    let out = on_terminal(
        dir.path(),
        &format!("'{}' plan", env!("CARGO_BIN_EXE_geartopo")),
    );
    let shown = text(&out.stdout);
    assert!(shown.contains("node1: reading..."), "{shown:?}");
    assert!(shown.contains("node1: read (0 containers, "), "{shown:?}");
    // The lines are taken away before the plan is printed after them.
    let read = shown.find("node1: read (").unwrap();
    let plan = shown
        .find("geartopo will perform the following actions:")
        .unwrap();
    assert!(read < plan, "{shown:?}");
    assert!(
        shown.contains("Plan: 1 to add, 0 to change, 0 to destroy."),
        "{shown:?}"
    );
}

#[test]
fn plan_json_with_progress_on_the_terminal_keeps_stdout_pure_json() {
    let dir = setup();
    let out = on_terminal(
        dir.path(),
        &format!(
            "'{}' plan --json > plan.json",
            env!("CARGO_BIN_EXE_geartopo")
        ),
    );
    let shown = text(&out.stdout);
    assert!(shown.contains("node1: read (0 containers, "), "{shown:?}");
    let json = std::fs::read(dir.path().join("plan.json")).unwrap();
    let plan: serde_json::Value =
        serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    assert!(plan.get("format_version").is_some(), "{plan}");
}
