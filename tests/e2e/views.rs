//! Cases for same-view clusters (issue 6): a real etcd cluster whose members
//! find each other only through view addresses, on the shared lab, driven only
//! through the CLI as a user would. The topology is `examples/etcd-cluster.toml`
//! itself (its containers and view over the lab's nodes, renamed `e2e-views`), so
//! the example is what is tested; scaling edits its `replicas`/`nodes` lines.
//! Builds and loads its own image (images/etcd/build.sh); removes what it made,
//! also when it fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, Run};

const NAME: &str = "e2e-views";
const IMAGE: &str = "localhost/geartopo-etcd:latest";
/// The first port of the example's `host_ports`: taken on node1 before the first
/// apply, so a picker that ignored taken ports would choose it for etcd-1.
const SQUATTED_PORT: u16 = 40000;
/// The host port the example gives for the peer port (2379's is picked).
const GIVEN_PEER_PORT: u16 = 40380;
const PICK_RANGE: std::ops::RangeInclusive<u16> = 40000..=40999;
const THREE: &str = "replicas = 3\nnodes    = [\"node1\", \"node2\", \"node3\"]";
const FOUR: &str = "replicas = 4\nnodes = [\"node1\", \"node2\", \"node3\", \"node4\"]";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One container of the topology and where it runs.
#[derive(Clone, Copy)]
struct Place {
    node: &'static str,
    /// The name in the topology (`etcd-2`, `client`).
    name: &'static str,
}

impl Place {
    fn runtime(&self) -> String {
        format!("{NAME}-{}", self.name)
    }
}

const MEMBERS: [Place; 4] = [
    Place {
        node: "node1",
        name: "etcd-1",
    },
    Place {
        node: "node2",
        name: "etcd-2",
    },
    Place {
        node: "node3",
        name: "etcd-3",
    },
    Place {
        node: "node4",
        name: "etcd-4",
    },
];
const CLIENT: Place = Place {
    node: "node4",
    name: "client",
};

/// The containers present with `replicas` members: members first, then the observer.
fn present(replicas: usize) -> Vec<Place> {
    MEMBERS[..replicas]
        .iter()
        .copied()
        .chain([CLIENT])
        .collect()
}

fn endpoints(replicas: usize) -> String {
    (1..=replicas)
        .map(|j| format!("http://192.168.1.{j}:2379"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The example's containers, view and defaults (everything but its name and
/// nodes, which the lab's topology supplies), with `replicas` members.
fn example_body(replicas: usize, firewall: &str) -> Result<String, String> {
    let path = manifest_dir().join("examples/etcd-cluster.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    ensure!(
        text.contains(THREE),
        "{} no longer declares `{THREE}`; update this case",
        path.display()
    );
    let mut body = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.starts_with("[nodes.");
        }
        if skipping || line.starts_with("name ") || line.starts_with("id ") {
            continue;
        }
        body.push_str(line);
        body.push('\n');
    }
    if firewall != "iptables" {
        // The example's own [defaults], with every node on `firewall`.
        body = body.replacen(
            "[defaults]\n",
            &format!("[defaults]\nfirewall = \"{firewall}\"\n"),
            1,
        );
    }
    Ok(match replicas {
        3 => body,
        4 => body.replace(THREE, FOUR),
        n => return Err(format!("no {n}-member variant")),
    })
}

/// A command line inside a container on its node.
fn in_container(ctx: &Ctx, at: Place, command: &str) -> Run {
    ctx.on_node(at.node, &format!("podman exec {} {command}", at.runtime()))
}

/// `etcdctl` inside a container, with timeouts so an unreachable address fails fast.
fn etcdctl(ctx: &Ctx, at: Place, args: &str) -> Run {
    in_container(
        ctx,
        at,
        &format!("etcdctl --dial-timeout 3s --command-timeout 5s {args}"),
    )
}

/// `member list -w simple` as (id, status, name, peer url, client url) rows.
fn member_list(ctx: &Ctx, at: Place, replicas: usize) -> Result<Vec<[String; 5]>, String> {
    let run = etcdctl(
        ctx,
        at,
        &format!("--endpoints {} member list -w simple", endpoints(replicas)),
    )
    .ok()?;
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<String> = l.split(',').map(|s| s.trim().to_string()).collect();
            ensure!(f.len() >= 5, "unexpected member list line: {l}");
            Ok([
                f[0].clone(),
                f[1].clone(),
                f[2].clone(),
                f[3].clone(),
                f[4].clone(),
            ])
        })
        .collect()
}

