//! What geartopo does to a node, as values: `NodeOp` (observe, lock, create,
//! rules, start, remove, ...) is what apply tasks carry, what the fake records and
//! what tests match on. `script` is the one place that turns operations into the
//! shell text a node runs, for the node's `NodeProfile`; `section` names the parts
//! of the observe output for its writer (the script) and its reader (`observe`).
//! A `NodeConnection` runs operations on one node in one round trip. No shell text
//! is built outside `script`, and nothing here parses what a node answered.

use std::time::Duration;

use crate::topology::model::{Node, Runtime};
use crate::transport::{Output, Transport, TransportError};

pub mod durable;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod lock;
pub mod prepare;
pub mod probe;
pub mod script;
pub mod section;
pub mod volumes;

/// The sysctls every container gets: forwarding, and DNAT to and from 127.0.0.0/8.
pub const SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.route_localnet", "1"),
];

/// Exit status of a round trip whose `Lock` found the lock held by another apply;
/// its stderr names the holder.
pub const LOCK_HELD: i32 = 75;

/// The line `NodeOp::Release` prints once this run's lock is no longer on the
/// node.
pub const RELEASED: &str = "@@geartopo released";

/// One thing to do on a node. Every string comes from the validated model or from
/// what `observe` found; `script` quotes each one.
#[derive(Debug, Clone, PartialEq, Eq)]
// A few operations per round trip: a create's size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum NodeOp {
    /// Reads the node: listening sockets, every container's published ports, this
    /// topology's containers and their namespaces. Changes nothing.
    /// `images`: the images of the node's containers in the file, reported
    /// when the node does not have them (with its registry logins' host names).
    Observe {
        topology: String,
        images: Vec<String>,
        /// Whether to read the runtime network's subnets (one more runtime
        /// run): only a topology with private ports needs them
        /// (`plan::private::needs_subnets`).
        subnets: bool,
    },
    /// Reads the node as `Observe` does and answers only the digest of what a
    /// plan depends on (`script::digest`): the lock's re-check. Changes nothing.
    Digest {
        topology: String,
        scope: script::digest::DigestScope,
        /// As `Observe`'s: the read digested must be the one the plan made.
        subnets: bool,
    },
    /// Takes the node's apply lock, recording its holder, or ends the round trip
    /// with `LOCK_HELD` and reports the lock (`lock::HeldLock`) on stderr.
    Lock { holder: lock::LockHolder },
    /// Releases the lock if `holder` holds it.
    Unlock { holder: lock::LockHolder },
    /// Rides at the end of a node's last step (`apply::execute_releasing`):
    /// when what came before it in the round trip succeeded, releases the lock
    /// as `Unlock` does and says so on stdout (`RELEASED`), which saves the
    /// session a round trip for its unlock; the round trip's exit status stays
    /// that of the step.
    Release { holder: lock::LockHolder },
    /// Reports the lock on stdout (`lock::HeldLock`), or nothing when none is held.
    ReadLock,
    /// Removes the lock whatever its holder, if its `holder` file still reads
    /// `line` (the lock shown to the operator); fails otherwise.
    ForceUnlock { line: String },
    /// Creates a container and prepares its namespace without starting its process
    /// (podman `init`; docker has none, so there `Rules` starts it).
    Create(CreateSpec),
    /// Prepares the namespace of an existing, stopped container (podman only).
    Init { container: String },
    /// Puts the owned chains in the container's namespace (nat: the links;
    /// filter: the route_localnet guard), makes each jump into them present once,
    /// sets the sysctls. Refuses when that namespace is the node's own.
    Rules {
        container: String,
        rules: OwnedRules,
    },
    /// Writes a container's rules file (and the node's hook) without touching
    /// its namespace: before the init of a stopped durable container whose file
    /// is repaired, since that init runs the hook, which reads the file.
    WriteRules { rules: OwnedRules },
    /// Starts a prepared container.
    Start { container: String },
    /// Removes a container (and with it its namespace and owned chains).
    Remove { container: String },
    /// Makes sure `image` is on the node (pulls it if not), or fails naming it:
    /// run before the old side of a replace is removed, so that an image that
    /// cannot be had leaves the old container running.
    EnsureImage { image: String },
    /// Makes the node's own private-ports chain `chain` exactly `rules` (one
    /// restore that declares only that chain) and FORWARD's jump into it present
    /// once, first; with no rules, removes the jump and the chain. Nothing else in
    /// the node's tables is touched.
    PrivatePorts { chain: String, rules: Vec<String> },
    /// `node prepare`: reports the state directory, dockerd's configuration file
    /// (path, sha256, text) and the runtime it has registered. Changes nothing.
    PrepareRead,
    /// `node prepare`: writes the hook and the runtime wrapper; with `config`
    /// (new text, sha256 it must still have), dockerd's configuration and a
    /// reload of dockerd, checked, undone if dockerd did not take it.
    Prepare { config: Option<(String, String)> },
    /// Waits until a container passes its health check, or fails after the last
    /// try (docs/rolling.md). `name` is its runtime name, for the message.
    Health {
        container: String,
        name: String,
        health: crate::topology::model::Health,
    },
    /// One try of each container's health check, for `show`: a line
    /// `health RUNTIME_NAME healthy|unhealthy` each, before the observe output.
    ProbeHealth {
        checks: Vec<(String, crate::topology::model::Health)>,
    },
    /// Lists the node's volumes (`Section::Volumes`: `NAME TOPOLOGY ID` per
    /// line, the labels empty when absent): before `Observe` in the same round
    /// trip, only when the topology has named volumes.
    Volumes,
    /// Removes these volumes of the topology (`destroy --volumes`), after the
    /// containers that mount them.
    RemoveVolumes { names: Vec<String> },
    /// `geartopo check`: TCP connects from inside containers' namespaces to
    /// their links' listen addresses (`probe`); changes nothing.
    CheckLinks {
        topology: String,
        timeout_secs: u32,
        probes: Vec<probe::Probe>,
    },
}

