//! Benchmark of pushing one container's link rules (issue 8, item 2): geartopo's
//! single `iptables-restore --noflush` against one `iptables` process per rule, for
//! 10, 100 and 1000 links. Every trial runs in a child process that first moves
//! into a fresh network namespace of its own (`unshare(CLONE_NEWNET)`), so it
//! starts from an empty nat table, never touches the machine's namespace, and
//! leaves nothing behind when it exits. Needs root and iptables; skips otherwise.
//!
//! Run: `cargo bench --bench rules` (optionally `-- 10 100` for chosen sizes).
//!
//! Ways compared, all ending in the same owned chains (checked after each trial):
//! - `geartopo`: geartopo's rules step as a node runs it (`NodeOp::Rules` rendered:
//!   one `sh`, the two sysctls, one restore, the jump checks), with a stand-in
//!   `podman` that names this namespace;
//! - `restore`: the restore document alone, one `iptables-restore --noflush`;
//! - `crate`: the `iptables` crate (new_chain, then append per rule): one process
//!   per rule, the way the crate and netavark's old driver work;
//! - `check+add`: `-C` then `-A` per rule, as Ansible's iptables module does
//!   (one module run per rule adds Python on top of this; see bench/run.sh).

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use geartopo::node::script::{render, SHELL};
use geartopo::node::{NodeOp, NodeProfile, OwnedRules};
use geartopo::rules::{
    jump_rule, parse_owned, render_restore, render_rules, table_of, ResolvedLink, CHAINS,
};
use geartopo::topology::model::{Protocol, Runtime};

const CHILD: &str = "GEARTOPO_BENCH_RULES_CHILD";
const WAYS: [&str; 4] = ["geartopo", "restore", "crate", "check+add"];

