//! End-to-end cases for same-view clusters (issue 6): a real etcd cluster whose
//! members find each other only through view addresses, on the shared lab
//! (`tests/e2e/lab.toml`, nodes node1..node4 at 198.18.0.1..4), driven only
//! through the CLI as a user would. The harness owns the lab (up before the
//! cases, down after): nothing here brings it up or down, and every case removes
//! what it made, also when it fails.
//!
//! The topology is `examples/etcd-cluster.toml` itself, renamed `e2e-views`, so
//! the example is what is tested; scaling edits its `replicas`/`nodes` lines.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

/// One end-to-end case: a name and what it runs.
pub type Case = (&'static str, fn() -> Result<()>);

/// The cases of this file, for the harness's list.
pub fn cases() -> Vec<Case> {
    vec![
        ("views_example_shows_view_links", example_shows_view_links),
        (
            "views_etcd_cluster_forms_scales_and_keeps_ports",
            etcd_cluster_forms_scales_and_keeps_ports,
        ),
    ]
}

/// The example's topology is renamed, as every e2e case has its own `e2e-*` name.
const TOPOLOGY: &str = "e2e-views";
const IMAGE: &str = "localhost/geartopo-etcd:latest";
/// The first port of the example's `host_ports`: occupied on node1 before the
/// first apply, so a picker that ignores taken ports would choose it.
const SQUATTED_PORT: u16 = 40000;
/// The host port the example gives for the peer port (2379's is picked).
const GIVEN_PEER_PORT: u16 = 40380;
const THREE_NODES: &str = "replicas = 3\nnodes = [\"node1\", \"node2\", \"node3\"]";
const FOUR_NODES: &str = "replicas = 4\nnodes = [\"node1\", \"node2\", \"node3\", \"node4\"]";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn geartopo_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_geartopo"))
}

