//! `geartopo import` on geard deployment descriptors: every file in
//! tests/fixtures/geard (descriptors written for this project in geard's format) is
//! imported, the topology is validated, and what each container sees (node,
//! published ports, every address and where it leads) is compared with what
//! geard's `gear deploy` rules give for that descriptor, worked out by hand below
//! (not copied from the importer's output). geard's own example descriptors are an
//! extra check when they sit beside the repository (see [`geard_originals`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use geartopo::import::{import, Imported, NodeArg, Options, Severity};
use geartopo::topology::model::{LinkTarget, Protocol};
use geartopo::topology::Topology;
use toml::Value;

/// The project's own descriptors, in the repository.
fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/geard")
}

/// geard's own example descriptors (openshift/geard's deployment/fixtures), when a
/// copy sits beside the repository at ../shared/geard-fixtures (as in CI and the
/// project's worktrees). They are an extra check only: every rule they exercise is
/// also covered by [`fixtures`] and the inline descriptors below, so a fresh clone
/// with nothing beside it passes, and the tests that read them say they skipped.
fn geard_originals() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/geard-fixtures");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is not there (geard's own descriptors, an extra check only)",
            dir.display()
        );
        None
    }
}

/// The `.json` files directly in `dir`, sorted.
fn json_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no descriptors in {}", dir.display());
    files
}

fn nodes(spec: &[&str]) -> Vec<NodeArg> {
    spec.iter().map(|s| s.parse().unwrap()).collect()
}

fn run(file_name: &str, json: &str, node_spec: &[&str]) -> Result<Imported, Vec<String>> {
    let options = Options {
        file_name: file_name.into(),
        name: None,
        nodes: nodes(node_spec),
    };
    import(json.as_bytes(), &options)
        .map_err(|f| f.diagnostics.iter().map(|d| d.to_string()).collect())
}

fn run_fixture(dir: &Path, file: &str, node_spec: &[&str]) -> Imported {
    let path = dir.join(file);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    run(file, &json, node_spec).unwrap_or_else(|e| panic!("{file} did not import: {e:#?}"))
}

// ---------------------------------------------------------------------------
// Validation: the real parser, and its model must mean what the TOML says.
// ---------------------------------------------------------------------------

/// Parses `toml` with geartopo's own validator; on failure, shows its full report.
fn validate(toml: &str) -> Topology {
    geartopo::topology::parse("import.toml", toml.as_bytes()).unwrap_or_else(|e| {
        panic!(
            "topology does not validate:\n{}\n---\n{toml}",
            e.render_with(true)
        )
    })
}

/// The topology validates, and the validated model places, publishes and links
/// every container as [`effective`] reads the TOML (which the hand-worked
/// expectations are compared with). The model drops a replica's link to itself at
/// 127.0.0.1 on its own port (no rule needed) and leads other links to itself back
/// inside it (loopback).
fn assert_validates(toml: &str) {
    let model = validate(toml);
    let from_toml = effective(toml).unwrap();
    let from_model: BTreeMap<String, Seen> = model
        .containers
        .iter()
        .map(|c| {
            let links = c
                .links
                .iter()
                .map(|l| {
                    assert_eq!(l.protocol, Protocol::Tcp, "geard links are tcp");
                    let (to, port) = match &l.target {
                        LinkTarget::Container { container, port } => (container.clone(), *port),
                        LinkTarget::Loopback { port } => (c.name.clone(), *port),
                        LinkTarget::Raw { host, port } => (host.clone(), *port),
                    };
                    (SocketAddrV4::new(l.listen_ip, l.listen_port), to, port)
                })
                .collect();
            let seen = Seen {
                node: c.node.clone(),
                image: c.image.clone(),
                publish: c.publish.iter().map(|p| (p.port, p.host_port)).collect(),
                links,
            };
            (c.name.clone(), seen)
        })
        .collect();
    let without_identity: BTreeMap<String, Seen> = from_toml
        .into_iter()
        .map(|(name, mut seen)| {
            seen.links.retain(|(listen, to, port)| {
                *to != name || *listen != SocketAddrV4::new(Ipv4Addr::LOCALHOST, *port)
            });
            (name, seen)
        })
        .collect();
    assert_eq!(
        from_model, without_identity,
        "the validated model differs from the TOML's meaning:\n{toml}"
    );
}

// ---------------------------------------------------------------------------
// What each concrete container sees, read from the TOML alone: replicas expanded
// (replica k on nodes[(k-1) % len]), views expanded (member i at subnet + i).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    node: String,
    image: String,
    /// (container port, host port or None = picked)
    publish: Vec<(u16, Option<u16>)>,
    /// (listen address, concrete target, target port)
    links: BTreeSet<(SocketAddrV4, String, u16)>,
}

