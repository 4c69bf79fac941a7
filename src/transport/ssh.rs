//! SSH transport over ssh2 (libssh2): one TCP connection and one SSH session per
//! node, the host key checked against an OpenSSH known_hosts file before anything
//! is sent, and every command run on its own channel of that one session.
//! Nothing here knows what the commands do; nothing here ever skips host key
//! verification.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ssh2::{
    BlockDirections, Channel, CheckResult, ErrorCode, KnownHostFileKind, MethodType, Session,
};

use super::{ConnectOptions, Output, Transport, TransportError};
use crate::topology::model::{Node, NodeAddress};

/// A key file used instead of the node's `identity` and of the defaults (the lab sets it).
pub const ENV_IDENTITY: &str = "GEARTOPO_IDENTITY";
/// A known_hosts file used instead of the node's `known_hosts` (the lab sets it).
pub const ENV_KNOWN_HOSTS: &str = "GEARTOPO_KNOWN_HOSTS";

/// libssh2's "would block" code, reported by every call in non-blocking mode.
const EAGAIN: i32 = -37;
/// libssh2's "timed out" code, reported by blocking calls after `set_timeout`.
const LIBSSH2_TIMEOUT: i32 = -9;

/// Host key algorithms we offer, best first: OpenSSH's default order, without the
/// SHA-1 signature algorithms (`ssh-rsa`, `ssh-dss`) that OpenSSH also disabled.
const HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// The default key files tried when a node names no identity and the agent has
/// none that works, in OpenSSH's order.
const DEFAULT_KEY_FILES: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

/// A connection to one node over SSH.
pub struct SshTransport {
    node: String,
    session: Session,
    command_timeout: Duration,
}

