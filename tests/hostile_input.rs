//! Bounded work on any input (issue 15): a topology file under 64 KB is
//! validated or refused, report included, with memory and time bounded, whatever
//! its shape. Memory is measured with this binary's own counting allocator; time
//! is checked as growth (a 4x bigger input may cost at most ~10x, where a
//! quadratic step would cost 16x), since tests run in debug builds. The release
//! figures are in BENCHMARKS.md (`bash bench/hostile.sh`).

use std::time::{Duration, Instant};

use geartopo::output::validate::ValidateDocument;
use proptest::prelude::*;

#[path = "support/counting.rs"]
mod counting;

const MAX_FILE: usize = 64 * 1024;
const MAX_PEAK: usize = 512 << 20;

struct Cost {
    peak: usize,
    time: Duration,
    /// The text report, or "" when the file is valid.
    report: String,
}

/// What `validate` and `validate --json` do with `text`: load, and render the
/// report both ways when the file is refused.
fn validate(text: &str) -> Cost {
    let ((report, time), peak) = counting::peak_while(|| {
        let start = Instant::now();
        let report = match geartopo::topology::load_source("hostile.toml", text.as_bytes().to_vec())
        {
            Ok(loaded) => {
                drop(loaded);
                String::new()
            }
            Err(invalid) => {
                let json =
                    serde_json::to_string(&ValidateDocument::invalid(&invalid, text.as_bytes()))
                        .unwrap();
                drop(json);
                invalid.render_with(true)
            }
        };
        (report, start.elapsed())
    });
    Cost { peak, time, report }
}

const HEAD: &str = "name = \"h\"\n[nodes.n]\naddress = \"198.18.0.1\"\n";

/// Views over replicated containers: today's out-of-memory file (2.7 KB).
fn views_of_replicas(views: usize) -> String {
    let mut s = HEAD.to_owned();
    for i in 0..8 {
        s += &format!(
            "[containers.c{i}]\nnode = \"n\"\nimage = \"b\"\nreplicas = 256\npublish = [{{ port = 80 }}]\n"
        );
    }
    for v in 0..views {
        s += &format!(
            "[views.v{v}]\nmembers = [\"c{}\"]\nsubnet = \"10.{v}.0.0/16\"\nports = [80]\n",
            v % 8
        );
    }
    s
}

/// One container with `n` links to containers that do not exist.
fn misspelt_targets(n: usize) -> String {
    let links: Vec<String> = (0..n).map(|i| format!("\"{}:b{i}:1\"", i + 1)).collect();
    format!(
        "{HEAD}[containers.a]\nnode = \"n\"\nimage = \"b\"\nlinks = [{}]\n",
        links.join(",")
    )
}

/// `n` containers, each linking to a misspelt name: every typo searches every name.
fn misspelt_everywhere(n: usize) -> String {
    let mut s = HEAD.to_owned();
    for i in 0..n {
        s += &format!("[containers.c{i}]\nnode = \"n\"\nimage = \"b\"\nlinks = [\"1:cx{i}:1\"]\n");
    }
    s
}

/// A valid chain of `n` containers, each linking to the next: the graph build.
fn chain(n: usize) -> String {
    let mut s = HEAD.to_owned();
    for i in 0..n {
        s += &format!(
            "[containers.c{i}]\nnode = \"n\"\nimage = \"b\"\npublish = [{{ port = 1 }}]\n"
        );
        if i + 1 < n {
            s += &format!("links = [\"1:c{}:1\"]\n", i + 1);
        }
    }
    s
}

/// One container with `n` misspelt keys: each an error.
fn unknown_keys(n: usize) -> String {
    let mut s = HEAD.to_owned() + "[containers.a]\nnode = \"n\"\nimage = \"b\"\n";
    for i in 0..n {
        s += &format!("imgae{i} = 1\n");
    }
    s
}

/// The chain of `n` closed into one start-order cycle: the report labels it.
fn cycle(n: usize) -> String {
    chain(n) + "links = [\"1:c0:1\"]\n"
}

/// One view whose `n` observers each see 256 members.
fn observers(n: usize) -> String {
    let mut s = HEAD.to_owned();
    s += "[containers.m]\nnode = \"n\"\nimage = \"b\"\nreplicas = 256\npublish = [{ port = 80 }, { port = 81 }]\n";
    let mut names = Vec::new();
    for i in 0..n {
        s += &format!("[containers.o{i}]\nnode = \"n\"\nimage = \"b\"\n");
        names.push(format!("\"o{i}\""));
    }
    s += &format!(
        "[views.v]\nmembers = [\"m\"]\nobservers = [{}]\nsubnet = \"10.0.0.0/16\"\nports = [80, 81]\n",
        names.join(",")
    );
    s
}

/// Many replicated containers: 256 replicas each.
fn replicas(n: usize) -> String {
    let mut s = HEAD.to_owned();
    for i in 0..n {
        s += &format!("[containers.r{i}]\nnode = \"n\"\nimage = \"b\"\nreplicas = 256\n");
    }
    s
}

fn check_bounded(what: &str, text: &str) -> Cost {
    assert!(text.len() < MAX_FILE, "{what}: {} bytes", text.len());
    let cost = validate(text);
    assert!(cost.peak < MAX_PEAK, "{what}: peak {} MB", cost.peak >> 20);
    // Generous: a debug build on a busy 2-core machine.
    assert!(
        cost.time < Duration::from_secs(30),
        "{what}: {:?}",
        cost.time
    );
    assert!(!cost.report.contains("panicked"), "{what}");
    cost
}