fn effective(toml: &str) -> Result<BTreeMap<String, Seen>, String> {
    let doc: toml::Table = toml.parse().map_err(|e| format!("{e}"))?;
    let empty = toml::Table::new();
    let containers = doc
        .get("containers")
        .and_then(Value::as_table)
        .unwrap_or(&empty);
    let mut out = BTreeMap::new();
    let mut expands: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, v) in containers {
        let t = v.as_table().unwrap();
        let publish: Vec<(u16, Option<u16>)> = t
            .get("publish")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|p| {
                        let p = p.as_table().unwrap();
                        (
                            p["port"].as_integer().unwrap() as u16,
                            p.get("host_port").map(|h| h.as_integer().unwrap() as u16),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut links = BTreeSet::new();
        for l in t
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let l = l
                .as_table()
                .ok_or("geard string links are not expected from import")?;
            let (to, port) = l["to"].as_str().unwrap().rsplit_once(':').unwrap();
            let port: u16 = port.parse().unwrap();
            let listen = match l.get("listen") {
                Some(a) => a
                    .as_str()
                    .unwrap()
                    .parse()
                    .map_err(|e| format!("listen: {e}"))?,
                None => SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
            };
            if l.get("protocol").is_some_and(|p| p.as_str() != Some("tcp")) {
                return Err("geard links are tcp".into());
            }
            links.insert((listen, to.to_string(), port));
        }
        let image = t["image"].as_str().unwrap().to_string();
        let mut seen = |concrete: String, node: &str| {
            out.insert(
                concrete,
                Seen {
                    node: node.to_string(),
                    image: image.clone(),
                    publish: publish.clone(),
                    links: links.clone(),
                },
            );
        };
        if let Some(r) = t.get("replicas") {
            let on: Vec<&str> = t["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            let r = r.as_integer().unwrap() as usize;
            let names: Vec<String> = (1..=r).map(|k| format!("{name}-{k}")).collect();
            for (k, n) in names.iter().enumerate() {
                seen(n.clone(), on[k % on.len()]);
            }
            expands.insert(name.clone(), names);
        } else {
            seen(name.clone(), t["node"].as_str().unwrap());
            expands.insert(name.clone(), vec![name.clone()]);
        }
    }
    let expand = |list: Option<&Value>| -> Result<Vec<String>, String> {
        let mut v = Vec::new();
        for m in list.and_then(Value::as_array).into_iter().flatten() {
            let m = m.as_str().unwrap();
            v.extend(
                expands
                    .get(m)
                    .ok_or(format!("view names unknown container {m}"))?
                    .clone(),
            );
        }
        Ok(v)
    };
    for (_, view) in doc.get("views").and_then(Value::as_table).unwrap_or(&empty) {
        let view = view.as_table().unwrap();
        let members = expand(view.get("members"))?;
        let observers = expand(view.get("observers"))?;
        let (net, len) = view["subnet"].as_str().unwrap().split_once('/').unwrap();
        let net: Ipv4Addr = net.parse().unwrap();
        let len: u32 = len.parse().unwrap();
        if members.len() as u64 + 2 > 1u64 << (32 - len) {
            return Err("view subnet too small".into());
        }
        let ports: Vec<u16> = view["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_integer().unwrap() as u16)
            .collect();
        for who in members.iter().chain(&observers) {
            for (i, m) in members.iter().enumerate() {
                for &p in &ports {
                    let addr = Ipv4Addr::from(u32::from(net) + i as u32 + 1);
                    out.get_mut(who).unwrap().links.insert((
                        SocketAddrV4::new(addr, p),
                        m.clone(),
                        p,
                    ));
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Expectations, worked out by hand from geard's rules.
// ---------------------------------------------------------------------------

fn addr(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

/// One expected container: (name, node, image, publish, links as "listen -> target:port").
fn expect(
    name: &str,
    node: &str,
    image: &str,
    publish: &[(u16, Option<u16>)],
    links: &[&str],
) -> (String, Seen) {
    let links = links
        .iter()
        .map(|l| {
            let (listen, to) = l.split_once(" -> ").unwrap();
            let (to, port) = to.rsplit_once(':').unwrap();
            (addr(listen), to.to_string(), port.parse().unwrap())
        })
        .collect();
    (
        name.to_string(),
        Seen {
            node: node.into(),
            image: image.into(),
            publish: publish.to_vec(),
            links,
        },
    )
}

fn assert_means(dir: &Path, file: &str, node_spec: &[&str], expected: Vec<(String, Seen)>) {
    let imported = run_fixture(dir, file, node_spec);
    assert_validates(&imported.toml);
    let got = effective(&imported.toml).unwrap();
    let want: BTreeMap<String, Seen> = expected.into_iter().collect();
    for (name, w) in &want {
        let g = got
            .get(name)
            .unwrap_or_else(|| panic!("{file}: no container {name} in\n{}", imported.toml));
        assert_eq!(
            g, w,
            "{file}: container {name} differs from geard's; topology:\n{}",
            imported.toml
        );
    }
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "{file}: containers geard would not make: {extra:?}"
    );
}

const TWO: &[&str] = &["n1=198.18.0.1", "n2=198.18.0.2"];
const THREE: &[&str] = &["n1=198.18.0.1", "n2=198.18.0.2", "n3=198.18.0.3"];

// The project's descriptors (tests/fixtures/geard). geard's rules, as replayed by
// src/import/deploy.rs: SimplePlacement puts the k-th new instance of the whole
// file (one counter over every container, in file order) on node k mod n. Links
// reserve addresses in priority order (4 MatchPort + 2 NonLocal + 1 self-link;
// file order among equals); a loopback link starts at 127.0.0.1, a NonLocal one at
// 192.168.1.1; MatchPort or an alias keeps the port and counts the address up
// (nextHost), otherwise the address stays and the port counts up (nextPort). An
// address reserved once is what every later link to that port sees.

fn self_counted(dir: &Path) {
    // api Count 3 over two nodes: api-1 n1, api-2 n2, api-3 n1. Self-link, loopback,
    // no MatchPort: nextPort from 9000, so api-i at 127.0.0.1:(8999+i), in every
    // replica (each replica also sees itself there).
    let links = [
        "127.0.0.1:9000 -> api-1:9000",
        "127.0.0.1:9001 -> api-2:9000",
        "127.0.0.1:9002 -> api-3:9000",
    ];
    let img = "example/api-server";
    assert_means(
        dir,
        "self_counted.json",
        TWO,
        vec![
            expect("api-1", "n1", img, &[(9000, None)], &links),
            expect("api-2", "n2", img, &[(9000, None)], &links),
            expect("api-3", "n1", img, &[(9000, None)], &links),
        ],
    );
}

fn tiers(dir: &Path) {
    // Three nodes, one counter over front-1 front-2 kv-1 kv-2 worker-1: n1 n2 n3 n1
    // n2. Priorities: front->front 1, kv->kv 1, front->kv 0, worker->kv 0 (file
    // order among equals). front's self-link reserves 127.0.0.1:3000/3001, kv's
    // 127.0.0.1:6379/6380; front->kv and worker->kv find kv's ports reserved and
    // see the same addresses. worker publishes nothing and needs nothing published.
    let kv = ["127.0.0.1:6379 -> kv-1:6379", "127.0.0.1:6380 -> kv-2:6379"];
    let front = [
        "127.0.0.1:3000 -> front-1:3000",
        "127.0.0.1:3001 -> front-2:3000",
        kv[0],
        kv[1],
    ];
    let (fi, ki) = ("example/frontend", "example/keyvalue");
    assert_means(
        dir,
        "tiers.json",
        THREE,
        vec![
            expect("front-1", "n1", fi, &[(3000, None)], &front),
            expect("front-2", "n2", fi, &[(3000, None)], &front),
            expect("kv-1", "n3", ki, &[(6379, None)], &kv),
            expect("kv-2", "n1", ki, &[(6379, None)], &kv),
            expect("worker-1", "n2", "example/worker", &[], &kv),
        ],
    );
}

fn shop(dir: &Path) {
    // Two nodes: gateway-1 n1, shop-1 n2, shop-2 n1, pg-1 n2, pg-2 n1, pg-3 n2.
    // pg->pg (MatchPort + NonLocal + self = 7) reserves first: nextHost from
    // 192.168.1.1 on 5432. gateway->shop (0): nextPort from 127.0.0.1:8000.
    // shop->pg (0) is loopback, but pg's port is already reserved, so shop sees the
    // replica set at 192.168.1.i as pg does. gateway's fixed host port stays.
    let pg = [
        "192.168.1.1:5432 -> pg-1:5432",
        "192.168.1.2:5432 -> pg-2:5432",
        "192.168.1.3:5432 -> pg-3:5432",
    ];
    let gw = [
        "127.0.0.1:8000 -> shop-1:8000",
        "127.0.0.1:8001 -> shop-2:8000",
    ];
    let (si, pi) = ("example/shop", "example/postgres");
    assert_means(
        dir,
        "shop.json",
        TWO,
        vec![
            expect(
                "gateway-1",
                "n1",
                "example/gateway",
                &[(443, Some(8443))],
                &gw,
            ),
            expect("shop-1", "n2", si, &[(8000, None)], &pg),
            expect("shop-2", "n1", si, &[(8000, None)], &pg),
            expect("pg-1", "n2", pi, &[(5432, None)], &pg),
            expect("pg-2", "n1", pi, &[(5432, None)], &pg),
            expect("pg-3", "n2", pi, &[(5432, None)], &pg),
        ],
    );
}

fn alias(dir: &Path) {
    // cli-1 n1, svc-1 n2, svc-2 n1, svc-3 n2. cli's link names one alias, svc's
    // 7000 seen at 80: only that port is linked (not 7001), and an alias forces
    // matching, so nextHost from 127.0.0.1 on 80: svc-i at 127.0.0.i:80.
    let svc = &[(7000, None), (7001, None)];
    assert_means(
        dir,
        "alias.json",
        TWO,
        vec![
            expect(
                "cli-1",
                "n1",
                "example/client",
                &[],
                &[
                    "127.0.0.1:80 -> svc-1:7000",
                    "127.0.0.2:80 -> svc-2:7000",
                    "127.0.0.3:80 -> svc-3:7000",
                ],
            ),
            expect("svc-1", "n2", "example/service", svc, &[]),
            expect("svc-2", "n1", "example/service", svc, &[]),
            expect("svc-3", "n2", "example/service", svc, &[]),
        ],
    );
}

fn replica_set(dir: &Path) {
    // NonLocal + MatchPort self-link over both published ports: for 2379, then
    // 2380, nextHost from 192.168.1.1, so etcd-i at 192.168.1.i on each port.
    // Three nodes: etcd-i on ni.
    let links = [
        "192.168.1.1:2379 -> etcd-1:2379",
        "192.168.1.2:2379 -> etcd-2:2379",
        "192.168.1.3:2379 -> etcd-3:2379",
        "192.168.1.1:2380 -> etcd-1:2380",
        "192.168.1.2:2380 -> etcd-2:2380",
        "192.168.1.3:2380 -> etcd-3:2380",
    ];
    let publish = &[(2379, None), (2380, None)];
    let img = "example/etcd";
    assert_means(
        dir,
        "replica_set.json",
        THREE,
        vec![
            expect("etcd-1", "n1", img, publish, &links),
            expect("etcd-2", "n2", img, publish, &links),
            expect("etcd-3", "n3", img, publish, &links),
        ],
    );
}

/// Nodes for existing.json: its instances sit on `localhost` and on n1's address.
const EXISTING: &[&str] = &["n1=198.18.0.1", "here=local"];

fn existing(dir: &Path) {
    // An earlier deploy's Instances: cache-1 and cache-2 on `localhost` (the local
    // node), cache-3 on "198.18.0.1:43273" (n1 by address, geard's port ignored).
    // Each keeps its host port and its Target; Count 3 adds nothing new.
    let links = [
        "192.168.1.1:6379 -> cache-1:6379",
        "192.168.1.2:6379 -> cache-2:6379",
        "192.168.1.3:6379 -> cache-3:6379",
    ];
    let img = "example/cache";
    assert_means(
        dir,
        "existing.json",
        EXISTING,
        vec![
            expect("cache-1", "here", img, &[(6379, Some(4301))], &links),
            expect("cache-2", "here", img, &[(6379, Some(4302))], &links),
            expect("cache-3", "n1", img, &[(6379, Some(4309))], &links),
        ],
    );
}

fn prefixed(dir: &Path) {
    // IdPrefix "blog-" is part of every instance id; app->db loopback nextPort.
    assert_means(
        dir,
        "prefixed.json",
        TWO,
        vec![
            expect(
                "blog-app-1",
                "n1",
                "example/blog",
                &[(4000, None)],
                &["127.0.0.1:3306 -> blog-db-1:3306"],
            ),
            expect("blog-db-1", "n2", "example/mysql", &[(3306, None)], &[]),
        ],
    );
}

fn fixed_port(dir: &Path) {
    // A fixed host port (External 6080) stays; store's port is picked (External
    // absent); admin sees store at 127.0.0.1:11211.
    assert_means(
        dir,
        "fixed_port.json",
        TWO,
        vec![
            expect(
                "admin-1",
                "n1",
                "example/admin-ui",
                &[(80, Some(6080))],
                &["127.0.0.1:11211 -> store-1:11211"],
            ),
            expect("store-1", "n2", "example/memcached", &[(11211, None)], &[]),
        ],
    );
}

fn warnings(dir: &Path) {
    // Existing instances decide: web-1 stays on n1 with its old image and host
    // port; web-2 is beyond Count 1 (deleted by geard), mailer-1's container is
    // gone, queue-9 was never placed, spare has no Count: none of them is made.
    // queue-1 stays on n2 and publishes 5672 because web links to it (exposePorts).
    assert_means(
        dir,
        "warnings.json",
        TWO,
        vec![
            expect(
                "web-1",
                "n1",
                "example/web:1",
                &[(8080, Some(4080))],
                &["127.0.0.1:5672 -> queue-1:5672"],
            ),
            expect("queue-1", "n2", "example/queue", &[(5672, None)], &[]),
        ],
    );
}

/// A descriptor's file name and the check of its hand-worked expectation.
type Case = (&'static str, fn(&Path));

/// Every descriptor in tests/fixtures/geard with its hand-worked expectation.
const PROJECT_CASES: &[Case] = &[
    ("alias.json", alias),
    ("existing.json", existing),
    ("fixed_port.json", fixed_port),
    ("prefixed.json", prefixed),
    ("replica_set.json", replica_set),
    ("self_counted.json", self_counted),
    ("shop.json", shop),
    ("tiers.json", tiers),
    ("warnings.json", warnings),
];

/// Runs the case of every `.json` file in `dir`; a file without one fails.
fn check_every_file(dir: &Path, cases: &[Case]) {
    for f in json_files(dir) {
        let case = cases.iter().find(|(name, _)| *name == f);
        let (_, check) = case.unwrap_or_else(|| panic!("{f} has no hand-worked expectation here"));
        check(dir);
    }
}

#[test]
fn every_fixture_imports_validates_and_means_what_geard_would_make_of_it() {
    check_every_file(&fixtures(), PROJECT_CASES);
}

#[test]
fn fixtures_import_without_warnings_except_the_one_written_for_them() {
    for f in json_files(&fixtures()) {
        let nodes = if f == "existing.json" {
            EXISTING
        } else {
            THREE
        };
        let imported = run_fixture(&fixtures(), &f, nodes);
        if f == "warnings.json" {
            assert!(!imported.warnings.is_empty(), "{f}");
        } else {
            assert!(imported.warnings.is_empty(), "{f}: {:?}", imported.warnings);
        }
    }
}

#[test]
fn what_geard_dropped_or_ignored_is_a_warning_at_each_place() {
    let imported = run_fixture(&fixtures(), "warnings.json", TWO);
    let mut got: Vec<(&str, Severity)> = imported
        .warnings
        .iter()
        .map(|w| (w.at.as_str(), w.severity))
        .collect();
    got.sort_by_key(|(at, _)| *at);
    let mut want = [
        "/Owner",                           // unknown key
        "/RandomizeIds",                    // true: names stay name-N
        "/Containers/0/Affinity",           // not carried over
        "/Containers/0/Notify",             // not carried over
        "/Containers/0/EnvironmentFile",    // a file, not values
        "/Containers/0/Links/0/UsePrimary", // never acted on by geard
        "/Containers/0",                    // web-2 beyond Count 1
        "/Containers/2",                    // spare: no Count
        "/Instances/0/Image",               // web-1 keeps its old image
        "/Instances/2",                     // mailer-1: container removed
        "/Instances/3",                     // queue-9: no On
        "/Instances/4/Notify",              // instance key not carried over
    ]
    .map(|at| (at, Severity::Warning));
    want.sort_by_key(|(at, _)| *at);
    assert_eq!(got, want, "{:#?}", imported.warnings);
    let text: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
    for (at, says) in [
        ("/Containers/0", "`web-2` is beyond `Count` 1"),
        ("/Containers/2", "`spare` has no `Count`"),
        ("/Instances/0/Image", "`example/web:1`"),
        (
            "/Instances/2",
            "`mailer`, which is not among the Containers",
        ),
        ("/Instances/3", "`queue-9` has no `On`"),
    ] {
        let line = format!("warning: {at}: ");
        assert!(
            text.iter()
                .any(|t| t.starts_with(&line) && t.contains(says)),
            "no {line}...{says}...: {text:#?}"
        );
    }
}

/// The errors of importing `tests/fixtures/geard/refused/FILE`, as (place, message).
fn refused(file: &str) -> Vec<String> {
    let path = fixtures().join("refused").join(file);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut errors = run(file, &json, TWO).expect_err("imported a refused descriptor");
    errors.retain(|e| e.starts_with("error: "));
    errors.sort_by(|a, b| place(a).cmp(place(b)));
    errors
}

/// The PLACE of `error: PLACE: message`.
fn place(error: &str) -> &str {
    let rest = &error["error: ".len()..];
    &rest[..rest.find(": ").unwrap()]
}

fn places(errors: &[String]) -> Vec<&str> {
    errors.iter().map(|e| place(e)).collect()
}

#[test]
fn links_and_instances_geard_would_refuse_are_errors_reported_together() {
    let errors = refused("errors.json");
    assert_eq!(
        places(&errors),
        [
            "/Containers/0/Links/0/To",      // ghost: no such container
            "/Containers/0/Links/1/To",      // worker: no PublicPorts
            "/Containers/0/Links/2/Ports/0", // 5433: db does not publish it
            "/Instances/0/On",               // 203.0.113.7: no --node
        ],
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("`ghost`, which is not among the Containers"),
        "{errors:#?}"
    );
    assert!(errors[1].contains("no PublicPorts"), "{errors:#?}");
    assert!(errors[2].contains("port 5433 of `db`"), "{errors:#?}");
    assert!(errors[3].contains("--node NAME=203.0.113.7"), "{errors:#?}");
}

#[test]
fn values_of_the_wrong_kind_are_errors_reported_together() {
    let errors = refused("bad_values.json");
    assert_eq!(
        places(&errors),
        [
            "/Containers/0/Name",                   // empty
            "/Containers/1",                        // no usable Image
            "/Containers/1/Count",                  // -1
            "/Containers/1/Image",                  // a number
            "/Containers/1/Links",                  // a string, not a list
            "/Containers/1/PublicPorts/0/Internal", // 70000
            "/Containers/1/PublicPorts/1",          // no Internal
            "/Instances/0",                         // no Id
        ],
        "{errors:#?}"
    );
}

#[test]
fn replicas_self_links_at_one_address_each_become_a_view_with_observers() {
    // The readable form, not only the meaning: a 3-member postgres replica set is
    // one view, and shop, which sees it the same way, observes it.
    let t = run_fixture(&fixtures(), "shop.json", TWO).toml;
    let doc: toml::Table = t.parse().unwrap();
    let view = doc["views"]["pg"].as_table().unwrap();
    assert_eq!(
        view["members"].as_array().unwrap(),
        &vec![Value::from("pg")]
    );
    assert_eq!(view["subnet"].as_str(), Some("192.168.1.0/24"));
    assert_eq!(
        view["observers"].as_array().unwrap(),
        &vec![Value::from("shop")]
    );
    let pg = doc["containers"]["pg"].as_table().unwrap();
    assert_eq!(pg["replicas"].as_integer(), Some(3));
    // geard's counter was at 3 (gateway-1, shop-1, shop-2) when pg-1 was placed.
    assert_eq!(
        pg["nodes"].as_array().unwrap(),
        &vec![Value::from("n2"), Value::from("n1")]
    );
    assert!(pg.get("links").is_none(), "the view already says it:\n{t}");
}

#[test]
fn a_view_over_two_ports_lists_both() {
    let t = run_fixture(&fixtures(), "replica_set.json", THREE).toml;
    let doc: toml::Table = t.parse().unwrap();
    let ports = doc["views"]["etcd"]["ports"].as_array().expect(&t);
    assert_eq!(ports, &vec![Value::from(2379), Value::from(2380)]);
}

// ---------------------------------------------------------------------------
// geard's own descriptors, when present (see `geard_originals`): the same checks
// as above, against expectations worked out by hand from geard's rules.
// ---------------------------------------------------------------------------

fn simple_deploy(dir: &Path) {
    // web Count 2: web-1 on n1, web-2 on n2 (SimplePlacement). Its self-link is
    // loopback without MatchPort, so nextPort from 8080: web-1 at 127.0.0.1:8080,
    // web-2 at 127.0.0.1:8081, and every web instance gets both links.
    let links = [
        "127.0.0.1:8080 -> web-1:8080",
        "127.0.0.1:8081 -> web-2:8080",
    ];
    let img = "openshift/busybox-http-app";
    assert_means(
        dir,
        "simple_deploy.json",
        TWO,
        vec![
            expect("web-1", "n1", img, &[(8080, None)], &links),
            expect("web-2", "n2", img, &[(8080, None)], &links),
        ],
    );
}

fn complex_deploy(dir: &Path) {
    // Three nodes: one placement counter over web-1 web-2 db-1 db-2 db-3 gives
    // n1 n2 n3 n1 n2. Priorities: web->web 1, db->db 1, web->db 0, so web's
    // self-link reserves 127.0.0.1:8080/8081 first, db's self-link 27017..27019,
    // and web->db reuses db's addresses.
    let web = [
        "127.0.0.1:8080 -> web-1:8080",
        "127.0.0.1:8081 -> web-2:8080",
        "127.0.0.1:27017 -> db-1:27017",
        "127.0.0.1:27018 -> db-2:27017",
        "127.0.0.1:27019 -> db-3:27017",
    ];
    let db = &web[2..];
    let (wi, di) = ("openshift/busybox-http-app", "ccoleman/ubuntu-mongodb");
    assert_means(
        dir,
        "complex_deploy.json",
        THREE,
        vec![
            expect("web-1", "n1", wi, &[(8080, None)], &web),
            expect("web-2", "n2", wi, &[(8080, None)], &web),
            expect("db-1", "n3", di, &[(27017, None)], db),
            expect("db-2", "n1", di, &[(27017, None)], db),
            expect("db-3", "n2", di, &[(27017, None)], db),
        ],
    );
}

fn lb_eap_mongo(dir: &Path) {
    // Placement over two nodes: lb-1 n1, backend-1 n2, backend-2 n1, db-1 n2,
    // db-2 n1, db-3 n2. db->db (MatchPort+NonLocal+self = 7) reserves first:
    // nextHost from 192.168.1.1 on 27017. backend->db is loopback but finds the
    // targets already reserved, so it sees the same 192.168.1.i. lb->backend:
    // nextPort from 127.0.0.1:8080.
    let mongo = [
        "192.168.1.1:27017 -> db-1:27017",
        "192.168.1.2:27017 -> db-2:27017",
        "192.168.1.3:27017 -> db-3:27017",
    ];
    let lb = [
        "127.0.0.1:8080 -> backend-1:8080",
        "127.0.0.1:8081 -> backend-2:8080",
    ];
    assert_means(
        dir,
        "lb_eap_mongo.json",
        TWO,
        vec![
            expect("lb-1", "n1", "openshift/demo-ews", &[(80, Some(8080))], &lb),
            expect("backend-1", "n2", "scaling-demo", &[(8080, None)], &mongo),
            expect("backend-2", "n1", "scaling-demo", &[(8080, None)], &mongo),
            expect("db-1", "n2", "mongo-test", &[(27017, None)], &mongo),
            expect("db-2", "n1", "mongo-test", &[(27017, None)], &mongo),
            expect("db-3", "n2", "mongo-test", &[(27017, None)], &mongo),
        ],
    );
}

fn link_alias(dir: &Path) {
    // web (no public ports) links to db's 3000 seen at 8080: an alias forces
    // matching, so nextHost from 127.0.0.1 on 8080: db-1 at 127.0.0.1:8080,
    // db-2 at 127.0.0.2:8080. Placement: web-1 n1, db-1 n2, db-2 n1.
    assert_means(
        dir,
        "link_alias.json",
        TWO,
        vec![
            expect(
                "web-1",
                "n1",
                "test1",
                &[],
                &["127.0.0.1:8080 -> db-1:3000", "127.0.0.2:8080 -> db-2:3000"],
            ),
            expect("db-1", "n2", "test2", &[(3000, None)], &[]),
            expect("db-2", "n1", "test2", &[(3000, None)], &[]),
        ],
    );
}

fn mongo_deploy(dir: &Path) {
    // NonLocal + MatchPort self-link: db-i at 192.168.1.i:27017 for everyone.
    let mongo = [
        "192.168.1.1:27017 -> db-1:27017",
        "192.168.1.2:27017 -> db-2:27017",
        "192.168.1.3:27017 -> db-3:27017",
    ];
    let img = "openshift/ubuntu-mongodb-cluster";
    assert_means(
        dir,
        "mongo_deploy.json",
        TWO,
        vec![
            expect("db-1", "n1", img, &[(27017, None)], &mongo),
            expect("db-2", "n2", img, &[(27017, None)], &mongo),
            expect("db-3", "n1", img, &[(27017, None)], &mongo),
        ],
    );
}

fn mongo_deploy_existing(dir: &Path) {
    // geard's output after a deploy on localhost: placement, host ports (4203,
    // 4204, 4206) and link addresses (Target) are kept, nothing is re-placed.
    let mongo = [
        "192.168.1.1:27017 -> db-1:27017",
        "192.168.1.2:27017 -> db-2:27017",
        "192.168.1.3:27017 -> db-3:27017",
    ];
    let img = "openshift/ubuntu-mongodb-cluster";
    assert_means(
        dir,
        "mongo_deploy_existing.json",
        &["n1=198.18.0.1", "here=local"],
        vec![
            expect("db-1", "here", img, &[(27017, Some(4203))], &mongo),
            expect("db-2", "here", img, &[(27017, Some(4204))], &mongo),
            expect("db-3", "here", img, &[(27017, Some(4206))], &mongo),
        ],
    );
}

fn openshift_deploy(dir: &Path) {
    assert_means(
        dir,
        "openshift_deploy.json",
        TWO,
        vec![
            expect(
                "origin-broker-1",
                "n1",
                "openshift/origin-server-docker",
                &[(443, Some(6060))],
                &["127.0.0.1:27017 -> origin-db-1:27017"],
            ),
            expect(
                "origin-db-1",
                "n2",
                "openshift/centos-mongodb",
                &[(27017, None)],
                &[],
            ),
        ],
    );
}

fn redis_martini_deploy(dir: &Path) {
    // IdPrefix "martini-" is part of every instance id.
    assert_means(
        dir,
        "redis_martini_deploy.json",
        TWO,
        vec![
            expect(
                "martini-web-1",
                "n1",
                "mrunalp/redis-todo",
                &[(3000, None)],
                &["127.0.0.1:6379 -> martini-redis-1:6379"],
            ),
            expect(
                "martini-redis-1",
                "n2",
                "mrunalp/fedora-redis",
                &[(6379, None)],
                &[],
            ),
        ],
    );
}

fn rockmongo_mongo(dir: &Path) {
    assert_means(
        dir,
        "rockmongo_mongo.json",
        TWO,
        vec![
            expect(
                "rockmongo-1",
                "n1",
                "openshift/centos-rockmongo",
                &[(80, Some(6060))],
                &["127.0.0.1:27017 -> mongodb-1:27017"],
            ),
            expect(
                "mongodb-1",
                "n2",
                "openshift/centos-mongodb",
                &[(27017, None)],
                &[],
            ),
        ],
    );
}

/// Every descriptor of geard's with its hand-worked expectation.
const GEARD_CASES: &[Case] = &[
    ("complex_deploy.json", complex_deploy),
    ("lb_eap_mongo.json", lb_eap_mongo),
    ("link_alias.json", link_alias),
    ("mongo_deploy.json", mongo_deploy),
    ("mongo_deploy_existing.json", mongo_deploy_existing),
    ("openshift_deploy.json", openshift_deploy),
    ("redis_martini_deploy.json", redis_martini_deploy),
    ("rockmongo_mongo.json", rockmongo_mongo),
    ("simple_deploy.json", simple_deploy),
];

/// Runs only when ../shared/geard-fixtures exists (an extra check; passes with a
/// "skipped" note otherwise).
#[test]
fn geards_own_descriptors_import_and_mean_what_geard_made_of_them() {
    let Some(dir) = geard_originals() else {
        return;
    };
    check_every_file(&dir, GEARD_CASES);
    for f in [
        "complex_deploy.json",
        "lb_eap_mongo.json",
        "link_alias.json",
        "simple_deploy.json",
    ] {
        let imported = run_fixture(&dir, f, TWO);
        assert!(imported.warnings.is_empty(), "{f}: {:?}", imported.warnings);
    }
}

// ---------------------------------------------------------------------------
// Descriptors written here to pin one rule each.
// ---------------------------------------------------------------------------

fn means(json: &str, node_spec: &[&str]) -> BTreeMap<String, Seen> {
    let imported = run("t.json", json, node_spec).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_validates(&imported.toml);
    effective(&imported.toml).unwrap()
}

fn links_of(seen: &BTreeMap<String, Seen>, name: &str) -> Vec<String> {
    seen[name]
        .links
        .iter()
        .map(|(l, t, p)| format!("{l} -> {t}:{p}"))
        .collect()
}

#[test]
fn keys_match_without_regard_to_case() {
    let json = std::fs::read_to_string(fixtures().join("shop.json")).unwrap();
    let shouted = json
        .replace("\"Containers\"", "\"CONTAINERS\"")
        .replace("\"MatchPort\"", "\"matchPORT\"");
    let lower = json
        .replace("\"Name\"", "\"name\"")
        .replace("\"Links\"", "\"links\"");
    assert!(shouted != json && lower != json && shouted != lower);
    let a = run("shop.json", &json, TWO).unwrap().toml;
    assert!(a.contains("[views.pg]"), "MatchPort was read:\n{a}");
    assert_eq!(run("shop.json", &shouted, TWO).unwrap().toml, a);
    assert_eq!(run("shop.json", &lower, TWO).unwrap().toml, a);
}

#[test]
fn ports_limit_the_linked_ports() {
    let seen = means(
        r#"{"Containers":[
            {"Name":"app","Count":1,"Image":"a","Links":[{"To":"db","Ports":[27017]}]},
            {"Name":"db","Count":1,"Image":"m","PublicPorts":[{"Internal":27017},{"Internal":28017}]}]}"#,
        TWO,
    );
    assert_eq!(links_of(&seen, "app-1"), ["127.0.0.1:27017 -> db-1:27017"]);
    assert_eq!(seen["db-1"].publish, [(27017, None), (28017, None)]);
}

#[test]
fn match_port_on_loopback_moves_the_address_not_the_port() {
    let seen = means(
        r#"{"Containers":[
            {"Name":"app","Count":1,"Image":"a","Links":[{"To":"db","MatchPort":true}]},
            {"Name":"db","Count":2,"Image":"m","PublicPorts":[{"Internal":5432}]}]}"#,
        TWO,
    );
    assert_eq!(
        links_of(&seen, "app-1"),
        ["127.0.0.1:5432 -> db-1:5432", "127.0.0.2:5432 -> db-2:5432"]
    );
}

#[test]
fn non_local_without_match_port_counts_ports_up_at_192_168_1_1() {
    let seen = means(
        r#"{"Containers":[
            {"Name":"app","Count":1,"Image":"a","Links":[{"To":"db","NonLocal":true}]},
            {"Name":"db","Count":2,"Image":"m","PublicPorts":[{"Internal":5432}]}]}"#,
        TWO,
    );
    assert_eq!(
        links_of(&seen, "app-1"),
        [
            "192.168.1.1:5432 -> db-1:5432",
            "192.168.1.1:5433 -> db-2:5432"
        ]
    );
}

#[test]
fn one_placement_counter_runs_across_containers_in_file_order() {
    // a-1 n1, b-1 n2, b-2 n3, b-3 n1, c-1 n2: b's and c's `nodes` start where
    // geard's counter was, not at n1.
    let seen = means(
        r#"{"Containers":[
            {"Name":"a","Count":1,"Image":"i"},
            {"Name":"b","Count":3,"Image":"i"},
            {"Name":"c","Count":1,"Image":"i"}]}"#,
        THREE,
    );
    let placed: Vec<(&str, &str)> = seen
        .iter()
        .map(|(k, v)| (k.as_str(), v.node.as_str()))
        .collect();
    assert_eq!(
        placed,
        [
            ("a-1", "n1"),
            ("b-1", "n2"),
            ("b-2", "n3"),
            ("b-3", "n1"),
            ("c-1", "n2")
        ]
    );
}

