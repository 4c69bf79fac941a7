//! SSH transport over ssh2 (libssh2): one TCP connection and one SSH session per
//! node, the host key checked against an OpenSSH known_hosts file before anything
//! is sent, and every command run on its own channel of that one session.
//! Nothing here knows what the commands do; nothing here ever skips host key
//! verification.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel, ErrorCode, MethodType, Session};

mod auth;
mod host_keys;

use super::{ConnectOptions, Output, Transport, TransportError};
use crate::topology::model::Node;
use auth::authenticate;
pub use host_keys::fingerprint_sha256;
use host_keys::{
    host_key_preference, known_hosts_name, supported_host_key_algorithms, verify_host_key,
    KnownHostsFile,
};

/// A key file used instead of the node's `identity` and of the defaults (the lab sets it).
pub const ENV_IDENTITY: &str = "GEARTOPO_IDENTITY";
/// A known_hosts file used instead of the node's `known_hosts` (the lab sets it).
pub const ENV_KNOWN_HOSTS: &str = "GEARTOPO_KNOWN_HOSTS";

/// libssh2's "would block" code, reported by every call in non-blocking mode.
const EAGAIN: i32 = -37;
/// libssh2's "timed out" code, reported by blocking calls after `set_timeout`.
const LIBSSH2_TIMEOUT: i32 = -9;

/// A connection to one node over SSH.
pub struct SshTransport {
    node: String,
    session: Session,
    command_timeout: Duration,
    /// The limit of the command running now (the command time-out, or shorter).
    limit: Duration,
}

impl SshTransport {
    /// Connects to `node`, verifies its host key and authenticates.
    ///
    /// `GEARTOPO_IDENTITY` and `GEARTOPO_KNOWN_HOSTS`, when set and non-empty,
    /// replace the node's identity and known_hosts file.
    pub fn connect(node: &Node, options: &ConnectOptions) -> Result<Self, TransportError> {
        // `ssh_host` when set: the address stays what links lead to.
        let host = match node.ssh_target() {
            Some(host) => host.to_string(),
            None => {
                return Err(TransportError::Connect {
                    node: node.name.clone(),
                    address: "local".into(),
                    reason: "address `local` is reached without SSH".into(),
                })
            }
        };
        let ctx = Ctx {
            node: node.name.clone(),
            address: display_address(&host, node.port),
        };
        let known_hosts = env_path(ENV_KNOWN_HOSTS).unwrap_or_else(|| node.known_hosts.clone());
        let identity = env_path(ENV_IDENTITY).or_else(|| node.identity.clone());

        let tcp = tcp_connect(&ctx, &host, node.port, options.connect_timeout)?;
        let mut session = Session::new()
            .map_err(|e| ctx.connect(format!("cannot start an SSH session: {}", e.message())))?;
        // Blocking with a timeout until we are in: a peer that accepts TCP but never
        // speaks SSH must not hang us past the connect timeout.
        session.set_timeout(millis(options.connect_timeout));
        session.set_tcp_stream(tcp);

        let name = known_hosts_name(&host, node.port);
        let entries = KnownHostsFile::load(&known_hosts)
            .map_err(|e| ctx.io(format!("cannot read {}: {e}", known_hosts.display())))?;
        let known_types = entries.types_known_for(&session, &name);
        let prefs = host_key_preference(&known_types, &supported_host_key_algorithms(&session));
        session
            .method_pref(MethodType::HostKey, &prefs.join(","))
            .map_err(|e| ctx.connect(format!("cannot set host key algorithms: {}", e.message())))?;
        session.handshake().map_err(|e| {
            if is_code(&e, LIBSSH2_TIMEOUT) {
                TransportError::ConnectTimeout {
                    node: ctx.node.clone(),
                    address: ctx.address.clone(),
                    secs: options.connect_timeout.as_secs(),
                }
            } else {
                ctx.connect(format!("SSH handshake failed: {}", e.message()))
            }
        })?;

        verify_host_key(
            &ctx,
            &session,
            &entries,
            &known_hosts,
            &name,
            &known_types,
            options.accept_new_host_keys,
        )?;
        authenticate(&ctx, &session, &node.user, identity.as_deref())?;

        // From here on every call is non-blocking and we wait on the socket
        // ourselves: that is what lets one loop drain stdout and stderr and feed
        // stdin at the same time, under one deadline.
        session.set_timeout(0);
        session.set_blocking(false);
        Ok(SshTransport {
            node: node.name.clone(),
            session,
            command_timeout: options.command_timeout,
            limit: options.command_timeout,
        })
    }

