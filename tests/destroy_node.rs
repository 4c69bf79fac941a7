//! `destroy --node NAME=ADDR` refuses what it cannot mean before any node is
//! contacted: a node that is still in the file, a name or address that a
//! `[nodes.NAME]` entry could not have, and an argument without `=`.

use std::process::Command;

fn destroy(args: &[&str]) -> (Option<i32>, String) {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/redis-todo.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .env("NO_COLOR", "1")
        .arg("destroy")
        .arg(&file)
        .args(args)
        .args(["--auto-approve", "--connect-timeout", "1"])
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_node_still_in_the_file_is_refused() {
    let (code, stderr) = destroy(&["--node", "node1=198.18.0.1"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("node node1 is in"), "{stderr}");
    assert!(
        !stderr.contains("connect"),
        "no node was contacted: {stderr}"
    );
}

#[test]
fn a_bad_name_or_address_is_refused_as_in_the_file() {
    let (code, stderr) = destroy(&["--node", "node9=198.18.0.9;reboot"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--node node9=198.18.0.9;reboot: invalid"),
        "{stderr}"
    );
    let (code, stderr) = destroy(&["--node", "node9"]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("expected NAME=ADDR"), "{stderr}");
}