/// A finished command, kept whole so failures can show what it said.
struct Ran {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn from(what: String, out: Output) -> Ran {
        Ran {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The stdout of a command that must have succeeded.
    fn ok(self) -> Result<String> {
        self.expect_code(0).map(|r| r.stdout)
    }

    fn expect_code(self, code: i32) -> Result<Ran> {
        ensure!(
            self.code == Some(code),
            "`{}` exited {:?}, expected {code}\n--- stdout\n{}--- stderr\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
        Ok(self)
    }
}

fn run(mut cmd: Command) -> Result<Ran> {
    let what = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    Ok(Ran::from(what, out))
}

/// The shared e2e lab, reached only through `geartopo lab`.
struct Lab {
    file: PathBuf,
}

impl Lab {
    fn shared() -> Lab {
        Lab {
            file: repo().join("tests/e2e/lab.toml"),
        }
    }

    fn lab(&self, sub: &str) -> Command {
        let mut cmd = Command::new(geartopo_bin());
        cmd.arg("lab").arg(sub).arg(&self.file);
        cmd
    }

    /// `geartopo ARGS` where the lab's nodes are reachable (its SSH identity
    /// and known_hosts in effect), as a user runs plan and apply.
    fn geartopo(&self, args: &[&str]) -> Result<Ran> {
        let mut cmd = self.lab("exec");
        cmd.arg("--").arg(geartopo_bin()).args(args);
        run(cmd)
    }

    /// ARGS on NODE, as geartopo's own remote commands run there.
    fn on(&self, node: &str, args: &[&str]) -> Result<Ran> {
        let mut cmd = self.lab("exec");
        cmd.args(["--node", node, "--"]).args(args);
        run(cmd)
    }

    /// A shell command line on NODE (only constant, validated words in it).
    fn sh(&self, node: &str, script: &str) -> Result<Ran> {
        self.on(node, &["sh", "-c", script])
    }
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
        format!("{TOPOLOGY}-{}", self.name)
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

/// What the case made, removed on drop whatever happened.
struct Cleanup<'a> {
    lab: &'a Lab,
    topology: PathBuf,
    squatter: Option<u32>,
    _dir: tempfile::TempDir,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let topo = self.topology.to_string_lossy().into_owned();
        match self
            .lab
            .geartopo(&["destroy", &topo, "--auto-approve"])
            .and_then(Ran::ok)
        {
            Ok(_) => {}
            Err(e) => eprintln!("cleanup: destroy failed: {e:#}"),
        }
        if let Some(pid) = self.squatter.take() {
            if let Err(e) = self
                .lab
                .on("node1", &["kill", &pid.to_string()])
                .and_then(Ran::ok)
            {
                eprintln!("cleanup: could not stop the listener (pid {pid}) on node1: {e:#}");
            }
        }
    }
}

/// The example with `replicas` members (3 as written, or 4 on node1..node4).
fn topology_text(replicas: usize) -> Result<String> {
    let path = repo().join("examples/etcd-cluster.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    ensure!(
        text.contains(THREE_NODES),
        "{} no longer declares `{THREE_NODES}`; update this test with it",
        path.display()
    );
    ensure!(
        text.contains("\nname = \"kv\"\n"),
        "{} is no longer named kv",
        path.display()
    );
    let text = text.replace("\nname = \"kv\"\n", &format!("\nname = \"{TOPOLOGY}\"\n"));
    Ok(match replicas {
        3 => text,
        4 => text.replace(THREE_NODES, FOUR_NODES),
        n => bail!("no {n}-member variant"),
    })
}

/// `etcdctl` inside a container, with timeouts so an unreachable address fails fast.
fn etcdctl(lab: &Lab, at: Place, args: &[&str]) -> Result<Ran> {
    let name = at.runtime();
    let mut argv = vec![
        "podman",
        "exec",
        &name,
        "etcdctl",
        "--dial-timeout",
        "3s",
        "--command-timeout",
        "5s",
    ];
    argv.extend_from_slice(args);
    lab.on(at.node, &argv)
}

/// `member list -w simple` as (id, status, name, peer url, client url) rows.
fn member_list(lab: &Lab, at: Place, replicas: usize) -> Result<Vec<[String; 5]>> {
    let out = etcdctl(
        lab,
        at,
        &[
            "--endpoints",
            &endpoints(replicas),
            "member",
            "list",
            "-w",
            "simple",
        ],
    )?
    .ok()?;
    out.lines()
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

/// The member id answering at `endpoint`, from inside `at`.
fn answering_id(lab: &Lab, at: Place, endpoint: &str) -> Result<String> {
    let out = etcdctl(
        lab,
        at,
        &[
            "--endpoints",
            endpoint,
            "endpoint",
            "status",
            "-w",
            "simple",
        ],
    )?
    .ok()?;
    let id = out.split(',').nth(1).map(str::trim).unwrap_or_default();
    ensure!(
        !id.is_empty(),
        "no member id in `endpoint status` from {}: {out}",
        at.name
    );
    Ok(id.to_string())
}

/// Polls until the view's `replicas` members are all started, or fails with the list.
fn wait_started(lab: &Lab, replicas: usize) -> Result<Vec<[String; 5]>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = member_list(lab, CLIENT, replicas);
        if let Ok(rows) = &list {
            if rows.len() == replicas && rows.iter().all(|r| r[1] == "started") {
                return list;
            }
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = MEMBERS[..replicas]
                .iter()
                .map(|m| {
                    let logs = lab.on(m.node, &["podman", "logs", "--tail", "15", &m.runtime()]);
                    let text = logs
                        .map(|r| r.stdout + &r.stderr)
                        .unwrap_or_else(|e| e.to_string());
                    format!("--- {} log\n{text}", m.name)
                })
                .collect();
            bail!(
                "the {replicas} members did not all start within 90s: {list:?}\n{}",
                logs.join("\n")
            );
        }
        sleep(Duration::from_secs(2));
    }
}

/// Checks the members' view of their own cluster: exactly etcd-1..N, started,
/// each advertising its view address; returns each member's id by name.
fn assert_membership(rows: &[[String; 5]], replicas: usize) -> Result<BTreeMap<String, String>> {
    ensure!(
        rows.len() == replicas,
        "expected {replicas} members, got {rows:?}"
    );
    let mut ids = BTreeMap::new();
    for j in 1..=replicas {
        let name = format!("etcd-{j}");
        let row = rows
            .iter()
            .find(|r| r[2] == name)
            .with_context(|| format!("{name} missing from member list {rows:?}"))?;
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
/// both view ports (its own address included): the client port is answered by
/// etcd-j's id, the peer port by an etcd peer.
fn assert_view_reachable(lab: &Lab, replicas: usize, ids: &BTreeMap<String, String>) -> Result<()> {
    for at in present(replicas) {
        for j in 1..=replicas {
            let want = &ids[&format!("etcd-{j}")];
            let got = answering_id(lab, at, &format!("http://192.168.1.{j}:2379"))
                .with_context(|| format!("{} -> 192.168.1.{j}:2379", at.name))?;
            ensure!(
                &got == want,
                "{}: 192.168.1.{j}:2379 answered by {got}, not etcd-{j} ({want})",
                at.name
            );
            // etcd's peer port serves /version. busybox's `wget -T` crashes
            // (Debian 1.35 static build), so its own `timeout` bounds the wait.
            let url = format!("http://192.168.1.{j}:2380/version");
            let peer = lab
                .on(
                    at.node,
                    &[
                        "podman",
                        "exec",
                        &at.runtime(),
                        "timeout",
                        "10",
                        "wget",
                        "-q",
                        "-O",
                        "-",
                        &url,
                    ],
                )?
                .ok()?;
            ensure!(
                peer.contains("etcdserver"),
                "{}: {url} answered {peer:?}",
                at.name
            );
        }
    }
    Ok(())
}

/// Host ports published by a container: container port -> host port.
fn host_ports(lab: &Lab, at: Place) -> Result<BTreeMap<u16, u16>> {
    let out = lab.on(at.node, &["podman", "port", &at.runtime()])?.ok()?;
    // lines like "2379/tcp -> 0.0.0.0:40001"
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (inside, outside) = l
                .split_once("->")
                .with_context(|| format!("podman port line {l:?}"))?;
            let inside = inside.trim().trim_end_matches("/tcp").parse::<u16>()?;
            let outside = outside
                .trim()
                .rsplit(':')
                .next()
                .unwrap_or_default()
                .parse::<u16>()?;
            Ok((inside, outside))
        })
        .collect()
}

fn pids(lab: &Lab, places: &[Place]) -> Result<BTreeMap<&'static str, String>> {
    places
        .iter()
        .map(|p| {
            let pid = lab
                .on(
                    p.node,
                    &["podman", "inspect", "-f", "{{.State.Pid}}", &p.runtime()],
                )?
                .ok()?;
            Ok((p.name, pid.trim().to_string()))
        })
        .collect()
}