impl NodeOp {
    /// A short name of the kind of operation (`create`), for golden files and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeOp::Observe { .. } => "observe",
            NodeOp::Digest { .. } => "digest",
            NodeOp::Lock { .. } => "lock",
            NodeOp::Unlock { .. } => "unlock",
            NodeOp::Release { .. } => "release",
            NodeOp::ReadLock => "read-lock",
            NodeOp::ForceUnlock { .. } => "force-unlock",
            NodeOp::PrepareRead => "prepare-read",
            NodeOp::Prepare { .. } => "prepare",
            NodeOp::Create(_) => "create",
            NodeOp::Init { .. } => "init",
            NodeOp::Rules { .. } => "rules",
            NodeOp::WriteRules { .. } => "write-rules",
            NodeOp::Start { .. } => "start",
            NodeOp::Remove { .. } => "remove",
            NodeOp::EnsureImage { .. } => "image",
            NodeOp::PrivatePorts { .. } => "private-ports",
            NodeOp::Health { .. } => "health",
            NodeOp::ProbeHealth { .. } => "probe-health",
            NodeOp::Volumes => "volumes",
            NodeOp::RemoveVolumes { .. } => "remove-volumes",
            NodeOp::CheckLinks { .. } => "check-links",
        }
    }
}

/// What `Create` needs. In `container` fields of other operations, a container is
/// its runtime name when just created, its observed id otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSpec {
    pub runtime_name: String,
    pub labels: Vec<(String, String)>,
    /// (protocol, container port, host port)
    pub publish: Vec<(&'static str, u16, u16)>,
    pub env: Vec<(String, String)>,
    /// Secret values: passed in a root-only file, or, with a line break, in the
    /// environment of the create process (`--env NAME` without a value).
    pub secret_env: Vec<(String, String)>,
    pub image: String,
    pub command: Vec<String>,
    /// The restart policy, as the runtime spells it (`always`).
    pub restart: String,
    /// Named volumes made before the container if they do not exist: (name on
    /// the node, its labels). One that exists with another owner fails the step.
    pub volumes: Vec<(String, Vec<(String, String)>)>,
    /// `--volume` values: `SOURCE:TARGET[:ro]` (a volume name or a node path).
    pub mounts: Vec<String>,
    /// Further create arguments (`ContainerOptions::create_args`).
    pub options: Vec<String>,
    /// The container's rules, when it is made durable (always, for a container
    /// created now): its rules file is written before it is created, and it
    /// carries the label and annotation that make the hook run at every start.
    pub durable: Option<OwnedRules>,
    /// `--runtime`: the docker runtime wrapper on a prepared docker node.
    pub oci_runtime: Option<String>,
}