/// Polls until `replicas` members are all started; fails with the list and logs.
fn wait_started(ctx: &Ctx, replicas: usize) -> Result<Vec<[String; 5]>, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = member_list(ctx, CLIENT, replicas);
        if let Ok(rows) = &list {
            if rows.len() == replicas && rows.iter().all(|r| r[1] == "started") {
                return list;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = MEMBERS[..replicas]
                .iter()
                .map(|m| {
                    let run =
                        ctx.on_node(m.node, &format!("podman logs --tail 15 {}", m.runtime()));
                    format!("--- {} log\n{}", m.name, run.output())
                })
                .collect();
            return Err(format!(
                "the {replicas} members did not all start within 90s: {list:?}\n{}",
                logs.join("\n")
            ));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// The members' own view of their cluster: exactly etcd-1..N, started, each
/// advertising its view address. Returns each member's id by name.
fn assert_membership(
    rows: &[[String; 5]],
    replicas: usize,
) -> Result<BTreeMap<String, String>, String> {
    ensure!(
        rows.len() == replicas,
        "expected {replicas} members, got {rows:?}"
    );
    let mut ids = BTreeMap::new();
    for j in 1..=replicas {
        let name = format!("etcd-{j}");
        let Some(row) = rows.iter().find(|r| r[2] == name) else {
            return Err(format!("{name} missing from member list {rows:?}"));
        };
        ensure!(row[1] == "started", "{name} is {}", row[1]);
        ensure!(
            row[3] == format!("http://192.168.1.{j}:2380"),
            "{name} peer URL {}",
            row[3]
        );
        ensure!(
            row[4] == format!("http://192.168.1.{j}:2379"),
            "{name} client URL {}",
            row[4]
        );
        ids.insert(name, row[0].clone());
    }
    Ok(ids)
}

/// From inside every present container, each 192.168.1.j reaches member j on
/// both view ports, its own address included: the client port is answered with
/// etcd-j's member id, the peer port by an etcd peer.
fn assert_view_reachable(ctx: &Ctx, replicas: usize, ids: &BTreeMap<String, String>) -> Outcome {
    for at in present(replicas) {
        for j in 1..=replicas {
            let want = &ids[&format!("etcd-{j}")];
            let status = etcdctl(
                ctx,
                at,
                &format!("--endpoints http://192.168.1.{j}:2379 endpoint status -w simple"),
            )
            .ok()?;
            let got = status
                .stdout
                .split(',')
                .nth(1)
                .map(str::trim)
                .unwrap_or_default();
            ensure!(
                got == want,
                "{}: 192.168.1.{j}:2379 answered by {got:?}, not etcd-{j} ({want})",
                at.name
            );
            // etcd's peer port serves /version. busybox's `wget -T` crashes (Debian's
            // 1.35 static build), so its `timeout` bounds the wait.
            let peer = in_container(
                ctx,
                at,
                &format!("timeout 10 wget -q -O - http://192.168.1.{j}:2380/version"),
            )
            .ok()?;
            ensure!(
                peer.stdout.contains("etcdserver"),
                "{}: 192.168.1.{j}:2380 answered {:?}",
                at.name,
                peer.stdout
            );
        }
    }
    Ok(())
}

/// Host ports a container publishes: container port -> host port.
fn host_ports(ctx: &Ctx, at: Place) -> Result<BTreeMap<u16, u16>, String> {
    let run = ctx
        .on_node(at.node, &format!("podman port {}", at.runtime()))
        .ok()?;
    // lines like "2379/tcp -> 0.0.0.0:40001"
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let parsed = l.split_once("->").and_then(|(inside, outside)| {
                let inside = inside.trim().trim_end_matches("/tcp").parse::<u16>().ok()?;
                let outside = outside.trim().rsplit(':').next()?.parse::<u16>().ok()?;
                Some((inside, outside))
            });
            parsed.ok_or_else(|| format!("unexpected `podman port` line {l:?}"))
        })
        .collect()
}

