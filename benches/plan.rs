//! Benchmark of planning alone (issue 8, item 4): `plan::plan` in memory on captured
//! state, for 100, 1,000 and 10,000 containers with 10 links each, against the state
//! a successful apply leaves (the no-op plan every `plan` and re-`apply` computes)
//! and against empty nodes (the first apply). No I/O but /proc/self: each size runs
//! in a child process of its own, so its peak memory (VmHWM) is its own.
//!
//! Run: `cargo bench --bench plan` (optionally `-- 100 1000` for chosen sizes).
//! Profile: see `PROFILE` below.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use geartopo::plan::plan;
use geartopo::rules::render_rules;
use geartopo::topology::model::{
    Container, EnvValue, Link, LinkOrigin, LinkTarget, Node, NodeAddress, PortRange, Protocol,
    Publish, Runtime, Topology,
};

const LINKS: usize = 10;
const NODES: usize = 20;
const CHILD: &str = "GEARTOPO_BENCH_PLAN_CHILD";
/// Set to a size: make exactly one no-op plan of it, for
/// `valgrind --tool=callgrind --toggle-collect='geartopo::plan::plan'`.
const PROFILE: &str = "GEARTOPO_BENCH_PLAN_PROFILE";

/// `containers` containers on 20 nodes, each publishing 6379 on a host port left to
/// the plan to pick (then kept), each linking to the next 10 containers' 6379.
fn topology(containers: usize) -> Topology {
    let nodes: BTreeMap<String, Node> = (1..=NODES)
        .map(|i| {
            let name = format!("node{i:02}");
            let node = Node {
                name: name.clone(),
                address: NodeAddress::Remote(format!("198.18.0.{i}")),
                user: "root".into(),
                port: 22,
                identity: None,
                known_hosts: PathBuf::from("/root/.ssh/known_hosts"),
                runtime: Runtime::Podman,
                firewall: Default::default(),
                host_ports: PortRange {
                    first: 4000,
                    last: 60000,
                },
                ssh_host: None,
                sudo: false,
                openssh: None,
            };
            (name, node)
        })
        .collect();
    let name_of = |i: usize| format!("c{i:05}");
    let containers = (0..containers)
        .map(|i| {
            let name = name_of(i);
            let env = [
                ("GEARTOPO_TOPOLOGY", "bench"),
                ("GEARTOPO_CONTAINER", &name),
            ]
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    EnvValue {
                        value: v.to_string(),
                        secret: false,
                    },
                )
            })
            .collect();
            let links = (1..=LINKS)
                .map(|k| Link {
                    listen_ip: Ipv4Addr::LOCALHOST,
                    listen_port: 7000 + k as u16,
                    protocol: Protocol::Tcp,
                    target: LinkTarget::Container {
                        container: name_of((i + k) % containers),
                        port: 6379,
                    },
                    origin: LinkOrigin::Declared { index: k - 1 },
                })
                .collect();
            Container {
                name: name.clone(),
                declared: name.clone(),
                replica: None,
                node: format!("node{:02}", i % NODES + 1),
                image: "localhost/geartopo-busybox:latest".into(),
                command: vec!["sleep".into(), "1000000".into()],
                env,
                publish: vec![Publish {
                    port: 6379,
                    host_port: None,
                    protocol: Protocol::Tcp,
                    private: false,
                }],
                links,
                restart: Default::default(),
                health: None,
                max_unavailable: 1,
                volumes: vec![],
                options: Default::default(),
            }
        })
        .collect();
    Topology {
        name: "bench".into(),
        id: None,
        nodes,
        containers,
        views: vec![],
    }
}

use geartopo::testing::{applied_state as applied, empty_state};

/// The system allocator, counting live heap bytes and their peak, so that a step's
/// own peak is measured exactly (RSS cannot: freed pages stay with the process).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` once, returning its result and the most heap it held at once beyond
/// what was live before it, in MB.
fn heap_peak<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    (out, peak as f64 / 1e6)
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

/// The fastest of `runs` timed runs of `f`, and its last result.
fn fastest<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        best = best.min(start.elapsed());
        last = Some(out);
    }
    (best, last.expect("at least one run"))
}

