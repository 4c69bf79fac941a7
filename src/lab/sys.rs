//! The lab's hands on this machine: running a program (optionally inside a network
//! namespace via nsenter), namespaces, processes by pid, mounts. Nothing here knows
//! what a lab is; `mod.rs` decides what to create and remove.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::LabError;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// A program to run, optionally inside a named network namespace.
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    netns: Option<String>,
}

/// What a finished command left.
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
    pub stderr: String,
}

impl Cmd {
    pub fn new(program: impl Into<OsString>) -> Cmd {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            netns: None,
        }
    }
    pub fn arg(mut self, a: impl Into<OsString>) -> Cmd {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }
    pub fn envs(mut self, env: &[(String, String)]) -> Cmd {
        self.env.extend_from_slice(env);
        self
    }
    /// Runs inside `/run/netns/<ns>` with `nsenter --net`, which, unlike `ip netns
    /// exec`, leaves /sys (and so the cgroup mounts podman and runc need) alone.
    pub fn in_netns(mut self, ns: &str) -> Cmd {
        self.netns = Some(ns.to_string());
        self
    }

    /// The command as a user would type it, for messages.
    pub fn display(&self) -> String {
        let mut words = Vec::new();
        if let Some(ns) = &self.netns {
            words.push(format!("nsenter --net={NETNS_DIR}/{ns}"));
        }
        words.push(self.program.to_string_lossy().into_owned());
        words.extend(
            self.args
                .iter()
                .map(|a| crate::transport::shell::quote(&a.to_string_lossy())),
        );
        words.join(" ")
    }

    fn command(&self) -> Command {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={NETNS_DIR}/{ns}"))
                    .arg("--")
                    .arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        c.args(&self.args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Runs to completion, capturing output; a non-zero exit is an error that keeps stderr.
    pub fn run(&self) -> Result<Finished, LabError> {
        let mut c = self.command();
        c.stdin(Stdio::null());
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let spawned = c.spawn().map_err(|e| LabError::Spawn {
            command: self.display(),
            reason: e.to_string(),
        })?;
        let out = spawned.wait_with_output().map_err(|e| LabError::Spawn {
            command: self.display(),
            reason: e.to_string(),
        })?;
        let finished = Finished {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        if out.status.success() {
            Ok(finished)
        } else {
            Err(LabError::Failed {
                command: self.display(),
                status: exit_code(out.status),
                stderr: finished.stderr.trim().to_string(),
            })
        }
    }

    /// Starts a daemon that does not detach by itself (dockerd): in a process group
    /// of its own (a Ctrl-C of the caller does not reach it), output appended to
    /// `log`, not waited for. Returns its pid (nsenter's, which execs the program).
    pub fn spawn_detached(&self, log: &Path) -> Result<u32, LabError> {
        use std::os::unix::process::CommandExt;
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| LabError::Io {
                    path: log.display().to_string(),
                    reason: e.to_string(),
                })
        };
        let mut c = self.command();
        c.stdin(Stdio::null())
            .stdout(open()?)
            .stderr(open()?)
            .process_group(0);
        let child = c.spawn().map_err(|e| LabError::Spawn {
            command: self.display(),
            reason: e.to_string(),
        })?;
        Ok(child.id())
    }

    /// Runs with this process's stdin, stdout and stderr; returns the exit code
    /// (128 + signal when killed, as a shell reports it).
    pub fn run_inherit(&self) -> Result<i32, LabError> {
        let status = self.command().status().map_err(|e| LabError::Spawn {
            command: self.display(),
            reason: e.to_string(),
        })?;
        Ok(exit_code(status))
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Whether `/run/netns/<ns>` exists.
pub fn netns_exists(ns: &str) -> bool {
    Path::new(NETNS_DIR).join(ns).exists()
}

/// Named namespaces starting with `prefix`.
pub fn netns_with_prefix(prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The namespace's identity (device, inode) as /proc/PID/ns/net shows it.
fn netns_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Pids of the processes inside the named network namespace.
pub fn pids_in_netns(ns: &str) -> Vec<i32> {
    let Some(wanted) = netns_id(&Path::new(NETNS_DIR).join(ns)) else {
        return Vec::new();
    };
    let own = std::process::id() as i32;
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = proc_dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| *pid != own)
        .filter(|pid| netns_id(&PathBuf::from(format!("/proc/{pid}/ns/net"))) == Some(wanted))
        .collect();
    pids.sort();
    pids
}

/// The short command name of a live process.
pub fn process_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL. True when it is gone.
pub fn terminate(pid: i32, grace: Duration) -> bool {
    // SAFETY: kill(2) with a pid we were given and a valid signal number.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(100));
    !alive(pid)
}

/// Reads a pid file.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|p| *p > 0)
}

/// Mount points at or under `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts `path`, lazily if it is busy.
pub fn unmount(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // SAFETY: as above; MNT_DETACH only detaches, it cannot affect other mounts.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    Err(std::io::Error::last_os_error().to_string())
}

/// The podman storage driver for a store under `dir`: overlay cannot stack on
/// overlayfs (as when this machine is itself a container), vfs always works.
pub fn storage_driver_for(dir: &Path) -> &'static str {
    use std::os::unix::ffi::OsStrExt;
    const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return "overlay";
    };
    // SAFETY: statfs fills the zeroed struct we own from a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0
        && st.f_type as i64 == OVERLAYFS_SUPER_MAGIC
    {
        "vfs"
    } else {
        "overlay"
    }
}

/// Finds a program in PATH or the sbin directories (sudo and cron may drop them from PATH).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\"), "/end\\");
    }

    #[test]
    fn display_shows_the_namespace_and_quotes_arguments() {
        let c = Cmd::new("podman")
            .args(["ps", "a b"])
            .in_netns("gtlab-1-n-x");
        assert_eq!(
            c.display(),
            "nsenter --net=/run/netns/gtlab-1-n-x podman ps 'a b'"
        );
    }

    #[test]
    fn a_failing_command_keeps_its_stderr_and_status() {
        let err = Cmd::new("sh")
            .args(["-c", "echo boom >&2; exit 3"])
            .run()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("boom") && text.contains("exit status 3"),
            "{text}"
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(alive(std::process::id() as i32));
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(!alive(pid));
    }
}