/// A mongo replica set whose db-1 and db-2 swapped addresses in an earlier deploy.
const SWAPPED_INSTANCES: &str = r#"{"Containers":[{"Name":"db","Count":3,"Image":"m","PublicPorts":[{"Internal":27017}],
      "Links":[{"To":"db","NonLocal":true,"MatchPort":true}]}],
    "Instances":[
      {"Id":"db-1","From":"db","On":"198.18.0.2:43273","Ports":[{"Internal":27017,"External":4001,"Target":{"Host":"192.168.1.2","Port":27017}}]},
      {"Id":"db-2","From":"db","On":"n1","Ports":[{"Internal":27017,"External":4002,"Target":{"Host":"192.168.1.1","Port":27017}}]}]}"#;

#[test]
fn existing_instances_keep_their_link_addresses_even_when_geard_would_now_choose_others() {
    // db-1 and db-2 swapped addresses in an earlier deploy; a third instance is
    // new (Count 3) and gets the next free address, 192.168.1.3, on the next node.
    let seen = means(SWAPPED_INSTANCES, TWO);
    let want = [
        "192.168.1.1:27017 -> db-2:27017",
        "192.168.1.2:27017 -> db-1:27017",
        "192.168.1.3:27017 -> db-3:27017",
    ];
    for db in ["db-1", "db-2", "db-3"] {
        assert_eq!(links_of(&seen, db), want, "{db}");
    }
    assert_eq!(
        (seen["db-1"].node.as_str(), seen["db-1"].publish[0]),
        ("n2", (27017, Some(4001)))
    );
    assert_eq!(
        (seen["db-2"].node.as_str(), seen["db-2"].publish[0]),
        ("n1", (27017, Some(4002)))
    );
    // The new instance is the first one placed in this deploy: node 1.
    assert_eq!(
        (seen["db-3"].node.as_str(), seen["db-3"].publish[0]),
        ("n1", (27017, None))
    );
}

