//! The nftables form against a real nft, in scratch network namespaces of the
//! test's own (`gt-nfttest-<pid>-<n>`, removed in `Drop`, also when a test
//! fails); nothing touches the root namespace: the veth pair of the traffic test
//! is created inside one scratch namespace with its peer in the other.
//!
//! Needs root, nft, iproute2, iptables-save and socat. Without them: skipped with
//! a reason, except under CI (`CI` set), where it fails.
//! `GEARTOPO_BLESS=1` rewrites tests/golden/nft/*.list.json from what nft lists.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use geartopo::nft::read::parse_list;
use geartopo::nft::{desired, render_apply, DELETE_DOCUMENT};
use geartopo::rules::ResolvedLink;
use geartopo::topology::model::Protocol;

mod nft_cases;
use nft_cases::cases;

static NAMESPACES: AtomicUsize = AtomicUsize::new(0);

/// A scratch network namespace, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!(
            "gt-nfttest-{}-{}",
            std::process::id(),
            NAMESPACES.fetch_add(1, Ordering::SeqCst)
        );
        check(&run("ip", &["netns", "add", &name], None), "ip netns add");
        let ns = Netns(name);
        ns.ok(&["ip", "link", "set", "lo", "up"], None);
        ns
    }

    /// `argv` run inside the namespace, `stdin` fed to it.
    fn exec(&self, argv: &[&str], stdin: Option<&str>) -> Output {
        let mut args = vec!["netns", "exec", &self.0];
        args.extend_from_slice(argv);
        run("ip", &args, stdin)
    }

    /// Like `exec`, and its stdout, failing the test when it fails.
    fn ok(&self, argv: &[&str], stdin: Option<&str>) -> String {
        let out = self.exec(argv, stdin);
        check(&out, &argv.join(" "));
        String::from_utf8(out.stdout).unwrap()
    }

    fn nft_apply(&self, doc: &str) {
        self.ok(&["nft", "-f", "-"], Some(doc));
    }

    fn list_json(&self) -> String {
        self.ok(&["nft", "-j", "list", "table", "ip", "geartopo"], None)
    }

    /// iptables-save without its two time-stamped comment lines.
    fn iptables_save(&self) -> String {
        self.ok(&["iptables-save"], None)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect()
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

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root".to_string());
    }
    for tool in ["nft", "ip", "iptables-save", "socat"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        if !found {
            missing.push(tool.to_string());
        }
    }
    missing
}

fn prerequisites() -> bool {
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "CI is set but the nft tests cannot run, missing: {}",
            missing.join(", ")
        );
    }
    let _ = writeln!(
        std::io::stderr(),
        "skipping real-nft test, missing: {}",
        missing.join(", ")
    );
    false
}

const FOREIGN: &str = "table ip other {
\tchain out {
\t\ttype filter hook output priority 10; policy accept;
\t\tip daddr 198.18.9.9 tcp dport 9 accept comment \"not geartopo's\"
\t}
}
";

