//! The SSH transport against a real sshd. Each test gets its own network
//! namespace (`gtS-<pid>-<n>`) with an sshd in it, and runs the client from a
//! thread that entered that namespace; nothing touches the root namespace, and
//! everything is removed in `Drop`, also when a test fails.
//!
//! Needs root, /usr/sbin/sshd, ssh-keygen, iproute2. Without them: skipped with
//! a reason, except under CI (`CI` set), where it fails.

// TransportError carries the host key details an operator needs to decide;
// the tests pass it through as the library returns it.
#![allow(clippy::result_large_err)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use geartopo::topology::model::{Node, NodeAddress, PortRange, Runtime};
use geartopo::transport::ssh::SshTransport;
use geartopo::transport::{self, ConnectOptions, Transport, TransportError};

/// Tests that change the process environment take it for writing; the others
/// read, so nobody connects while `HOME` or `SSH_AUTH_SOCK` is someone else's.
static ENV: RwLock<()> = RwLock::new(());
static LABS: AtomicUsize = AtomicUsize::new(0);

/// sshd listens on 127.0.0.1:2222 (known_hosts name `[127.0.0.1]:2222`) and on
/// 198.18.0.1:22 (name `198.18.0.1`), both inside the namespace.
const HOST: &str = "127.0.0.1";
const PORT: u16 = 2222;
const HOST_22: &str = "198.18.0.1";
/// On the namespace's veth, with a static neighbour nobody answers for: SYNs
/// to it are dropped silently inside the namespace.
const BLACKHOLE: &str = "198.18.0.2";

struct Lab {
    netns: String,
    dir: tempfile::TempDir,
    netns_created: bool,
}

