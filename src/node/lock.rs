//! Who holds a node's apply lock, as a value: what the lock script writes into the
//! lock directory (`holder`, one line, and `info`, one `key=value` per line), how
//! a refused lock or `force-unlock`'s read reports it back (`locked by: ...`
//! followed by `lock-info: key=value` lines), and whether its holder is provably
//! gone (`Staleness`). Reading this machine (`Local`) is the only I/O here.

use std::fmt;

/// The process that holds (or asks for) a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub topology: String,
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// Start time of the process in clock ticks since boot (/proc/PID/stat, field 22):
    /// with the boot id, tells a live holder from a reused pid.
    pub start_ticks: u64,
    /// /proc/sys/kernel/random/boot_id of the holder's machine.
    pub boot_id: String,
    /// Unix time the lock was asked for.
    pub since: u64,
}

impl fmt::Display for LockHolder {
    /// The one-line description (the lock's `holder` file, which unlock compares).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "geartopo apply of {} by {}@{} pid {} since unix time {}",
            self.topology, self.user, self.host, self.pid, self.since
        )
    }
}

/// Prefix of each `key=value` line of a lock's info in what a node reports.
pub const INFO_PREFIX: &str = "lock-info: ";
/// Prefix of the line naming the holder in what a node reports.
pub const HELD_PREFIX: &str = "locked by: ";
/// How a stale lock's holder text begins once this machine has judged it.
pub const STALE_MARK: &str = "STALE: ";

/// One line of the info file: no line breaks or other control characters.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

impl LockHolder {
    /// This process, asking for the lock of `topology`'s nodes.
    pub fn this_process(topology: &str) -> LockHolder {
        let local = Local::read();
        let pid = std::process::id();
        LockHolder {
            topology: clean(topology),
            user: clean(&std::env::var("USER").unwrap_or_else(|_| "root".into())),
            host: local.host,
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
            boot_id: local.boot_id,
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// The info file's lines, in a fixed order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("topology", clean(&self.topology)),
            ("user", clean(&self.user)),
            ("host", clean(&self.host)),
            ("pid", self.pid.to_string()),
            ("start_ticks", self.start_ticks.to_string()),
            ("boot_id", clean(&self.boot_id)),
            ("since", self.since.to_string()),
        ]
    }

    /// Reads `key=value` lines back; `None` when a field is missing or malformed
    /// (a lock written by an older geartopo, or cut short).
    pub fn parse_fields<'a>(lines: impl Iterator<Item = &'a str>) -> Option<LockHolder> {
        let mut map = std::collections::BTreeMap::new();
        for line in lines {
            if let Some((k, v)) = line.split_once('=') {
                map.insert(k.trim(), v.trim().to_string());
            }
        }
        Some(LockHolder {
            topology: map.remove("topology")?,
            user: map.remove("user")?,
            host: map.remove("host")?,
            pid: map.remove("pid")?.parse().ok()?,
            start_ticks: map.remove("start_ticks")?.parse().ok()?,
            boot_id: map.remove("boot_id")?,
            since: map.remove("since")?.parse().ok()?,
        })
    }
}

/// A lock as a node reported it: the holder line and, when the lock has an info
/// file, its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    /// The `holder` file as read (empty when the lock directory has none).
    pub line: String,
    /// Where the lock is on the node, when reported.
    pub path: String,
    pub holder: Option<LockHolder>,
}

impl HeldLock {
    /// Finds a lock report in a node's output: `None` when there is none.
    pub fn parse(text: &str) -> Option<HeldLock> {
        let held = text.lines().find_map(|l| l.strip_prefix(HELD_PREFIX))?;
        let (line, path) = match held.rsplit_once(" (lock ") {
            Some((line, rest)) => (line, rest.trim_end_matches(')')),
            None => (held, ""),
        };
        let info = text.lines().filter_map(|l| l.strip_prefix(INFO_PREFIX));
        Some(HeldLock {
            line: line.to_string(),
            path: path.to_string(),
            holder: LockHolder::parse_fields(info),
        })
    }

    /// What a node reports about a lock held by `holder` at `path`, as the lock
    /// script writes it (for the simulated nodes of the tests).
    pub fn report(holder: &LockHolder, path: &str) -> String {
        let mut s = format!("{HELD_PREFIX}{holder} (lock {path})\n");
        for (k, v) in holder.fields() {
            s.push_str(&format!("{INFO_PREFIX}{k}={v}\n"));
        }
        s
    }