    fn io_error(&self, what: &str, e: impl std::fmt::Display) -> TransportError {
        TransportError::Io {
            node: self.node.clone(),
            reason: format!("{what}: {e}"),
        }
    }

    fn timeout(&self) -> TransportError {
        TransportError::CommandTimeout {
            node: self.node.clone(),
            secs: self.limit.as_secs(),
        }
    }

    /// Retries a libssh2 call until it stops saying "would block", waiting on the socket in between.
    fn again<T>(
        &self,
        deadline: Instant,
        what: &str,
        mut call: impl FnMut() -> Result<T, ssh2::Error>,
    ) -> Result<T, TransportError> {
        loop {
            match call() {
                Ok(value) => return Ok(value),
                Err(e) if is_code(&e, EAGAIN) => self.wait_socket(deadline)?,
                Err(e) => return Err(self.io_error(what, e.message())),
            }
        }
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, or
    /// a little while, or the deadline.
    fn wait_socket(&self, deadline: Instant) -> Result<(), TransportError> {
        let now = Instant::now();
        if now >= deadline {
            return Err(self.timeout());
        }
        let events = match self.session.block_directions() {
            BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
        };
        let mut fd = libc::pollfd {
            fd: self.session.as_raw_fd(),
            events,
            revents: 0,
        };
        // Capped so that a direction libssh2 did not report cannot stall us.
        let wait = (deadline - now).min(Duration::from_millis(200));
        // SAFETY: one valid pollfd, the count says one.
        unsafe { libc::poll(&mut fd, 1, wait.as_millis() as libc::c_int) };
        Ok(())
    }

    fn exchange(
        &self,
        channel: &mut Channel,
        stdin: &[u8],
        deadline: Instant,
    ) -> Result<Output, TransportError> {
        let mut output = Output::default();
        let mut stderr = channel.stderr();
        let mut written = 0;
        // Stdin is finished once it is all written and EOF sent, or once the remote
        // side stopped taking it (the command exited without reading it all).
        let mut stdin_done = false;
        let (mut stdout_done, mut stderr_done) = (false, false);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if Instant::now() >= deadline {
                return Err(self.timeout());
            }
            let mut progress = false;
            if !stdin_done && written < stdin.len() {
                match channel.write(&stdin[written..]) {
                    Ok(n) => {
                        written += n;
                        progress |= n > 0;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => stdin_done = true,
                }
            }
            if !stdin_done && written == stdin.len() {
                match channel.send_eof() {
                    Ok(()) => {
                        stdin_done = true;
                        progress = true;
                    }
                    Err(e) if is_code(&e, EAGAIN) => {}
                    Err(_) => stdin_done = true,
                }
            }
            if !stdout_done {
                let (done, moved) = drain(channel, &mut buf, &mut output.stdout)
                    .map_err(|e| self.io_error("reading stdout", e))?;
                stdout_done = done;
                progress |= moved;
            }
            if !stderr_done {
                let (done, moved) = drain(&mut stderr, &mut buf, &mut output.stderr)
                    .map_err(|e| self.io_error("reading stderr", e))?;
                stderr_done = done;
                progress |= moved;
            }
            if output.stdout.len() + output.stderr.len() > super::MAX_OUTPUT {
                return Err(TransportError::OutputTooLarge {
                    node: self.node.clone(),
                    limit: super::MAX_OUTPUT,
                });
            }
            if stdout_done && stderr_done && !stdin_done {
                // Output ended but stdin is not all taken: if the command is gone
                // (sshd closed the channel) the rest of stdin has no reader, and
                // libssh2 would keep waiting for window space that never comes.
                match channel.wait_close() {
                    Ok(()) => stdin_done = true,
                    Err(e) if is_code(&e, EAGAIN) => {}
                    Err(e) => {
                        return Err(self.io_error("waiting for the channel to close", e.message()))
                    }
                }
            }
            if stdout_done && stderr_done && stdin_done {
                break;
            }
            if !progress {
                self.wait_socket(deadline)?;
            }
        }
        // Waiting for the remote close (not closing first) keeps the exit status,
        // which sshd sends just before its close.
        self.again(deadline, "waiting for the channel to close", || {
            channel.wait_close()
        })?;
        self.again(deadline, "closing the channel", || channel.close())?;
        output.status = exit_code(channel);
        Ok(output)
    }
}

impl Transport for SshTransport {
    fn node(&self) -> &str {
        &self.node
    }

    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        self.run_within(command, stdin, self.command_timeout)
    }