#[test]
fn instances_with_swapped_addresses_are_a_view_listed_in_address_order() {
    // Each instance is its own table (their host ports differ); as plain links they
    // would link both ways, which validate refuses. A view says it, members in the
    // order of their addresses.
    let imported = run("t.json", SWAPPED_INSTANCES, TWO).unwrap();
    let doc: toml::Table = imported.toml.parse().unwrap();
    let view = doc["views"]["db"].as_table().expect(&imported.toml);
    assert_eq!(
        view["members"].as_array().unwrap(),
        &vec![
            Value::from("db-2"),
            Value::from("db-1"),
            Value::from("db-3")
        ]
    );
    for db in ["db-1", "db-2", "db-3"] {
        assert!(
            doc["containers"][db].get("links").is_none(),
            "{}",
            imported.toml
        );
    }
    assert!(
        imported
            .toml
            .contains("in this order, the addresses 192.168.1.1, .2, ..."),
        "{}",
        imported.toml
    );
}

#[test]
fn instances_that_cannot_be_replicas_or_a_view_cannot_link_to_one_another() {
    // Loopback self-links at counted-up ports between two tables (host ports
    // differ): no view (127/8), no replicas, and links both ways have no start order.
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"web","Count":2,"Image":"w","PublicPorts":[{"Internal":8080}],
              "Links":[{"To":"web"}]}],
            "Instances":[
              {"Id":"web-1","From":"web","On":"n1","Ports":[{"Internal":8080,"External":4001}]},
              {"Id":"web-2","From":"web","On":"n2","Ports":[{"Internal":8080,"External":4002}]}]}"#,
        TWO,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "error: /Containers/0/Links/0: the instances of `web` would link to one another"
        ),
        "{errors:#?}"
    );
}