impl Lab {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start() -> Lab {
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let netns = format!("gtS-{}-{n}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("gtS-ssh-")
            .tempdir()
            .unwrap();
        let mut lab = Lab {
            netns,
            dir,
            netns_created: false,
        };
        let ns = lab.netns.clone();
        run(&["ip", "netns", "add", &ns]);
        lab.netns_created = true;
        run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        run(&[
            "ip", "-n", &ns, "link", "add", "gts0", "type", "veth", "peer", "name", "gts1",
        ]);
        run(&[
            "ip",
            "-n",
            &ns,
            "addr",
            "add",
            "198.18.0.1/24",
            "dev",
            "gts0",
        ]);
        run(&["ip", "-n", &ns, "link", "set", "gts0", "up"]);
        run(&["ip", "-n", &ns, "link", "set", "gts1", "up"]);
        run(&[
            "ip",
            "-n",
            &ns,
            "neigh",
            "add",
            BLACKHOLE,
            "lladdr",
            "02:00:00:00:00:02",
            "nud",
            "permanent",
            "dev",
            "gts0",
        ]);

        for key in ["hostkey", "client", "wrong", "otherhost"] {
            let path = lab.path(key);
            run(&[
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                &format!("gtS-{key}"),
                "-f",
                path.to_str().unwrap(),
            ]);
        }
        // A host certificate for the host key, signed by the lab's CA, for both
        // addresses (docs/fleets.md, "Host certificates").
        run(&[
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "gtS-ca",
            "-f",
            lab.path("ca").to_str().unwrap(),
        ]);
        run(&[
            "ssh-keygen",
            "-q",
            "-s",
            lab.path("ca").to_str().unwrap(),
            "-I",
            "gtS-host",
            "-h",
            "-n",
            &format!("{HOST},{HOST_22}"),
            lab.path("hostkey.pub").to_str().unwrap(),
        ]);
        fs::copy(lab.path("client.pub"), lab.path("authorized_keys")).unwrap();
        let d = lab.dir.path().display();
        fs::write(
            lab.path("sshd_config"),
            format!(
                "ListenAddress {HOST}:{PORT}\nListenAddress {HOST_22}:22\nHostKey {d}/hostkey\n\
                 HostCertificate {d}/hostkey-cert.pub\n\
                 AuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\n\
                 PermitRootLogin prohibit-password\nMaxStartups 100\nLogLevel VERBOSE\n"
            ),
        )
        .unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let config = lab.path("sshd_config");
        let log = lab.path("sshd.log");
        run(&[
            "nsenter",
            &format!("--net=/run/netns/{ns}"),
            "/usr/sbin/sshd",
            "-f",
            config.to_str().unwrap(),
            "-E",
            log.to_str().unwrap(),
        ]);
        // sshd forks into the background; ready once both addresses accept.
        let deadline = Instant::now() + Duration::from_secs(10);
        let ready = lab.in_netns(move || loop {
            let up = [(HOST, PORT), (HOST_22, 22)]
                .iter()
                .all(|a| TcpStream::connect(*a).is_ok());
            if up || Instant::now() > deadline {
                return up;
            }
            std::thread::sleep(Duration::from_millis(20));
        });
        assert!(
            ready,
            "sshd did not come up; log:\n{}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        lab
    }

    /// Runs `f` on a thread inside the lab's network namespace.
    fn in_netns<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.netns);
        std::thread::spawn(move || {
            let ns = fs::File::open(&path).unwrap();
            // SAFETY: setns on an open namespace file; it moves only this thread.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    fn node(
        &self,
        name: &str,
        host: &str,
        port: u16,
        known_hosts: &Path,
        identity: Option<PathBuf>,
    ) -> Node {
        Node {
            name: name.into(),
            address: NodeAddress::Remote(host.into()),
            user: "root".into(),
            port,
            identity,
            known_hosts: known_hosts.to_path_buf(),
            runtime: Runtime::Podman,
            firewall: Default::default(),
            host_ports: PortRange {
                first: 50000,
                last: 50999,
            },
            ssh_host: None,
            sudo: false,
            openssh: None,
        }
    }

    /// The node on 127.0.0.1:2222 with the lab's client key.
    fn node1(&self, known_hosts: &Path) -> Node {
        self.node("n1", HOST, PORT, known_hosts, Some(self.path("client")))
    }

    /// The host key's known_hosts fields: `ssh-ed25519 BASE64`.
    fn host_key(&self) -> String {
        let text = fs::read_to_string(self.path("hostkey.pub")).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A known_hosts file in the lab with these lines.
    fn known_hosts(&self, file: &str, lines: &[String]) -> PathBuf {
        let path = self.path(file);
        fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        path
    }

    fn connect(&self, node: Node, options: ConnectOptions) -> Result<SshTransport, TransportError> {
        self.in_netns(move || SshTransport::connect(&node, &options))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(self.path("sshd.pid")) {
            if let Ok(pid) = pid.trim().parse::<libc::pid_t>() {
                // SAFETY: kill(2) on the sshd this lab started, by its pid file.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
        if self.netns_created {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .status();
        }
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", args[0]));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the lab needs that is missing here, if anything.
fn missing_prerequisites() -> Vec<String> {
    let mut missing = Vec::new();
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces, sshd)".to_string());
    }
    if !Path::new("/usr/sbin/sshd").exists() {
        missing.push("/usr/sbin/sshd (openssh-server)".into());
    }
    for tool in ["ip", "ssh-keygen", "nsenter"] {
        if Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            missing.push(tool.into());
        }
    }
    missing
}

/// A lab, or `None` (with the reason printed) where these tests cannot run.
/// Under CI a missing prerequisite fails the test instead: CI must run them.
fn lab() -> Option<Lab> {
    let missing = missing_prerequisites();
    if missing.is_empty() {
        return Some(Lab::start());
    }
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "CI is set but the SSH tests cannot run, missing: {}",
            missing.join(", ")
        );
    }
    // Straight to stderr, past the test harness's capture, so the skip is seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipping real-sshd test, missing: {}",
        missing.join(", ")
    );
    None
}

fn env_read() -> RwLockReadGuard<'static, ()> {
    ENV.read().unwrap_or_else(|e| e.into_inner())
}

fn env_write() -> RwLockWriteGuard<'static, ()> {
    ENV.write().unwrap_or_else(|e| e.into_inner())
}

fn options() -> ConnectOptions {
    ConnectOptions {
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(60),
    }
}

fn accept_new() -> ConnectOptions {
    ConnectOptions {
        accept_new_host_keys: true,
        ..options()
    }
}

/// `SHA256:...` as `ssh-keygen -lf` prints it for the lab's host key.
fn keygen_fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn runs_commands_with_stdin_and_large_outputs_on_one_connection() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let mut ssh = lab.connect(lab.node1(&kh), options()).unwrap();

    // 2 MiB of stdin echoed back while 1.5 MiB goes to stderr first: neither
    // stream may block the other.
    let stdin: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let out = ssh
        .run("head -c 1572864 /dev/zero >&2; cat; echo end >&2", &stdin)
        .unwrap();
    assert_eq!(
        out.status,
        0,
        "stderr tail: {:?}",
        String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(200)..])
    );
    assert_eq!(out.stdout.len(), stdin.len());
    assert!(out.stdout == stdin, "stdout differs from stdin");
    assert_eq!(out.stderr.len(), 1572864 + 4);
    assert!(out.stderr.ends_with(b"end\n"));

    // Output interleaved on both streams, more than a channel window on each.
    let out = ssh.run("i=0; while [ $i -lt 300 ]; do head -c 10000 /dev/zero; head -c 10000 /dev/zero >&2; i=$((i+1)); done", b"").unwrap();
    assert_eq!((out.stdout.len(), out.stderr.len()), (3_000_000, 3_000_000));

    // The same session is reused: sshd logs one accepted connection.
    let out = ssh.run("echo $SSH_CONNECTION", b"").unwrap();
    let first = out.stdout_str();
    assert_eq!(
        ssh.run("echo $SSH_CONNECTION", b"").unwrap().stdout_str(),
        first
    );
    let log = fs::read_to_string(lab.path("sshd.log")).unwrap();
    assert_eq!(log.matches("Accepted publickey").count(), 1, "{log}");
}

