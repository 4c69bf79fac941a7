//! Host keys: the algorithms to offer, OpenSSH's known_hosts file (read, checked
//! through libssh2, appended to) and fingerprints as OpenSSH prints them. Nothing
//! here accepts a key that known_hosts does not hold, unless the caller opted in
//! to recording new ones; nothing here opens a connection.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};
use ssh2::{CheckResult, KnownHostFileKind, MethodType, Session};

use super::Ctx;
use crate::transport::{KeyTypeRefusal, TransportError};

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

/// The name OpenSSH files a host under in known_hosts: the bare host on port
/// 22, `[host]:port` on any other port.
pub(crate) fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

pub(super) fn supported_host_key_algorithms(session: &Session) -> Vec<String> {
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
pub(super) fn algorithms_for_key_type(key_type: &str) -> Vec<&'static str> {
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
pub(super) fn blob_key_type(blob: &[u8]) -> Option<String> {
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
    pub(super) entries: Vec<KnownHostsEntry>,
}

pub(super) struct KnownHostsEntry {
    /// `@revoked` or `@cert-authority`, if the line starts with one.
    pub(super) marker: Option<String>,
    pub(super) key_type: String,
    pub(super) key_base64: String,
    /// `hosts type key`, without marker and comment, as libssh2 reads a line.
    pub(super) line: String,
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

    /// Whether a `@cert-authority` line of the file covers `name` (plain, hashed
    /// or a `*`/`?` pattern): OpenSSH would check a host certificate there,
    /// which this client cannot.
    pub(crate) fn cert_authority_for(&self, session: &Session, name: &str) -> bool {
        self.entries
            .iter()
            .filter(|e| e.marker.as_deref() == Some("@cert-authority"))
            .any(|e| {
                let hosts = e.line.split_whitespace().next().unwrap_or_default();
                if hosts
                    .split(',')
                    .any(|p| !p.starts_with('!') && glob_matches(p, name))
                {
                    return true;
                }
                let Ok(mut collection) = session.known_hosts() else {
                    return false;
                };
                collection
                    .read_str(&e.line, KnownHostFileKind::OpenSSH)
                    .is_ok()
                    && matches!(
                        collection.check(name, b"geartopo: no such key"),
                        CheckResult::Mismatch
                    )
            })
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

/// A known_hosts host pattern (`*` any run, `?` one character) against `name`.
pub(crate) fn glob_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
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

/// What to do with a presented host key, given known_hosts' verdict on it and
/// the key types on record for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Judgement {
    Accept,
    /// New host, opted in to recording: append the key.
    Record,
    RefuseUnknown,
    /// New key type for a host known by other types (`--accept-new-host-keys`
    /// given): a key-type downgrade is how a man in the middle gets in.
    RefuseOtherType(Vec<String>),
    RefuseChanged,
    RefuseRevoked,
    RefuseUnreadable,
}

pub(crate) fn judge(status: HostKeyStatus, known_types: &[String], accept_new: bool) -> Judgement {
    match status {
        HostKeyStatus::Known => Judgement::Accept,
        HostKeyStatus::Changed => Judgement::RefuseChanged,
        HostKeyStatus::Revoked => Judgement::RefuseRevoked,
        HostKeyStatus::Unreadable => Judgement::RefuseUnreadable,
        HostKeyStatus::Unknown if accept_new && !known_types.is_empty() => {
            Judgement::RefuseOtherType(known_types.to_vec())
        }
        HostKeyStatus::Unknown if accept_new => Judgement::Record,
        HostKeyStatus::Unknown => Judgement::RefuseUnknown,
    }
}

/// Checks the key the server presented; `known_types` are the key types on
/// record for `name` (see `KnownHostsFile::types_known_for`).
pub(super) fn verify_host_key(
    ctx: &Ctx,
    session: &Session,
    entries: &KnownHostsFile,
    known_hosts: &Path,
    name: &str,
    known_types: &[String],
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
    if status == HostKeyStatus::Unknown && entries.cert_authority_for(session, name) {
        return Err(ctx.connect(format!(
            "{file} has a @cert-authority line for {name} and not the host's own key: the \
             built-in SSH client (transport = \"ssh2\") cannot check host certificates. Use \
             transport = \"openssh\" for this node (the system's ssh checks them), or add the \
             host's own key ({} {}) to {file} after verifying it",
            key.key_type,
            key.fingerprint()
        )));
    }
    match judge(status, known_types, accept_new) {
        Judgement::Accept => Ok(()),
        Judgement::RefuseChanged => Err(TransportError::ChangedHostKey {
            node: ctx.node.clone(),
            address: ctx.address.clone(),
            known_hosts: file,
            key_type: key.key_type.clone(),
            fingerprint: key.fingerprint(),
        }),
        Judgement::RefuseOtherType(recorded) => Err(TransportError::HostKeyTypeNotOnRecord(
            Box::new(KeyTypeRefusal {
                node: ctx.node.clone(),
                address: ctx.address.clone(),
                known_hosts: file,
                recorded: recorded.join(", "),
                key_type: key.key_type.clone(),
                fingerprint: key.fingerprint(),
            }),
        )),
        Judgement::RefuseRevoked => Err(ctx.connect(format!(
            "host key {} {} is marked @revoked in {file}",
            key.key_type,
            key.fingerprint()
        ))),
        Judgement::RefuseUnreadable => {
            Err(ctx.connect(format!("cannot check the host key against {file}")))
        }
        Judgement::Record => {
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
        Judgement::RefuseUnknown => Err(TransportError::UnknownHostKey {
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
