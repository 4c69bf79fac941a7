//! Golden tests of `geartopo links` (text and --json) on every example.
//! `GEARTOPO_BLESS=1 cargo test --test links` rewrites tests/links/*.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

fn golden(name: &str, actual: &str) {
    let path = root().join("tests/links").join(name);
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == actual,
        "{name} differs:\n{}",
        similar::TextDiff::from_lines(want.as_str(), actual).unified_diff()
    );
}

#[test]
fn links_of_every_example_match_their_golden_files() {
    for ex in ["redis-todo", "cluster", "mongo-replica-set"] {
        let file = format!("examples/{ex}.toml");
        let (code, text) = run(&["links", &file]);
        assert_eq!(code, Some(0));
        golden(&format!("{ex}.txt"), &text);
        let (code, json) = run(&["links", &file, "--json"]);
        assert_eq!(code, Some(0));
        golden(&format!("{ex}.json"), &json);
    }
}

#[test]
fn the_seed_app_sees_redis_on_localhost() {
    let (_, text) = run(&["links", "examples/redis-todo.toml"]);
    assert!(
        text.contains(
            "app1 (node1)\n  127.0.0.1:6379/tcp -> redisdb:6379 (node4 198.18.0.4:50000)\n"
        ),
        "{text}"
    );
}

#[test]
fn a_view_member_reaches_itself_and_the_others_at_their_view_addresses() {
    let (_, json) = run(&["links", "examples/mongo-replica-set.toml", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let db2 = v["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "db-2")
        .unwrap();
    let links = db2["links"].as_array().unwrap();
    let listens: Vec<&str> = links
        .iter()
        .map(|l| l["listen"].as_str().unwrap())
        .collect();
    assert_eq!(
        listens,
        [
            "192.168.1.1:27017",
            "192.168.1.2:27017",
            "192.168.1.3:27017"
        ]
    );
    assert_eq!(links[1]["target"]["kind"], "loopback");
    assert_eq!(links[0]["target"]["container"], "db-1");
    assert_eq!(links[0]["target"]["node_address"], "198.18.0.1");
    assert!(links[0]["target"]["host_port"].is_null());
    assert_eq!(links[0]["origin"]["view"], "mongo");
}