#[test]
fn applied_twice_the_table_reads_back_as_rendered_and_nothing_else_changes() {
    if !prerequisites() {
        return;
    }
    let ns = Netns::new();
    ns.nft_apply(FOREIGN);
    ns.ok(
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-d",
            "198.18.9.8/32",
            "-j",
            "ACCEPT",
        ],
        None,
    );
    let foreign_before = ns.ok(&["nft", "list", "table", "ip", "other"], None);
    let iptables_before = ns.iptables_save();
    assert!(iptables_before.contains("-A OUTPUT -d 198.18.9.8/32 -j ACCEPT"));

    for case in cases() {
        let doc = render_apply(case.topology, case.container, &case.links);
        let want = desired(case.topology, case.container, &case.links);
        // Twice: the second run of the same document is a no-op replacement.
        ns.nft_apply(&doc);
        let first = ns.list_json();
        ns.nft_apply(&doc);
        let json = ns.list_json();
        let read = parse_list(&json).unwrap().expect("the table is listed");
        assert_eq!(read, want, "{}", case.name);
        assert_eq!(parse_list(&first).unwrap(), Some(want.clone()));
        assert!(read.intact());
        if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/nft/{}.list.json", case.name));
            std::fs::write(path, &json).unwrap();
        }
        // iptables sees its own tables only: nothing of geartopo's.
        let save = ns.iptables_save();
        assert_eq!(save, iptables_before, "{}", case.name);
        assert!(!save.contains("geartopo"));
        assert_eq!(
            ns.ok(&["nft", "list", "table", "ip", "other"], None),
            foreign_before
        );
    }

    // Removal takes the table and only it, whether or not it is there.
    ns.nft_apply(DELETE_DOCUMENT);
    ns.nft_apply(DELETE_DOCUMENT);
    let tables = ns.ok(&["nft", "list", "tables"], None);
    assert!(!tables.contains("geartopo"), "{tables}");
    assert!(!ns
        .exec(&["nft", "-j", "list", "table", "ip", "geartopo"], None)
        .status
        .success());
    assert_eq!(
        ns.ok(&["nft", "list", "table", "ip", "other"], None),
        foreign_before
    );
    assert_eq!(ns.iptables_save(), iptables_before);
}

#[test]
fn a_rule_deleted_by_hand_is_drift_and_applying_again_repairs_it() {
    if !prerequisites() {
        return;
    }
    let ns = Netns::new();
    let case = &cases()[0];
    let want = desired(case.topology, case.container, &case.links);
    let doc = render_apply(case.topology, case.container, &case.links);
    ns.nft_apply(&doc);

    // The first DNAT's handle, from the listing.
    let json: serde_json::Value = serde_json::from_str(&ns.list_json()).unwrap();
    let handle = json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| {
            let rule = i.get("rule")?;
            (rule["chain"] == "output").then(|| rule["handle"].to_string())
        })
        .unwrap();
    ns.ok(
        &[
            "nft", "delete", "rule", "ip", "geartopo", "output", "handle", &handle,
        ],
        None,
    );
    let drifted = parse_list(&ns.list_json()).unwrap().unwrap();
    assert_ne!(drifted, want);
    assert!(!drifted.intact());
    assert_eq!(
        drifted.chains["output"].rules.len(),
        want.chains["output"].rules.len() - 1
    );

    // A policy changed by hand is drift too.
    ns.nft_apply(&doc);
    ns.ok(
        &[
            "nft",
            "add",
            "chain",
            "ip",
            "geartopo",
            "input",
            "{ policy drop ; }",
        ],
        None,
    );
    let drifted = parse_list(&ns.list_json()).unwrap().unwrap();
    assert_ne!(drifted, want);

    // The table deleted by hand reads as absent.
    ns.ok(&["nft", "delete", "table", "ip", "geartopo"], None);
    assert!(!ns
        .exec(&["nft", "-j", "list", "table", "ip", "geartopo"], None)
        .status
        .success());

    ns.nft_apply(&doc);
    assert_eq!(parse_list(&ns.list_json()).unwrap(), Some(want));
}