#[test]
fn hostile_files_under_64_kb_are_refused_in_bounded_memory_with_a_clear_error() {
    let cases: [(&str, String, &str); 4] = [
        // 2.7 KB that used to exhaust memory.
        (
            "views of 256 replicas",
            views_of_replicas(40),
            "links after replicas and views, more than 100000",
        ),
        (
            "observers of a 256-member view",
            observers(1000),
            "links after replicas and views, more than 100000",
        ),
        (
            "replicas",
            replicas(200),
            "more than 10000 containers (replicas counted)",
        ),
        (
            "5,000 misspelt link targets",
            misspelt_targets(4000),
            "more errors not shown",
        ),
    ];
    for (what, text, expected) in cases {
        let cost = check_bounded(what, &text);
        assert!(
            cost.report.contains(expected),
            "{what}: expected {expected:?} in the report"
        );
        // The report shows whole source lines: bounded by the number shown.
        assert!(
            cost.report.len() < 8 << 20,
            "{what}: {} bytes of report",
            cost.report.len()
        );
        // Nothing near the budget: these are refused before anything is expanded.
        assert!(cost.peak < 64 << 20, "{what}: peak {} MB", cost.peak >> 20);
    }
}

#[test]
fn a_view_of_more_than_256_members_is_refused_at_its_members() {
    let mut s = HEAD.to_owned();
    s += "[containers.a]\nnode = \"n\"\nimage = \"b\"\nreplicas = 200\npublish = [{ port = 80 }]\n";
    s += "[containers.b]\nnode = \"n\"\nimage = \"b\"\nreplicas = 100\npublish = [{ port = 80 }]\n";
    s += "[views.v]\nmembers = [\"a\", \"b\"]\nsubnet = \"10.0.0.0/16\"\nports = [80]\n";
    let report = validate(&s).report;
    assert!(
        report.contains("view `v` has 300 members, more than 256"),
        "{report}"
    );
}

/// Makes a file of one hostile shape and size.
type Shape = fn(usize) -> String;

/// Time of the cheapest of three runs.
fn best_time(text: &str) -> Duration {
    (0..3).map(|_| validate(text).time).min().unwrap()
}

#[test]
fn work_grows_near_linearly_with_the_input() {
    let shapes: [(&str, Shape, usize); 4] = [
        ("misspelt link targets", misspelt_targets, 1000),
        (
            "misspelt names in many containers",
            misspelt_everywhere,
            250,
        ),
        ("a chain of linked containers", chain, 180),
        // Each link of the cycle used to be a label of the report: seconds to render.
        ("a start-order cycle", cycle, 180),
    ];
    for (what, make, n) in shapes {
        let small = make(n);
        let big = make(4 * n);
        check_bounded(what, &big);
        let (t1, t4) = (best_time(&small), best_time(&big));
        let ratio = t4.as_secs_f64() / t1.as_secs_f64().max(1e-3);
        assert!(
            ratio < 10.0,
            "{what}: {n} took {t1:?}, {} took {t4:?} ({ratio:.1}x): worse than near-linear",
            4 * n
        );
    }
}

/// Each unknown key used to cost a deserialization of its whole entry (up to
/// 1000 rounds): 4,000 misspelt keys took seconds where as many valid ones take
/// milliseconds. Now every unknown key of a table goes in one round.
#[test]
fn misspelt_keys_cost_about_what_as_many_valid_keys_cost() {
    let n = 4000;
    let mut valid =
        HEAD.to_owned() + "[containers.a]\nnode = \"n\"\nimage = \"b\"\n[containers.a.env]\n";
    for i in 0..n {
        valid += &format!("K{i} = \"v\"\n");
    }
    let bad = unknown_keys(n);
    check_bounded("misspelt keys", &bad);
    let report = validate(&bad).report;
    assert!(
        report.contains("4000 errors"),
        "{}",
        &report[report.len().saturating_sub(300)..]
    );
    let (t_valid, t_bad) = (best_time(&valid), best_time(&bad));
    let ratio = t_bad.as_secs_f64() / t_valid.as_secs_f64().max(1e-3);
    assert!(
        ratio < 10.0,
        "{n} misspelt keys took {t_bad:?}, {n} valid ones {t_valid:?} ({ratio:.1}x)"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any mix of replicas, views, observers and links under 64 KB stays bounded.
    #[test]
    fn any_mix_of_sizes_is_bounded(
        containers in 1usize..120,
        replicas in 1usize..=256,
        views in 0usize..40,
        members in 1usize..8,
        links in 0usize..60,
        ports in 1usize..8,
    ) {
        let mut s = HEAD.to_owned();
        let port_list: Vec<String> = (1..=ports).map(|p| p.to_string()).collect();
        let publish: Vec<String> = (1..=ports).map(|p| format!("{{ port = {p} }}")).collect();
        for i in 0..containers {
            s += &format!(
                "[containers.c{i}]\nnode = \"n\"\nimage = \"b\"\nreplicas = {replicas}\npublish = [{}]\n",
                publish.join(",")
            );
            let l: Vec<String> = (0..links).map(|j| format!("\"{}:c{}x-1:1\"", j + 1, (i + j) % containers)).collect();
            s += &format!("links = [{}]\n", l.join(","));
            if s.len() > MAX_FILE / 2 {
                break;
            }
        }
        for v in 0..views {
            let m: Vec<String> = (0..members).map(|j| format!("\"c{}\"", (v + j) % containers)).collect();
            s += &format!(
                "[views.v{v}]\nmembers = [{}]\nsubnet = \"10.{v}.0.0/16\"\nports = [{}]\n",
                m.join(","),
                port_list.join(",")
            );
        }
        prop_assume!(s.len() < MAX_FILE);
        check_bounded("mix", &s);
    }
}