fn pids(ctx: &Ctx, places: &[Place]) -> Result<BTreeMap<&'static str, u32>, String> {
    places
        .iter()
        .map(|p| Ok((p.name, ctx.container_pid(p.node, &p.runtime())?)))
        .collect()
}

/// Whether the plan has the resource line of container `name` with `mark`
/// (`+` create, `-` destroy, `~` update in place, `-/+` replace), as terraform
/// prints it: `  ~ container "e2e-views-etcd-1" {`. Never a rules diff line.
fn plan_has(plan: &str, mark: &str, name: &str) -> bool {
    let line = format!("{mark} container \"{NAME}-{name}\"");
    plan.lines().any(|l| l.trim_start().starts_with(&line))
}

/// Rules added (`mark` '+') or removed ('-') in a plan's rules diff that mention
/// `text`. Rules are shown as `iptables-save` prints them (`-A CHAIN ...`), so an
/// added one reads `+-A ...` and a removed one `--A ...` whatever the indentation;
/// context lines (` -A ...`) never count. On nftables nodes rules are nft
/// syntax (`+        ip daddr ...`).
fn diff_lines(plan: &str, mark: char, text: &str) -> usize {
    let prefix = format!("{mark}-A ");
    plan.lines()
        .filter(|l| {
            let l = l.trim_start();
            let nft = l
                .strip_prefix(mark)
                .is_some_and(|rest| rest.trim_start().starts_with("ip daddr "));
            (l.starts_with(&prefix) || nft) && l.contains(text)
        })
        .count()
}

/// A listener on a node that this case started and stops, whatever happens.
struct Squatter<'a> {
    ctx: &'a Ctx,
    node: &'static str,
    pid: Option<u32>,
}

impl Squatter<'_> {
    /// Takes `port` on `node` with socat (its own session, its output nowhere, so
    /// the harness's command returns at once), and waits until it listens.
    fn start<'a>(ctx: &'a Ctx, node: &'static str, port: u16) -> Result<Squatter<'a>, String> {
        let run = ctx
            .on_node(
                node,
                &format!(
                    "setsid socat TCP-LISTEN:{port},reuseaddr,fork SYSTEM:true </dev/null >/dev/null 2>&1 & echo $!"
                ),
            )
            .ok()?;
        let pid = run
            .stdout
            .trim()
            .parse()
            .map_err(|_| format!("no listener pid: {}", run.describe()))?;
        let squatter = Squatter {
            ctx,
            node,
            pid: Some(pid),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ss = ctx.on_node(node, "ss -Htln").ok()?;
            let suffix = format!(":{port}");
            if ss.stdout.lines().any(|l| {
                l.split_whitespace()
                    .nth(3)
                    .is_some_and(|a| a.ends_with(&suffix))
            }) {
                return Ok(squatter);
            }
            ensure!(
                Instant::now() < deadline,
                "nothing listens on {node}:{port}\n{}",
                ss.describe()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Squatter<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let run = self.ctx.on_node(self.node, &format!("kill {pid}"));
            if run.code != 0 {
                eprintln!(
                    "views: could not stop the listener {pid} on {}\n{}",
                    self.node,
                    run.describe()
                );
            }
        }
    }
}

