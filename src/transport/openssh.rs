//! SSH transport through the system's OpenSSH client (`transport = "openssh"`):
//! every command is one `ssh` process, so `~/.ssh/config` (Host aliases,
//! HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile,
//! certificates, the agent) applies as for any ssh user. Precedence: what the
//! topology writes (passed with `-l`, `-p`, `-i`, `-o UserKnownHostsFile`) wins,
//! then ssh_config, then ssh's own defaults. Host keys are checked strictly
//! (`StrictHostKeyChecking=yes`, or `accept-new` with `--accept-new-host-keys`).
//! One master connection per node is shared by every invocation of geartopo
//! (ControlMaster in a private folder, `CONTROL_PERSIST` seconds after last use).
//! Nothing here knows what the commands do.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ConnectOptions, Output, Transport, TransportError};
use crate::topology::model::{Node, OpenSsh};

/// How long a master connection outlives its last use, in seconds.
pub const CONTROL_PERSIST: u64 = 300;
/// Overrides where the master connections' sockets live (the lab and tests).
pub const ENV_CONTROL_DIR: &str = "GEARTOPO_SSH_CONTROL_DIR";

/// A node reached with `ssh`.
pub struct OpenSshTransport {
    node: String,
    args: Vec<String>,
    target: String,
    command_timeout: Duration,
    /// Whether a command has reached the node through this value already.
    reached: bool,
    /// The client (`ssh`; a stand-in in tests).
    program: PathBuf,
    /// The most a node's answer (stdout and stderr together) may be.
    max_output: usize,
}

/// The exit status of `ssh` itself failing (connection, authentication, host
/// key); no node script exits with it.
const SSH_FAILED: i32 = 255;

/// The private folder of the master sockets: `$GEARTOPO_SSH_CONTROL_DIR`, else
/// `$XDG_RUNTIME_DIR/geartopo-ssh`, else `~/.ssh/geartopo-cm`; created 0700, and
/// refused when another user owns it or group or others may use it.
pub fn control_dir() -> Result<PathBuf, String> {
    let dir = control_dir_path()?;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a folder of this user with mode 0700 (it holds SSH master sockets)",
            dir.display()
        ));
    }
    Ok(dir)
}

/// Where `control_dir` is, without creating it.
pub fn control_dir_path() -> Result<PathBuf, String> {
    Ok(
        if let Some(d) = std::env::var_os(ENV_CONTROL_DIR).filter(|d| !d.is_empty()) {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            PathBuf::from(d).join("geartopo-ssh")
        } else {
            let home = std::env::var_os("HOME").ok_or("neither XDG_RUNTIME_DIR nor HOME is set")?;
            PathBuf::from(home).join(".ssh/geartopo-cm")
        },
    )
}

/// An ssh_config file to read instead of `~/.ssh/config` (`ssh -F FILE`).
pub const ENV_SSH_CONFIG: &str = "GEARTOPO_SSH_CONFIG";

/// The `ssh` options for `node`, master connection included; through its
/// `ssh_jump` node (a `ProxyCommand` that runs `ssh -W` with that node's own
/// options, so the topology's and the lab's identity and known_hosts apply to
/// the jump too, and it reuses the jump node's master when one is up).
pub fn ssh_args(node: &Node, o: &OpenSsh, options: &ConnectOptions, dir: &Path) -> Vec<String> {
    let mut args = direct_args(node, o, options, dir);
    if let Some(bastion) = &o.jump {
        let bo = bastion.openssh.clone().unwrap_or_else(|| OpenSsh {
            user: Some(bastion.user.clone()),
            port: Some(bastion.port),
            known_hosts: Some(bastion.known_hosts.clone()),
            jump: None,
        });
        let mut inner = vec!["ssh".to_string()];
        for a in direct_args(bastion, &bo, options, dir) {
            match a.as_str() {
                "ControlMaster=auto" => inner.push("ControlMaster=no".into()),
                s if s.starts_with("ControlPersist=") => {
                    inner.pop(); // its `-o`
                }
                _ => inner.push(a),
            }
        }
        let mut command: Vec<String> = inner
            .iter()
            .map(|a| super::shell::quote(a).replace('%', "%%"))
            .collect();
        command.extend(["-W".into(), "%h:%p".into(), "--".into()]);
        command
            .push(super::shell::quote(bastion.ssh_target().unwrap_or_default()).replace('%', "%%"));
        args.extend(["-o".into(), format!("ProxyCommand={}", command.join(" "))]);
    }
    args
}

