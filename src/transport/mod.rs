//! How geartopo reaches a node: one `Transport` per node, which runs a shell
//! command line (already quoted, see `shell`) with bytes on its stdin.
//! Implementations: `ssh` (ssh2), `local` (address `local`), `fake` (tests).
//! Nothing here knows about containers or rules.

use std::time::Duration;

use crate::topology::model::{Node, NodeAddress};

#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod local;
pub mod openssh;
pub mod ssh;
pub mod trace;

/// What a command left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Errors reaching or talking to a node. Every variant names the node.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("node {node}: cannot connect to {address}: {reason}")]
    Connect {
        node: String,
        address: String,
        reason: String,
    },
    #[error("node {node}: connecting to {address} timed out after {secs}s")]
    ConnectTimeout {
        node: String,
        address: String,
        secs: u64,
    },
    #[error("node {node}: host key for {address} is not in {known_hosts} ({key_type} {fingerprint}); verify it and add it, or pass --accept-new-host-keys to record it")]
    UnknownHostKey {
        node: String,
        address: String,
        known_hosts: String,
        key_type: String,
        fingerprint: String,
    },
    #[error("node {node}: HOST KEY FOR {address} HAS CHANGED (now {key_type} {fingerprint}); {known_hosts} has a different key. Refusing to connect: this could be an attack. Remove the old key only if you know why it changed")]
    ChangedHostKey {
        node: String,
        address: String,
        known_hosts: String,
        key_type: String,
        fingerprint: String,
    },
    /// Boxed: the details would make every `Result` of a transport larger.
    #[error("{0}")]
    HostKeyTypeNotOnRecord(Box<KeyTypeRefusal>),
    #[error("node {node}: authentication as {user} failed: {reason}")]
    Auth {
        node: String,
        user: String,
        reason: String,
    },
    #[error("node {node}: `sudo -n` as {user} was refused ({reason}); nothing was run or changed on this node. With sudo = true, geartopo runs every script as root through `sudo -n`, which must not ask for a password: give {user} passwordless sudo on the node (a sudoers line `{user} ALL=(root) NOPASSWD: ALL`, see docs/fleets.md), or log in as root with sudo = false")]
    SudoRefused {
        node: String,
        user: String,
        reason: String,
    },
    #[error("node {node}: command timed out after {secs}s")]
    CommandTimeout { node: String, secs: u64 },
    /// A supervised script timed out; `aftermath` says whether its processes on
    /// the node were ended, or where their pid file is when they could not be.
    #[error("node {node}: command timed out after {secs}s; {aftermath}")]
    ScriptTimeout {
        node: String,
        secs: u64,
        aftermath: String,
    },
    /// Nothing more is run on a node where a timed-out script could not be
    /// ended: not even the unlock, so that its lock stays.
    #[error("node {node}: not run: a command that timed out may still be running there (its process group is in {pid_file} on the node); the apply lock stays until `geartopo force-unlock` shows and ends it")]
    Stranded { node: String, pid_file: String },
    #[error("node {node}: {reason}")]
    Io { node: String, reason: String },
    /// More output than any answer of a node can be (`MAX_OUTPUT`): refused, and
    /// not read further, so that a broken or hostile node cannot fill our memory.
    #[error("node {node}: the command wrote more than {limit} bytes of output; refused (no answer of a node is that large: check what runs there)")]
    OutputTooLarge { node: String, limit: usize },
}

/// A host key refused because another key type is on record for the host.
#[derive(Debug, thiserror::Error)]
#[error("node {node}: {known_hosts} records only {recorded} host key(s) for {address}, but the server presented {key_type} {fingerprint}. Not recording it with --accept-new-host-keys: a host that switches to another key type could be a man in the middle. Ask the node's administrator for the {key_type} fingerprint, compare, and add the key to {known_hosts} by hand if it matches")]
pub struct KeyTypeRefusal {
    pub node: String,
    pub address: String,
    pub known_hosts: String,
    /// The key types on record for the host, comma-separated.
    pub recorded: String,
    pub key_type: String,
    pub fingerprint: String,
}

/// The most output (stdout and stderr together) one command may send back:
/// far above an observe of 10,000 containers (tens of megabytes).
pub const MAX_OUTPUT: usize = 256 << 20;

/// Runs commands on one node. One value holds one connection for its lifetime.
pub trait Transport: Send {
    /// The node's name in the topology.
    fn node(&self) -> &str;
    /// Runs `command` (a shell command line, already quoted) with `stdin`, and waits.
    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError>;
    /// As `run`, giving up after `limit` instead of the command time-out (for the
    /// short clean-up after a time-out, which must not wait as long again).
    fn run_within(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: Duration,
    ) -> Result<Output, TransportError> {
        let _ = limit;
        self.run(command, stdin)
    }
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Record unknown host keys in known_hosts (never changed ones).
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(300),
        }
    }
}

/// Opens the transport a node calls for: local for `local`, SSH otherwise;
/// traced on stderr when `GEARTOPO_TRACE` is set (see `trace`).
pub fn connect(
    node: &Node,
    options: &ConnectOptions,
) -> Result<Box<dyn Transport>, TransportError> {
    let transport: Box<dyn Transport> = match &node.address {
        NodeAddress::Local => Box::new(local::LocalTransport::new(
            &node.name,
            options.command_timeout,
        )),
        NodeAddress::Remote(_) => match &node.openssh {
            Some(o) => Box::new(openssh::OpenSshTransport::connect(node, o, options)?),
            None => Box::new(ssh::SshTransport::connect(node, options)?),
        },
    };
    Ok(trace::from_env(transport))
}

/// Quoting for POSIX shells: every argument that reaches a remote shell goes through here.
pub mod shell {
    /// Quotes one argument for a POSIX shell. Plain words stay as they are.
    pub fn quote(arg: &str) -> String {
        let plain = !arg.is_empty()
            && arg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@%+".contains(&b));
        if plain {
            arg.to_string()
        } else {
            format!("'{}'", arg.replace('\'', "'\\''"))
        }
    }

    /// Quotes and joins a command line.
    pub fn join<I, S>(args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        args.into_iter()
            .map(|a| quote(a.as_ref()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn quotes_what_a_shell_would_interpret() {
            assert_eq!(quote("todo-app1"), "todo-app1");
            assert_eq!(quote(""), "''");
            assert_eq!(quote("$(touch /tmp/x); echo"), "'$(touch /tmp/x); echo'");
            assert_eq!(quote("it's"), "'it'\\''s'");
            assert_eq!(join(["podman", "run", "a b"]), "podman run 'a b'");
        }
    }
}