#[test]
fn a_lone_instance_seeing_itself_on_another_port_is_an_error_not_an_invalid_file() {
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"web","Count":1,"Image":"w","PublicPorts":[{"Internal":8080}],
              "Links":[{"To":"web","AliasPorts":[{"Internal":8080,"External":9090}]}]}]}"#,
        TWO,
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(
            "error: /Containers/0/Links/0: `web-1` would see itself at 127.0.0.1:9090 (its port 8080)"
        ),
        "{errors:#?}"
    );
}

#[test]
fn what_cannot_be_carried_over_is_a_warning_at_its_place() {
    let imported = run(
        "t.json",
        r#"{"RandomizeIds":true,"containers":[
            {"name":"web","count":1,"image":"w","affinity":"distribute","environment":"web.env",
             "notify":true,"colour":"blue","publicports":[{"internal":80}]}]}"#,
        TWO,
    )
    .unwrap();
    assert_validates(&imported.toml);
    let at: Vec<(&str, Severity)> = imported
        .warnings
        .iter()
        .map(|w| (w.at.as_str(), w.severity))
        .collect();
    for place in [
        "/RandomizeIds",
        "/containers/0/affinity",
        "/containers/0/environment",
        "/containers/0/notify",
        "/containers/0/colour",
    ] {
        assert!(
            at.contains(&(place, Severity::Warning)),
            "no warning at {place}: {:#?}",
            imported.warnings
        );
    }
    let env = imported
        .warnings
        .iter()
        .find(|w| w.at == "/containers/0/environment")
        .unwrap();
    assert!(
        env.to_string()
            .starts_with("warning: /containers/0/environment: "),
        "{env}"
    );
}