/// The owned rules of one container, in the form of the backend they are for:
/// iptables-save lines (`rules::render_rules`) for `Iptables`, the lines of
/// `table ip geartopo` in nft syntax (`nft::table_lines`) for `Nftables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRules {
    pub topology: String,
    /// The container's name in the topology (the marker rule names it).
    pub container: String,
    pub rules: Vec<String>,
    /// The name of the container's rules file on the node (its runtime name),
    /// written in the same step as the restore; `None` for a container made
    /// before durable links (no hook runs for it, so no file is kept).
    pub file: Option<String>,
    /// The backend `rules` are for, and so the program that applies them.
    pub firewall: Firewall,
    /// Also remove what the other backend holds of geartopo's in the namespace
    /// (a node switched backends): after the new rules are in place.
    pub clear_other: bool,
}

impl OwnedRules {
    /// The document that puts these rules in place, self-contained and
    /// idempotent: what is piped to `iptables-restore --noflush`
    /// (`firewall_program`) or `nft -f -`. The same text every time for the same
    /// rules, so that a hook may replay it after a restart.
    pub fn payload(&self) -> String {
        match self.firewall {
            Firewall::Iptables => {
                crate::rules::render_restore(&self.topology, &self.container, &self.rules)
            }
            Firewall::Nftables => crate::nft::document_from_lines(&self.rules),
        }
    }
}

/// The program (and arguments) that reads `OwnedRules::payload` on stdin.
pub fn firewall_program(firewall: Firewall) -> &'static str {
    match firewall {
        Firewall::Iptables => "iptables-restore --noflush",
        Firewall::Nftables => "nft -f -",
    }
}

/// How a node's firewall is driven (the model's type: a node of the topology
/// chooses it). Each backend renders its own document in `script`; `observe`
/// reads both, so that a node switched from one to the other is seen with what
/// the other left.
pub use crate::topology::model::Firewall;

/// Everything about a node that changes the text of its scripts (the container
/// runtime, the firewall backend; later e.g. how root is obtained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeProfile {
    pub runtime: Runtime,
    pub firewall: Firewall,
    /// Scripts run as root through `sudo -n` (`script::command_line`).
    pub sudo: bool,
}

impl NodeProfile {
    /// The profile of a node of the topology.
    pub fn of(node: &Node) -> NodeProfile {
        NodeProfile {
            sudo: node.sudo,
            firewall: node.firewall,
            ..NodeProfile::for_runtime(node.runtime)
        }
    }

    /// A node with `runtime` and the default of everything else.
    pub fn for_runtime(runtime: Runtime) -> NodeProfile {
        NodeProfile {
            runtime,
            firewall: Firewall::Iptables,
            sudo: false,
        }
    }
}

/// Runs operations on one node. One value holds one connection for its lifetime.
pub trait NodeConnection: Send {
    /// The node's name in the topology.
    fn node(&self) -> &str;
    /// Runs `ops` in order in one round trip and returns what it left behind.
    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError>;
}

/// Open connections, one per node, in node-name order.
pub type Connections = Vec<Box<dyn NodeConnection>>;

/// The real thing: renders the operations for the node's profile and runs the
/// script through a transport, supervised (`script::supervise`: the script on
/// stdin of a shell in a session of its own, named by a pid file). A script that
/// times out is ended over another channel; if it cannot be, nothing more runs on
/// the node through this connection (the unlock included: its lock stays).
pub struct ScriptedNode {
    transport: Box<dyn Transport>,
    profile: NodeProfile,
    cleanup_limit: Duration,
    /// The pid file of a timed-out script that could not be ended.
    stranded: Option<String>,
    /// The SSH user, for the error when its `sudo -n` is refused.
    user: String,
}

/// How long ending a timed-out script may take by default (TERM, five seconds,
/// KILL, and the round trip).
pub const CLEANUP_LIMIT: Duration = Duration::from_secs(20);

impl ScriptedNode {
    pub fn new(transport: Box<dyn Transport>, profile: NodeProfile) -> Self {
        ScriptedNode {
            transport,
            profile,
            cleanup_limit: CLEANUP_LIMIT,
            stranded: None,
            user: String::new(),
        }
    }

    /// The connection to `node` through `transport`, with the node's profile.
    pub fn for_node(transport: Box<dyn Transport>, node: &Node) -> Self {
        ScriptedNode {
            user: node.user.clone(),
            ..ScriptedNode::new(transport, NodeProfile::of(node))
        }
    }

    /// How long ending a timed-out script may take.
    pub fn cleanup_within(mut self, limit: Duration) -> Self {
        self.cleanup_limit = limit;
        self
    }
}