/// The nat table inside a container's network namespace, as on its node.
fn nat_rules(lab: &Lab, at: Place) -> Result<String> {
    let script = format!(
        "nsenter -t \"$(podman inspect -f '{{{{.State.Pid}}}}' {})\" -n iptables-save -t nat",
        at.runtime()
    );
    lab.sh(at.node, &script)?.ok()
}

/// Whether the plan has the resource line of container `name` with `mark`
/// (`+` create, `-` destroy, `~` update in place, `-/+` replace), as terraform
/// prints it: `  ~ container "e2e-views-etcd-1" {`. Not a rules diff line.
fn plan_has(plan: &str, mark: &str, name: &str) -> bool {
    let line = format!("{mark} container \"{TOPOLOGY}-{name}\"");
    plan.lines().any(|l| l.trim_start().starts_with(&line))
}

/// Rules added (`mark` '+') or removed ('-') in a plan's rules diff that mention
/// `text`. Rules are shown as `iptables-save` prints them (`-A CHAIN ...`), so an
/// added one reads `+-A ...` and a removed one `--A ...` whatever the indentation;
/// context lines (` -A ...`) never count.
fn diff_lines(plan: &str, mark: char, text: &str) -> usize {
    let prefix = format!("{mark}-A ");
    plan.lines()
        .filter(|l| l.trim_start().starts_with(&prefix) && l.contains(text))
        .count()
}