/// Hands freed heap back to the system and sets the peak RSS (VmHWM) to the
/// current RSS, so that the next VmHWM read is what the next step needed, resident.
fn reset_peak() {
    // SAFETY: malloc_trim only releases free memory of the C allocator.
    unsafe { libc::malloc_trim(0) };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The columns, in the order a child prints them.
const COLUMNS: [&str; 10] = [
    "containers",
    "rules",
    "create s",
    "heap MB",
    "no-op s",
    "heap MB",
    "RSS MB",
    "fingerprint s",
    "render s",
    "no-op s/ctr",
];

/// One size, in this (child) process: prints one tab-separated result line.
fn child(containers: usize) {
    let runs = if containers >= 10_000 { 3 } else { 10 };
    let t = topology(containers);
    let empty = empty_state(&t);
    let (first, create_mb) = heap_peak(|| plan(&t, &empty, None).expect("plans"));
    assert_eq!(first.changes.len(), containers, "every container created");
    let state = applied(&t, &first);
    drop(first);
    let (create, _) = fastest(runs, || plan(&t, &empty, None).expect("plans"));

    // What a `geartopo plan` process holds at its peak: the model, the observed
    // state and the plan, resident.
    reset_peak();
    let (p, noop_mb) = heap_peak(|| plan(&t, &state, None).expect("plans"));
    let rss_mb = status_kb("VmHWM") as f64 / 1024.0;
    assert!(!p.has_changes(), "as applied: no changes");
    let rules: usize = p.desired.iter().map(|d| d.rules.len()).sum();
    drop(p);
    let (noop, p) = fastest(runs, || plan(&t, &state, None).expect("plans"));
    // Two parts of the no-op plan that grow with the data, not with lookups: the
    // fingerprint of the whole observed state (saved plans) and rendering every rule.
    let (fingerprint, _) = fastest(runs, || state.fingerprint());
    let (render, _) = fastest(runs, || {
        p.desired
            .iter()
            .map(|d| render_rules(&t.name, &d.container, &d.links).len())
            .sum::<usize>()
    });
    let row = [
        containers.to_string(),
        rules.to_string(),
        format!("{:.4}", create.as_secs_f64()),
        format!("{create_mb:.1}"),
        format!("{:.4}", noop.as_secs_f64()),
        format!("{noop_mb:.1}"),
        format!("{rss_mb:.1}"),
        format!("{:.4}", fingerprint.as_secs_f64()),
        format!("{:.4}", render.as_secs_f64()),
        format!("{:.2e}", noop.as_secs_f64() / containers as f64),
    ];
    println!("{}", row.join("\t"));
}

fn main() {
    if let Ok(n) = std::env::var(PROFILE) {
        let t = topology(n.parse().expect("a container count"));
        let first = plan(&t, &empty_state(&t), None).expect("plans");
        let state = applied(&t, &first);
        drop(first);
        assert!(!plan(&t, &state, None).expect("plans").has_changes());
        return;
    }
    if let Ok(n) = std::env::var(CHILD) {
        child(n.parse().expect("a container count"));
        return;
    }
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![100, 1_000, 10_000];
    }
    let exe = std::env::current_exe().expect("own path");
    println!(
        "plan::plan in memory: {LINKS} links per container, {NODES} nodes, fastest of several runs"
    );
    println!(
        "  create: against empty nodes (first apply); no-op: against the state an apply leaves"
    );
    println!("  heap MB: the plan's own peak heap; RSS MB: peak resident size of model + observed");
    println!("  state + no-op plan; fingerprint, render: parts of the no-op time");
    let widths = [10, 7, 9, 8, 9, 8, 7, 13, 9, 12];
    let line = |cells: &[&str]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:>w$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!("{}", line(&COLUMNS));
    let mut rows: Vec<(usize, f64)> = Vec::new();
    for n in sizes {
        let out = Command::new(&exe)
            .env(CHILD, n.to_string())
            .output()
            .expect("runs the child");
        if !out.status.success() {
            eprintln!("{n}: {}", String::from_utf8_lossy(&out.stderr));
            std::process::exit(1);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let cells: Vec<&str> = text.trim().split('\t').collect();
        println!("{}", line(&cells));
        rows.push((n, cells[4].parse().unwrap_or(f64::NAN)));
    }
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        if last.0 > first.0 {
            let growth = (last.1 / first.1) / (last.0 as f64 / first.0 as f64);
            println!(
                "no-op time per container grows {growth:.2}x from {} to {} containers (1.00: linear)",
                first.0, last.0
            );
        }
    }
}