#[test]
fn a_link_to_a_container_without_public_ports_is_an_error_at_the_link() {
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"app","Count":1,"Image":"a","Links":[{"To":"worker"}]},
                          {"Name":"worker","Count":1,"Image":"w"}]}"#,
        TWO,
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: /Containers/0/Links/0/To: ")
                && e.contains("no PublicPorts")),
        "{errors:#?}"
    );
}

#[test]
fn every_error_is_reported_at_once() {
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"app","Count":1,"Image":"a","Links":[{"To":"nowhere"}]},
                          {"Name":"web","Count":2,"Image":"w","PublicPorts":[{"Internal":80,"External":8080}]}],
            "Instances":[{"Id":"old-1","From":"app","On":"10.9.9.9"}]}"#,
        &["only=198.18.0.1"],
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: /Containers/0/Links/0/To: ")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: /Instances/0/On: ")),
        "{errors:#?}"
    );
}

#[test]
fn two_replicas_on_one_node_cannot_publish_one_host_port() {
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"web","Count":2,"Image":"w","PublicPorts":[{"Internal":80,"External":8080}]}]}"#,
        &["only=198.18.0.1"],
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: /Containers/0/PublicPorts/0/External: ")),
        "{errors:#?}"
    );
    // Over two nodes the same descriptor is fine.
    let seen = means(
        r#"{"Containers":[{"Name":"web","Count":2,"Image":"w","PublicPorts":[{"Internal":80,"External":8080}]}]}"#,
        TWO,
    );
    assert_eq!(seen["web-2"].publish, [(80, Some(8080))]);
}