/// A server in its own namespace, killed (by its pid) on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One line read from `host:port` inside `ns`, or the client's error.
fn fetch(ns: &Netns, addr: &str) -> Result<String, String> {
    let out = ns.exec(
        &[
            "socat",
            "-T",
            "3",
            "-",
            &format!("TCP:{addr},connect-timeout=3"),
        ],
        Some(""),
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[test]
fn a_link_carries_real_tcp_from_127_0_0_1_to_the_other_side() {
    if !prerequisites() {
        return;
    }
    // `client` plays the container, `server` the node the link leads to.
    let client = Netns::new();
    let server = Netns::new();
    let (a, b) = (
        format!("gtna{}", std::process::id() % 100_000),
        format!("gtnb{}", std::process::id() % 100_000),
    );
    client.ok(
        &[
            "ip", "link", "add", &a, "type", "veth", "peer", "name", &b, "netns", &server.0,
        ],
        None,
    );
    client.ok(&["ip", "addr", "add", "198.18.200.1/30", "dev", &a], None);
    client.ok(&["ip", "link", "set", &a, "up"], None);
    server.ok(&["ip", "addr", "add", "198.18.200.2/30", "dev", &b], None);
    server.ok(&["ip", "link", "set", &b, "up"], None);
    client.ok(
        &["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
        None,
    );

    let _listener = Server(
        Command::new("ip")
            .args(["netns", "exec", &server.0, "socat"])
            .args([
                "TCP-LISTEN:50000,bind=198.18.200.2,reuseaddr,fork",
                "SYSTEM:echo pong",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The server answers on its own address before any rule exists...
    let deadline = Instant::now() + Duration::from_secs(5);
    while fetch(&client, "198.18.200.2:50000").is_err() {
        assert!(Instant::now() < deadline, "the server never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    // ...and 127.0.0.1:6379 leads nowhere.
    assert!(fetch(&client, "127.0.0.1:6379").is_err());

    let link = ResolvedLink {
        listen_ip: "127.0.0.1".parse().unwrap(),
        listen_port: 6379,
        protocol: Protocol::Tcp,
        dest_ip: "198.18.200.2".parse().unwrap(),
        dest_port: 50000,
        describe: "server:6379".into(),
    };
    client.nft_apply(&render_apply("nfttest", "client", &[link]));
    // Through the DNAT, masqueraded (the server could not answer 127.0.0.1),
    // with the route_localnet guard in place.
    assert_eq!(fetch(&client, "127.0.0.1:6379"), Ok("pong".to_string()));

    client.nft_apply(DELETE_DOCUMENT);
    assert!(fetch(&client, "127.0.0.1:6379").is_err());
}

/// A container's link to its own view address (DNAT to 127.0.0.1, as a member of
/// a same-view cluster has) passes the route_localnet guard: the guard's
/// `ct status ! dnat` lets a DNAT'd connection through, where `ct status != dnat`
/// (the whole status word compared) dropped it.
#[test]
fn a_link_to_the_container_itself_passes_the_guard() {
    if !prerequisites() {
        return;
    }
    let ns = Netns::new();
    let (a, b) = (
        format!("gtsa{}", std::process::id() % 100_000),
        format!("gtsb{}", std::process::id() % 100_000),
    );
    // An address and a default route, as a container has (the view address is
    // routed out before the DNAT reroutes it to lo).
    ns.ok(
        &["ip", "link", "add", &a, "type", "veth", "peer", "name", &b],
        None,
    );
    ns.ok(&["ip", "addr", "add", "198.18.201.1/30", "dev", &a], None);
    ns.ok(&["ip", "link", "set", &a, "up"], None);
    ns.ok(&["ip", "link", "set", &b, "up"], None);
    ns.ok(
        &[
            "ip",
            "route",
            "add",
            "default",
            "via",
            "198.18.201.2",
            "dev",
            &a,
        ],
        None,
    );
    ns.ok(
        &["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
        None,
    );
    let _listener = Server(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "socat"])
            .args([
                "TCP-LISTEN:2379,bind=127.0.0.1,reuseaddr,fork",
                "SYSTEM:echo self",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while fetch(&ns, "127.0.0.1:2379").is_err() {
        assert!(Instant::now() < deadline, "the server never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let link = ResolvedLink {
        listen_ip: "192.168.1.1".parse().unwrap(),
        listen_port: 2379,
        protocol: Protocol::Tcp,
        dest_ip: "127.0.0.1".parse().unwrap(),
        dest_port: 2379,
        describe: "etcd-1:2379 (itself)".into(),
    };
    ns.nft_apply(&render_apply("nfttest", "etcd-1", &[link]));
    assert_eq!(fetch(&ns, "192.168.1.1:2379"), Ok("self".to_string()));
}