impl NodeConnection for ScriptedNode {
    fn node(&self) -> &str {
        self.transport.node()
    }

    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError> {
        if let Some(pid_file) = &self.stranded {
            return Err(TransportError::Stranded {
                node: self.node().to_string(),
                pid_file: pid_file.clone(),
            });
        }
        // Unique on the node among this process's round trips, whatever the
        // connection (two connections to one node never share a pid file).
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let token = format!("{}-{n}", std::process::id());
        // A release rides last: a test's hang goes before it, after the step.
        let (work, release) = match ops.split_last() {
            Some((last @ NodeOp::Release { .. }, work)) => (work, std::slice::from_ref(last)),
            _ => (ops, &[][..]),
        };
        #[allow(unused_mut)]
        let mut text = script::render(&self.profile, work);
        #[cfg(feature = "testing")]
        text.push_str(crate::apply::pause::remote_hang(ops));
        text.push_str(&script::render(&self.profile, release));
        let result = self.transport.run(
            &script::wrap(&self.profile, &script::supervise::supervised(&token)),
            text.as_bytes(),
        );
        if let Ok(out) = &result {
            if self.profile.sudo && out.status == script::SUDO_REFUSED {
                return Err(TransportError::SudoRefused {
                    node: self.transport.node().to_string(),
                    user: self.user.clone(),
                    reason: out.stderr_str().trim().replace('\n', "; "),
                });
            }
        }
        let Err(TransportError::CommandTimeout { node, secs }) = result else {
            return result;
        };
        let pid_file = script::supervise::pid_file(&token);
        let end = script::supervise::end_script(&token);
        let aftermath = match self.transport.run_within(
            &script::wrap(&self.profile, script::SHELL),
            end.as_bytes(),
            self.cleanup_limit,
        ) {
            Ok(out) if out.success() => "its processes on the node were ended".to_string(),
            ended => {
                let why = match ended {
                    Ok(out) => format!("exit {}: {}", out.status, out.stderr_str().trim()),
                    Err(e) => e.to_string(),
                };
                self.stranded = Some(pid_file.clone());
                format!("its processes could not be ended ({why}); their process group is in {pid_file} on the node, and the apply lock stays: `geartopo force-unlock` shows and ends them")
            }
        };
        Err(TransportError::ScriptTimeout {
            node,
            secs,
            aftermath,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::fake::FakeWorld;

    #[test]
    fn a_round_trip_is_one_script_on_stdin_of_a_supervised_shell() {
        let world = FakeWorld::succeeding();
        let profile = NodeProfile::for_runtime(Runtime::Docker);
        let mut node = ScriptedNode::new(Box::new(world.transport("node1")), profile);
        let ops = [
            NodeOp::Lock {
                holder: lock::LockHolder::this_process("todo"),
            },
            NodeOp::Observe {
                topology: "todo".into(),
                images: vec![],
                subnets: true,
            },
        ];
        node.run(&ops).unwrap();
        let log = world.log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].node, "node1");
        let token = token_of(&log[0].command);
        assert!(token.starts_with(&format!("{}-", std::process::id())));
        assert_eq!(log[0].command, script::supervise::supervised(&token));
        assert_eq!(log[0].stdin, script::render(&profile, &ops));
    }

    /// The token of a supervised command line (its pid file's name).
    fn token_of(command: &str) -> String {
        let after = command.split("f=\"$d/").nth(1).expect(command);
        after.split(".pid").next().unwrap().to_string()
    }

    fn timing_out(end_succeeds: bool) -> FakeWorld {
        FakeWorld::new(move |node, command, _| {
            if command.starts_with("setsid") {
                Err(TransportError::CommandTimeout {
                    node: node.into(),
                    secs: 3,
                })
            } else if end_succeeds {
                Ok(Output::default())
            } else {
                Err(TransportError::CommandTimeout {
                    node: node.into(),
                    secs: 1,
                })
            }
        })
    }

    /// A script that outlives its time-out is ended through its pid file over
    /// another run; the connection stays usable (the unlock can follow).
    #[test]
    fn a_timed_out_script_is_ended_by_its_pid_file() {
        let world = timing_out(true);
        let profile = NodeProfile::for_runtime(Runtime::Podman);
        let mut node = ScriptedNode::new(Box::new(world.transport("node1")), profile);
        let err = node.run(&[NodeOp::ReadLock]).unwrap_err().to_string();
        assert_eq!(
            err,
            "node node1: command timed out after 3s; its processes on the node were ended"
        );
        let log = world.log();
        assert_eq!(log.len(), 2);
        let token = token_of(&log[0].command);
        assert_eq!(log[1].command, script::SHELL);
        assert_eq!(log[1].stdin, script::supervise::end_script(&token));
        assert!(log[1].stdin.contains(&format!("scripts/{token}.pid")));
        // Still usable: the next round trip is sent.
        let _ = node.run(&[NodeOp::ReadLock]);
        assert!(world.log()[2].command.starts_with("setsid -w"));
    }

    /// When the script cannot be ended (the node stopped answering), nothing
    /// more is sent, the unlock included: the lock stays, the pid file named.
    #[test]
    fn a_script_that_cannot_be_ended_strands_the_node_with_its_pid_file_named() {
        let world = timing_out(false);
        let profile = NodeProfile::for_runtime(Runtime::Podman);
        let mut node = ScriptedNode::new(Box::new(world.transport("node1")), profile);
        let err = node.run(&[NodeOp::ReadLock]).unwrap_err().to_string();
        let token = token_of(&world.log()[0].command);
        let pid_file = script::supervise::pid_file(&token);
        assert!(err.contains("could not be ended"), "{err}");
        assert!(err.contains(&pid_file), "{err}");
        let unlock = node
            .run(&[NodeOp::Unlock {
                holder: lock::LockHolder::this_process("todo"),
            }])
            .unwrap_err();
        assert!(
            matches!(&unlock, TransportError::Stranded { pid_file: p, .. } if *p == pid_file),
            "{unlock}"
        );
        assert_eq!(world.log().len(), 2, "the unlock never reached the node");
    }

    /// A stand-in `sudo` on PATH: `-n true` fails as a sudo that wants a password
    /// does when `$1` of the test says so; otherwise it runs the command with an
    /// empty environment but PATH, as `env_reset` does.
    fn run_with_fake_sudo(wants_password: bool, env: &[(&str, &str)], script: &str) -> Output {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "geartopo-fake-sudo-{}-{wants_password}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let sudo = dir.join("sudo");
        let body = if wants_password {
            "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n"
        } else {
            "#!/bin/sh\n[ \"$1\" = -n ] || exit 99\nshift\nexec env -i PATH=\"$PATH\" \"$@\"\n"
        };
        std::fs::write(&sudo, body).unwrap();
        std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
        let profile = NodeProfile {
            sudo: true,
            ..NodeProfile::for_runtime(Runtime::Podman)
        };
        let line = script::command_line(&profile);
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap());
        let mut child = std::process::Command::new("sh")
            .args(["-c", &line])
            .env_clear()
            .env("PATH", path)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        Output {
            status: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        }
    }