    /// The holder line, `unknown` when the lock has none.
    pub fn shown(&self) -> &str {
        if self.line.is_empty() {
            "unknown"
        } else {
            &self.line
        }
    }
}

/// This machine, as a lock's holder would have recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub host: String,
    pub boot_id: String,
}

impl Local {
    pub fn read() -> Local {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| clean(s.trim()));
        Local {
            host: read("/proc/sys/kernel/hostname")
                .or_else(|_| read("/etc/hostname"))
                .unwrap_or_else(|_| "unknown-host".into()),
            boot_id: read("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
        }
    }
}

/// The start time of process `pid` on this machine, in clock ticks since boot;
/// `None` when no such process runs.
pub fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 2 (the command) is in parentheses and may hold spaces: count after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after the parenthesis; field 22 is 19 further.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether a lock's holder can still be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staleness {
    /// Its holder is provably gone: the reason.
    Stale(String),
    /// Alive, or on another machine or boot where this one cannot tell.
    NotProven,
}

/// Judges `holder` from this machine: stale only when it was taken on this
/// host in this boot and its pid runs no more, or runs a process started at
/// another time (a reused pid). `start_of` reads a pid's start time.
pub fn staleness(
    holder: &LockHolder,
    local: &Local,
    start_of: impl Fn(u32) -> Option<u64>,
) -> Staleness {
    if holder.boot_id.is_empty() || holder.host != local.host || holder.boot_id != local.boot_id {
        return Staleness::NotProven;
    }
    match start_of(holder.pid) {
        None => Staleness::Stale(format!(
            "pid {} is not running on {} since it took the lock",
            holder.pid, local.host
        )),
        Some(t) if t != holder.start_ticks => Staleness::Stale(format!(
            "pid {} on {} is now another process (started at another time)",
            holder.pid, local.host
        )),
        Some(_) => Staleness::NotProven,
    }
}

/// The holder text of a refused lock, judged from this machine: the holder line
/// and place, beginning with `STALE_MARK` and saying why when the holder is gone.
pub fn judge(report: &str) -> String {
    let Some(held) = HeldLock::parse(report) else {
        return report.trim().to_string();
    };
    let line = format!("{} (lock {})", held.shown(), held.path);
    match held
        .holder
        .as_ref()
        .map(|h| staleness(h, &Local::read(), start_ticks))
    {
        Some(Staleness::Stale(why)) => format!("{STALE_MARK}{line}: its holder is gone ({why})"),
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32, start: u64) -> LockHolder {
        LockHolder {
            topology: "todo".into(),
            user: "root".into(),
            host: "h1".into(),
            pid,
            start_ticks: start,
            boot_id: "b1".into(),
            since: 7,
        }
    }

    fn here() -> Local {
        Local {
            host: "h1".into(),
            boot_id: "b1".into(),
        }
    }

    #[test]
    fn a_report_reads_back_to_the_holder() {
        let h = holder(42, 100);
        let held = HeldLock::parse(&HeldLock::report(&h, "/run/geartopo/apply.lock")).unwrap();
        assert_eq!(held.holder, Some(h.clone()));
        assert_eq!(held.line, h.to_string());
        assert_eq!(held.path, "/run/geartopo/apply.lock");
        assert_eq!(HeldLock::parse("some other error"), None);
    }

    #[test]
    fn stale_only_when_provably_gone_on_this_machine_and_boot() {
        let h = holder(42, 100);
        assert_eq!(staleness(&h, &here(), |_| Some(100)), Staleness::NotProven);
        assert!(matches!(
            staleness(&h, &here(), |_| None),
            Staleness::Stale(_)
        ));
        assert!(matches!(
            staleness(&h, &here(), |_| Some(101)),
            Staleness::Stale(_)
        ));
        let other_boot = Local {
            boot_id: "b2".into(),
            ..here()
        };
        assert_eq!(staleness(&h, &other_boot, |_| None), Staleness::NotProven);
        let other_host = Local {
            host: "h2".into(),
            ..here()
        };
        assert_eq!(staleness(&h, &other_host, |_| None), Staleness::NotProven);
    }

    #[test]
    fn this_process_is_alive_by_its_own_start_time() {
        let me = LockHolder::this_process("todo");
        assert!(me.start_ticks > 0);
        assert_eq!(
            staleness(&me, &Local::read(), start_ticks),
            Staleness::NotProven
        );
        let reused = LockHolder {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(matches!(
            staleness(&reused, &Local::read(), start_ticks),
            Staleness::Stale(_)
        ));
    }
}
