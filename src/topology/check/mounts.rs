//! Checks of a container's `volumes` and of its create-time options (`memory`,
//! `cpus`, `user`, `cap_add`, `cap_drop`, `stop_signal`, `stop_timeout`,
//! `read_only`, `labels`), and of the nodes' `allow_binds`. Everything accepted
//! here reaches a node's command line (quoted), so each value is held to a small
//! alphabet; a bind mount of a node's system path is refused unless its node
//! allows it (docs/volumes.md).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_spanned::Spanned;

use super::Checker;
use crate::topology::diag::Problem;
use crate::topology::model::{ContainerOptions, Mount, MountSource};
use crate::topology::raw::{RawContainer, RawNumber};

/// Node paths no container may bind-mount unless its node allows them: the path
/// itself and everything under it (`/` only itself: everything is under it).
/// Includes the runtimes' storage and the directories of their sockets.
pub(crate) const SYSTEM_PATHS: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/run",
    "/var/run",
    "/var/lib/containers",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/geartopo",
];

/// Linux capabilities, without `CAP_`; `ALL` stands for all of them.
const CAPABILITIES: &[&str] = &[
    "ALL",
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];

/// Signal names a stop signal may have, without `SIG`.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
    "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
    "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
];

/// Longest stop time-out: an hour (a typo in minutes is caught).
const MAX_STOP_TIMEOUT: u32 = 3600;

/// The prefix of geartopo's own labels, which `labels` may not use.
pub(crate) const OWN_LABEL_PREFIX: &str = "geartopo.";

/// A mount as checked: the mount, and where it is written (for the per-node
/// check of bind sources, made once placement is known).
pub(super) type CheckedMount = (Mount, Range<usize>);

/// Why `path` is not an absolute, normalized path of safe characters, if it is not.
pub(crate) fn path_problem(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("must be an absolute path (start with /)");
    }
    if path.len() > 1024 {
        return Some("is longer than 1024 characters");
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-' | b'@' | b'+'))
    {
        return Some("may hold only A-Z a-z 0-9 / _ . - @ +");
    }
    if path != "/" && path.ends_with('/') {
        return Some("must not end with /");
    }
    if path
        .split('/')
        .skip(1)
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Some("must be normalized (no //, . or .. parts)");
    }
    None
}

/// Whether `path` is `base` or under it.
fn under(path: &str, base: &str) -> bool {
    path == base || base == "/" || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

/// The system path `source` is or is under, if any (`/` only itself).
pub(crate) fn system_path(source: &str) -> Option<&'static str> {
    if source == "/" {
        return Some("/");
    }
    SYSTEM_PATHS.iter().copied().find(|s| under(source, s))
}

/// Why `name` is not a volume name, if it is not.
fn volume_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 32 {
        return Some("must be 1 to 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Some("may hold only a-z 0-9 _ -");
    }
    if name.starts_with('-') {
        return Some("must not start with -");
    }
    None
}

