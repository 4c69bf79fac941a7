//! Remote scripts under supervision: every round trip runs in a session (and so a
//! process group) of its own, whose id is written to a pid file in the node's run
//! dir while it runs. Closing an SSH channel kills nothing on the node; with the
//! pid file, a script that outlived its time-out can be ended over another
//! channel (`end_script`), and `force-unlock` can show and end what an apply left
//! running (`running_report`, `end_running`). Pure text, no I/O.

use super::RUN_DIR;
use crate::transport::shell::quote;

/// Where the pid files live, relative to the node's run dir.
pub const SCRIPTS_DIR: &str = "scripts";

/// What a running script's report line begins with: `script: PIDFILE PGID`.
pub const SCRIPT_PREFIX: &str = "script: ";
/// What each process of a running script's group begins with: `script-ps: PID ELAPSED ARGS`.
pub const PS_PREFIX: &str = "script-ps: ";

/// The pid file of the round trip `token`, as the operator finds it on the node.
pub fn pid_file(token: &str) -> String {
    format!("{RUN_DIR}/{SCRIPTS_DIR}/{token}.pid")
}

/// A token is made by geartopo (`PID-N`); refuse anything a shell could read
/// another way, so that it never needs more than plain quoting.
fn checked(token: &str) -> &str {
    assert!(
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "a script token is letters, digits and dashes"
    );
    token
}

/// The command line of a supervised round trip: the script comes on stdin, as
/// with `SHELL`, read by a shell that leads a new session (`setsid -w` waits for
/// it and passes its status on) and whose id is in the pid file until it ends.
pub fn supervised(token: &str) -> String {
    let token = checked(token);
    let inner = format!(
        r#"d="{RUN_DIR}/{SCRIPTS_DIR}"; f="$d/{token}.pid"; {{ mkdir -p "$d" && echo $$ > "$f"; }} 2>/dev/null; GEARTOPO_PID_FILE="$f" sh -s; rc=$?; rm -f "$f"; exit $rc"#
    );
    format!("setsid -w sh -c {}", quote(&inner))
}

/// Ends every process group named by the pid files in `files` (a shell word list),
/// never the script's own (`GEARTOPO_PID_FILE`, set by `supervised`): TERM, then
/// KILL after five seconds; fails naming a group that outlived both.
fn end_groups(files: &str) -> String {
    format!(
        r#"for f in {files}; do
  if [ ! -f "$f" ] || [ "$f" = "${{GEARTOPO_PID_FILE:-}}" ]; then continue; fi
  p=$(cat "$f" 2>/dev/null) || continue
  case "$p" in ''|*[!0-9]*) echo "$f: not a process id: $p" >&2; exit 1 ;; esac
  kill -TERM "-$p" 2>/dev/null || true
  i=0
  while kill -0 "-$p" 2>/dev/null; do
    i=$((i+1))
    if [ "$i" -eq 5 ]; then kill -KILL "-$p" 2>/dev/null || true; fi
    if [ "$i" -gt 10 ]; then echo "process group $p ($f) is still running" >&2; exit 1; fi
    sleep 1
  done
  rm -f "$f"
  echo "ended process group $p ($f)"
done
"#
    )
}

