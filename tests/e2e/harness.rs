//! The end-to-end harness: one shared lab (tests/e2e/lab.toml, named after the
//! run) for every case, cases run one after another, the lab always taken down at the end (also when a
//! case fails or panics), then checked to have left nothing behind. Cases get the
//! helpers below; they must not touch anything outside the lab.

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a case returns: `Err` carries the reason it failed.
pub type Outcome = Result<(), String>;
/// A named case.
pub type Case = (&'static str, fn(&Ctx) -> Outcome);

/// The image every case runs (images/build.sh).
pub const IMAGE: &str = "localhost/geartopo-busybox:latest";

/// Fails the case with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set once the harness takes the lab down: from then on nothing is cut short.
static TEARING_DOWN: AtomicBool = AtomicBool::new(false);

/// Ctrl-C (or SIGTERM) stops the case at hand; the lab still goes down.
fn cut_short() -> bool {
    INTERRUPTED.load(Ordering::SeqCst) && !TEARING_DOWN.load(Ordering::SeqCst)
}

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A finished command.
#[derive(Debug, Clone)]
pub struct Run {
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// How long it took, in seconds.
    pub secs: f64,
}

impl Run {
    /// The run, or an error showing all of it when the exit code is not `code`.
    pub fn expect(self, code: i32) -> Result<Run, String> {
        if self.code == code {
            Ok(self)
        } else {
            Err(format!(
                "expected exit code {code}, got {}\n{}",
                self.code,
                self.describe()
            ))
        }
    }
    /// Shorthand for `expect(0)`.
    pub fn ok(self) -> Result<Run, String> {
        self.expect(0)
    }
    pub fn describe(&self) -> String {
        format!(
            "$ {}\n[exit {}, {:.1}s]\n--- stdout\n{}--- stderr\n{}---",
            self.command, self.code, self.secs, self.stdout, self.stderr
        )
    }
    /// stdout and stderr together, for "the output mentions X" checks.
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// What every case gets: how to reach the lab and its nodes.
pub struct Ctx {
    /// The geartopo binary under test.
    pub bin: PathBuf,
    /// tests/e2e/lab.toml
    pub lab: PathBuf,
    /// (node name, address), in name order.
    pub nodes: Vec<(String, String)>,
    /// The nodes whose runtime is docker (lab.toml's `runtime = "docker"`).
    pub docker_nodes: Vec<String>,
    /// Unique per run: use it in anything that must not collide with an earlier run.
    pub run_id: String,
    /// `root_namespace_snapshot()` taken before the lab went up.
    pub root_before: String,
    tmp: PathBuf,
    transcript: RefCell<Vec<String>>,
}

/// Runs a command with a deadline; the child gets its own process group so that
/// a timeout kills everything it started.
fn run_command(mut cmd: Command, display: String, timeout: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.process_group(0);
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                command: display,
                code: -1,
                stdout: String::new(),
                stderr: format!("cannot run: {e}"),
                secs: 0.0,
            }
        }
    };
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let (mut timed_out, mut interrupted) = (false, false);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline && !cut_short() => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                interrupted = cut_short();
                timed_out = !interrupted;
                // SAFETY: kill(2) on the process group we made for this child.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                break child.wait().ok();
            }
            Err(_) => break None,
        }
    };
    let stdout = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    let mut stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    if interrupted {
        stderr.push_str("\n[harness: interrupted]\n");
    }
    if timed_out {
        stderr.push_str(&format!(
            "\n[harness: killed after {}s]\n",
            timeout.as_secs()
        ));
    }
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    let secs = started.elapsed().as_secs_f64();
    if std::env::var_os("GEARTOPO_E2E_VERBOSE").is_some() {
        println!("    {display}  [exit {code}, {secs:.1}s]");
    }
    Run {
        command: display,
        code,
        stdout,
        stderr,
        secs,
    }
}

fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Ctx {
    const TIMEOUT: Duration = Duration::from_secs(180);

    fn record(&self, run: &Run) {
        self.transcript.borrow_mut().push(run.describe());
    }

    /// The same harness over a lab of its own (a case that needs nodes the shared
    /// lab cannot have): `text` is written beside the run's topologies as
    /// `file_name`, and is that lab's file; the caller brings it up and down.
    pub fn with_own_lab(&self, file_name: &str, text: &str, nodes: Vec<(String, String)>) -> Ctx {
        let lab = self.tmp.join(file_name);
        std::fs::write(&lab, text).expect("write the lab's file");
        self.transcript
            .borrow_mut()
            .push(format!("# {}:\n{text}", lab.display()));
        Ctx {
            bin: self.bin.clone(),
            lab,
            nodes,
            docker_nodes: Vec::new(),
            run_id: self.run_id.clone(),
            root_before: self.root_before.clone(),
            tmp: self.tmp.clone(),
            transcript: RefCell::new(Vec::new()),
        }
    }

    /// Appends another harness's transcript to this one's (shown when a case fails).
    pub fn take_transcript(&self, other: &Ctx) {
        let lines = std::mem::take(&mut *other.transcript.borrow_mut());
        self.transcript.borrow_mut().extend(lines);
    }

    /// Runs the geartopo binary on this machine (not in the lab): `lab ...` commands.
    pub fn geartopo_here(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).env("NO_COLOR", "1");
        let run = run_command(
            cmd,
            format!("geartopo {}", shell_words(args)),
            Self::TIMEOUT,
        );
        self.record(&run);
        run
    }

    /// Runs geartopo where the lab's nodes are reachable (`lab exec LAB -- geartopo ARGS`),
    /// with the lab's SSH identity and known_hosts, as a user of the lab would.
    pub fn geartopo(&self, args: &[&str]) -> Run {
        let bin = self.bin.display().to_string();
        let lab = self.lab.display().to_string();
        let mut full = vec!["lab", "exec", &lab, "--", &bin];
        full.extend_from_slice(args);
        let mut cmd = Command::new(&self.bin);
        cmd.args(&full).env("NO_COLOR", "1");
        let run = run_command(
            cmd,
            format!("geartopo {}", shell_words(args)),
            Self::TIMEOUT,
        );
        self.record(&run);
        run
    }

    /// Runs a command in the lab's control namespace (where geartopo runs).
    pub fn in_control(&self, script: &str) -> Run {
        let lab = self.lab.display().to_string();
        let mut cmd = Command::new(&self.bin);
        cmd.args(["lab", "exec", &lab, "--", "sh", "-c", script]);
        let run = run_command(cmd, format!("[control] {script}"), Self::TIMEOUT);
        self.record(&run);
        run
    }

    /// Runs a shell script on a node, exactly as geartopo's remote commands run
    /// there (`lab exec --node`): its namespace, its podman store.
    pub fn on_node(&self, node: &str, script: &str) -> Run {
        let lab = self.lab.display().to_string();
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "lab", "exec", &lab, "--node", node, "--", "sh", "-c", script,
        ]);
        let run = run_command(cmd, format!("[{node}] {script}"), Self::TIMEOUT);
        self.record(&run);
        run
    }

    /// The runtime binary of a node: `docker` or `podman`.
    pub fn runtime(&self, node: &str) -> &'static str {
        if self.docker_nodes.iter().any(|n| n == node) {
            "docker"
        } else {
            "podman"
        }
    }

    /// The address of a lab node.
    pub fn address(&self, node: &str) -> &str {
        &self
            .nodes
            .iter()
            .find(|(n, _)| n == node)
            .unwrap_or_else(|| panic!("no lab node {node}"))
            .1
    }

    /// Writes a topology named `name` over the lab's nodes, with `body` (containers,
    /// views) after the nodes; returns its path. Writing it again replaces it.
    pub fn topology(&self, name: &str, body: &str) -> PathBuf {
        let mut text = format!("name = \"{name}\"\n\n");
        for (node, address) in &self.nodes {
            text.push_str(&format!("[nodes.{node}]\naddress = \"{address}\"\n"));
            if self.runtime(node) == "docker" {
                text.push_str("runtime = \"docker\"\n");
            }
            text.push('\n');
        }
        text.push_str(body);
        let path = self.tmp.join(format!("{name}.toml"));
        std::fs::write(&path, &text).expect("write topology");
        self.transcript
            .borrow_mut()
            .push(format!("# {}:\n{text}", path.display()));
        path
    }

    /// `geartopo apply FILE --auto-approve`, expecting success.
    pub fn apply(&self, file: &Path) -> Result<Run, String> {
        self.geartopo(&["apply", &file.display().to_string(), "--auto-approve"])
            .ok()
    }

    /// `geartopo plan FILE --detailed-exitcode`: 0 no changes, 2 changes, 1 error.
    pub fn plan(&self, file: &Path) -> Run {
        self.geartopo(&["plan", &file.display().to_string(), "--detailed-exitcode"])
    }

    /// The pid of a container's process (its network namespace is /proc/PID/ns/net).
    pub fn container_pid(&self, node: &str, container: &str) -> Result<u32, String> {
        let run = self
            .on_node(
                node,
                &format!(
                    "{} inspect --format '{{{{.State.Pid}}}}' {container}",
                    self.runtime(node)
                ),
            )
            .ok()?;
        let pid: u32 = run
            .stdout
            .trim()
            .parse()
            .map_err(|_| format!("no pid for {container}: {}", run.describe()))?;
        ensure!(pid > 0, "{container} on {node} is not running (pid 0)");
        Ok(pid)
    }

    /// `iptables-save -t nat` inside a container's network namespace.
    pub fn container_nat(&self, node: &str, container: &str) -> Result<String, String> {
        let pid = self.container_pid(node, container)?;
        Ok(self
            .on_node(node, &format!("nsenter -t {pid} -n iptables-save -t nat"))
            .ok()?
            .stdout)
    }

    /// `iptables-save -t filter` inside a container's network namespace.
    pub fn container_filter(&self, node: &str, container: &str) -> Result<String, String> {
        let pid = self.container_pid(node, container)?;
        Ok(self
            .on_node(
                node,
                &format!("nsenter -t {pid} -n iptables-save -t filter"),
            )
            .ok()?
            .stdout)
    }

    /// `iptables-save -t filter` in the node's own namespace.
    pub fn node_filter(&self, node: &str) -> Result<String, String> {
        Ok(self.on_node(node, "iptables-save -t filter").ok()?.stdout)
    }

    /// Runs iptables (arguments as a shell string) inside a container's namespace.
    pub fn container_iptables(
        &self,
        node: &str,
        container: &str,
        args: &str,
    ) -> Result<Run, String> {
        let pid = self.container_pid(node, container)?;
        self.on_node(node, &format!("nsenter -t {pid} -n iptables {args}"))
            .ok()
    }

    /// `iptables-save -t nat` in the node's own namespace.
    pub fn node_nat(&self, node: &str) -> Result<String, String> {
        Ok(self.on_node(node, "iptables-save -t nat").ok()?.stdout)
    }

    /// From inside `container`: sends one line to HOST:PORT over PROTO and returns
    /// the reply line (the image's `gt-ask`).
    pub fn ask(
        &self,
        node: &str,
        container: &str,
        proto: &str,
        host: &str,
        port: u16,
        msg: &str,
    ) -> Result<String, String> {
        let run = self.on_node(
            node,
            &format!(
                "{} exec {container} gt-ask {proto} {host} {port} {msg}",
                self.runtime(node)
            ),
        );
        if run.code != 0 || run.stdout.trim().is_empty() {
            return Err(format!(
                "no answer from {proto} {host}:{port} inside {container} on {node}\n{}",
                run.describe()
            ));
        }
        Ok(run.stdout.trim().to_string())
    }

    /// Names of the containers on `node` labelled with topology `name`.
    pub fn containers_of(&self, node: &str, name: &str) -> Result<Vec<String>, String> {
        let run = self
            .on_node(
                node,
                &format!(
                    "{} ps --all --filter label=geartopo.topology={name} --format '{{{{.Names}}}}'",
                    self.runtime(node)
                ),
            )
            .ok()?;
        Ok(run
            .stdout
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Removes what a case's topology left: `destroy`, then, whatever destroy
    /// could not, by label on every node. Never fails: it runs after failures.
    pub fn cleanup(&self, file: &Path, name: &str) {
        let _ = self.geartopo(&["destroy", &file.display().to_string(), "--auto-approve"]);
        for (node, _) in &self.nodes {
            let _ = self.on_node(
                node,
                &format!("rt={}; ids=$($rt ps -aq --filter label=geartopo.topology={name}); [ -z \"$ids\" ] || $rt rm -f $ids; vs=$($rt volume ls -q --filter label=geartopo.topology={name}); [ -z \"$vs\" ] || $rt volume rm $vs", self.runtime(node)),
            );
        }
    }
}

/// Removes a case's topology when dropped, so a failing case cleans up too.
pub struct Guard<'a> {
    ctx: &'a Ctx,
    file: PathBuf,
    name: String,
}