#[test]
fn reports_exit_statuses_and_signals() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let mut ssh = lab.connect(lab.node1(&kh), options()).unwrap();
    let out = ssh.run("echo out; echo err >&2; exit 7", b"").unwrap();
    assert_eq!(
        (
            out.status,
            out.stdout_str().as_str(),
            out.stderr_str().as_str()
        ),
        (7, "out\n", "err\n")
    );
    assert!(ssh.run("true", b"ignored stdin").unwrap().success());
    // A command that exits without reading a large stdin does not hang us.
    assert_eq!(ssh.run("exit 3", &vec![b'x'; 4 << 20]).unwrap().status, 3);
    assert_eq!(ssh.run("kill -TERM $$", b"").unwrap().status, 128 + 15);
}

#[test]
fn command_timeout_stops_waiting_and_the_connection_stays_usable() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let opts = ConnectOptions {
        command_timeout: Duration::from_secs(1),
        ..options()
    };
    let mut ssh = lab.connect(lab.node1(&kh), opts).unwrap();
    let started = Instant::now();
    let err = ssh.run("sleep 30", b"").unwrap_err();
    assert!(
        matches!(&err, TransportError::CommandTimeout { node, secs: 1 } if node == "n1"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        ssh.run("echo still here", b"").unwrap().stdout_str(),
        "still here\n"
    );
}

#[test]
fn known_host_keys_are_accepted_plain_hashed_and_on_port_22() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts(
        "kh",
        &[
            format!("[{HOST}]:{PORT} {}", lab.host_key()),
            format!("{HOST_22} {}", lab.host_key()),
        ],
    );
    lab.connect(lab.node1(&kh), options()).unwrap();
    lab.connect(
        lab.node("n22", HOST_22, 22, &kh, Some(lab.path("client"))),
        options(),
    )
    .unwrap();

    run(&["ssh-keygen", "-q", "-H", "-f", kh.to_str().unwrap()]);
    let hashed = fs::read_to_string(&kh).unwrap();
    assert!(hashed.lines().all(|l| l.starts_with("|1|")), "{hashed}");
    lab.connect(lab.node1(&kh), options()).unwrap();
    let mut ssh = lab
        .connect(
            lab.node("n22", HOST_22, 22, &kh, Some(lab.path("client"))),
            options(),
        )
        .unwrap();
    assert_eq!(ssh.run("echo ok", b"").unwrap().stdout_str(), "ok\n");
}

#[test]
fn unknown_host_key_is_refused_with_its_fingerprint() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let expected = keygen_fingerprint(&lab.path("hostkey.pub"));
    // Empty, missing, a key for the same address on port 22 only, and a key of
    // another type: all mean "not known" for [127.0.0.1]:2222, as with OpenSSH.
    let ecdsa = lab.path("ecdsa");
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "",
        "-f",
        ecdsa.to_str().unwrap(),
    ]);
    let ecdsa_pub = fs::read_to_string(lab.path("ecdsa.pub")).unwrap();
    let ecdsa_fields = ecdsa_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let cases = [
        lab.known_hosts("empty", &[]),
        lab.path("missing/known_hosts"),
        lab.known_hosts("port22", &[format!("{HOST} {}", lab.host_key())]),
        lab.known_hosts("othertype", &[format!("[{HOST}]:{PORT} {ecdsa_fields}")]),
    ];
    for kh in cases {
        let err = lab
            .connect(lab.node1(&kh), options())
            .err()
            .unwrap_or_else(|| panic!("{} let an unknown key in", kh.display()));
        match &err {
            TransportError::UnknownHostKey {
                node,
                address,
                known_hosts,
                key_type,
                fingerprint,
            } => {
                assert_eq!(node, "n1");
                assert_eq!(address, "127.0.0.1:2222");
                assert_eq!(known_hosts, &kh.display().to_string());
                assert_eq!(key_type, "ssh-ed25519");
                assert_eq!(fingerprint, &expected);
            }
            other => panic!("{}: expected UnknownHostKey, got {other}", kh.display()),
        }
        let message = err.to_string();
        assert!(
            message.contains("node n1") && message.contains(&expected),
            "{message}"
        );
    }
    assert!(
        !lab.path("missing").exists(),
        "refusing must not create known_hosts"
    );
}