/// Builds the etcd image (images/etcd/build.sh) unless it is there, and loads it
/// into every node of the lab.
fn load_image(ctx: &Ctx) -> Outcome {
    let archive = manifest_dir().join("images/out/geartopo-etcd.tar");
    if !archive.exists() {
        let build = manifest_dir().join("images/etcd/build.sh");
        let out = std::process::Command::new(&build)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", build.display()))?;
        ensure!(
            out.status.success() && archive.exists(),
            "images/etcd/build.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let lab = ctx.lab.display().to_string();
    ctx.geartopo_here(&["lab", "load", &lab, &archive.display().to_string(), IMAGE])
        .ok()?;
    Ok(())
}

fn write_topology(ctx: &Ctx, replicas: usize, firewall: &str) -> Result<PathBuf, String> {
    Ok(ctx.topology(NAME, &example_body(replicas, firewall)?))
}

fn apply(ctx: &Ctx, file: &Path) -> Outcome {
    ctx.apply(file)?;
    Ok(())
}

/// The example's etcd cluster on three nodes with an observer on the fourth:
/// every member and the observer reach 192.168.1.1-3 on 2379/2380 (own address
/// included); etcd, configured only from its identity environment, forms a
/// healthy 3-member cluster with the view URLs; a put on one member is read on
/// another. Picked host ports stay clear of a port already taken and are kept by
/// every later plan. Scaling to 4 plans etcd-4 and a rules diff for every other
/// container, applied without restarting them (same pids); etcd-4 joins by
/// itself. Back to 3 (after `member remove`, as an operator does) removes
/// etcd-4 and every rule for 192.168.1.4, again without restarts.
pub fn etcd_cluster_forms_and_scales(ctx: &Ctx) -> Outcome {
    etcd_cluster_forms_and_scales_on(ctx, "iptables")
}

/// `etcd_cluster_forms_and_scales` with every node's firewall `firewall`
/// (`iptables` or `nftables`).
pub fn etcd_cluster_forms_and_scales_on(ctx: &Ctx, firewall: &str) -> Outcome {
    load_image(ctx)?;
    let file = write_topology(ctx, 3, firewall)?;
    let _guard = Guard::new(ctx, &file, NAME);
    let _squatter = Squatter::start(ctx, "node1", SQUATTED_PORT)?;

    // 3 members and the observer.
    let plan = ctx.plan(&file).expect(2)?;
    println!("views: plan, 3 members:\n{}", plan.stdout);
    for p in present(3) {
        ensure!(
            plan_has(&plan.stdout, "+", p.name),
            "first plan does not create {}:\n{}",
            p.name,
            plan.describe()
        );
    }
    ensure!(
        plan.stdout
            .contains("Plan: 4 to add, 0 to change, 0 to destroy."),
        "first plan summary:\n{}",
        plan.describe()
    );
    apply(ctx, &file)?;

    // Picked host ports: in range, clear of the taken port, kept by the next plan.
    let again = ctx.plan(&file).expect(0)?;
    ensure!(
        again.stdout.contains("No changes."),
        "plan after apply:\n{}",
        again.describe()
    );
    let mut ports = BTreeMap::new();
    for m in &MEMBERS[..3] {
        let p = host_ports(ctx, *m)?;
        ensure!(
            p.len() == 2 && p.contains_key(&2379) && p.contains_key(&2380),
            "{} publishes {p:?}",
            m.name
        );
        ensure!(
            PICK_RANGE.contains(&p[&2379]),
            "{}: picked {p:?} outside host_ports",
            m.name
        );
        ensure!(
            p[&2380] == GIVEN_PEER_PORT,
            "{}: 2380 not on the given host port: {p:?}",
            m.name
        );
        ports.insert(m.name, p);
    }
    ensure!(
        ports["etcd-1"][&2379] != SQUATTED_PORT,
        "geartopo picked {SQUATTED_PORT} on node1, which was taken: {:?}",
        ports["etcd-1"]
    );

    // The cluster forms through view addresses only.
    let ids = assert_membership(&wait_started(ctx, 3)?, 3)?;
    assert_view_reachable(ctx, 3, &ids)?;
    for m in &MEMBERS[..3] {
        let health = etcdctl(
            ctx,
            *m,
            &format!("--endpoints {} endpoint health --cluster", endpoints(3)),
        )
        .output();
        ensure!(
            health.matches("is healthy").count() == 3,
            "{}: endpoint health --cluster:\n{health}",
            m.name
        );
    }
    etcdctl(
        ctx,
        MEMBERS[0],
        "--endpoints http://192.168.1.1:2379 put /e2e/views written-on-etcd-1",
    )
    .ok()?;
    let read = etcdctl(
        ctx,
        MEMBERS[2],
        "--endpoints http://192.168.1.3:2379 get --print-value-only /e2e/views",
    )
    .ok()?;
    ensure!(
        read.stdout.trim() == "written-on-etcd-1",
        "etcd-3 read {:?}",
        read.stdout
    );

    // Scale to 4: etcd-4 planned, rules added in every other container, no restart.
    let before = pids(ctx, &present(3))?;
    write_topology(ctx, 4, firewall)?;
    let plan = ctx.plan(&file).expect(2)?;
    println!("views: plan, 3 -> 4 members:\n{}", plan.stdout);
    ensure!(
        plan_has(&plan.stdout, "+", "etcd-4"),
        "scale-up plan does not create etcd-4:\n{}",
        plan.describe()
    );
    for p in present(3) {
        ensure!(
            plan_has(&plan.stdout, "~", p.name),
            "scale-up plan does not update {} in place:\n{}",
            p.name,
            plan.describe()
        );
    }
    // One DNAT per view port for 192.168.1.4 in each of the 4 existing containers.
    ensure!(
        diff_lines(&plan.stdout, '+', "192.168.1.4") >= 8,
        "scale-up plan lacks the rules for 192.168.1.4:\n{}",
        plan.describe()
    );
    ensure!(
        plan.stdout
            .contains("Plan: 1 to add, 4 to change, 0 to destroy."),
        "scale-up summary:\n{}",
        plan.describe()
    );
    apply(ctx, &file)?;
    ensure!(
        pids(ctx, &present(3))? == before,
        "scaling up restarted existing containers"
    );

    // etcd-4's entrypoint adds it to the running cluster.
    let ids4 = assert_membership(&wait_started(ctx, 4)?, 4)?;
    ensure!(ids4["etcd-1"] == ids["etcd-1"], "etcd-1 changed identity");
    assert_view_reachable(ctx, 4, &ids4)?;
    let read = etcdctl(
        ctx,
        MEMBERS[3],
        "--endpoints http://192.168.1.4:2379 get --print-value-only /e2e/views",
    )
    .ok()?;
    ensure!(
        read.stdout.trim() == "written-on-etcd-1",
        "etcd-4 read {:?}",
        read.stdout
    );
    let p4 = host_ports(ctx, MEMBERS[3])?;
    ensure!(
        p4.len() == 2 && PICK_RANGE.contains(&p4[&2379]) && p4[&2380] == GIVEN_PEER_PORT,
        "etcd-4 publishes {p4:?}"
    );
    for m in &MEMBERS[..3] {
        ensure!(
            host_ports(ctx, *m)? == ports[m.name],
            "{}'s host ports moved on scale-up",
            m.name
        );
    }

    // Back to 3: the operator removes the member from etcd, then applies.
    etcdctl(
        ctx,
        MEMBERS[0],
        &format!(
            "--endpoints http://192.168.1.1:2379 member remove {}",
            ids4["etcd-4"]
        ),
    )
    .ok()?;
    write_topology(ctx, 3, firewall)?;
    let plan = ctx.plan(&file).expect(2)?;
    println!("views: plan, 4 -> 3 members:\n{}", plan.stdout);
    ensure!(
        plan_has(&plan.stdout, "-", "etcd-4"),
        "scale-down plan does not destroy etcd-4:\n{}",
        plan.describe()
    );
    ensure!(
        diff_lines(&plan.stdout, '-', "192.168.1.4") >= 8,
        "scale-down plan keeps the rules for 192.168.1.4:\n{}",
        plan.describe()
    );
    ensure!(
        plan.stdout
            .contains("Plan: 0 to add, 4 to change, 1 to destroy."),
        "scale-down summary:\n{}",
        plan.describe()
    );
    apply(ctx, &file)?;
    ensure!(
        pids(ctx, &present(3))? == before,
        "scaling down restarted existing containers"
    );
    ensure!(
        !ctx.containers_of("node4", NAME)?
            .contains(&MEMBERS[3].runtime()),
        "{} still exists on node4",
        MEMBERS[3].runtime()
    );
    for p in present(3) {
        let nat = match firewall {
            "nftables" => crate::nft_cases::container_table(ctx, p.node, &p.runtime())?,
            _ => ctx.container_nat(p.node, &p.runtime())?,
        };
        ensure!(
            !nat.contains("192.168.1.4"),
            "{} keeps rules for 192.168.1.4:\n{nat}",
            p.name
        );
        ensure!(
            nat.contains("192.168.1.3"),
            "{} lost its view rules:\n{nat}",
            p.name
        );
    }
    let gone = etcdctl(
        ctx,
        MEMBERS[0],
        "--endpoints http://192.168.1.4:2379 endpoint status",
    );
    ensure!(
        gone.code != 0,
        "192.168.1.4 still answers inside etcd-1:\n{}",
        gone.describe()
    );
    assert_membership(&wait_started(ctx, 3)?, 3)?;
    for m in &MEMBERS[..3] {
        ensure!(
            host_ports(ctx, *m)? == ports[m.name],
            "{}'s host ports moved on scale-down",
            m.name
        );
    }
    let again = ctx.plan(&file).expect(0)?;
    ensure!(
        again.stdout.contains("No changes."),
        "plan after scale-down:\n{}",
        again.describe()
    );
    Ok(())
}

/// No node needed: the example validates, and `links` shows every view address
/// in every member and the observer, a member's own one leading to 127.0.0.1.
pub fn example_links(ctx: &Ctx) -> Outcome {
    let example = manifest_dir()
        .join("examples/etcd-cluster.toml")
        .display()
        .to_string();
    ctx.geartopo_here(&["validate", &example]).ok()?;
    let out = ctx.geartopo_here(&["links", &example]).ok()?.stdout;
    for j in 1..=3 {
        for port in [2379, 2380] {
            let addr = format!("192.168.1.{j}:{port}");
            // once in each of the 3 members and the observer
            ensure!(
                out.matches(&addr).count() >= 4,
                "`links` shows {addr} fewer than 4 times:\n{out}"
            );
        }
    }
    ensure!(
        out.contains("127.0.0.1:2379") && out.contains("127.0.0.1:2380"),
        "no own-address links:\n{out}"
    );
    ensure!(
        !out.contains("192.168.1.4"),
        "`links` shows a 4th member:\n{out}"
    );
    Ok(())
}

/// Durable links (docs/durable.md): a member of the etcd view restarted with
/// `podman restart` comes back in a fresh namespace with its view addresses in
/// place (the hook), rejoins, and the cluster is healthy again with no geartopo
/// command in between: every member started, a value written through the
/// restarted member is read through another, and plan finds nothing to do.
pub fn etcd_member_restarted(ctx: &Ctx) -> Outcome {
    load_image(ctx)?;
    let file = write_topology(ctx, 3, "iptables")?;
    let _guard = Guard::new(ctx, &file, NAME);
    apply(ctx, &file)?;
    wait_started(ctx, 3)?;
    let member = MEMBERS[1];
    let before = pids(ctx, &[member])?;
    ctx.on_node(
        member.node,
        &format!("podman restart -t 2 {}", member.runtime()),
    )
    .ok()?;
    let after = pids(ctx, &[member])?;
    ensure!(before != after, "podman restart kept the pid {before:?}");
    let rows = wait_started(ctx, 3)?;
    assert_membership(&rows, 3)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let put = etcdctl(
            ctx,
            member,
            "--endpoints http://192.168.1.2:2379 put durable yes",
        );
        let get = etcdctl(
            ctx,
            MEMBERS[0],
            "--endpoints http://192.168.1.1:2379 get durable --print-value-only",
        );
        if put.code == 0 && get.stdout.trim() == "yes" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the cluster did not heal after the restart:\n{}\n{}",
            put.describe(),
            get.describe()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let plan = ctx.plan(&file);
    ensure!(
        plan.code == 0,
        "plan after a member's restart:\n{}",
        plan.describe()
    );
    Ok(())
}