impl<'a> Guard<'a> {
    pub fn new(ctx: &'a Ctx, file: &Path, name: &str) -> Guard<'a> {
        Guard {
            ctx,
            file: file.to_path_buf(),
            name: name.to_string(),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.ctx.cleanup(&self.file, &self.name);
    }
}

/// Lines of an iptables-save dump that mention `marker`, in order.
pub fn lines_with(dump: &str, marker: &str) -> Vec<String> {
    dump.lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

/// What the machine's own (root) network namespace holds: interfaces, addresses,
/// routes, rules, iptables. The lab must leave it exactly as it was.
pub fn root_namespace_snapshot() -> String {
    let sh = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_else(|e| format!("cannot run {script}: {e}"))
    };
    let mut snap = String::new();
    snap += &sh("ip -o link show | awk '{print $2}'");
    snap += &sh("ip -o addr show | awk '{print $2, $3, $4}'");
    // Router-advertised routes count down their lifetime: not a change.
    snap += &sh("ip route show table all | sed 's/ expires [0-9]*sec//'");
    snap += &sh("ip rule show");
    // Counters move with traffic; the rules are what matters.
    snap += &sh("iptables-save 2>/dev/null | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//'");
    snap
}

/// docker0 or docker's iptables chains in the machine's root namespace, if any.
pub fn root_docker_traces() -> Option<String> {
    let out = Command::new("sh")
        .args([
            "-c",
            "ip -o link show | grep -w docker0; iptables-save 2>/dev/null | grep -E '^:DOCKER'",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    (!out.trim().is_empty()).then_some(out)
}

/// The lines that differ between two snapshots, for a readable failure.
pub fn snapshot_difference(before: &str, after: &str) -> String {
    let gone: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    let new: Vec<&str> = after
        .lines()
        .filter(|l| !before.lines().any(|b| b == *l))
        .collect();
    format!("gone: {gone:#?}\nnew: {new:#?}")
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the image unless it is there already; returns the image archive.
fn ensure_image() -> Result<PathBuf, String> {
    let dir = manifest_dir().join("images/out");
    let archive = dir.join("geartopo-busybox.tar");
    if archive.exists() && dir.join("geartopo-busybox-rootfs.tar").exists() {
        return Ok(archive);
    }
    let run = run_command(
        Command::new(manifest_dir().join("images/build.sh")),
        "images/build.sh".into(),
        Duration::from_secs(300),
    );
    if run.code != 0 {
        return Err(format!("cannot build the test image\n{}", run.describe()));
    }
    Ok(archive)
}

/// Takes down the labs of earlier e2e runs whose process is gone (killed before
/// they could clean up). A lab of a run still going is left alone.
fn remove_stale_labs(ctx: &Ctx) {
    let Ok(dir) = std::fs::read_dir(geartopo::lab::LAB_ROOT) else {
        return;
    };
    for entry in dir.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("e2e-")
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if !process_alive(pid) {
            println!("e2e: taking down {name}, left by a run that was killed");
            let _ = ctx.geartopo_here(&["lab", "down", "--name", &name]);
        }
    }
}

/// The pids in the pid files called `file` of every node (`sshd.pid`, `dockerd.pid`).
fn node_pids(nodes: &Path, file: &str) -> Vec<i32> {
    std::fs::read_dir(nodes)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join(file)).ok())
                .filter_map(|s| s.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| !r.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Namespaces under /run/netns whose name starts with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the cases whose name contains one of the filters (all without filters);
/// returns the process exit code.
pub fn main(cases: &[Case]) -> i32 {
    let started = Instant::now();
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let selected: Vec<&Case> = cases
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();

    if std::env::var("GEARTOPO_E2E").as_deref() == Ok("skip") {
        println!("e2e: skipped by GEARTOPO_E2E=skip (nothing was tested)");
        return 0;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "e2e: these tests run real hosts (network namespaces, sshd, podman) and need root: \
             `sudo -E cargo test --test e2e`, or `.ci/run`. GEARTOPO_E2E=skip skips them."
        );
        println!("e2e: 0 passed, 1 failed");
        return 1;
    }
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }

    let tmp = std::env::temp_dir().join(format!("geartopo-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    // Each run has its own lab, named after its pid: runs on one machine (several
    // developers, or CI beside a developer) never take each other's lab down. The
    // nodes keep tests/e2e/lab.toml's addresses; labs do not share a bridge.
    let lab_name = format!("e2e-{}", std::process::id());
    let source = std::fs::read_to_string(manifest_dir().join("tests/e2e/lab.toml"))
        .expect("tests/e2e/lab.toml");
    let lab = tmp.join("lab.toml");
    std::fs::write(
        &lab,
        source.replacen("name = \"e2e\"", &format!("name = \"{lab_name}\""), 1),
    )
    .expect("write lab.toml");
    let ctx = Ctx {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_geartopo")),
        lab: lab.clone(),
        nodes: (1..=5)
            .map(|i| (format!("node{i}"), format!("198.18.0.{i}")))
            .collect(),
        docker_nodes: vec!["node5".to_string()],
        run_id: format!("{}", std::process::id()),
        root_before: root_namespace_snapshot(),
        tmp: tmp.clone(),
        transcript: RefCell::new(Vec::new()),
    };
    let lab_arg = lab.display().to_string();
    let docker_before = root_docker_traces();

    let mut passed = 0;
    let mut failures: Vec<(String, String)> = Vec::new();

    // Labs left by earlier runs that were killed (their pid is gone) go first.
    remove_stale_labs(&ctx);
    let setup = (|| -> Result<(), String> {
        let image = ensure_image()?;
        println!("e2e: lab up {}", lab.display());
        let up = ctx.geartopo_here(&["lab", "up", &lab_arg]).ok()?;
        print!("{}", up.stdout);
        ctx.geartopo_here(&["lab", "load", &lab_arg, &image.display().to_string(), IMAGE])
            .ok()?;
        Ok(())
    })();
    // What the lab is made of, from the library's own naming, to check after down.
    let layout = geartopo::lab::Layout::new(Path::new(geartopo::lab::LAB_ROOT), &lab_name);
    let sshd = node_pids(&layout.nodes_dir(), "sshd.pid");
    let dockerd = node_pids(&layout.nodes_dir(), "dockerd.pid");

    match setup {
        Err(e) => failures.push(("lab setup".into(), e)),
        Ok(()) => {
            println!("e2e: running {} case(s)", selected.len());
            for (name, case) in &selected {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    failures.push((name.to_string(), "not run: interrupted".into()));
                    continue;
                }
                ctx.transcript.borrow_mut().clear();
                let t = Instant::now();
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&ctx)))
                    .unwrap_or_else(|p| {
                        Err(format!(
                            "panicked: {}",
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                        ))
                    });
                match result {
                    Ok(()) => {
                        passed += 1;
                        println!("case {name} ... ok ({:.1}s)", t.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        println!("case {name} ... FAILED ({:.1}s)", t.elapsed().as_secs_f64());
                        let transcript = ctx.transcript.borrow().join("\n");
                        failures.push((
                            name.to_string(),
                            format!("{e}\n\ntranscript of the case:\n{transcript}"),
                        ));
                    }
                }
            }
        }
    }

    // Always down, then check that down left nothing.
    TEARING_DOWN.store(true, Ordering::SeqCst);
    let down = ctx.geartopo_here(&["lab", "down", &lab_arg]);
    print!("{}", down.stdout);
    let mut left = Vec::new();
    if down.code != 0 {
        left.push(format!("lab down failed\n{}", down.describe()));
    }
    let ns = namespaces_with_prefix(&layout.ns_prefix());
    if !ns.is_empty() {
        left.push(format!("namespaces left: {ns:?}"));
    }
    for pid in &sshd {
        if process_alive(*pid) {
            left.push(format!("sshd pid {pid} still alive"));
        }
    }
    for pid in &dockerd {
        if process_alive(*pid) {
            left.push(format!("dockerd pid {pid} still alive"));
        }
    }
    if layout.dir.exists() {
        left.push(format!("{} still exists", layout.dir.display()));
    }
    let root_after = root_namespace_snapshot();
    if root_after != ctx.root_before {
        left.push(format!(
            "the machine's root network namespace changed:\n{}",
            snapshot_difference(&ctx.root_before, &root_after)
        ));
    }
    if sshd.is_empty() {
        left.push("no sshd pid was recorded while the lab was up".into());
    }
    if dockerd.len() != ctx.docker_nodes.len() {
        left.push(format!(
            "{} dockerd pid(s) recorded while the lab was up, for docker nodes {:?}",
            dockerd.len(),
            ctx.docker_nodes
        ));
    }
    // dockerd makes docker0 and its DOCKER chains: only ever inside its node
    // (a machine running its own docker has them before the lab as well).
    let docker_after = root_docker_traces();
    if docker_after != docker_before {
        left.push(format!(
            "docker0 or docker chains in the root namespace changed: before {docker_before:?}, after {docker_after:?}"
        ));
    }
    if left.is_empty() {
        passed += 1;
        println!("case lab_down_leaves_nothing ... ok");
    } else {
        println!("case lab_down_leaves_nothing ... FAILED");
        failures.push(("lab_down_leaves_nothing".into(), left.join("\n")));
    }
    let _ = std::fs::remove_dir_all(&tmp);

    for (name, why) in &failures {
        println!("\n---- {name} ----\n{why}");
    }
    println!(
        "e2e: end-to-end part took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    println!("e2e: {} passed, {} failed", passed, failures.len());
    if failures.is_empty() {
        0
    } else {
        1
    }
}
