//! Rolling replacement of a real clustered server (issue 13): the 3-member etcd
//! view of `examples/etcd-rolling.toml` (data on named volumes, a health check
//! geartopo runs) gets a new image on every member while a client on the
//! observer writes a key every 100 ms through the view addresses. Driven
//! through the CLI as a user would; removes what it made (volumes and the extra
//! image tag included), also when it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::ensure;
use crate::harness::{Ctx, Outcome, Run};

const NAME: &str = "e2e-roll";
const IMAGE: &str = "localhost/geartopo-etcd:latest";
/// The same image under a second name: what the roll changes `image` to.
const NEW_IMAGE: &str = "localhost/geartopo-etcd:roll";
const MEMBERS: [(&str, &str); 3] = [
    ("node1", "etcd-1"),
    ("node2", "etcd-2"),
    ("node3", "etcd-3"),
];
const CLIENT: (&str, &str) = ("node4", "client");
const ENDPOINTS: &str = "http://192.168.1.1:2379,http://192.168.1.2:2379,http://192.168.1.3:2379";
/// The longest a client may fail to write (the issue's bound).
const MAX_GAP: f64 = 10.0;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn runtime_name(name: &str) -> String {
    format!("{NAME}-{name}")
}

/// The example's containers and view (not its name, id and nodes: the lab's),
/// with the members' image `image` (the observer keeps the first one).
fn body(image: &str) -> Result<String, String> {
    let path = manifest_dir().join("examples/etcd-rolling.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = String::new();
    let mut skipping = false;
    let mut in_etcd = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.starts_with("[nodes.");
            in_etcd = line == "[containers.etcd]";
        }
        if skipping || line.starts_with("name ") || line.starts_with("id ") {
            continue;
        }
        if in_etcd && line.starts_with("image ") {
            out.push_str(&format!("image    = \"{image}\"\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    ensure!(
        out.contains(&format!("image    = \"{image}\"")),
        "{} has no `image` line in [containers.etcd]; update this case",
        path.display()
    );
    Ok(out)
}

fn in_container(ctx: &Ctx, at: (&str, &str), command: &str) -> Run {
    ctx.on_node(
        at.0,
        &format!("podman exec {} {command}", runtime_name(at.1)),
    )
}

/// (id, status, name) of each member, as the members list them.
fn member_list(ctx: &Ctx) -> Result<Vec<(String, String, String)>, String> {
    let run = in_container(
        ctx,
        CLIENT,
        &format!("etcdctl --dial-timeout 3s --command-timeout 5s --endpoints {ENDPOINTS} member list -w simple"),
    )
    .ok()?;
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            ensure!(f.len() >= 5, "unexpected member list line: {l}");
            Ok((f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

/// Polls until the 3 members are listed as started; their ids by name.
fn wait_started(ctx: &Ctx) -> Result<BTreeMap<String, String>, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = member_list(ctx);
        if let Ok(rows) = &list {
            let names: BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
            if rows.len() == 3
                && rows.iter().all(|r| r.1 == "started")
                && names == BTreeSet::from(["etcd-1", "etcd-2", "etcd-3"])
            {
                return Ok(rows.iter().map(|r| (r.2.clone(), r.0.clone())).collect());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the 3 members did not all start within 90s: {list:?}"
            ));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The writer, in the observer: a put of /roll/N every 100 ms (after the last
/// one returned) through all three view addresses, each logged as
/// `UPTIME ok|fail N` until /tmp/roll-stop exists.
const WRITER: &str = r#"rm -f /tmp/roll-stop /tmp/roll.log; i=0
while [ ! -e /tmp/roll-stop ]; do
  i=$((i + 1))
  if etcdctl --endpoints ENDPOINTS --dial-timeout 1s --command-timeout 2s put /roll/$i $i >/dev/null 2>&1; then r=ok; else r=fail; fi
  echo "$(cut -d' ' -f1 /proc/uptime) $r $i" >> /tmp/roll.log
  sleep 0.1
done
echo done >> /tmp/roll.log"#;

/// (uptime seconds, ok, key number) per write.
fn writes(ctx: &Ctx) -> Result<Vec<(f64, bool, u64)>, String> {
    let run = in_container(ctx, CLIENT, "cat /tmp/roll.log").ok()?;
    Ok(run
        .stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let t = f.next()?.parse().ok()?;
            let ok = f.next()? == "ok";
            let n = f.next()?.parse().ok()?;
            Some((t, ok, n))
        })
        .collect())
}

/// The longest time between two successful writes, and where it ended.
fn longest_gap(w: &[(f64, bool, u64)]) -> (f64, f64) {
    let oks: Vec<f64> = w.iter().filter(|x| x.1).map(|x| x.0).collect();
    oks.windows(2)
        .map(|p| (p[1] - p[0], p[1]))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
}

/// The node's uptime, the writer's clock (one kernel for the whole lab).
fn uptime(ctx: &Ctx) -> Result<f64, String> {
    let run = ctx.on_node("node4", "cut -d' ' -f1 /proc/uptime").ok()?;
    run.stdout
        .trim()
        .parse()
        .map_err(|_| format!("uptime {:?}", run.stdout))
}

/// Removes what the case made beyond the topology's containers: its volumes
/// (destroy --volumes) and the second image name.
struct Cleanup<'a> {
    ctx: &'a Ctx,
    file: PathBuf,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let file = self.file.display().to_string();
        let _ = self
            .ctx
            .geartopo(&["destroy", &file, "--auto-approve", "--volumes"]);
        self.ctx.cleanup(&self.file, NAME);
        for (node, _) in MEMBERS.iter().chain([&CLIENT]) {
            let _ = self.ctx.on_node(
                node,
                &format!("ids=$(podman volume ls -q --filter label=geartopo.topology={NAME}); [ -z \"$ids\" ] || podman volume rm -f $ids; podman rmi {NEW_IMAGE} >/dev/null 2>&1; true"),
            );
        }
    }
}

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

/// Container events (unix nanoseconds, status, name) of this topology's members
/// on their nodes since `since` (unix seconds), by time.
fn events(ctx: &Ctx, since: u64) -> Result<Vec<(u128, String, String)>, String> {
    let mut all = Vec::new();
    for (node, _) in MEMBERS {
        let run = ctx
            .on_node(
                node,
                &format!("podman events --stream=false --since {since} --filter type=container --format '{{{{.Time.UnixNano}}}} {{{{.Status}}}} {{{{.Name}}}}'"),
            )
            .ok()?;
        for l in run.stdout.lines() {
            let mut f = l.split_whitespace();
            let (Some(t), Some(status), Some(name)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if let Ok(t) = t.parse::<u128>() {
                all.push((t, status.to_string(), name.to_string()));
            }
        }
    }
    all.sort();
    Ok(all)
}

/// The rolling upgrade: see the module's text. One case, so that the cluster is
/// formed once.
pub fn etcd_rolling_upgrade(ctx: &Ctx) -> Outcome {
    load_image(ctx)?;
    let file: PathBuf = ctx.topology(NAME, &body(IMAGE)?);
    let _cleanup = Cleanup {
        ctx,
        file: file.clone(),
    };
    let started = Instant::now();
    ctx.apply(&file)?;
    let ids = wait_started(ctx)?;
    // Named volumes hold each member's data.
    for (node, name) in MEMBERS {
        let run = ctx
            .on_node(
                node,
                &format!("podman inspect -f '{{{{range .Mounts}}}}{{{{.Type}}}} {{{{.Name}}}} {{{{.Destination}}}};{{{{end}}}}' {}", runtime_name(name)),
            )
            .ok()?;
        ensure!(
            run.stdout.contains("volume ") && run.stdout.contains(" /var/lib/etcd;"),
            "{name} has no volume at /var/lib/etcd: {}",
            run.stdout
        );
    }
    // A second name for the same image on each member's node.
    for (node, _) in MEMBERS {
        ctx.on_node(node, &format!("podman tag {IMAGE} {NEW_IMAGE}"))
            .ok()?;
    }

    // The writer runs in the observer through the whole roll.
    let writer = WRITER.replace("ENDPOINTS", ENDPOINTS);
    ctx.on_node(
        CLIENT.0,
        &format!(
            "podman exec -d {} sh -c {}",
            runtime_name(CLIENT.1),
            shell_quote(&writer)
        ),
    )
    .ok()?;
    std::thread::sleep(Duration::from_secs(2));
    let before = writes(ctx)?;
    ensure!(
        before.iter().filter(|w| w.1).count() >= 5,
        "the writer does not write: {before:?}"
    );

    // The plan says it will roll, and in which order.
    ctx.topology(NAME, &body(NEW_IMAGE)?);
    let plan = ctx.plan(&file).expect(2)?;
    println!("roll: plan:\n{}", plan.stdout);
    ensure!(
        plan.stdout.contains(
            "# view etcd will be replaced one at a time, each healthy before the next goes down:\n  #   etcd-1 -> etcd-2 -> etcd-3"
        ),
        "the plan does not announce the roll:\n{}",
        plan.describe()
    );
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs()
        .saturating_sub(1);
    let roll_start = uptime(ctx)?;
    let t0 = Instant::now();
    let applied = ctx.apply(&file)?;
    let roll_secs = t0.elapsed().as_secs_f64();
    let roll_end = uptime(ctx)?;
    println!("roll: apply ({roll_secs:.1}s):\n{}", applied.stdout);

    // The apply report: each member healthy before the next one went down.
    let line = |what: &str| {
        applied
            .stdout
            .lines()
            .position(|l| l.contains(what) && l.ends_with(": done"))
            .ok_or_else(|| format!("no `{what}: done` in the apply report:\n{}", applied.stdout))
    };
    for k in 0..3 {
        let name = runtime_name(MEMBERS[k].1);
        let removed = line(&format!("remove {name} to replace it (rolling)"))?;
        let healthy = line(&format!("health {name}"))?;
        ensure!(removed < healthy, "{name}: healthy before removed?");
        if k + 1 < 3 {
            let next = line(&format!(
                "remove {} to replace it (rolling)",
                runtime_name(MEMBERS[k + 1].1)
            ))?;
            ensure!(
                healthy < next,
                "{} went down before {name} was healthy:\n{}",
                MEMBERS[k + 1].1,
                applied.stdout
            );
        }
    }
    // The runtime's own event times: a member's old container died only after
    // the member before it was started again; never two down at once.
    let ev = events(ctx, since)?;
    println!("roll: container events:");
    for e in &ev {
        println!("  {} {} {}", e.0, e.1, e.2);
    }
    let mut down: BTreeSet<String> = BTreeSet::new();
    let mut most = 0;
    let mut seen_died = 0;
    for (_, status, name) in &ev {
        match status.as_str() {
            "died" => {
                down.insert(name.clone());
                seen_died += 1;
            }
            "start" => {
                down.remove(name);
            }
            _ => {}
        }
        most = most.max(down.len());
    }
    ensure!(
        seen_died == 3,
        "expected 3 members to die (one each), events: {ev:?}"
    );
    ensure!(most == 1, "{most} members were down at once: {ev:?}");

    // Stop the writer; its log says how long writes failed at most.
    in_container(ctx, CLIENT, "touch /tmp/roll-stop").ok()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let run = in_container(ctx, CLIENT, "tail -n 1 /tmp/roll.log").ok()?;
        if run.stdout.trim() == "done" || Instant::now() > deadline {
            break writes(ctx)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let during: Vec<_> = log
        .iter()
        .filter(|w| w.0 >= roll_start && w.0 <= roll_end)
        .collect();
    let failed = log.iter().filter(|w| !w.1).count();
    let (gap, gap_end) = longest_gap(&log);
    println!(
        "roll: {} writes ({} during the apply, {failed} failed); longest time without a successful write: {gap:.2}s (ending at uptime {gap_end:.2}; apply from {roll_start:.2} to {roll_end:.2})",
        log.len(),
        during.len()
    );
    ensure!(
        during.len() >= 10,
        "the writer wrote only {} times during the apply",
        during.len()
    );
    ensure!(
        gap.total_cmp(&MAX_GAP).is_lt(),
        "writes failed for {gap:.2}s at a stretch (at most {MAX_GAP}s)"
    );

    // Every key the writer wrote is still there (data on the volumes survived).
    let keys = in_container(
        ctx,
        CLIENT,
        &format!("etcdctl --dial-timeout 3s --command-timeout 10s --endpoints {ENDPOINTS} get --prefix /roll/ --keys-only"),
    )
    .ok()?;
    let have: BTreeSet<u64> = keys
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("/roll/")?.parse().ok())
        .collect();
    let written: Vec<u64> = log.iter().filter(|w| w.1).map(|w| w.2).collect();
    let lost: Vec<u64> = written
        .iter()
        .filter(|n| !have.contains(n))
        .copied()
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of {} keys written are gone after the roll: {:?}",
        lost.len(),
        written.len(),
        &lost[..lost.len().min(20)]
    );
    ensure!(
        before.iter().filter(|w| w.1).all(|w| have.contains(&w.2)),
        "a key written before the roll is gone"
    );

    // 3 started members, each the member it was (same id): rejoined as itself.
    let after = wait_started(ctx)?;
    ensure!(
        after == ids,
        "member ids changed: before {ids:?}, after {after:?}"
    );
    for (node, name) in MEMBERS {
        let run = ctx
            .on_node(
                node,
                &format!(
                    "podman inspect -f '{{{{.ImageName}}}}' {}",
                    runtime_name(name)
                ),
            )
            .ok()?;
        ensure!(
            run.stdout.trim() == NEW_IMAGE,
            "{name} runs {} after the roll",
            run.stdout.trim()
        );
    }
    // show tries each member's check in its read: all three healthy.
    let show = ctx.geartopo(&["show", &file.display().to_string()]).ok()?;
    for (_, name) in MEMBERS {
        let line = format!("{} on ", runtime_name(name));
        ensure!(
            show.stdout
                .lines()
                .any(|l| l.starts_with(&line) && l.ends_with(", healthy")),
            "show does not report {name} healthy:\n{}",
            show.stdout
        );
    }
    let again = ctx.plan(&file).expect(0)?;
    ensure!(again.stdout.contains("No changes."), "{}", again.describe());
    println!(
        "roll: case took {:.1}s (roll {roll_secs:.1}s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