#[test]
fn a_port_the_target_does_not_publish_is_an_error() {
    let errors = run(
        "t.json",
        r#"{"Containers":[{"Name":"app","Count":1,"Image":"a","Links":[{"To":"db","Ports":[9999]}]},
                          {"Name":"db","Count":1,"Image":"m","PublicPorts":[{"Internal":27017}]}]}"#,
        TWO,
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("error: /Containers/0/Links/0/Ports/0: ")),
        "{errors:#?}"
    );
}

#[test]
fn the_output_is_toml_a_person_reads() {
    let t = run_fixture(&fixtures(), "prefixed.json", TWO).toml;
    // Tables, one per container, in file order; no machine-only noise.
    let app = t.find("[containers.blog-app-1]").expect(&t);
    let db = t.find("[containers.blog-db-1]").expect(&t);
    assert!(app < db, "{t}");
    assert!(t.contains("links = [{ to = \"blog-db-1:3306\" }]"), "{t}");
    assert!(t.lines().all(|l| l.len() <= 100), "{t}");
    assert!(
        t.starts_with("# "),
        "a header says where it came from:\n{t}"
    );
}

#[test]
fn a_lone_instance_linking_to_itself_on_its_own_port_needs_no_link() {
    // geard's notify_deploy.json shape: web-1 saw itself at 127.0.0.1:8080 through
    // the node; in geartopo it reaches itself there with no rule at all.
    let json = r#"{"containers":[{"name":"web","count":1,"image":"w",
        "publicports":[{"internal":8080,"external":0}],"links":[{"to":"web"}]}]}"#;
    let imported = run("notify.json", json, TWO).unwrap();
    assert!(
        imported
            .toml
            .contains("# geard's link from `web-1` to itself at 127.0.0.1:8080"),
        "{}",
        imported.toml
    );
    let seen = means(json, TWO);
    assert!(seen["web-1"].links.is_empty());
}