    #[test]
    fn under_sudo_the_session_variables_scripts_read_survive_env_reset() {
        let out = run_with_fake_sudo(
            false,
            &[
                ("GEARTOPO_RUN_DIR", "/l/it's here"),
                ("DOCKER_HOST", "unix:///l/d.sock"),
                ("UNRELATED", "x"),
            ],
            "env | grep -E '^(GEARTOPO_RUN_DIR|DOCKER_HOST|CONTAINERS_CONF|UNRELATED)=' | sort\n",
        );
        assert_eq!(out.status, 0, "{}", out.stderr_str());
        // Set ones are passed verbatim; unset ones stay unset (not empty).
        assert_eq!(
            out.stdout_str(),
            "DOCKER_HOST=unix:///l/d.sock\nGEARTOPO_RUN_DIR=/l/it's here\n"
        );
    }

    #[test]
    fn a_sudo_that_wants_a_password_is_an_error_naming_node_user_and_fix() {
        let out = run_with_fake_sudo(true, &[], "echo ran\n");
        assert_eq!(out.status, script::SUDO_REFUSED);
        assert!(out.stdout.is_empty(), "nothing of the script ran");
        let world = FakeWorld::new(move |_, _, _| Ok(out.clone()));
        let profile = NodeProfile {
            sudo: true,
            ..NodeProfile::for_runtime(Runtime::Podman)
        };
        let mut node = ScriptedNode {
            user: "deploy".into(),
            ..ScriptedNode::new(Box::new(world.transport("node3")), profile)
        };
        let e = node.run(&[NodeOp::ReadLock]).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "node node3: `sudo -n` as deploy was refused (sudo: a password is required)"
            ),
            "{e}"
        );
        assert!(e.contains("deploy ALL=(root) NOPASSWD: ALL"), "{e}");
        assert!(world.log()[0]
            .command
            .starts_with("sh -c 'sudo -n true || exit 77;"));
    }

    #[test]
    fn without_sudo_the_command_line_stays_sh_s() {
        assert_eq!(
            script::command_line(&NodeProfile::for_runtime(Runtime::Docker)),
            "sh -s"
        );
    }
}