impl Checker<'_> {
    /// A node's (or `[defaults]`') `allow_binds`: absolute, normalized paths.
    pub(super) fn allow_binds(
        &mut self,
        raw: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for p in raw.map(|v| v.get_ref().as_slice()).unwrap_or_default() {
            match path_problem(p.get_ref()) {
                Some(why) => self.push(Problem::at(
                    format!("invalid path {:?} in `allow_binds`", p.get_ref()),
                    p.span(),
                    why,
                )),
                None => out.push(p.get_ref().clone()),
            }
        }
        out
    }

    /// A container's `volumes`, each checked on its own and against the others.
    pub(super) fn volumes(&mut self, raw: &RawContainer) -> Vec<CheckedMount> {
        let mut out = Vec::new();
        let mut targets: BTreeMap<String, Range<usize>> = BTreeMap::new();
        let mut names: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for v in raw.volumes.iter().flatten() {
            let span = v.span();
            let v = v.get_ref();
            let target = v.target.get_ref();
            let mut ok = true;
            if let Some(why) = path_problem(target) {
                self.push(Problem::at(
                    format!("invalid volume target {target:?}"),
                    v.target.span(),
                    why,
                ));
                ok = false;
            } else if target == "/" {
                self.push(Problem::at(
                    "a volume cannot be mounted on /",
                    v.target.span(),
                    "the container's root",
                ));
                ok = false;
            } else if let Some(first) = targets.get(target) {
                self.push(
                    Problem::at(
                        format!("two volumes are mounted on {target:?}"),
                        v.target.span(),
                        "this one",
                    )
                    .label(first.clone(), "the other one"),
                );
                ok = false;
            } else {
                targets.insert(target.clone(), v.target.span());
            }
            let source = match (&v.name, &v.source) {
                (Some(n), None) => {
                    if let Some(why) = volume_name_problem(n.get_ref()) {
                        self.push(
                            Problem::at(format!("invalid volume name {:?}", n.get_ref()), n.span(), why)
                                .help("it names the volume on the node (`<topology>-<container>.<name>`) and reaches its command line"),
                        );
                        ok = false;
                    } else if let Some(first) = names.get(n.get_ref()) {
                        self.push(
                            Problem::at(
                                format!("volume `{}` is mounted twice", n.get_ref()),
                                n.span(),
                                "this one",
                            )
                            .label(first.clone(), "the other one"),
                        );
                        ok = false;
                    } else {
                        names.insert(n.get_ref().clone(), n.span());
                    }
                    MountSource::Volume(n.get_ref().clone())
                }
                (None, Some(s)) => {
                    if let Some(why) = path_problem(s.get_ref()) {
                        self.push(Problem::at(
                            format!("invalid bind source {:?}", s.get_ref()),
                            s.span(),
                            why,
                        ));
                        ok = false;
                    }
                    MountSource::Bind(s.get_ref().clone())
                }
                (Some(n), Some(_)) => {
                    self.push(
                        Problem::at(
                            "a volume has both `name` and `source`",
                            n.span(),
                            "one of them",
                        )
                        .help(
                            "`name` for a named volume the topology owns, `source` for a node path",
                        ),
                    );
                    continue;
                }
                (None, None) => {
                    self.push(
                        Problem::at("a volume has neither `name` nor `source`", span, "here")
                            .help("`name = \"data\"` for a named volume the topology owns, `source = \"/srv/x\"` for a node path"),
                    );
                    continue;
                }
            };
            if ok {
                out.push((
                    Mount {
                        source,
                        target: target.clone(),
                        read_only: v.read_only.as_ref().is_some_and(|r| *r.get_ref()),
                    },
                    match &v.source {
                        Some(s) => s.span(),
                        None => span,
                    },
                ));
            }
        }
        out
    }

    /// Refuses a bind source that is a system path of `node` not in its allow list.
    pub(super) fn bind_allowed(
        &mut self,
        node: &str,
        mounts: &[CheckedMount],
        reported: &mut BTreeSet<(String, usize)>,
    ) {
        for (m, span) in mounts {
            let MountSource::Bind(source) = &m.source else {
                continue;
            };
            let Some(system) = system_path(source) else {
                continue;
            };
            let allowed = self
                .allow_binds
                .get(node)
                .is_some_and(|list| list.iter().any(|a| under(source, a)));
            if allowed || !reported.insert((node.to_string(), span.start)) {
                continue;
            }
            let what = if system == source {
                "is".to_string()
            } else {
                format!("is under {system}, which is")
            };
            self.push(
                Problem::at(
                    format!("bind source {source:?} {what} a system path of node `{node}`"),
                    span.clone(),
                    "refused",
                )
                .help(format!(
                    "a container that mounts the node's system paths can take the node over; if this is meant, add `allow_binds = [{source:?}]` to node `{node}` (or to [defaults])"
                )),
            );
        }
    }

    /// A container's create-time options.
    pub(super) fn options(&mut self, raw: &RawContainer) -> ContainerOptions {
        let mut o = ContainerOptions::default();
        if let Some(m) = &raw.memory {
            o.memory = self.memory(m);
        }
        if let Some(c) = &raw.cpus {
            o.cpus = self.cpus(c);
        }
        if let Some(u) = &raw.user {
            let text = u.get_ref();
            let part = |p: &str| {
                !p.is_empty()
                    && p.len() <= 32
                    && !p.starts_with('-')
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            };
            let ok = match text.split_once(':') {
                Some((a, b)) => part(a) && part(b),
                None => part(text),
            };
            if ok {
                o.user = Some(text.clone());
            } else {
                self.push(Problem::at(
                    format!("invalid user {text:?}"),
                    u.span(),
                    "expected NAME, UID or UID:GID (A-Z a-z 0-9 _ . -)",
                ));
            }
        }
        o.cap_add = self.capabilities("cap_add", raw.cap_add.as_ref());
        o.cap_drop = self.capabilities("cap_drop", raw.cap_drop.as_ref());
        if let Some(s) = &raw.stop_signal {
            let text = s.get_ref();
            let upper = text.to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            if SIGNALS.contains(&bare) {
                o.stop_signal = Some(format!("SIG{bare}"));
            } else {
                self.push(Problem::at(
                    format!("invalid stop signal {text:?}"),
                    s.span(),
                    "expected a signal name such as SIGTERM, SIGINT or SIGQUIT",
                ));
            }
        }
        if let Some(t) = &raw.stop_timeout {
            o.stop_timeout = self.stop_timeout(t);
        }
        o.read_only = raw.read_only.as_ref().is_some_and(|r| *r.get_ref());
        if let Some(labels) = &raw.labels {
            for (k, v) in labels.get_ref() {
                let key = k.get_ref();
                let key_ok = !key.is_empty()
                    && key.len() <= 128
                    && key
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphanumeric())
                    && key.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/')
                    });
                if !key_ok {
                    self.push(Problem::at(
                        format!("invalid label key {key:?}"),
                        k.span(),
                        "1 to 128 characters of A-Z a-z 0-9 _ . - /, starting with a letter or digit",
                    ));
                    continue;
                }
                if key.to_ascii_lowercase().starts_with(OWN_LABEL_PREFIX) {
                    self.push(
                        Problem::at(
                            format!("label {key:?} uses geartopo's own prefix"),
                            k.span(),
                            "reserved",
                        )
                        .help("geartopo's labels say who owns a container; choose another prefix"),
                    );
                    continue;
                }
                let value = v.get_ref();
                if value.len() > 1024 || value.chars().any(char::is_control) {
                    self.push(Problem::at(
                        format!("invalid value of label {key:?}"),
                        v.span(),
                        "at most 1024 characters, no control characters",
                    ));
                    continue;
                }
                o.labels.insert(key.clone(), value.clone());
            }
        }
        o
    }

    fn memory(&mut self, m: &Spanned<String>) -> Option<String> {
        let text = m.get_ref().to_ascii_lowercase();
        let digits = text.trim_end_matches(['b', 'k', 'm', 'g']);
        let unit = &text[digits.len()..];
        let bytes = match (digits.parse::<u64>(), unit) {
            (Ok(n), "" | "b") => Some(n),
            (Ok(n), "k") => n.checked_mul(1 << 10),
            (Ok(n), "m") => n.checked_mul(1 << 20),
            (Ok(n), "g") => n.checked_mul(1 << 30),
            _ => None,
        };
        match bytes {
            _ if digits.is_empty()
                || unit.len() > 1
                || !digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                self.push(Problem::at(
                    format!("invalid memory limit {:?}", m.get_ref()),
                    m.span(),
                    "expected a number with an optional unit b, k, m or g (512m)",
                ));
                None
            }
            // Docker refuses less than 6 MiB; podman would start a container
            // that is killed at once.
            Some(n) if n >= 6 << 20 => Some(text),
            _ => {
                self.push(Problem::at(
                    format!("memory limit {:?} is too small or too large", m.get_ref()),
                    m.span(),
                    "at least 6m",
                ));
                None
            }
        }
    }

    fn cpus(&mut self, c: &Spanned<RawNumber>) -> Option<String> {
        let value = match c.get_ref() {
            RawNumber::Int(n) => Some(*n as f64),
            RawNumber::Float(f) => Some(*f),
            RawNumber::Text(_) => None,
        };
        match value {
            Some(v) if v > 0.0 && v <= 1024.0 && ((v * 100.0).round() - v * 100.0).abs() < 1e-6 => {
                Some(format!("{v}"))
            }
            _ => {
                self.push(Problem::at(
                    "invalid cpus",
                    c.span(),
                    "expected a number of CPUs above 0, at most 1024, with at most 2 decimals (1.5)",
                ));
                None
            }
        }
    }

    fn capabilities(
        &mut self,
        key: &str,
        raw: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in raw.map(|v| v.get_ref().as_slice()).unwrap_or_default() {
            let upper = c.get_ref().to_ascii_uppercase();
            let bare = upper.strip_prefix("CAP_").unwrap_or(&upper).to_string();
            if !CAPABILITIES.contains(&bare.as_str()) {
                self.push(Problem::at(
                    format!("unknown capability {:?} in `{key}`", c.get_ref()),
                    c.span(),
                    "expected a Linux capability such as NET_ADMIN, or ALL",
                ));
            } else if !out.contains(&bare) {
                out.push(bare);
            }
        }
        out
    }

    fn stop_timeout(&mut self, t: &Spanned<RawNumber>) -> Option<u32> {
        let seconds: Option<u64> = match t.get_ref() {
            RawNumber::Int(n) => u64::try_from(*n).ok(),
            RawNumber::Float(_) => None,
            RawNumber::Text(s) => {
                let (n, mult) = if let Some(n) = s.strip_suffix('s') {
                    (n, 1)
                } else if let Some(n) = s.strip_suffix('m') {
                    (n, 60)
                } else if let Some(n) = s.strip_suffix('h') {
                    (n, 3600)
                } else {
                    (s.as_str(), 1)
                };
                if !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()) {
                    n.parse::<u64>().ok().map(|n| n * mult)
                } else {
                    None
                }
            }
        };
        match seconds {
            Some(s) if s <= u64::from(MAX_STOP_TIMEOUT) => Some(s as u32),
            _ => {
                self.push(Problem::at(
                    "invalid stop_timeout",
                    t.span(),
                    "expected whole seconds up to an hour: 30, \"30s\", \"2m\"",
                ));
                None
            }
        }
    }
}