impl SshTransport {
    /// Connects to `node`, verifies its host key and authenticates.
    ///
    /// `GEARTOPO_IDENTITY` and `GEARTOPO_KNOWN_HOSTS`, when set and non-empty,
    /// replace the node's identity and known_hosts file.
    pub fn connect(node: &Node, options: &ConnectOptions) -> Result<Self, TransportError> {
        let host = match &node.address {
            NodeAddress::Remote(host) => host.clone(),
            NodeAddress::Local => {
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
        let prefs = host_key_preference(
            &entries.types_known_for(&session, &name),
            &supported_host_key_algorithms(&session),
        );
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
            secs: self.command_timeout.as_secs(),
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
        let deadline = Instant::now() + self.command_timeout;
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

/// The name OpenSSH files a host under in known_hosts: the bare host on port
/// 22, `[host]:port` on any other port.
pub(crate) fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
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
            Ok(stream) => return Ok(stream),
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

fn supported_host_key_algorithms(session: &Session) -> Vec<String> {
    session
        .supported_algs(MethodType::HostKey)
        .map(|algs| algs.into_iter().map(String::from).collect())
        .unwrap_or_default()
}

/// The host key algorithms to offer, best first: those able to produce a key
/// type already recorded for this host first (so a host known by its RSA key is
/// not reported as unknown because it also has an ed25519 one), then the rest of
/// OpenSSH's order; only what libssh2 supports.
pub(crate) fn host_key_preference(known_types: &[String], supported: &[String]) -> Vec<String> {
    let mut order: Vec<&str> = Vec::new();
    for key_type in known_types {
        for alg in algorithms_for_key_type(key_type) {
            if !order.contains(&alg) {
                order.push(alg);
            }
        }
    }
    for alg in HOST_KEY_ALGORITHMS {
        if !order.contains(alg) {
            order.push(alg);
        }
    }
    order
        .into_iter()
        .filter(|a| supported.iter().any(|s| s == a))
        .map(String::from)
        .collect()
}

/// The signature algorithms a host key of this type can be offered with.
fn algorithms_for_key_type(key_type: &str) -> Vec<&'static str> {
    match key_type {
        "ssh-rsa" => vec!["rsa-sha2-512", "rsa-sha2-256"],
        other => HOST_KEY_ALGORITHMS
            .iter()
            .copied()
            .filter(|a| *a == other)
            .collect(),
    }
}

/// A host key as the server presented it.
pub(crate) struct HostKey {
    /// The SSH wire encoding of the public key (what known_hosts stores in base64).
    pub(crate) blob: Vec<u8>,
    /// The key type name inside the blob, e.g. `ssh-ed25519`.
    pub(crate) key_type: String,
}

impl HostKey {
    pub(crate) fn from_blob(blob: &[u8]) -> HostKey {
        HostKey {
            blob: blob.to_vec(),
            key_type: blob_key_type(blob).unwrap_or_else(|| "unknown".into()),
        }
    }

    /// The fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64.
    pub(crate) fn fingerprint(&self) -> String {
        fingerprint_sha256(&self.blob)
    }
}

/// The key type name an SSH public key blob starts with (a length-prefixed string).
fn blob_key_type(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

/// `SHA256:` followed by the unpadded base64 of the key blob's SHA-256, as
/// `ssh-keygen -l` and `ssh` print host key fingerprints.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    format!("SHA256:{}", base64(&Sha256::digest(blob), false))
}

/// Standard base64 (RFC 4648 alphabet).
pub(crate) fn base64(bytes: &[u8], pad: bool) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// The lines of a known_hosts file, parsed just enough to pick them by key type
/// and marker; matching host names (plain or hashed) is left to libssh2.
pub(crate) struct KnownHostsFile {
    entries: Vec<KnownHostsEntry>,
}

struct KnownHostsEntry {
    /// `@revoked` or `@cert-authority`, if the line starts with one.
    marker: Option<String>,
    key_type: String,
    key_base64: String,
    /// `hosts type key`, without marker and comment, as libssh2 reads a line.
    line: String,
}

impl KnownHostsFile {
    /// Reads the file; a missing file is an empty one (every key is then unknown).
    pub(crate) fn load(path: &Path) -> io::Result<KnownHostsFile> {
        match fs::read_to_string(path) {
            Ok(text) => Ok(KnownHostsFile::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(KnownHostsFile {
                entries: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn parse(text: &str) -> KnownHostsFile {
        let mut entries = Vec::new();
        for line in text.lines() {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            if fields.first().is_none_or(|f| f.starts_with('#')) {
                continue;
            }
            let marker = if fields[0].starts_with('@') {
                Some(fields.remove(0).to_string())
            } else {
                None
            };
            // Like OpenSSH, a line we cannot read is skipped, not fatal.
            if fields.len() < 3 {
                continue;
            }
            entries.push(KnownHostsEntry {
                marker,
                key_type: fields[1].to_string(),
                key_base64: fields[2].to_string(),
                line: fields[..3].join(" "),
            });
        }
        KnownHostsFile { entries }
    }

    /// A libssh2 collection of the unmarked entries that `keep` selects.
    fn collection(
        &self,
        session: &Session,
        keep: impl Fn(&KnownHostsEntry) -> bool,
    ) -> Result<ssh2::KnownHosts, ssh2::Error> {
        let mut hosts = session.known_hosts()?;
        for entry in self
            .entries
            .iter()
            .filter(|e| e.marker.is_none() && keep(e))
        {
            // A line libssh2 cannot read is skipped, as OpenSSH skips it.
            let _ = hosts.read_str(&entry.line, KnownHostFileKind::OpenSSH);
        }
        Ok(hosts)
    }

    /// The key types recorded for `name`, in file order. Hashed names included:
    /// checking a key that cannot be anyone's against the entries of one type
    /// reports a mismatch exactly when that type is on record for the host.
    pub(crate) fn types_known_for(&self, session: &Session, name: &str) -> Vec<String> {
        let mut types: Vec<String> = Vec::new();
        for entry in self.entries.iter().filter(|e| e.marker.is_none()) {
            if types.contains(&entry.key_type) {
                continue;
            }
            let Ok(hosts) = self.collection(session, |e| e.key_type == entry.key_type) else {
                continue;
            };
            if matches!(
                hosts.check(name, b"geartopo: no such key"),
                CheckResult::Mismatch
            ) {
                types.push(entry.key_type.clone());
            }
        }
        types
    }

    /// What the file says about `key` for `name`. Like OpenSSH, only entries of
    /// the key's own type count: a host known by another key type is new, not changed.
    pub(crate) fn check(
        &self,
        session: &Session,
        name: &str,
        key: &HostKey,
    ) -> Result<HostKeyStatus, ssh2::Error> {
        let key_base64 = base64(&key.blob, true);
        if self
            .entries
            .iter()
            .any(|e| e.marker.as_deref() == Some("@revoked") && e.key_base64 == key_base64)
        {
            return Ok(HostKeyStatus::Revoked);
        }
        let hosts = self.collection(session, |e| e.key_type == key.key_type)?;
        Ok(match hosts.check(name, &key.blob) {
            CheckResult::Match => HostKeyStatus::Known,
            CheckResult::NotFound => HostKeyStatus::Unknown,
            CheckResult::Mismatch => HostKeyStatus::Changed,
            CheckResult::Failure => HostKeyStatus::Unreadable,
        })
    }
}

/// The verdict of known_hosts on a presented host key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostKeyStatus {
    Known,
    Unknown,
    Changed,
    Revoked,
    Unreadable,
}

fn verify_host_key(
    ctx: &Ctx,
    session: &Session,
    entries: &KnownHostsFile,
    known_hosts: &Path,
    name: &str,
    accept_new: bool,
) -> Result<(), TransportError> {
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| ctx.connect("the server presented no host key".into()))?;
    let key = HostKey::from_blob(blob);
    let status = entries
        .check(session, name, &key)
        .map_err(|e| ctx.connect(format!("cannot check the host key: {}", e.message())))?;
    let file = known_hosts.display().to_string();
    match status {
        HostKeyStatus::Known => Ok(()),
        HostKeyStatus::Changed => Err(TransportError::ChangedHostKey {
            node: ctx.node.clone(),
            address: ctx.address.clone(),
            known_hosts: file,
            key_type: key.key_type.clone(),
            fingerprint: key.fingerprint(),
        }),
        HostKeyStatus::Revoked => Err(ctx.connect(format!(
            "host key {} {} is marked @revoked in {file}",
            key.key_type,
            key.fingerprint()
        ))),
        HostKeyStatus::Unreadable => {
            Err(ctx.connect(format!("cannot check the host key against {file}")))
        }
        HostKeyStatus::Unknown if accept_new => {
            append_known_host(known_hosts, name, &key)
                .map_err(|e| ctx.io(format!("cannot record the host key in {file}: {e}")))?;
            eprintln!(
                "geartopo: node {}: recorded new host key for {name} ({} {}) in {file}",
                ctx.node,
                key.key_type,
                key.fingerprint()
            );
            Ok(())
        }
        HostKeyStatus::Unknown => Err(TransportError::UnknownHostKey {
            node: ctx.node.clone(),
            address: ctx.address.clone(),
            known_hosts: file,
            key_type: key.key_type.clone(),
            fingerprint: key.fingerprint(),
        }),
    }
}

/// Appends `name type base64` to known_hosts, creating the folder (0700) and the
/// file (0600) if missing. One write of one line, so that nodes recorded at the
/// same time from several threads do not interleave.
pub(crate) fn append_known_host(path: &Path, name: &str, key: &HostKey) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let mut line = String::new();
    let ends_in_newline = match fs::read(path) {
        Ok(bytes) => bytes.last().is_none_or(|b| *b == b'\n'),
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    if !ends_in_newline {
        line.push('\n');
    }
    line.push_str(&format!(
        "{name} {} {}\n",
        key.key_type,
        base64(&key.blob, true)
    ));
    let mut file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(line.as_bytes())
}

/// Tries the identity if one is given; else the agent's keys, then the default
/// key files that exist. The error lists everything tried and why it failed.
fn authenticate(
    ctx: &Ctx,
    session: &Session,
    user: &str,
    identity: Option<&Path>,
) -> Result<(), TransportError> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(path) = identity {
        match try_key_file(session, user, path) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("{} ({why})", path.display())),
        }
    } else {
        match try_agent(session, user) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("ssh-agent ({why})")),
        }
        let home = env_path("HOME").unwrap_or_else(|| PathBuf::from("/"));
        let files: Vec<PathBuf> = DEFAULT_KEY_FILES
            .iter()
            .map(|f| home.join(".ssh").join(f))
            .collect();
        let mut any_file = false;
        for path in files.iter().filter(|p| p.exists()) {
            any_file = true;
            match try_key_file(session, user, path) {
                Ok(()) => return Ok(()),
                Err(why) => tried.push(format!("{} ({why})", path.display())),
            }
        }
        if !any_file {
            tried.push(format!("no key file in {}", home.join(".ssh").display()));
        }
    }
    Err(TransportError::Auth {
        node: ctx.node.clone(),
        user: user.to_string(),
        reason: format!("tried {}", tried.join("; ")),
    })
}

fn try_key_file(session: &Session, user: &str, path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err("no such file".into());
    }
    match session.userauth_pubkey_file(user, None, path, None) {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err("not accepted".into()),
        Err(e) => Err(auth_reason(&e)),
    }
}