    fn run_within(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: Duration,
    ) -> Result<Output, TransportError> {
        self.limit = limit;
        let deadline = Instant::now() + limit;
        let mut channel = self.again(deadline, "opening a channel", || {
            self.session.channel_session()
        })?;
        self.again(deadline, "starting the command", || channel.exec(command))?;
        let result = self.exchange(&mut channel, stdin, deadline);
        if result.is_err() {
            // Best effort, never waiting: tell sshd we are gone so it drops the command's pipes.
            let _ = channel.close();
        }
        result
    }
}

impl Drop for SshTransport {
    fn drop(&mut self) {
        self.session.set_blocking(true);
        self.session.set_timeout(2000);
        let _ = self.session.disconnect(None, "geartopo done", None);
    }
}

/// Reads what a stream has now. Returns (stream ended, read anything).
fn drain(stream: &mut impl Read, buf: &mut [u8], into: &mut Vec<u8>) -> io::Result<(bool, bool)> {
    let mut moved = false;
    loop {
        match stream.read(buf) {
            Ok(0) => return Ok((true, moved)),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                moved = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok((false, moved)),
            Err(e) => return Err(e),
        }
    }
}

/// The command's exit status; killed by a signal: 128 + its number, as a shell reports it.
fn exit_code(channel: &Channel) -> i32 {
    let status = channel.exit_status().unwrap_or(-1);
    if status != 0 {
        return status;
    }
    match channel.exit_signal().ok().and_then(|s| s.exit_signal) {
        Some(signal) => 128 + signal_number(&signal).unwrap_or(127),
        None => status,
    }
}

/// Signal names as SSH carries them (no `SIG` prefix), Linux numbers.
fn signal_number(name: &str) -> Option<i32> {
    let number = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    };
    Some(number)
}

/// Node name and `host:port`, for errors.
struct Ctx {
    node: String,
    address: String,
}

impl Ctx {
    fn connect(&self, reason: String) -> TransportError {
        TransportError::Connect {
            node: self.node.clone(),
            address: self.address.clone(),
            reason,
        }
    }
    fn io(&self, reason: String) -> TransportError {
        TransportError::Io {
            node: self.node.clone(),
            reason,
        }
    }
}

fn is_code(e: &ssh2::Error, code: i32) -> bool {
    e.code() == ErrorCode::Session(code)
}

fn millis(d: Duration) -> u32 {
    d.as_millis().clamp(1, u32::MAX as u128) as u32
}

/// The value of an environment variable as a path, when set and non-empty;
/// a leading `~/` is the home folder, as in the topology file.
fn env_path(name: &str) -> Option<PathBuf> {
    let value = std::env::var_os(name).filter(|v| !v.is_empty())?;
    Some(expand_home(
        PathBuf::from(value),
        std::env::var_os("HOME").map(PathBuf::from),
    ))
}

fn expand_home(path: PathBuf, home: Option<PathBuf>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// `host:port`, with brackets around IPv6 literals.
fn display_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn tcp_connect(
    ctx: &Ctx,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ctx.connect(format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(ctx.connect(format!("{host} resolves to no address")));
    }
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(stream) => {
                // Every exchange is a few small packets each way: with Nagle's
                // algorithm a second small packet waits for the peer's delayed ACK
                // (40 ms on Linux), several times per round trip.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("at least one address was tried");
    if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock {
        Err(TransportError::ConnectTimeout {
            node: ctx.node.clone(),
            address: ctx.address.clone(),
            secs: timeout.as_secs(),
        })
    } else {
        Err(ctx.connect(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
