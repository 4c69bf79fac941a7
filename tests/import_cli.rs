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

/// Imports every fixture to a file (three nodes; the one whose instances sit on
/// `localhost` gets a local node) and returns (fixture, topology path).
fn import_every_fixture(dir: &std::path::Path) -> Vec<(String, PathBuf)> {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/geard-fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 9, "fixtures: {names:?}");
    let mut out = Vec::new();
    for name in names {
        let toml = dir.join(name.replace(".json", ".toml"));
        let nodes: &[&str] = if name == "mongo_deploy_existing.json" {
            &["n1=198.18.0.1", "here=local"]
        } else {
            &["n1=198.18.0.1", "n2=198.18.0.2", "n3=198.18.0.3"]
        };
        let descriptor = fixtures.join(&name).display().to_string();
        let output = toml.display().to_string();
        let mut args = vec!["import", &descriptor, "-o", &output];
        for n in nodes {
            args.extend(["--node", n]);
        }
        let o = geartopo(&args);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        out.push((name, toml));
    }
    out
}

#[test]
fn every_imported_fixture_validates_and_its_links_can_be_listed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, toml) in import_every_fixture(dir.path()) {
        let toml = toml.to_str().unwrap();
        let o = geartopo(&["validate", toml]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("is valid"), "{name}");

        let o = geartopo(&["links", "--json", toml]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let containers = json["containers"].as_array().unwrap();
        assert!(!containers.is_empty(), "{name}");
        let names: Vec<&str> = containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();

        let o = geartopo(&["links", toml]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        let listing = text(&o.stdout);
        for (c, n) in containers.iter().zip(&names) {
            let header = format!("{n} ({})", c["node"].as_str().unwrap());
            assert!(
                listing.lines().any(|l| l == header),
                "{name}: {header}\n{listing}"
            );
            // Every link leads into the topology or back into the container itself.
            for l in c["links"].as_array().unwrap() {
                match l["target"]["kind"].as_str() {
                    Some("container") => assert!(
                        names.contains(&l["target"]["container"].as_str().unwrap()),
                        "{name}: {l}"
                    ),
                    Some("loopback") => {}
                    other => panic!("{name}: geard links lead to containers, not {other:?}"),
                }
            }
        }
    }
}

#[test]
fn replicas_that_link_to_each_other_see_themselves_at_their_counted_up_port() {
    // geard's simple_deploy: web-1 at 127.0.0.1:8080, web-2 at 127.0.0.1:8081, in
    // both replicas. web-2 reaching itself at :8081 is a loopback link; web-1 at
    // :8080 is where it already listens, so no link at all.
    let dir = tempfile::tempdir().unwrap();
    let toml = import_every_fixture(dir.path())
        .into_iter()
        .find(|(n, _)| n == "simple_deploy.json")
        .unwrap()
        .1;
    let o = geartopo(&["links", toml.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "web-1 (n1)\n  127.0.0.1:8081/tcp -> web-2:8080 (n2 198.18.0.2:host port picked at apply)\n\
         web-2 (n2)\n  127.0.0.1:8080/tcp -> web-1:8080 (n1 198.18.0.1:host port picked at apply)\n  \
         127.0.0.1:8081/tcp -> web-2:8080 (itself, 127.0.0.1:8080)\n"
    );
    // And they start in any order: no bold (start-order) edge between them.
    let o = geartopo(&["graph", toml.to_str().unwrap()]);
    let dot = text(&o.stdout);
    assert!(
        dot.contains("\"create web-2\" -> \"rules web-1\" [style=dashed];"),
        "{dot}"
    );
    assert!(!dot.contains("start web-1\" -> \"start web-2"), "{dot}");
    assert!(!dot.contains("start web-2\" -> \"start web-1"), "{dot}");
}