/// No lab needed: the example validates, and `links` shows every view address
/// in every member and the observer, a member's own one leading to 127.0.0.1.
fn example_shows_view_links() -> Result<()> {
    let example = repo().join("examples/etcd-cluster.toml");
    let mut validate = Command::new(geartopo_bin());
    validate.arg("validate").arg(&example);
    run(validate)?.ok()?;
    let mut links = Command::new(geartopo_bin());
    links.arg("links").arg(&example).env("NO_COLOR", "1");
    let out = run(links)?.ok()?;
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

fn etcd_cluster_forms_scales_and_keeps_ports() -> Result<()> {
    let lab = Lab::shared();
    let dir = tempfile::Builder::new()
        .prefix("gtV-e2e-views.")
        .tempdir()?;
    let topo = dir.path().join("kv.toml");
    let topo_s = topo.to_string_lossy().into_owned();

    // The image, built from Debian packages and loaded into every node.
    let images = dir.path().join("images");
    let mut build = Command::new(repo().join("images/etcd/build.sh"));
    build.arg("--out").arg(&images);
    run(build)?.ok()?;
    let archive = images.join("geartopo-etcd.tar");
    run({
        let mut c = lab.lab("load");
        c.arg(&archive).arg(IMAGE);
        c
    })?
    .ok()?;

    std::fs::write(&topo, topology_text(3)?)?;
    let mut cleanup = Cleanup {
        lab: &lab,
        topology: topo.clone(),
        squatter: None,
        _dir: dir,
    };

    // A port already taken on node1: the first one geartopo could pick there.
    let squat = format!(
        "setsid socat TCP-LISTEN:{SQUATTED_PORT},reuseaddr,fork SYSTEM:true </dev/null >/dev/null 2>&1 & echo $!"
    );
    let pid = lab.sh("node1", &squat)?.ok()?;
    cleanup.squatter = Some(
        pid.trim()
            .parse()
            .with_context(|| format!("listener pid {pid:?}"))?,
    );
    wait_listening(&lab, "node1", SQUATTED_PORT)?;

    // Plan and apply 3 members and the observer.
    let plan = lab
        .geartopo(&["plan", &topo_s, "--detailed-exitcode"])?
        .expect_code(2)?
        .stdout;
    eprintln!("--- plan, 3 members (for the README)\n{plan}");
    for p in present(3) {
        ensure!(
            plan_has(&plan, "+", p.name),
            "first plan does not create {}:\n{plan}",
            p.name
        );
    }
    ensure!(
        plan.contains("Plan: 4 to add, 0 to change, 0 to destroy."),
        "first plan summary:\n{plan}"
    );
    lab.geartopo(&["apply", &topo_s, "--auto-approve"])?.ok()?;

    // Picked host ports: kept by the next plan, clear of the taken port, distinct.
    let no_changes = lab
        .geartopo(&["plan", &topo_s, "--detailed-exitcode"])?
        .expect_code(0)?
        .stdout;
    ensure!(
        no_changes.contains("No changes."),
        "plan after apply:\n{no_changes}"
    );
    let mut ports = BTreeMap::new();
    for m in &MEMBERS[..3] {
        let p = host_ports(&lab, *m)?;
        ensure!(
            p.len() == 2 && p.contains_key(&2379) && p.contains_key(&2380),
            "{} publishes {p:?}",
            m.name
        );
        ensure!(
            p[&2379] != p[&2380],
            "{} got one host port twice: {p:?}",
            m.name
        );
        ensure!(
            (40000..=40999).contains(&p[&2379]),
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
        !ports["etcd-1"].values().any(|&hp| hp == SQUATTED_PORT),
        "geartopo picked {SQUATTED_PORT} on node1, already taken: {:?}",
        ports["etcd-1"]
    );

    // The cluster forms through view addresses only.
    let ids = assert_membership(&wait_started(&lab, 3)?, 3)?;
    assert_view_reachable(&lab, 3, &ids)?;
    for m in &MEMBERS[..3] {
        let health = etcdctl(
            &lab,
            *m,
            &[
                "--endpoints",
                &endpoints(3),
                "endpoint",
                "health",
                "--cluster",
            ],
        )?
        .ok()?;
        ensure!(
            health.matches("is healthy").count() == 3,
            "{}: endpoint health --cluster:\n{health}",
            m.name
        );
    }
    etcdctl(
        &lab,
        MEMBERS[0],
        &[
            "--endpoints",
            "http://192.168.1.1:2379",
            "put",
            "/e2e/views",
            "written on etcd-1",
        ],
    )?
    .ok()?;
    let read = etcdctl(
        &lab,
        MEMBERS[2],
        &[
            "--endpoints",
            "http://192.168.1.3:2379",
            "get",
            "--print-value-only",
            "/e2e/views",
        ],
    )?
    .ok()?;
    ensure!(read.trim() == "written on etcd-1", "etcd-3 read {read:?}");

    // Scale to 4: etcd-4 planned, rules added in every other container, no restart.
    let before = pids(&lab, &present(3))?;
    std::fs::write(&topo, topology_text(4)?)?;
    let plan = lab
        .geartopo(&["plan", &topo_s, "--detailed-exitcode"])?
        .expect_code(2)?
        .stdout;
    eprintln!("--- plan, 3 -> 4 members (for the README)\n{plan}");
    ensure!(
        plan_has(&plan, "+", "etcd-4"),
        "scale-up plan does not create etcd-4:\n{plan}"
    );
    for p in present(3) {
        ensure!(
            plan_has(&plan, "~", p.name),
            "scale-up plan does not update {} in place:\n{plan}",
            p.name
        );
        ensure!(
            !plan_has(&plan, "-/+", p.name),
            "scale-up plan replaces {}:\n{plan}",
            p.name
        );
    }
    // A DNAT per view port for 192.168.1.4 in each of the 4 existing containers.
    ensure!(
        diff_lines(&plan, '+', "192.168.1.4") >= 8,
        "scale-up plan lacks the 192.168.1.4 rules:\n{plan}"
    );
    ensure!(
        plan.contains("Plan: 1 to add, 4 to change, 0 to destroy."),
        "scale-up summary:\n{plan}"
    );
    lab.geartopo(&["apply", &topo_s, "--auto-approve"])?.ok()?;
    ensure!(
        pids(&lab, &present(3))? == before,
        "existing containers restarted on scale-up"
    );

    // The entrypoint of etcd-4 adds itself to the running cluster.
    let ids4 = assert_membership(&wait_started(&lab, 4)?, 4)?;
    ensure!(ids4["etcd-1"] == ids["etcd-1"], "etcd-1 changed identity");
    assert_view_reachable(&lab, 4, &ids4)?;
    let read = etcdctl(
        &lab,
        MEMBERS[3],
        &[
            "--endpoints",
            "http://192.168.1.4:2379",
            "get",
            "--print-value-only",
            "/e2e/views",
        ],
    )?
    .ok()?;
    ensure!(read.trim() == "written on etcd-1", "etcd-4 read {read:?}");
    let p4 = host_ports(&lab, MEMBERS[3])?;
    ensure!(
        p4.len() == 2 && (40000..=40999).contains(&p4[&2379]) && p4[&2380] == GIVEN_PEER_PORT,
        "etcd-4 publishes {p4:?}"
    );
    for m in &MEMBERS[..3] {
        ensure!(
            host_ports(&lab, *m)? == ports[m.name],
            "{}'s host ports moved on scale-up",
            m.name
        );
    }

    // Back to 3: the operator removes the member from etcd, then applies.
    etcdctl(
        &lab,
        MEMBERS[0],
        &[
            "--endpoints",
            "http://192.168.1.1:2379",
            "member",
            "remove",
            &ids4["etcd-4"],
        ],
    )?
    .ok()?;
    std::fs::write(&topo, topology_text(3)?)?;
    let plan = lab
        .geartopo(&["plan", &topo_s, "--detailed-exitcode"])?
        .expect_code(2)?
        .stdout;
    eprintln!("--- plan, 4 -> 3 members\n{plan}");
    ensure!(
        plan_has(&plan, "-", "etcd-4"),
        "scale-down plan does not destroy etcd-4:\n{plan}"
    );
    ensure!(
        diff_lines(&plan, '-', "192.168.1.4") >= 8,
        "scale-down plan keeps the 192.168.1.4 rules:\n{plan}"
    );
    ensure!(
        plan.contains("Plan: 0 to add, 4 to change, 1 to destroy."),
        "scale-down summary:\n{plan}"
    );
    lab.geartopo(&["apply", &topo_s, "--auto-approve"])?.ok()?;
    ensure!(
        pids(&lab, &present(3))? == before,
        "existing containers restarted on scale-down"
    );
    let gone = lab.on(
        "node4",
        &["podman", "container", "exists", &MEMBERS[3].runtime()],
    )?;
    ensure!(
        gone.code == Some(1),
        "kv-etcd-4 still exists on node4 (exit {:?})",
        gone.code
    );
    for p in present(3) {
        let nat = nat_rules(&lab, p)?;
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
        &lab,
        MEMBERS[0],
        &[
            "--endpoints",
            "http://192.168.1.4:2379",
            "endpoint",
            "status",
        ],
    )?;
    ensure!(
        gone.code != Some(0),
        "192.168.1.4 still answers from etcd-1:\n{}",
        gone.stdout
    );
    assert_membership(&wait_started(&lab, 3)?, 3)?;
    for m in &MEMBERS[..3] {
        ensure!(
            host_ports(&lab, *m)? == ports[m.name],
            "{}'s host ports moved on scale-down",
            m.name
        );
    }
    let no_changes = lab
        .geartopo(&["plan", &topo_s, "--detailed-exitcode"])?
        .expect_code(0)?
        .stdout;
    ensure!(
        no_changes.contains("No changes."),
        "plan after scale-down:\n{no_changes}"
    );

    // Destroy leaves no container of the topology on any node.
    lab.geartopo(&["destroy", &topo_s, "--auto-approve"])?
        .ok()?;
    for node in ["node1", "node2", "node3", "node4"] {
        let filter = format!("label=geartopo.topology={TOPOLOGY}");
        let left = lab
            .on(node, &["podman", "ps", "-a", "-q", "--filter", &filter])?
            .ok()?;
        ensure!(
            left.trim().is_empty(),
            "destroy left containers on {node}: {left}"
        );
    }
    Ok(())
}

/// Waits until something listens on `port` on `node` (the listener we started).
fn wait_listening(lab: &Lab, node: &str, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ss = lab.on(node, &["ss", "-Htln"])?.ok()?;
        if ss.lines().any(|l| {
            l.split_whitespace()
                .nth(3)
                .is_some_and(|a| a.ends_with(&format!(":{port}")))
        }) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "nothing listens on {node}:{port}:\n{ss}"
        );
        sleep(Duration::from_millis(200));
    }
}