/// `n` links of one container, each to its own destination (a DNAT and a
/// MASQUERADE each, as links to n different remote ports make).
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

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_with_stdin(cmd: &mut Command, stdin: &str) {
    let mut child = cmd
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
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rule without its `-A CHAIN ` head, and the chain.
fn split_rule(rule: &str) -> (&str, &str) {
    let rest = rule.strip_prefix("-A ").expect("an append rule");
    rest.split_once(' ').expect("chain and rule")
}

/// One trial, in this (child) process, in a fresh network namespace: prints seconds.
fn child(way: &str, n: usize) {
    // SAFETY: plain syscall; from here on this process and its children are in a
    // namespace of their own, which goes away with them.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    }
    let (topology, container) = ("bench", "app1");
    let rules = render_rules(topology, container, &links(n));
    let restore = render_restore(topology, container, &rules);
    let marker = restore
        .lines()
        .rev()
        .nth(1)
        .expect("the marker line")
        .to_string();
    let start = Instant::now();
    match way {
        "geartopo" => {
            // The container: a process in a fresh namespace of its own, not this
            // one (the rules script refuses to write into the namespace it runs
            // in, as it would the node's own). A stand-in runtime reports its pid,
            // so `nsenter -t PID -n` enters that namespace.
            let mut stand_in = Command::new("unshare")
                .args(["--net", "sleep", "600"])
                .spawn()
                .expect("spawns the container stand-in");
            let pid = stand_in.id();
            let mine = std::fs::read_link("/proc/self/ns/net").expect("own namespace");
            while std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() == Some(mine.clone()) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let podman = dir.path().join("podman");
            std::fs::write(&podman, format!("#!/bin/sh\necho {pid}\n"))
                .expect("writes the stand-in");
            run(Command::new("chmod").arg("+x").arg(&podman));
            let path = format!(
                "{}:{}",
                dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let op = NodeOp::Rules {
                container: "bench-app1".into(),
                rules: OwnedRules {
                    topology: topology.into(),
                    container: container.into(),
                    rules: rules.clone(),
                    // The restore alone, as measured before durable links.
                    file: None,
                    firewall: Default::default(),
                    clear_other: false,
                },
            };
            let script = render(&NodeProfile::for_runtime(Runtime::Podman), &[op]);
            let (sh, args) = SHELL.split_once(' ').expect("sh -s");
            // Timing starts after the stand-in is written: the script is what a node runs.
            let start = Instant::now();
            run_with_stdin(Command::new(sh).arg(args).env("PATH", path), &script);
            let elapsed = start.elapsed();
            report_from(way, n, elapsed, &rules, Some(pid));
            let _ = stand_in.kill();
            let _ = stand_in.wait();
            return;
        }
        "restore" => run_with_stdin(Command::new("iptables-restore").arg("--noflush"), &restore),
        "crate" => {
            let ipt = iptables::new(false).expect("iptables");
            for (table, _, owned) in CHAINS {
                ipt.new_chain(table, owned).expect("new chain");
            }
            for rule in rules.iter().chain([&marker]) {
                let (chain, spec) = split_rule(rule);
                ipt.append(table_of(chain), chain, spec).expect("append");
            }
            for (table, builtin, owned) in CHAINS {
                ipt.append(table, builtin, &format!("-j {owned}"))
                    .expect("jump");
            }
        }
        "check+add" => {
            let ipt = iptables::new(false).expect("iptables");
            for (table, _, owned) in CHAINS {
                ipt.new_chain(table, owned).expect("new chain");
            }
            let jumps: Vec<(&str, String)> = CHAINS
                .iter()
                .map(|(t, b, o)| (*t, jump_rule(b, o)))
                .collect();
            let owned = rules
                .iter()
                .chain([&marker])
                .map(|r| (table_of(split_rule(r).0), r.clone()));
            for (table, rule) in owned.chain(jumps) {
                let (chain, spec) = split_rule(&rule);
                if !ipt.exists(table, chain, spec).expect("check") {
                    ipt.append(table, chain, spec).expect("append");
                }
            }
        }
        other => panic!("unknown way {other}"),
    }
    let took = start.elapsed();
    if way == "restore" {
        // The restore alone adds no jumps; the end state is checked without them.
        let save = save_nat_of(None);
        assert_eq!(parse_owned(&save).rules, rules, "restore: rules in place");
        println!("{}", took.as_secs_f64());
        return;
    }
    report(way, n, took, &rules);
}

/// The nat and filter tables, as the observe script reads them.
/// The owned tables of this namespace, or of the namespace of `pid`.
fn save_nat_of(pid: Option<u32>) -> String {
    ["nat", "filter"]
        .iter()
        .map(|t| {
            let mut cmd = match pid {
                Some(pid) => {
                    let mut c = Command::new("nsenter");
                    c.args(["-t", &pid.to_string(), "-n", "iptables-save"]);
                    c
                }
                None => Command::new("iptables-save"),
            };
            let out = cmd.args(["-t", t]).output().expect("iptables-save");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// Checks the owned chains are exactly what geartopo would have written, then prints.
fn report(way: &str, n: usize, took: Duration, rules: &[String]) {
    report_from(way, n, took, rules, None)
}

fn report_from(way: &str, n: usize, took: Duration, rules: &[String], pid: Option<u32>) {
    let owned = parse_owned(&save_nat_of(pid));
    assert_eq!(owned.rules, rules, "{way} {n}: rules in place");
    assert!(
        owned.intact(),
        "{way} {n}: chains, marker and jumps in place"
    );
    println!("{}", took.as_secs_f64());
}

fn fastest(way: &str, n: usize, exe: &std::path::Path) -> f64 {
    // One process per rule costs seconds at 1000 links: fewer repeats there.
    let repeats = match (way, n) {
        ("crate" | "check+add", 1000..) => 1,
        ("crate" | "check+add", 100..) => 3,
        _ => 5,
    };
    (0..repeats)
        .map(|_| {
            let out = Command::new(exe)
                .env(CHILD, format!("{way} {n}"))
                .output()
                .expect("runs the child");
            if !out.status.success() {
                eprintln!("{way} {n}: {}", String::from_utf8_lossy(&out.stderr));
                std::process::exit(1);
            }
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .expect("seconds")
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        let (way, n) = spec.split_once(' ').expect("way and size");
        child(way, n.parse().expect("a size"));
        return;
    }
    // SAFETY: plain syscall.
    let root = unsafe { libc::geteuid() } == 0;
    let have = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !root || !have("iptables") || !have("iptables-restore") {
        println!("rules bench skipped: needs root, iptables and iptables-restore");
        return;
    }
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10, 100, 1000];
    }
    let exe = std::env::current_exe().expect("own path");
    println!(
        "one container's link rules, each trial in a fresh network namespace (fastest of several)"
    );
    println!("  geartopo: its rules step as a node runs it; restore: the iptables-restore alone;");
    println!("  crate: iptables crate, a process per rule; check+add: -C then -A per rule (Ansible's module)");
    println!(
        "{:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "links",
        "rules",
        "geartopo s",
        "restore s",
        "crate s",
        "check+add s",
        "crate/gt",
        "check+add/gt"
    );
    for n in sizes {
        let t: Vec<f64> = WAYS.iter().map(|w| fastest(w, n, &exe)).collect();
        println!(
            "{:>6} {:>6} {:>10.4} {:>10.4} {:>10.3} {:>10.3} {:>11.1}x {:>11.1}x",
            n,
            2 * n + 1,
            t[0],
            t[1],
            t[2],
            t[3],
            t[2] / t[0],
            t[3] / t[0]
        );
    }
}