fn direct_args(node: &Node, o: &OpenSsh, options: &ConnectOptions, dir: &Path) -> Vec<String> {
    let strict = if options.accept_new_host_keys {
        "accept-new"
    } else {
        "yes"
    };
    let mut args: Vec<String> = [
        "-T",
        "-o",
        "BatchMode=yes",
        "-o",
        &format!("StrictHostKeyChecking={strict}"),
        "-o",
        &format!(
            "ConnectTimeout={}",
            options.connect_timeout.as_secs().max(1)
        ),
        "-o",
        "ControlMaster=auto",
        "-o",
        &format!("ControlPath={}/%C", dir.display()),
        "-o",
        &format!("ControlPersist={CONTROL_PERSIST}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(config) = std::env::var_os(ENV_SSH_CONFIG).filter(|v| !v.is_empty()) {
        args.splice(
            0..0,
            [
                "-F".to_string(),
                PathBuf::from(config).display().to_string(),
            ],
        );
    }
    if let Some(user) = &o.user {
        args.extend(["-l".into(), user.clone()]);
    }
    if let Some(port) = o.port {
        args.extend(["-p".into(), port.to_string()]);
    }
    let env_path = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(identity) = env_path(super::ssh::ENV_IDENTITY).or_else(|| node.identity.clone()) {
        args.extend([
            "-i".into(),
            identity.display().to_string(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]);
    }
    if let Some(kh) = env_path(super::ssh::ENV_KNOWN_HOSTS).or_else(|| o.known_hosts.clone()) {
        args.extend(["-o".into(), format!("UserKnownHostsFile={}", kh.display())]);
    }
    args
}

impl OpenSshTransport {
    /// Prepares the `ssh` command line for `node`. Nothing runs yet: the first
    /// round trip opens (or reuses) the master connection, and a failure to reach
    /// the node is reported then (ssh's exit status 255), so that a round trip
    /// over a warm master is one `ssh` process (issue 18).
    pub fn connect(
        node: &Node,
        o: &OpenSsh,
        options: &ConnectOptions,
    ) -> Result<Self, TransportError> {
        let target = node.ssh_target().unwrap_or_default().to_string();
        let dir = control_dir().map_err(|reason| TransportError::Connect {
            node: node.name.clone(),
            address: target.clone(),
            reason,
        })?;
        Ok(OpenSshTransport {
            node: node.name.clone(),
            args: ssh_args(node, o, options, &dir),
            target,
            command_timeout: options.command_timeout,
            reached: false,
            program: PathBuf::from("ssh"),
            max_output: super::MAX_OUTPUT,
        })
    }

    /// Stops this node's master connection (`ssh -O exit`), if one runs.
    pub fn stop_master(&self) {
        let _ = Command::new(&self.program)
            .args(&self.args)
            .args(["-O", "exit", "--", &self.target])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Transport for OpenSshTransport {
    fn node(&self) -> &str {
        &self.node
    }

    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let io = |reason: String| TransportError::Io {
            node: self.node.clone(),
            reason,
        };
        // stderr goes to a file, not a pipe: a master that `ssh` forks keeps the
        // stderr it was started with open for `CONTROL_PERSIST` seconds.
        let mut err_file = tempfile_in_control_dir().map_err(|e| io(e.to_string()))?;
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .arg("--")
            .arg(&self.target)
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_file.0.try_clone().map_err(|e| io(e.to_string()))?)
            .spawn()
            .map_err(|e| io(format!("cannot run ssh: {e}")))?;
        let mut input = child.stdin.take().expect("piped");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        // Read to one byte past the limit at most: then the pipe closes (ssh gets
        // EPIPE instead of blocking) and the answer is refused below.
        let limit = self.max_output as u64 + 1;
        let output = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = output.take(limit).read_to_end(&mut buf);
            buf
        });
        let deadline = Instant::now() + self.command_timeout;
        let status = loop {
            match child.try_wait().map_err(|e| io(e.to_string()))? {
                Some(status) => break status,
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(TransportError::CommandTimeout {
                        node: self.node.clone(),
                        secs: self.command_timeout.as_secs(),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let _ = writer.join();
        let stdout = reader.join().unwrap_or_default();
        let mut stderr = Vec::new();
        use std::io::Seek;
        err_file.0.rewind().map_err(|e| io(e.to_string()))?;
        (&mut err_file.0)
            .take(limit)
            .read_to_end(&mut stderr)
            .map_err(|e| io(e.to_string()))?;
        use std::os::unix::process::ExitStatusExt;
        let code = status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        if code == SSH_FAILED {
            let reason = format!("ssh: {}", String::from_utf8_lossy(&stderr).trim());
            return Err(if self.reached {
                TransportError::Io {
                    node: self.node.clone(),
                    reason,
                }
            } else {
                TransportError::Connect {
                    node: self.node.clone(),
                    address: self.target.clone(),
                    reason,
                }
            });
        }
        if stdout.len() + stderr.len() > self.max_output {
            return Err(TransportError::OutputTooLarge {
                node: self.node.clone(),
                limit: self.max_output,
            });
        }
        self.reached = true;
        Ok(Output {
            status: code,
            stdout,
            stderr,
        })
    }
}

/// An anonymous file (unlinked at once) for one command's stderr.
struct TempFile(std::fs::File);

fn tempfile_in_control_dir() -> std::io::Result<TempFile> {
    let dir = std::env::temp_dir();
    for n in 0..100u32 {
        let path = dir.join(format!(
            "geartopo-ssh-err-{}-{}-{n}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                let _ = std::fs::remove_file(&path);
                return Ok(TempFile(f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary file name"))
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::NodeAddress;

    /// A transport whose `ssh` is `script` (run with sh; it gets ssh's arguments).
    fn standing_in(script: &str, max_output: usize) -> (OpenSshTransport, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("ssh");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = OpenSshTransport {
            node: "n1".into(),
            args: vec![],
            target: "n1.example".into(),
            command_timeout: Duration::from_secs(30),
            reached: false,
            program,
            max_output,
        };
        (t, dir)
    }

    /// A node that answers more than the limit, on stdout or stderr, is an error
    /// naming it, read no further than the limit (as with ssh2).
    #[test]
    fn an_answer_beyond_the_size_limit_is_refused_naming_the_node() {
        for script in [
            "head -c 100000 /dev/zero",
            "head -c 100000 /dev/zero >&2",
            "yes",
        ] {
            let (mut t, _dir) = standing_in(script, 1000);
            let err = t.run("observe", b"").unwrap_err();
            assert!(
                matches!(&err, TransportError::OutputTooLarge { node, limit: 1000 } if node == "n1"),
                "{script}: {err}"
            );
        }
        let (mut t, _dir) = standing_in("printf 'ok\\n'; printf 'warn\\n' >&2", 1000);
        let out = t.run("observe", b"").unwrap();
        assert_eq!(
            (out.stdout_str().as_ref(), out.stderr_str().as_ref()),
            ("ok\n", "warn\n")
        );
    }

    fn node(name: &str, address: &str, identity: &str) -> Node {
        let t = crate::topology::parse(
            "t.toml",
            format!(
                "name='t'\n[nodes.{name}]\naddress='{address}'\nidentity='{identity}'\n\
                 known_hosts='/kh/{name}'\nport=2200\n"
            )
            .as_bytes(),
        )
        .unwrap();
        t.nodes[name].clone()
    }

    /// The hop to the bastion runs `ssh -W` with the bastion's own key, port and
    /// known_hosts, never starts a master of its own, and has every `%` that is
    /// not a token for the outer ssh escaped.
    #[test]
    fn a_jump_is_a_proxy_command_with_the_bastions_own_options() {
        let bastion = node("b", "198.18.0.1", "/keys/bastion");
        let mut hidden = node("h", "198.18.0.2", "/keys/hidden");
        hidden.address = NodeAddress::Remote("198.18.0.2".into());
        let o = OpenSsh {
            user: Some("deploy".into()),
            port: None,
            known_hosts: None,
            jump: Some(Box::new(bastion)),
        };
        let args = ssh_args(&hidden, &o, &ConnectOptions::default(), Path::new("/cm"));
        let proxy = args
            .iter()
            .find_map(|a| a.strip_prefix("ProxyCommand="))
            .expect("a ProxyCommand");
        assert!(
            proxy.starts_with("ssh ")
                && proxy.contains("-i /keys/bastion")
                && proxy.contains("-p 2200")
                && proxy.contains("UserKnownHostsFile=/kh/b")
                && proxy.contains("ControlMaster=no")
                && proxy.contains("ControlPath=/cm/%%C")
                && !proxy.contains("ControlPersist")
                && proxy.ends_with("-W %h:%p -- 198.18.0.1"),
            "{proxy}"
        );
        assert!(
            args.windows(2).any(|w| w == ["-i", "/keys/hidden"]),
            "{args:?}"
        );
        // The built-in defaults of a node are not passed for the hidden node.
        assert!(!args.iter().any(|a| a == "-p"), "{args:?}");
    }
}
