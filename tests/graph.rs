//! Golden tests of `geartopo graph` on every example (dot and mermaid, the step
//! graph and `--view topology`), and of the graph's order and queries that apply
//! relies on.
//! `GEARTOPO_BLESS=1 cargo test --test graph` rewrites tests/graph/*.

use std::path::{Path, PathBuf};
use std::process::Command;

use geartopo::graph::{DepGraph, Step};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn golden(path: &Path, actual: &str) {
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        want == actual,
        "{} differs:\n{}",
        path.display(),
        similar::TextDiff::from_lines(want.as_str(), actual).unified_diff()
    );
}

const EXAMPLES: &[&str] = &["redis-todo", "cluster", "mongo-replica-set"];

#[test]
fn graph_output_of_every_example_matches_its_golden_file() {
    for ex in EXAMPLES {
        let file = format!("examples/{ex}.toml");
        for (format, ext) in [("dot", "dot"), ("mermaid", "mmd")] {
            let (code, stdout, stderr) = run(&["graph", &file, "--format", format]);
            assert_eq!(code, Some(0), "{file}: {stderr}");
            golden(&root().join(format!("tests/graph/{ex}.{ext}")), &stdout);
        }
    }
}

/// `--view topology` of every example, and of a file with raw endpoints, a UDP
/// link and a node without containers: `tests/graph/NAME.topology.{dot,mmd}`.
const TOPOLOGY_PICTURES: &[&str] = &[
    "examples/redis-todo.toml",
    "examples/cluster.toml",
    "examples/mongo-replica-set.toml",
    "examples/etcd-cluster.toml",
    "tests/graph/external.toml",
];

#[test]
fn topology_view_of_every_example_matches_its_golden_file() {
    for file in TOPOLOGY_PICTURES {
        let name = Path::new(file).file_stem().unwrap().to_str().unwrap();
        for (format, ext) in [("dot", "dot"), ("mermaid", "mmd")] {
            let (code, stdout, stderr) =
                run(&["graph", file, "--view", "topology", "--format", format]);
            assert_eq!(code, Some(0), "{file}: {stderr}");
            golden(
                &root().join(format!("tests/graph/{name}.topology.{ext}")),
                &stdout,
            );
        }
    }
}

#[test]
fn topology_view_in_dot_is_accepted_by_graphviz() {
    // Runs where graphviz is installed (`apt-get install graphviz`); says so otherwise.
    if Command::new("dot").arg("-V").output().is_err() {
        eprintln!("skipped: graphviz `dot` is not installed");
        return;
    }
    for file in TOPOLOGY_PICTURES {
        let (code, stdout, stderr) = run(&["graph", file, "--view", "topology"]);
        assert_eq!(code, Some(0), "{file}: {stderr}");
        let mut dot = Command::new("dot")
            .arg("-Tsvg")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut dot.stdin.take().unwrap(), stdout.as_bytes()).unwrap();
        let out = dot.wait_with_output().unwrap();
        let svg = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file}: dot failed: {warnings}");
        assert!(warnings.is_empty(), "{file}: dot warned: {warnings}");
        // Each node is drawn as a cluster with its label.
        assert!(
            svg.contains("<title>cluster_node1</title>"),
            "{file}: {svg}"
        );
    }
}

#[test]
fn graph_view_defaults_to_steps() {
    let (_, default, _) = run(&["graph", "examples/redis-todo.toml"]);
    let (code, steps, _) = run(&["graph", "examples/redis-todo.toml", "--view", "steps"]);
    assert_eq!(code, Some(0));
    assert_eq!(default, steps);
    assert!(steps.contains("\"create app1\""), "{steps}");
}

#[test]
fn graph_defaults_to_dot() {
    let (code, stdout, _) = run(&["graph", "examples/redis-todo.toml"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("digraph \"todo\" {"), "{stdout}");
}

#[test]
fn graph_of_an_invalid_file_reports_and_exits_1() {
    let (code, stdout, stderr) = run(&["graph", "tests/validate/cycle.toml"]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("start-order cycle: app1 -> app2 -> app1"),
        "{stderr}"
    );
}

fn load(ex: &str) -> geartopo::topology::Topology {
    geartopo::topology::load(&root().join(format!("examples/{ex}.toml")))
        .unwrap()
        .topology
}

fn position(order: &[Step], s: &Step) -> usize {
    order
        .iter()
        .position(|x| x == s)
        .unwrap_or_else(|| panic!("{s:?} missing"))
}

#[test]
fn a_link_target_is_created_before_the_rules_and_started_before_the_linking_container() {
    let g = DepGraph::build(&load("cluster")).unwrap();
    let order = g.steps_in_order();
    assert_eq!(order.len(), 5 * 3);
    let c = |s: &str| Step::Create(s.into());
    let r = |s: &str| Step::Rules(s.into());
    let st = |s: &str| Step::Start(s.into());
    for app in ["app-1", "app-2"] {
        for target in ["mysql", "redis", "api"] {
            assert!(position(&order, &c(target)) < position(&order, &r(app)));
            assert!(position(&order, &st(target)) < position(&order, &st(app)));
        }
        assert!(position(&order, &r(app)) < position(&order, &st(app)));
    }
    assert!(position(&order, &st("mysql")) < position(&order, &st("api")));
    assert_eq!(
        g.dependencies(&st("api")),
        vec![r("api"), st("mysql")],
        "api starts after its rules and after mysql"
    );
    assert_eq!(g.dependencies(&c("mysql")), Vec::<Step>::new());
}

#[test]
fn view_members_have_no_start_order_among_themselves() {
    let g = DepGraph::build(&load("mongo-replica-set")).unwrap();
    for i in 1..=3 {
        let deps = g.dependencies(&Step::Start(format!("db-{i}")));
        assert_eq!(deps, vec![Step::Rules(format!("db-{i}"))], "db-{i}");
        // ...but every other member exists before its rules point at them.
        let rules = g.dependencies(&Step::Rules(format!("db-{i}")));
        assert_eq!(rules.len(), 3, "{rules:?}");
    }
}

#[test]
fn needed_by_follows_links_transitively() {
    let g = DepGraph::build(&load("cluster")).unwrap();
    let need = |names: &[&str]| -> Vec<String> {
        g.needed_by(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .into_iter()
            .collect()
    };
    assert_eq!(need(&["api"]), vec!["api", "mysql"]);
    assert_eq!(need(&["app-2"]), vec!["api", "app-2", "mysql", "redis"]);
    assert_eq!(need(&["redis"]), vec!["redis"]);
    assert_eq!(need(&["nope"]), Vec::<String>::new());
    let g = DepGraph::build(&load("mongo-replica-set")).unwrap();
    let all: Vec<String> = g.needed_by(&["shell".to_string()]).into_iter().collect();
    assert_eq!(all, vec!["db-1", "db-2", "db-3", "shell"]);
}
