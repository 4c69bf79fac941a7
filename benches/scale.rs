//! Benchmark of `plan` past one machine's worth of nodes (issue 18): a simulated
//! transport in which every node answers its connect and then its read after a
//! fixed delay (the round trip of a far-away host), with the state a successful
//! apply leaves on it: 10 containers and 100 links per node. What runs is what
//! `geartopo plan` runs after the transport (`Session::connect_and_plan`):
//! `observe::connect_and_observe`, `--parallelism` nodes at a time, each read
//! as soon as it is connected (the real parallel read and parser, on text as a
//! podman node prints it), `plan::early` planning each container as the reads
//! it needs arrive, `plan::plan_with` and the plan's text. Each (nodes, delay)
//! runs in a child process of its own, so its peak resident size (VmHWM) is its
//! own.
//!
//! Ideal: waves x (connect delay + read delay), waves = ceil(nodes / parallelism).
//! Target (issue 18): 1,000 nodes at parallelism 100 within 1.3x of ideal and
//! within 500 MB.
//!
//! Run: `cargo bench --bench scale` (optionally `-- NODES...` and
//! `GEARTOPO_BENCH_DELAYS_MS=50,100`, `GEARTOPO_BENCH_PARALLELISM=100`).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use geartopo::node::{NodeConnection, NodeOp};
use geartopo::observe::{connect_and_observe, NoProgress};
use geartopo::plan::early::Early;
use geartopo::plan::{plan, plan_with, Selection};
use geartopo::render::{plan_text, Style};
use geartopo::testing::{applied_output, empty_state};
use geartopo::topology::model::Node;
use geartopo::transport::{Output, TransportError};