#[test]
fn changed_host_key_is_refused_even_with_accept_new() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let other = fs::read_to_string(lab.path("otherhost.pub")).unwrap();
    let other = other
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {other}")]);
    let before = fs::read_to_string(&kh).unwrap();
    for opts in [options(), accept_new()] {
        match lab.connect(lab.node1(&kh), opts) {
            Err(TransportError::ChangedHostKey {
                node,
                fingerprint,
                key_type,
                ..
            }) => {
                assert_eq!(node, "n1");
                assert_eq!(key_type, "ssh-ed25519");
                assert_eq!(fingerprint, keygen_fingerprint(&lab.path("hostkey.pub")));
            }
            Err(other) => panic!("expected ChangedHostKey, got {other}"),
            Ok(_) => panic!("a changed host key was accepted"),
        }
    }
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        before,
        "known_hosts must not change"
    );

    // The same with the changed entry hashed.
    run(&["ssh-keygen", "-q", "-H", "-f", kh.to_str().unwrap()]);
    assert!(matches!(
        lab.connect(lab.node1(&kh), accept_new()),
        Err(TransportError::ChangedHostKey { .. })
    ));
}

#[test]
fn accept_new_records_the_key_then_it_is_known() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.path("fresh/.ssh/known_hosts");
    let mut ssh = lab.connect(lab.node1(&kh), accept_new()).unwrap();
    assert!(ssh.run("true", b"").unwrap().success());
    assert_eq!(
        fs::read_to_string(&kh).unwrap(),
        format!("[{HOST}]:{PORT} {}\n", lab.host_key())
    );
    assert_eq!(
        fs::metadata(&kh).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(kh.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );

    lab.connect(lab.node1(&kh), options()).unwrap();
    // OpenSSH reads what we wrote as the key of that host.
    let out = Command::new("ssh-keygen")
        .args(["-F", &format!("[{HOST}]:{PORT}"), "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains(&lab.host_key()));
    // Accepting again does not add a second line.
    lab.connect(lab.node1(&kh), accept_new()).unwrap();
    assert_eq!(fs::read_to_string(&kh).unwrap().lines().count(), 1);
}

#[test]
fn accept_new_refuses_a_new_key_type_for_a_host_known_by_another() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    // known_hosts holds an ecdsa key for the host; the server has only ed25519.
    let ecdsa = lab.path("ecdsa-recorded");
    run(&[
        "ssh-keygen",
        "-q",
        "-t",
        "ecdsa",
        "-N",
        "",
        "-f",
        ecdsa.to_str().unwrap(),
    ]);
    let ecdsa_pub = fs::read_to_string(lab.path("ecdsa-recorded.pub")).unwrap();
    let ecdsa_fields = ecdsa_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {ecdsa_fields}")]);
    let expected = keygen_fingerprint(&lab.path("hostkey.pub"));
    for hashed in [false, true] {
        if hashed {
            run(&["ssh-keygen", "-q", "-H", "-f", kh.to_str().unwrap()]);
        }
        let before = fs::read_to_string(&kh).unwrap();
        let err = match lab.connect(lab.node1(&kh), accept_new()) {
            Ok(_) => panic!("a new key type was recorded for a host known by ecdsa"),
            Err(e) => e,
        };
        match &err {
            TransportError::HostKeyTypeNotOnRecord(r) => {
                assert_eq!(r.node, "n1");
                assert_eq!(r.recorded, "ecdsa-sha2-nistp256");
                assert_eq!(r.key_type, "ssh-ed25519");
                assert_eq!(r.fingerprint, expected);
            }
            other => panic!("expected HostKeyTypeNotOnRecord, got {other}"),
        }
        let message = err.to_string();
        for part in ["node n1", "ecdsa-sha2-nistp256", "ssh-ed25519", "by hand"] {
            assert!(message.contains(part), "{part:?} missing in: {message}");
        }
        assert_eq!(
            fs::read_to_string(&kh).unwrap(),
            before,
            "known_hosts must not change (hashed: {hashed})"
        );
    }
}

#[test]
fn wrong_client_key_is_an_auth_error_naming_what_was_tried() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let wrong = lab.path("wrong");
    match lab.connect(
        lab.node("n1", HOST, PORT, &kh, Some(wrong.clone())),
        options(),
    ) {
        Err(TransportError::Auth { node, user, reason }) => {
            assert_eq!((node.as_str(), user.as_str()), ("n1", "root"));
            assert!(reason.contains(&wrong.display().to_string()), "{reason}");
        }
        Err(other) => panic!("expected Auth, got {other}"),
        Ok(_) => panic!("a key that is not authorized got in"),
    }
    let missing = lab.path("no-such-key");
    let err = lab
        .connect(
            lab.node("n1", HOST, PORT, &kh, Some(missing.clone())),
            options(),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Auth { reason, .. } if reason.contains("no such file")),
        "{err}"
    );
}

