//! Benchmark of the two firewall backends side by side (issue 17): one container
//! namespace given N links (10, 100, 1,000, 10,000) by geartopo's nftables
//! document (`nft -f -`: declare, delete and recreate `table ip geartopo`, one
//! transaction) against its iptables document (`iptables-restore --noflush` of the
//! owned chains), then the same document applied again over itself (what every
//! later apply of a changed link does), and the rules read back as observe reads
//! them (`nft -j list table ip geartopo`, against `iptables-save -t nat` and
//! `-t filter`; the time is the programs', each read is then parsed, by
//! `nft::read` and `rules::parse_owned`, and checked).
//!
//! Every trial runs in a network namespace of its own (`gtbench-nft-PID-N`, made
//! with `ip netns add` and deleted when the trial ends, also on a panic): it
//! starts empty, never touches the machine's namespace, and leaves nothing. Each
//! read is checked: the table read equals the one rendered, the chains read are
//! intact with every rule. Needs root, nft, iptables and iproute2; skips otherwise.
//!
//! Run: `cargo bench --bench nft` (optionally `-- 10 100` for chosen sizes), or
//! `bench/run.sh nft`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use geartopo::nft::read::parse_list;
use geartopo::nft::{desired, render_document};
use geartopo::rules::{parse_owned, render_restore, render_rules, ResolvedLink};
use geartopo::topology::model::Protocol;

/// `n` links of one container, each to its own destination (a DNAT and a
/// masquerade each), as in the rules bench.
fn links(n: usize) -> Vec<ResolvedLink> {
    (0..n)
        .map(|i| ResolvedLink {
            listen_ip: Ipv4Addr::new(127, 0, 0, 1 + (i / 60000) as u8),
            listen_port: 1000 + (i % 60000) as u16,
            protocol: Protocol::Tcp,
            dest_ip: Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, 1 + (i % 250) as u8),
            dest_port: 50000,
            describe: format!("c{i:05}:6379"),
        })
        .collect()
}

static TRIALS: AtomicUsize = AtomicUsize::new(0);

/// A scratch network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "gtbench-nft-{}-{}",
            std::process::id(),
            TRIALS.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("ip runs");
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        Netns(name)
    }

    /// `argv` in the namespace with `stdin`; its output, failing the bench if it fails.
    fn run(&self, argv: &[&str], stdin: &str) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writes stdin");
        let out = child.wait_with_output().expect("waits");
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn timed(&self, argv: &[&str], stdin: &str) -> (Duration, Output) {
        let start = Instant::now();
        let out = self.run(argv, stdin);
        (start.elapsed(), out)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// (apply, apply again, read) in seconds, for one backend and size: one trial.
fn trial(backend: &str, n: usize) -> [f64; 3] {
    let (topology, container) = ("bench", "app1");
    let links = links(n);
    let ns = Netns::new();
    match backend {
        "nft" => {
            let table = desired(topology, container, &links);
            let doc = render_document(&table);
            let (apply, _) = ns.timed(&["nft", "-f", "-"], &doc);
            let (again, _) = ns.timed(&["nft", "-f", "-"], &doc);
            let (read_time, out) = ns.timed(&["nft", "-j", "list", "table", "ip", "geartopo"], "");
            let read = parse_list(&String::from_utf8(out.stdout).expect("UTF-8"))
                .expect("reads")
                .expect("the table is there");
            assert_eq!(read, table, "the table read is the one applied");
            assert!(read.intact());
            [apply, again, read_time].map(|d| d.as_secs_f64())
        }
        _ => {
            let rules = render_rules(topology, container, &links);
            let doc = render_restore(topology, container, &rules);
            let (apply, _) = ns.timed(&["iptables-restore", "--noflush"], &doc);
            let (again, _) = ns.timed(&["iptables-restore", "--noflush"], &doc);
            // What the observe script runs in a namespace: both tables.
            let start = Instant::now();
            let nat = ns.run(&["iptables-save", "-t", "nat"], "");
            let filter = ns.run(&["iptables-save", "-t", "filter"], "");
            let read_time = start.elapsed();
            let save = String::from_utf8(nat.stdout).expect("UTF-8")
                + &String::from_utf8(filter.stdout).expect("UTF-8");
            let owned = parse_owned(&save);
            assert_eq!(owned.rules, rules, "the rules read are the ones applied");
            assert!(owned.marker.is_some());
            [apply, again, read_time].map(|d| d.as_secs_f64())
        }
    }
}

fn available(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$0\"", program])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1000, 10000]
    } else {
        sizes
    };
    // SAFETY: a plain getter.
    if unsafe { libc::geteuid() } != 0
        || !["nft", "iptables-restore", "ip"]
            .iter()
            .all(|p| available(p))
    {
        eprintln!("bench nft: skipped (needs root, nft, iptables-restore and ip)");
        return;
    }
    println!("| links | rules | nft -f s | iptables-restore s | restore / nft | nft -f again s | restore again s | nft -j read s | iptables-save read s | save / nft read |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        // The fastest of a few trials (one at 10,000: each takes seconds).
        let tries = if n >= 10000 { 1 } else { 3 };
        let best = |backend: &str| {
            let mut best = [f64::MAX; 3];
            for _ in 0..tries {
                for (b, t) in best.iter_mut().zip(trial(backend, n)) {
                    *b = b.min(t);
                }
            }
            best
        };
        let nft = best("nft");
        let ipt = best("iptables");
        println!(
            "| {n} | {} | {:.4} | {:.4} | {:.1}x | {:.4} | {:.4} | {:.4} | {:.4} | {:.1}x |",
            2 * n + 2,
            nft[0],
            ipt[0],
            ipt[0] / nft[0],
            nft[1],
            ipt[1],
            nft[2],
            ipt[2],
            ipt[2] / nft[2],
        );
    }
}