/// Containers a node (`GEARTOPO_BENCH_CONTAINERS`; the parent sets it for each
/// child: as given, else 10, or fewer where a topology's limit of 10,000
/// containers needs it: 5,000 nodes run with 2).
fn containers() -> usize {
    std::env::var("GEARTOPO_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}
const LINKS: usize = 10;
const CHILD: &str = "GEARTOPO_BENCH_SCALE_CHILD";

/// `nodes` nodes of `containers()` containers; each container publishes 6379 (host port
/// left to the plan) and links to 10 containers: the 10 of the node before it
/// (node 1's, which has none before it, to raw addresses). 100 links a node.
fn topology_text(nodes: usize) -> String {
    let mut t = String::from("name = \"scale\"\n");
    let addr = |i: usize| format!("198.18.{}.{}", i / 250, i % 250 + 1);
    for i in 0..nodes {
        t.push_str(&format!("\n[nodes.n{i}]\naddress = \"{}\"\n", addr(i)));
    }
    for i in 0..nodes {
        for k in 0..containers() {
            let links: Vec<String> = (0..LINKS)
                .map(|j| {
                    let listen = format!("127.0.0.1:{}", 7000 + j);
                    if i == 0 {
                        format!(
                            "{{ to = \"{}:{}\", listen = \"{listen}\" }}",
                            addr(nodes + 1),
                            50000 + j
                        )
                    } else {
                        format!(
                            "{{ to = \"n{}c{}:6379\", listen = \"{listen}\" }}",
                            i - 1,
                            j % containers()
                        )
                    }
                })
                .collect();
            t.push_str(&format!(
                "\n[containers.n{i}c{k}]\nnode = \"n{i}\"\nimage = \"localhost/geartopo-busybox:latest\"\n\
                 command = [\"sleep\", \"1000000\"]\npublish = [{{ port = 6379 }}]\nlinks = [{}]\n",
                links.join(", ")
            ));
        }
    }
    t
}

/// A node that answers every round trip after `delay` with its captured output.
struct SimNode {
    name: String,
    delay: Duration,
    output: Arc<str>,
}

impl NodeConnection for SimNode {
    fn node(&self) -> &str {
        &self.name
    }
    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError> {
        assert!(matches!(ops, [NodeOp::Observe { .. }]), "plan only reads");
        std::thread::sleep(self.delay);
        Ok(Output {
            status: 0,
            stdout: self.output.as_bytes().to_vec(),
            stderr: vec![],
        })
    }
}

/// A field of /proc/self/status, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used, all its threads.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name's closing parenthesis: fields 3.. (utime is 14).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // Clock ticks of 1/100 s (USER_HZ on Linux).
    let hz = 100.0;
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / hz
}

/// One (nodes, delay), in this child process: one tab-separated result line.
fn child(nodes: usize, delay: Duration, parallelism: usize) {
    let text = topology_text(nodes);
    let t = geartopo::topology::parse("scale.toml", text.as_bytes()).expect("valid topology");
    drop(text);
    // The captured state: what each node prints after an apply.
    let first = plan(&t, &empty_state(&t), None).expect("plans");
    let outputs: BTreeMap<String, Arc<str>> = t
        .nodes
        .keys()
        .map(|n| (n.clone(), Arc::from(applied_output(&t, &first, n))))
        .collect();
    let links: usize = first.desired.iter().map(|d| d.links.len()).sum();
    drop(first);
    let rss_before = status_kb("VmRSS") as f64 / 1024.0;

    let cpu0 = cpu_s();
    let start = Instant::now();
    // As `geartopo plan` (`Session::connect_and_plan`): `parallelism` nodes at
    // a time, each read as soon as it is connected, each container planned as
    // the reads it depends on arrive, the rest after the last read.
    let early = Early::new(&t, Some(Selection::default()));
    // The transport's own error type, as `transport::connect` returns it.
    #[allow(clippy::result_large_err)]
    let connect = |node: &Node| -> Result<Box<dyn NodeConnection>, TransportError> {
        std::thread::sleep(delay);
        Ok(Box::new(SimNode {
            name: node.name.clone(),
            delay,
            output: outputs[&node.name].clone(),
        }))
    };
    let (_conns, state) =
        connect_and_observe(&t, parallelism, connect, &NoProgress, &early).expect("reads");
    let read = start.elapsed();
    let cpu_read = cpu_s() - cpu0;
    let p = plan_with(&t, &state, &Selection::default(), Some(early)).expect("plans");
    let planned = start.elapsed() - read;
    let shown = plan_text(&p, Style::plain());
    let total = start.elapsed();
    let cpu_plan = cpu_s() - cpu0 - cpu_read;
    assert!(!p.has_changes(), "as applied: no changes\n{shown}");
    let waves = nodes.div_ceil(parallelism);
    let ideal = 2.0 * delay.as_secs_f64() * waves as f64;
    let row = [
        nodes.to_string(),
        containers().to_string(),
        (delay.as_millis()).to_string(),
        links.to_string(),
        waves.to_string(),
        format!("{ideal:.2}"),
        format!("{:.3}", read.as_secs_f64()),
        format!("{cpu_read:.2}"),
        format!("{:.3}", planned.as_secs_f64()),
        format!("{cpu_plan:.2}"),
        format!("{:.3}", total.as_secs_f64()),
        format!("{:.2}", total.as_secs_f64() / ideal),
        format!("{rss_before:.0}"),
        format!("{:.0}", status_kb("VmHWM") as f64 / 1024.0),
    ];
    println!("{}", row.join("\t"));
}

const COLUMNS: [&str; 14] = [
    "nodes",
    "a node",
    "delay ms",
    "links",
    "waves",
    "ideal s",
    "read s",
    "read cpu s",
    "plan s",
    "plan cpu s",
    "total s",
    "x ideal",
    "RSS in MB",
    "peak MB",
];

fn main() {
    let parallelism: usize = std::env::var("GEARTOPO_BENCH_PARALLELISM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if let Ok(v) = std::env::var(CHILD) {
        let (n, ms) = v.split_once(',').expect("NODES,MS");
        child(
            n.parse().expect("nodes"),
            Duration::from_millis(ms.parse().expect("ms")),
            parallelism,
        );
        return;
    }
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this as a
    // smoke test only (one small size, one delay), not the whole curve.
    let smoke = !std::env::args().any(|a| a == "--bench");
    if sizes.is_empty() {
        sizes = if smoke {
            vec![10]
        } else {
            vec![10, 100, 1_000, 5_000]
        };
    }
    let delays: Vec<u64> = std::env::var("GEARTOPO_BENCH_DELAYS_MS")
        .unwrap_or_else(|_| if smoke { "50" } else { "50,100" }.into())
        .split(',')
        .filter_map(|d| d.parse().ok())
        .collect();
    let given: Option<usize> = std::env::var("GEARTOPO_BENCH_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok());
    println!(
        "plan over a simulated transport: containers a node as in the column, {LINKS} links \
         each, --parallelism {parallelism}; each node answers connect, then read, after the delay"
    );
    println!("  ideal = waves x 2 x delay; read s: connect and read (with the early planning); cpu s: this process's CPU (all threads) in that phase; plan: the rest of the plan + its text; RSS in: the captured outputs and model before the plan; peak: VmHWM");
    let widths = [6, 6, 9, 8, 6, 8, 8, 11, 8, 11, 8, 8, 10, 8];
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("{}", line(&COLUMNS));
    let exe = std::env::current_exe().expect("own path");
    for &ms in &delays {
        for &n in &sizes {
            let per_node = given.unwrap_or_else(|| (10_000 / n.max(1)).clamp(1, 10));
            let out = Command::new(&exe)
                .stderr(std::process::Stdio::piped())
                .env(CHILD, format!("{n},{ms}"))
                .env("GEARTOPO_BENCH_CONTAINERS", per_node.to_string())
                .output()
                .expect("runs the child");
            if !out.status.success() {
                eprintln!(
                    "{n} nodes, {ms} ms: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let cells: Vec<&str> = text.trim().split('\t').collect();
            println!("{}", line(&cells));
        }
    }
}