#[test]
fn loopback_match_port_self_links_stay_links_not_a_view() {
    // 127.0.0.i would be a view subnet in 127.0.0.0/8, which validate refuses.
    let imported = run(
        "t.json",
        r#"{"Containers":[{"Name":"pg","Count":2,"Image":"p","PublicPorts":[{"Internal":5432}],
            "Links":[{"To":"pg","MatchPort":true}]}]}"#,
        TWO,
    )
    .unwrap();
    let doc: toml::Table = imported.toml.parse().unwrap();
    assert!(doc.get("views").is_none(), "{}", imported.toml);
    let seen = effective(&imported.toml).unwrap();
    assert_eq!(
        links_of(&seen, "pg-2"),
        ["127.0.0.1:5432 -> pg-1:5432", "127.0.0.2:5432 -> pg-2:5432"]
    );
}

/// Each `$ geartopo import DESCRIPTOR ... -o OUT` example in the docs (README.md,
/// docs/*.md) followed by `$ cat OUT`: what it shows up to the next `$ ` line is what
/// import prints. The descriptor is looked up as written from the repository's
/// root, then by file name in tests/fixtures/geard, then among geard's originals
/// (skipped, saying so, when they are not there).
#[test]
fn the_docs_import_examples_are_what_import_prints() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    if let Ok(dir) = std::fs::read_dir(root.join("docs")) {
        docs.extend(
            dir.map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "md")),
        );
    }
    let mut examples = 0;
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(cmd) = line.strip_prefix("$ geartopo import ") else {
                continue;
            };
            let args: Vec<&str> = cmd.split_whitespace().collect();
            let after =
                |flag: &'static str| args.windows(2).filter(move |w| w[0] == flag).map(|w| w[1]);
            let Some(out) = after("-o").next() else {
                continue;
            };
            if lines.get(i + 1) != Some(&format!("$ cat {out}").as_str()) {
                continue;
            }
            examples += 1;
            let descriptor = args[0];
            let base = descriptor.rsplit('/').next().unwrap();
            let path = [root.join(descriptor), fixtures().join(base)]
                .into_iter()
                .find(|p| p.is_file());
            let Some(path) = path.or_else(|| geard_originals().map(|d| d.join(base))) else {
                continue;
            };
            let json = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {descriptor}: {e}", doc.display()));
            let nodes: Vec<&str> = after("--node").collect();
            let toml = run(descriptor, &json, &nodes)
                .unwrap_or_else(|e| panic!("{}: {descriptor}: {e:#?}", doc.display()))
                .toml;
            let shown: String = lines[i + 2..]
                .iter()
                .take_while(|l| !l.starts_with("$ ") && !l.starts_with("```"))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(
                shown,
                toml,
                "{}: the example of `geartopo import {descriptor}` is stale",
                doc.display()
            );
        }
    }
    assert!(
        examples > 0,
        "no `$ geartopo import ... -o F` + `$ cat F` example in the docs"
    );
}

#[test]
fn instances_geard_would_delete_or_skip_are_warnings_not_silence() {
    let imported = run(
        "t.json",
        r#"{"Containers":[{"Name":"db","Count":1,"Image":"m","PublicPorts":[{"Internal":27017}]}],
            "Instances":[
              {"Id":"db-1","From":"db","On":"n1"},
              {"Id":"db-2","From":"db","On":"n2"},
              {"Id":"cache-1","From":"cache","On":"n1"},
              {"Id":"db-9","From":"db"}]}"#,
        TWO,
    )
    .unwrap();
    let w: Vec<String> = imported.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter().any(|w| w.starts_with("warning: /Containers/0: ")
            && w.contains("`db-2` is beyond `Count` 1")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("warning: /Instances/2: ") && w.contains("`cache`")),
        "{w:#?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("warning: /Instances/3: ") && w.contains("no `On`")),
        "{w:#?}"
    );
    let seen = effective(&imported.toml).unwrap();
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["db-1"]);
}

#[test]
fn two_spellings_of_one_key_are_an_error_not_a_guess() {
    let errors = run("t.json", r#"{"Containers":[],"containers":[]}"#, TWO).unwrap_err();
    assert!(
        errors.iter().any(|e| e.starts_with("error: /: keys ")),
        "{errors:#?}"
    );
}