/// Ends the round trip `token` (a script that timed out), if it still runs.
pub fn end_script(token: &str) -> String {
    let token = checked(token);
    end_groups(&format!(r#""{RUN_DIR}/{SCRIPTS_DIR}/{token}.pid""#))
}

/// Ends every supervised script still running on the node (force-unlock, once
/// the operator said yes).
pub fn end_running() -> String {
    end_groups(&format!(r#""{RUN_DIR}/{SCRIPTS_DIR}"/*.pid"#))
}

/// Reports every supervised script still running on the node: one
/// `SCRIPT_PREFIX` line each, then its processes (`PS_PREFIX`).
pub fn running_report() -> String {
    format!(
        r#"for f in "{RUN_DIR}/{SCRIPTS_DIR}"/*.pid; do
  if [ ! -f "$f" ] || [ "$f" = "${{GEARTOPO_PID_FILE:-}}" ]; then continue; fi
  p=$(cat "$f" 2>/dev/null) || continue
  case "$p" in ''|*[!0-9]*) continue ;; esac
  if kill -0 "-$p" 2>/dev/null; then
    echo "{SCRIPT_PREFIX}$f $p"
    ps -o pid=,etime=,args= -s "$p" 2>/dev/null | sed 's/^ */{PS_PREFIX}/'
  fi
done
"#
    )
}

/// A running script as `running_report` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningScript {
    pub pid_file: String,
    pub group: u32,
    /// `PID ELAPSED ARGS` of each process of its group.
    pub processes: Vec<String>,
}

/// The running scripts in a node's report; lines that are not part of it are ignored.
pub fn parse_running(text: &str) -> Vec<RunningScript> {
    let mut found: Vec<RunningScript> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(SCRIPT_PREFIX) {
            let Some((file, group)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(group) = group.parse() else { continue };
            found.push(RunningScript {
                pid_file: file.to_string(),
                group,
                processes: Vec::new(),
            });
        } else if let Some(ps) = line.strip_prefix(PS_PREFIX) {
            if let Some(last) = found.last_mut() {
                last.processes.push(ps.trim().to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_supervised_command_line_names_its_pid_file_and_passes_the_status_on() {
        let line = supervised("42-7");
        assert!(line.starts_with("setsid -w sh -c '"), "{line}");
        assert!(line.contains(r#"/scripts"; f="$d/42-7.pid""#), "{line}");
        assert!(
            line.contains("GEARTOPO_PID_FILE=\"$f\" sh -s; rc=$?; rm -f \"$f\"; exit $rc"),
            "{line}"
        );
    }

    #[test]
    #[should_panic(expected = "letters, digits and dashes")]
    fn a_token_a_shell_could_read_otherwise_is_refused() {
        supervised("1; rm -rf /");
    }

    #[test]
    fn running_scripts_are_read_back_with_their_processes() {
        let text = "locked by: x\nscript: /run/geartopo/scripts/42-7.pid 1234\nscript-ps: 1234 01:02 sh -s\nscript-ps: 1240 01:01 sleep 600\nnoise\n";
        assert_eq!(
            parse_running(text),
            [RunningScript {
                pid_file: "/run/geartopo/scripts/42-7.pid".into(),
                group: 1234,
                processes: vec!["1234 01:02 sh -s".into(), "1240 01:01 sleep 600".into()],
            }]
        );
        assert_eq!(parse_running("script: nonsense\n"), []);
    }

    /// The supervised line really runs its stdin in a new session, writes the pid
    /// file meanwhile, passes the status on and removes the file; `end_script`
    /// ends a script that hangs, children included.
    #[test]
    fn a_hanging_script_is_ended_by_its_pid_file() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let run = |cmd: &str, stdin: &str| {
            let mut child = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("GEARTOPO_RUN_DIR", dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(stdin.as_bytes())
                .unwrap();
            child
        };
        let out = run(
            &supervised("1-1"),
            "cat \"$GEARTOPO_RUN_DIR/scripts/1-1.pid\"; exit 7\n",
        )
        .wait_with_output()
        .unwrap();
        assert_eq!(out.status.code(), Some(7));
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
        assert!(!dir.path().join("scripts/1-1.pid").exists());

        let mut hanging = run(&supervised("1-2"), "sleep 300 & sleep 300\n");
        let pid_file = dir.path().join("scripts/1-2.pid");
        // Up to 10 s: the machine may be loaded.
        for _ in 0..500 {
            if pid_file.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let report = run("sh -s", &running_report()).wait_with_output().unwrap();
        let running = parse_running(&String::from_utf8_lossy(&report.stdout));
        assert_eq!(running.len(), 1, "{running:?}");
        assert!(
            running[0].processes.iter().any(|p| p.contains("sleep 300")),
            "{running:?}"
        );
        let ended = run("sh -s", &end_script("1-2")).wait_with_output().unwrap();
        assert!(ended.status.success(), "{ended:?}");
        assert!(hanging.wait().is_ok());
        assert!(!pid_file.exists());
        let group = running[0].group as libc::pid_t;
        // SAFETY: kill(2) with signal 0 only asks whether the group exists.
        assert_eq!(unsafe { libc::kill(-group, 0) }, -1, "the group is gone");
    }
}
