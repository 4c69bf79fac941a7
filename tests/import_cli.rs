//! `geartopo import` as a user runs it: exit codes, what goes to stderr, and
//! that nothing is written when the descriptor cannot be imported.

use std::path::PathBuf;
use std::process::{Command, Output};

fn geartopo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run geartopo")
}

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/geard-fixtures")
        .join(name);
    p.display().to_string()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn writes_the_topology_to_the_output_file_and_nothing_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("geartopo.toml");
    let o = geartopo(&[
        "import",
        &fixture("mongo_deploy.json"),
        "--node",
        "n1=198.18.0.1",
        "--node",
        "n2=198.18.0.2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
    assert!(
        o.stdout.is_empty(),
        "with -o the topology goes to the file only"
    );
    let written = std::fs::read_to_string(&out).unwrap();
    let doc: toml::Table = written.parse().unwrap();
    assert_eq!(doc["name"].as_str(), Some("mongo-deploy"));
    assert_eq!(doc["containers"]["db"]["replicas"].as_integer(), Some(3));
}

#[test]
fn prints_to_stdout_and_takes_a_name() {
    let o = geartopo(&[
        "import",
        &fixture("rockmongo_mongo.json"),
        "--node",
        "a=198.18.0.1",
        "--name",
        "rock",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: toml::Table = text(&o.stdout).parse().unwrap();
    assert_eq!(doc["name"].as_str(), Some("rock"));
    // One node: both instances on it.
    assert_eq!(doc["containers"]["mongodb-1"]["node"].as_str(), Some("a"));
}

#[test]
fn warnings_go_to_stderr_with_their_place_and_the_topology_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("web.json");
    std::fs::write(
        &desc,
        r#"{"containers":[{"name":"web","count":1,"image":"w","affinity":"distribute","publicports":[{"internal":80}]}]}"#,
    )
    .unwrap();
    let out = dir.path().join("t.toml");
    let o = geartopo(&[
        "import",
        desc.to_str().unwrap(),
        "--node",
        "n1=198.18.0.1",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let stderr = text(&o.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning: /containers/0/affinity: ")),
        "{stderr}"
    );
    assert!(out.exists());
}

#[test]
fn an_error_exits_1_says_where_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("bad.json");
    std::fs::write(
        &desc,
        r#"{"Containers":[{"Name":"app","Count":1,"Image":"a","Links":[{"To":"worker"}]},
                          {"Name":"worker","Count":1,"Image":"w","Affinity":"x"}]}"#,
    )
    .unwrap();
    let out = dir.path().join("t.toml");
    let o = geartopo(&[
        "import",
        desc.to_str().unwrap(),
        "--node",
        "n1=198.18.0.1",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("error: /Containers/0/Links/0/To: ")),
        "{stderr}"
    );
    // Warnings found on the way are still shown.
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("warning: /Containers/1/Affinity: ")),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing may be written on error");
    assert!(o.stdout.is_empty());
}

#[test]
fn a_bad_node_argument_or_bad_json_is_an_error_with_exit_1() {
    let o = geartopo(&["import", &fixture("mongo_deploy.json"), "--node", "n1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("error: --node: "),
        "{}",
        text(&o.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("broken.json");
    std::fs::write(&desc, "{\"Containers\": [\n  {\"Name\": \"x\",}\n]}").unwrap();
    let o = geartopo(&["import", desc.to_str().unwrap(), "--node", "n1=198.18.0.1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with("error: line 2 column "),
        "{}",
        text(&o.stderr)
    );
}