fn try_agent(session: &Session, user: &str) -> Result<(), String> {
    if env_path("SSH_AUTH_SOCK").is_none() {
        return Err("SSH_AUTH_SOCK not set".into());
    }
    let mut agent = session.agent().map_err(|e| e.message().to_string())?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {}", e.message()))?;
    agent
        .list_identities()
        .map_err(|e| format!("cannot list keys: {}", e.message()))?;
    let keys = agent
        .identities()
        .map_err(|e| format!("cannot list keys: {}", e.message()))?;
    for key in &keys {
        if agent.userauth(user, key).is_ok() && session.authenticated() {
            let _ = agent.disconnect();
            return Ok(());
        }
    }
    let _ = agent.disconnect();
    Err(format!("{} key(s), none accepted", keys.len()))
}

/// libssh2's messages for a refused key are about its own internals; say it plainly.
fn auth_reason(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(-18) => "key refused by the server".into(), // LIBSSH2_ERROR_AUTHENTICATION_FAILED
        ErrorCode::Session(-19) => "key refused by the server".into(), // LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED
        ErrorCode::Session(-16) => format!(
            "cannot read the key file (encrypted keys are not supported): {}",
            e.message()
        ), // LIBSSH2_ERROR_FILE
        _ => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, padded) in cases {
            assert_eq!(base64(input.as_bytes(), true), padded);
            assert_eq!(
                base64(input.as_bytes(), false),
                padded.trim_end_matches('=')
            );
        }
    }

    #[test]
    fn fingerprint_is_printed_like_openssh() {
        // Key and fingerprint from `ssh-keygen -t ed25519` / `ssh-keygen -lf`.
        let blob_b64 = "AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q";
        let blob = decode_base64(blob_b64);
        assert_eq!(base64(&blob, true), blob_b64);
        let key = HostKey::from_blob(&blob);
        assert_eq!(key.key_type, "ssh-ed25519");
        // What `ssh-keygen -lf` printed for this key.
        assert_eq!(
            key.fingerprint(),
            "SHA256:RWvqXDFb5bD/zIh+TwIo3kWx20x8TV9lh1+KW35898o"
        );
    }

    #[test]
    fn blob_key_type_reads_the_length_prefixed_name() {
        assert_eq!(
            blob_key_type(b"\0\0\0\x07ssh-rsa\0\0").as_deref(),
            Some("ssh-rsa")
        );
        assert_eq!(blob_key_type(b"\0\0\0\x09ssh"), None);
        assert_eq!(blob_key_type(b"\0\0"), None);
    }

    #[test]
    fn known_hosts_names_follow_openssh() {
        assert_eq!(known_hosts_name("198.18.0.2", 22), "198.18.0.2");
        assert_eq!(known_hosts_name("198.18.0.2", 2222), "[198.18.0.2]:2222");
        assert_eq!(
            known_hosts_name("node1.example", 2200),
            "[node1.example]:2200"
        );
        assert_eq!(display_address("198.18.0.2", 22), "198.18.0.2:22");
        assert_eq!(display_address("2001:db8::1", 22), "[2001:db8::1]:22");
    }

    #[test]
    fn host_key_preference_puts_known_types_first_and_drops_unsupported() {
        let supported: Vec<String> = [
            "ecdsa-sha2-nistp256",
            "ssh-ed25519",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-rsa",
            "ssh-dss",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            host_key_preference(&[], &supported),
            [
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "rsa-sha2-512",
                "rsa-sha2-256"
            ]
        );
        assert_eq!(
            host_key_preference(&["ssh-rsa".into()], &supported),
            [
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-ed25519",
                "ecdsa-sha2-nistp256"
            ]
        );
        assert_eq!(
            host_key_preference(
                &["ecdsa-sha2-nistp256".into(), "ssh-dss".into()],
                &supported
            ),
            [
                "ecdsa-sha2-nistp256",
                "ssh-ed25519",
                "rsa-sha2-512",
                "rsa-sha2-256"
            ]
        );
    }

    #[test]
    fn known_hosts_parsing_skips_comments_and_broken_lines_and_keeps_markers() {
        let file = KnownHostsFile::parse(
            "# comment\n\n[198.18.0.2]:2222 ssh-ed25519 AAAAkey1 root@x\nbroken-line\n@revoked * ssh-rsa AAAAkey2\n|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAkey3\n",
        );
        let lines: Vec<(Option<&str>, &str, &str)> = file
            .entries
            .iter()
            .map(|e| (e.marker.as_deref(), e.key_type.as_str(), e.line.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    None,
                    "ssh-ed25519",
                    "[198.18.0.2]:2222 ssh-ed25519 AAAAkey1"
                ),
                (Some("@revoked"), "ssh-rsa", "* ssh-rsa AAAAkey2"),
                (
                    None,
                    "ecdsa-sha2-nistp256",
                    "|1|c2FsdA==|aGFzaA== ecdsa-sha2-nistp256 AAAAkey3"
                ),
            ]
        );
    }

    #[test]
    fn known_hosts_check_uses_libssh2_matching_by_key_type() {
        let session = Session::new().unwrap();
        let ed =
            decode_base64("AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q");
        let other =
            decode_base64("AAAAC3NzaC1lZDI1NTE5AAAAIGfu8NYtB0wySdMPMU0x6Vcvoz7bUGvXiEpjS9j4yX4u");
        let key = HostKey::from_blob(&ed);
        let line = |name: &str, blob: &[u8]| format!("{name} ssh-ed25519 {}\n", base64(blob, true));

        let file = KnownHostsFile::parse(&line("[198.18.0.2]:2222", &ed));
        assert_eq!(
            file.check(&session, "[198.18.0.2]:2222", &key).unwrap(),
            HostKeyStatus::Known
        );
        // Port 22 and another port are different hosts to OpenSSH.
        assert_eq!(
            file.check(&session, "198.18.0.2", &key).unwrap(),
            HostKeyStatus::Unknown
        );
        assert_eq!(
            file.types_known_for(&session, "[198.18.0.2]:2222"),
            ["ssh-ed25519"]
        );
        assert!(file.types_known_for(&session, "198.18.0.3").is_empty());

        let changed = KnownHostsFile::parse(&line("198.18.0.2", &other));
        assert_eq!(
            changed.check(&session, "198.18.0.2", &key).unwrap(),
            HostKeyStatus::Changed
        );

        // Another key type on record: new, like OpenSSH, not changed.
        let rsa_only = KnownHostsFile::parse("198.18.0.2 ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC8auy/luZbM71ZjkX1PYXHAh5okVBc9a7f0zBeDC62\n");
        assert_eq!(
            rsa_only.check(&session, "198.18.0.2", &key).unwrap(),
            HostKeyStatus::Unknown
        );

        let revoked = KnownHostsFile::parse(&format!(
            "{}@revoked * ssh-ed25519 {}\n",
            line("198.18.0.2", &ed),
            base64(&ed, true)
        ));
        assert_eq!(
            revoked.check(&session, "198.18.0.2", &key).unwrap(),
            HostKeyStatus::Revoked
        );
    }

    #[test]
    fn append_creates_private_folder_and_file_and_keeps_lines_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new/.ssh/known_hosts");
        let key = HostKey::from_blob(&decode_base64(
            "AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q",
        ));
        append_known_host(&path, "[198.18.0.2]:2222", &key).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        // A file whose last line has no newline gets one before ours.
        fs::write(&path, "198.18.0.9 ssh-ed25519 AAAA").unwrap();
        append_known_host(&path, "198.18.0.2", &key).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "198.18.0.9 ssh-ed25519 AAAA\n198.18.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFBpMRJLJy7iJ8Beukk1yLoxqjLh/83161QwbIGGDe2Q\n"
        );
    }

    #[test]
    fn env_overrides_count_only_when_non_empty_and_expand_the_home_folder() {
        // A variable of its own, so no other test sees it change.
        let name = "GEARTOPO_TEST_ENV_PATH_SSH_RS";
        std::env::remove_var(name);
        assert_eq!(env_path(name), None);
        std::env::set_var(name, "");
        assert_eq!(env_path(name), None);
        std::env::set_var(name, "/lab/id_ed25519");
        assert_eq!(env_path(name), Some(PathBuf::from("/lab/id_ed25519")));
        std::env::remove_var(name);
        let home = Some(PathBuf::from("/home/op"));
        assert_eq!(
            expand_home("~/.ssh/kh".into(), home.clone()),
            PathBuf::from("/home/op/.ssh/kh")
        );
        assert_eq!(
            expand_home("~".into(), home.clone()),
            PathBuf::from("/home/op")
        );
        assert_eq!(
            expand_home("~other/kh".into(), home.clone()),
            PathBuf::from("~other/kh")
        );
        assert_eq!(expand_home("rel/kh".into(), home), PathBuf::from("rel/kh"));
        assert_eq!(expand_home("~/kh".into(), None), PathBuf::from("~/kh"));
    }

    #[test]
    fn signals_map_to_shell_style_statuses() {
        assert_eq!(signal_number("KILL"), Some(9));
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("NOPE"), None);
    }

    fn decode_base64(s: &str) -> Vec<u8> {
        let value = |c: u8| match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        };
        let digits: Vec<u8> = s.bytes().filter(|c| *c != b'=').map(value).collect();
        let mut out = Vec::new();
        for chunk in digits.chunks(4) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
            for i in 0..chunk.len() - 1 {
                out.push((n >> (16 - 8 * i)) as u8);
            }
        }
        out
    }
}