#[test]
fn without_identity_the_agent_then_default_key_files_are_used() {
    let _env = env_write();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let home = lab.path("home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    let saved: Vec<(&str, Option<std::ffi::OsString>)> =
        ["HOME", "SSH_AUTH_SOCK", "GEARTOPO_IDENTITY"]
            .iter()
            .map(|v| (*v, std::env::var_os(v)))
            .collect();
    struct Restore(Vec<(&'static str, Option<std::ffi::OsString>)>);
    impl Drop for Restore {
        fn drop(&mut self) {
            for (name, value) in &self.0 {
                match value {
                    Some(v) => std::env::set_var(name, v),
                    None => std::env::remove_var(name),
                }
            }
        }
    }
    let _restore = Restore(saved);
    std::env::set_var("HOME", &home);
    std::env::remove_var("SSH_AUTH_SOCK");
    std::env::remove_var("GEARTOPO_IDENTITY");
    let node = lab.node("n1", HOST, PORT, &kh, None);

    // Nothing to offer: the error says what was looked at.
    let err = lab.connect(node.clone(), options()).err().unwrap();
    assert!(
        matches!(&err, TransportError::Auth { reason, .. } if reason.contains("SSH_AUTH_SOCK not set") && reason.contains("no key file")),
        "{err}"
    );

    // The usual file.
    fs::copy(lab.path("client"), home.join(".ssh/id_ed25519")).unwrap();
    lab.connect(node.clone(), options()).unwrap();

    // The agent, before the files (the file is now the wrong key).
    fs::copy(lab.path("wrong"), home.join(".ssh/id_ed25519")).unwrap();
    let err = lab.connect(node.clone(), options()).err().unwrap();
    assert!(
        matches!(&err, TransportError::Auth { reason, .. } if reason.contains("id_ed25519")),
        "{err}"
    );
    let Some(agent) = Agent::start(&lab) else {
        return;
    };
    std::env::set_var("SSH_AUTH_SOCK", &agent.socket);
    let mut ssh = lab.connect(node, options()).unwrap();
    assert!(ssh.run("true", b"").unwrap().success());
}

/// An ssh-agent of our own (foreground, so we hold its pid) with the client key.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Agent {
    fn start(lab: &Lab) -> Option<Agent> {
        if Command::new("ssh-agent")
            .arg("-h")
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            if std::env::var_os("CI").is_some() {
                panic!("CI is set but ssh-agent is missing");
            }
            let _ = writeln!(std::io::stderr(), "skipping the agent part: no ssh-agent");
            return None;
        }
        let socket = lab.path("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !agent.socket.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("ssh-add")
            .arg(lab.path("client"))
            .env("SSH_AUTH_SOCK", &agent.socket)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh-add: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(agent)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn connect_errors_name_the_node_and_address() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[]);

    // Nobody answers: the SYN is dropped inside the namespace.
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(1),
        ..options()
    };
    let started = Instant::now();
    let err = lab
        .connect(
            lab.node("far", BLACKHOLE, 22, &kh, Some(lab.path("client"))),
            opts.clone(),
        )
        .err()
        .unwrap();
    match &err {
        TransportError::ConnectTimeout {
            node,
            address,
            secs,
        } => {
            assert_eq!(
                (node.as_str(), address.as_str(), *secs),
                ("far", "198.18.0.2:22", 1)
            );
        }
        other => panic!("expected ConnectTimeout, got {other}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Something accepts TCP but never speaks SSH: the handshake times out too.
    let node = lab.node("mute", HOST, 2223, &kh, Some(lab.path("client")));
    let started = Instant::now();
    let err = lab
        .in_netns(move || {
            let _listener = std::net::TcpListener::bind((HOST, 2223)).unwrap();
            SshTransport::connect(&node, &opts).err()
        })
        .unwrap();
    assert!(
        matches!(&err, TransportError::ConnectTimeout { node, address, .. } if node == "mute" && address == "127.0.0.1:2223"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Nothing listens: refused at once.
    let err = lab
        .connect(
            lab.node("closed", HOST, 1, &kh, Some(lab.path("client"))),
            options(),
        )
        .err()
        .unwrap();
    assert!(
        matches!(&err, TransportError::Connect { node, address, .. } if node == "closed" && address == "127.0.0.1:1"),
        "{err}"
    );
    assert!(err.to_string().contains("node closed"), "{err}");
}

/// Run by `trace_counts_runs_per_node_and_env_overrides_apply` in a child
/// process (the trace goes to the process's stderr); does nothing useful alone.
#[test]
#[ignore = "helper, run in a child process by trace_counts_runs_per_node_and_env_overrides_apply"]
fn trace_child() {
    let netns = std::env::var("GTS_CHILD_NETNS")
        .expect("run by trace_counts_runs_per_node_and_env_overrides_apply");
    let dir = PathBuf::from(std::env::var("GTS_CHILD_DIR").unwrap());
    std::thread::spawn(move || {
        let ns = fs::File::open(format!("/run/netns/{netns}")).unwrap();
        // SAFETY: setns on an open namespace file; it moves only this thread.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        // The node's own identity and known_hosts would fail: the env overrides must win.
        let node = |name: &str| Node {
            name: name.into(),
            address: NodeAddress::Remote(HOST.into()),
            user: "root".into(),
            port: PORT,
            identity: Some(dir.join("wrong")),
            known_hosts: dir.join("empty"),
            runtime: Runtime::Podman,
            firewall: Default::default(),
            host_ports: PortRange {
                first: 50000,
                last: 50999,
            },
            ssh_host: None,
            sudo: false,
            openssh: None,
        };
        let mut n1 = transport::connect(&node("n1"), &options()).unwrap();
        let mut n2 = transport::connect(&node("n2"), &options()).unwrap();
        n1.run("true", b"").unwrap();
        assert_eq!(n1.run("cat", b"hello").unwrap().stdout, b"hello");
        n2.run("true", b"").unwrap();
        n1.run("true", b"").unwrap();
    })
    .join()
    .unwrap();
}

#[test]
fn trace_counts_runs_per_node_and_env_overrides_apply() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    lab.known_hosts("empty", &[]);
    let child = |trace: &str| {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "trace_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("GTS_CHILD_NETNS", &lab.netns)
            .env("GTS_CHILD_DIR", lab.dir.path())
            .env("GEARTOPO_IDENTITY", lab.path("client"))
            .env("GEARTOPO_KNOWN_HOSTS", &kh)
            .env("GEARTOPO_TRACE", trace)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "child failed:\n{}\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
            .lines()
            .filter(|l| l.starts_with("geartopo-trace:"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        child("1"),
        [
            "geartopo-trace: node=n1 run=1 bytes_in=0",
            "geartopo-trace: node=n1 run=2 bytes_in=5",
            "geartopo-trace: node=n2 run=1 bytes_in=0",
            "geartopo-trace: node=n1 run=3 bytes_in=0",
        ]
    );
    // Empty means off.
    assert!(child("").is_empty());
}

/// The drop of a lab removes its namespace and stops its sshd, even when the
/// test using it panicked.
#[test]
fn lab_cleans_up_after_a_failing_test() {
    let _env = env_read();
    if !missing_prerequisites().is_empty() {
        let _ = lab();
        return;
    }
    let (netns, dir) = {
        let lab = Lab::start();
        (lab.netns.clone(), lab.dir.path().to_path_buf())
    };
    assert!(!dir.exists(), "{} left behind", dir.display());
    let result = std::panic::catch_unwind(|| {
        let lab = Lab::start();
        let pid: libc::pid_t = fs::read_to_string(lab.path("sshd.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        std::panic::panic_any((lab.netns.clone(), pid));
    });
    let (failed_netns, pid) = *result
        .unwrap_err()
        .downcast::<(String, libc::pid_t)>()
        .unwrap();
    for ns in [netns, failed_netns] {
        let mut list = String::new();
        Command::new("ip")
            .args(["netns", "list"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
            .stdout
            .unwrap()
            .read_to_string(&mut list)
            .unwrap();
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns.as_str())),
            "{ns} left behind"
        );
    }
    // sshd got SIGTERM; give it a moment to go.
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(pid), "sshd {pid} still running");
}

/// Whether `pid` is alive (a zombie waiting for its reaper counts as gone).
fn running(pid: libc::pid_t) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// `ssh_host` is where the connection goes and under which name the host key is
/// looked up; `address` (here one nobody answers on) is only what links lead to.
#[test]
fn ssh_host_is_where_the_connection_goes_not_the_address() {
    let _env = env_read();
    let Some(lab) = lab() else { return };
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let mut node = lab.node1(&kh);
    node.address = NodeAddress::Remote(BLACKHOLE.into());
    node.ssh_host = Some(HOST.into());
    let mut ssh = lab.connect(node, options()).unwrap();
    assert_eq!(ssh.run("echo ok", b"").unwrap().stdout_str(), "ok\n");
}

/// The OpenSSH transport (`transport = "openssh"`): commands with stdin and exit
/// statuses through the system's `ssh`; one master connection shared by two
/// transports (two geartopo invocations) and stopped by `ssh -O exit`; an
/// unknown host key refused.
#[test]
fn openssh_transport_runs_commands_over_one_master_and_checks_host_keys() {
    use geartopo::topology::model::OpenSsh;
    use geartopo::transport::openssh::{OpenSshTransport, ENV_CONTROL_DIR};
    let _env = env_write();
    let Some(lab) = lab() else { return };
    let control = lab.path("cm");
    std::env::set_var(ENV_CONTROL_DIR, &control);
    let kh = lab.known_hosts("kh", &[format!("[{HOST}]:{PORT} {}", lab.host_key())]);
    let o = OpenSsh {
        user: Some("root".into()),
        port: Some(PORT),
        known_hosts: Some(kh.clone()),
        jump: None,
    };
    let node = lab.node1(&kh);
    let connect = |o: OpenSsh, node: Node| {
        lab.in_netns(move || OpenSshTransport::connect(&node, &o, &options()))
    };
    let first = connect(o.clone(), node.clone()).unwrap();
    let second = connect(o.clone(), node.clone()).unwrap();
    let run = |mut t: OpenSshTransport, cmd: &'static str, stdin: &'static [u8]| {
        lab.in_netns(move || (t.run(cmd, stdin), t))
    };
    let (out, first) = run(first, "tr a-z A-Z; echo oops >&2; exit 3", b"hello");
    let out = out.unwrap();
    assert_eq!(
        (out.status, out.stdout_str(), out.stderr_str()),
        (3, "HELLO".into(), "oops\n".into())
    );
    let (out, second) = run(second, "echo $SSH_CONNECTION", b"");
    assert!(out.unwrap().success());
    let log = fs::read_to_string(lab.path("sshd.log")).unwrap();
    assert_eq!(
        log.matches("Accepted publickey").count(),
        1,
        "one master: {log}"
    );
    let master = fs::read_dir(&control).unwrap().count();
    assert_eq!(master, 1, "one socket in the control folder");
    assert_eq!(
        fs::metadata(&control).unwrap().permissions().mode() & 0o777,
        0o700
    );
    lab.in_netns(move || first.stop_master());
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_dir(&control).unwrap().count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fs::read_dir(&control).unwrap().count(),
        0,
        "ssh -O exit left the master"
    );

    let empty = lab.known_hosts("empty", &[]);
    let strict = OpenSsh {
        known_hosts: Some(empty.clone()),
        ..o
    };
    // The first round trip is where a connection fails (no separate check).
    let e = match connect(strict, lab.node1(&empty)).map(|t| run(t, "true", b"").0) {
        Ok(Err(e)) | Err(e) => e.to_string(),
        Ok(Ok(_)) => panic!("an unknown host key was accepted"),
    };
    assert!(e.starts_with("node n1: cannot connect to 127.0.0.1"), "{e}");
    assert!(e.contains("Host key verification failed"), "{e}");
    std::env::remove_var(ENV_CONTROL_DIR);
}

impl Lab {
    /// `@cert-authority` known_hosts lines trusting `ca` (a public key file of
    /// the lab) for both of sshd's addresses, and nothing else.
    fn ca_known_hosts(&self, file: &str, ca: &str) -> PathBuf {
        let ca = fs::read_to_string(self.path(ca)).unwrap();
        let ca: Vec<&str> = ca.split_whitespace().take(2).collect();
        self.known_hosts(
            file,
            &[format!(
                "@cert-authority [{HOST}]:{PORT},{HOST_22} {}",
                ca.join(" ")
            )],
        )
    }

    fn openssh(
        &self,
        node: Node,
        o: geartopo::topology::model::OpenSsh,
        cmd: &'static str,
    ) -> Result<transport::Output, TransportError> {
        use geartopo::transport::openssh::OpenSshTransport;
        self.in_netns(move || {
            let mut t = OpenSshTransport::connect(&node, &o, &options())?;
            let out = t.run(cmd, b"");
            t.stop_master();
            out
        })
    }

    fn accepted_from(&self, address: &str) -> usize {
        fs::read_to_string(self.path("sshd.log"))
            .unwrap()
            .matches(&format!("Accepted publickey for root from {address} "))
            .count()
    }
}

/// A known_hosts with only a `@cert-authority` line: the OpenSSH transport checks
/// the host's certificate against it (and refuses a certificate of another CA);
/// the built-in client says it cannot, and what to do.
#[test]
fn host_certificates_are_checked_by_openssh_and_refused_clearly_by_ssh2() {
    use geartopo::topology::model::OpenSsh;
    use geartopo::transport::openssh::ENV_CONTROL_DIR;
    let _env = env_write();
    let Some(lab) = lab() else { return };
    std::env::set_var(ENV_CONTROL_DIR, lab.path("cm"));
    let ca_kh = lab.ca_known_hosts("ca_kh", "ca.pub");
    let o = |kh: &Path| OpenSsh {
        user: Some("root".into()),
        port: Some(PORT),
        known_hosts: Some(kh.to_path_buf()),
        jump: None,
    };
    let out = lab
        .openssh(lab.node1(&ca_kh), o(&ca_kh), "echo certified")
        .unwrap();
    assert_eq!(out.stdout_str(), "certified\n");

    let other_ca = lab.ca_known_hosts("other_ca_kh", "otherhost.pub");
    let e = lab
        .openssh(lab.node1(&other_ca), o(&other_ca), "true")
        .unwrap_err()
        .to_string();
    assert!(e.contains("Host key verification failed"), "{e}");

    let e = match lab.connect(lab.node1(&ca_kh), options()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("ssh2 accepted a host only a @cert-authority line covers"),
    };
    assert!(
        e.contains("has a @cert-authority line for [127.0.0.1]:2222")
            && e.contains("cannot check host certificates")
            && e.contains("transport = \"openssh\""),
        "{e}"
    );
    std::env::remove_var(ENV_CONTROL_DIR);
}

/// With `GEARTOPO_SSH_CONFIG` (ssh -F) and `ssh_host` an alias only: HostName,
/// Port, User, IdentityFile, UserKnownHostsFile (certificate authority only) and
/// ProxyJump come from ssh_config; the topology's `user` wins over its User.
/// Then `ssh_jump` (a node of the topology) without any ssh_config.
#[test]
fn ssh_config_aliases_and_jumps_are_honoured_topology_first() {
    use geartopo::topology::model::OpenSsh;
    use geartopo::transport::openssh::{ENV_CONTROL_DIR, ENV_SSH_CONFIG};
    let _env = env_write();
    let Some(lab) = lab() else { return };
    std::env::set_var(ENV_CONTROL_DIR, lab.path("cm"));
    let ca_kh = lab.ca_known_hosts("ca_kh", "ca.pub");
    let client = lab.path("client").display().to_string();
    let kh = ca_kh.display().to_string();
    let config = lab.path("ssh_config");
    fs::write(
        &config,
        format!(
            "Host gt-target\n  HostName {HOST}\n  Port {PORT}\n  User gt-nobody\n  \
             IdentityFile {client}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
             ProxyJump gt-bastion\n\
             Host gt-bastion\n  HostName {HOST_22}\n  User root\n  IdentityFile {client}\n  \
             IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n"
        ),
    )
    .unwrap();
    std::env::set_var(ENV_SSH_CONFIG, &config);
    let mut node = lab.node("n1", BLACKHOLE, 22, Path::new("/nonexistent"), None);
    node.ssh_host = Some("gt-target".into());
    let from_config = OpenSsh::default();

    // ssh_config's User (no such user on the node) is what ssh tried.
    let e = lab
        .openssh(node.clone(), from_config.clone(), "true")
        .unwrap_err()
        .to_string();
    assert!(e.contains("gt-nobody@"), "{e}");
    let jumps = lab.accepted_from(HOST_22);
    assert_eq!(jumps, 1, "the jump host was not used");

    // The topology's user wins.
    let topology_user = OpenSsh {
        user: Some("root".into()),
        ..from_config
    };
    let out = lab
        .openssh(node, topology_user, "echo $SSH_CONNECTION")
        .unwrap();
    assert!(
        out.stdout_str().ends_with(&format!(" {PORT}\n")),
        "{}",
        out.stdout_str()
    );
    assert_eq!(
        lab.accepted_from(HOST_22),
        jumps + 1,
        "through the jump host"
    );
    std::env::remove_var(ENV_SSH_CONFIG);

    // ssh_jump: the bastion node's own options (key, known_hosts) for the hop.
    let plain_kh = lab.known_hosts(
        "kh",
        &[
            format!("[{HOST}]:{PORT} {}", lab.host_key()),
            format!("{HOST_22} {}", lab.host_key()),
        ],
    );
    let bastion = lab.node("bastion", HOST_22, 22, &plain_kh, Some(lab.path("client")));
    let o = OpenSsh {
        user: Some("root".into()),
        port: Some(PORT),
        known_hosts: Some(plain_kh.clone()),
        jump: Some(Box::new(bastion)),
    };
    let before = lab.accepted_from(HOST_22);
    let out = lab.openssh(lab.node1(&plain_kh), o, "echo jumped").unwrap();
    assert_eq!(out.stdout_str(), "jumped\n");
    assert_eq!(
        lab.accepted_from(HOST_22),
        before + 1,
        "not through the bastion"
    );
    std::env::remove_var(ENV_CONTROL_DIR);
}
