//! Runs commands on this machine (node address `local`) with `sh -c`, the same
//! command lines the SSH transport sends, so both behave alike. No SSH here.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{Output, Transport, TransportError};

/// Runs commands on this machine.
pub struct LocalTransport {
    node: String,
    timeout: Duration,
    max_output: usize,
}

impl LocalTransport {
    /// A transport for node `node` whose commands get `timeout` each.
    pub fn new(node: &str, timeout: Duration) -> Self {
        LocalTransport {
            node: node.to_string(),
            timeout,
            max_output: super::MAX_OUTPUT,
        }
    }

    /// The same, refusing more than `limit` bytes of output per command.
    pub fn with_max_output(mut self, limit: usize) -> Self {
        self.max_output = limit;
        self
    }

    fn io_error(&self, what: &str, e: impl std::fmt::Display) -> TransportError {
        TransportError::Io {
            node: self.node.clone(),
            reason: format!("{what}: {e}"),
        }
    }
}

impl Transport for LocalTransport {
    fn node(&self) -> &str {
        &self.node
    }

    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        self.run_within(command, stdin, self.timeout)
    }

    fn run_within(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: Duration,
    ) -> Result<Output, TransportError> {
        let deadline = Instant::now() + limit;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout stops what the shell started too.
            .process_group(0)
            .spawn()
            .map_err(|e| self.io_error("cannot start sh", e))?;

        // One thread per pipe: a command that fills stderr while we wait on stdout
        // (or that writes before reading its stdin) must not deadlock us.
        let mut pipe_in = child.stdin.take().expect("stdin is piped");
        let input = stdin.to_vec();
        let writer = thread::spawn(move || {
            // A command that exits without reading all of its stdin is not an error here.
            let _ = pipe_in.write_all(&input);
        });
        let max = self.max_output as u64;
        let stdout = reader(child.stdout.take().expect("stdout is piped"), max);
        let stderr = reader(child.stderr.take().expect("stderr is piped"), max);

        let status = match wait_until(&mut child, deadline)
            .map_err(|e| self.io_error("waiting for sh", e))?
        {
            Some(status) => status,
            None => {
                // SAFETY: kill(2) on the process group we created (its id is the child's pid).
                unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
                let _ = child.wait();
                // The pipe threads are left behind: a process that left the group may hold the pipes open.
                return Err(TransportError::CommandTimeout {
                    node: self.node.clone(),
                    secs: limit.as_secs(),
                });
            }
        };
        let _ = writer.join();
        let stdout = stdout
            .join()
            .expect("reader thread does not panic")
            .map_err(|e| self.io_error("reading stdout", e))?;
        let stderr = stderr
            .join()
            .expect("reader thread does not panic")
            .map_err(|e| self.io_error("reading stderr", e))?;
        if stdout.len() + stderr.len() > self.max_output {
            return Err(TransportError::OutputTooLarge {
                node: self.node.clone(),
                limit: self.max_output,
            });
        }
        Ok(Output {
            status: shell_status(status),
            stdout,
            stderr,
        })
    }
}

/// Reads a pipe to its end, or to one byte past `limit` (then the pipe is closed:
/// the writer gets EPIPE instead of blocking, and the caller refuses the output).
fn reader(pipe: impl Read + Send + 'static, limit: u64) -> JoinHandle<std::io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.take(limit + 1).read_to_end(&mut bytes).map(|_| bytes)
    })
}

/// Waits for the child until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep((deadline - now).min(Duration::from_millis(10)));
    }
}

/// The status as a shell reports it: the exit code, or 128 + the signal.
fn shell_status(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(timeout: Duration) -> LocalTransport {
        LocalTransport::new("here", timeout)
    }

    #[test]
    fn runs_through_sh_with_stdin_and_both_streams() {
        let out = local(Duration::from_secs(10))
            .run("tr a-z A-Z; echo oops >&2; exit 3", b"hello")
            .unwrap();
        assert_eq!(out.stdout, b"HELLO");
        assert_eq!(out.stderr, b"oops\n");
        assert_eq!(out.status, 3);
    }

    #[test]
    fn large_outputs_on_both_streams_do_not_deadlock() {
        // 2 MiB on each stream, far more than a pipe buffer holds.
        let cmd = "head -c 2097152 /dev/zero; head -c 2097152 /dev/zero >&2; cat >/dev/null";
        let stdin = vec![b'x'; 3 << 20];
        let out = local(Duration::from_secs(60)).run(cmd, &stdin).unwrap();
        assert_eq!(out.stdout.len(), 2 << 20);
        assert_eq!(out.stderr.len(), 2 << 20);
        assert!(out.success());
    }

    #[test]
    fn output_beyond_the_limit_is_refused_naming_the_node() {
        let err = local(Duration::from_secs(30))
            .with_max_output(1000)
            .run("head -c 100000 /dev/zero", b"")
            .unwrap_err();
        assert!(
            matches!(&err, TransportError::OutputTooLarge { node, limit: 1000 } if node == "here"),
            "{err}"
        );
        assert!(err.to_string().starts_with("node here: "), "{err}");
        // A writer that never stops is not waited for until the time-out.
        let started = Instant::now();
        let err = local(Duration::from_secs(30))
            .with_max_output(1000)
            .run("yes", b"")
            .unwrap_err();
        assert!(
            matches!(err, TransportError::OutputTooLarge { .. }),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_command_that_ignores_its_stdin_still_finishes() {
        let out = local(Duration::from_secs(10))
            .run("echo done", &vec![0u8; 1 << 20])
            .unwrap();
        assert_eq!(out.stdout_str(), "done\n");
    }

    #[test]
    fn timeout_kills_the_command_and_its_children() {
        let started = Instant::now();
        let err = local(Duration::from_millis(300))
            .run("sleep 30 & sleep 30; wait", b"")
            .unwrap_err();
        assert!(
            matches!(err, TransportError::CommandTimeout { ref node, .. } if node == "here"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_signal_is_reported_as_128_plus_its_number() {
        let out = local(Duration::from_secs(10))
            .run("kill -TERM $$", b"")
            .unwrap();
        assert_eq!(out.status, 128 + 15);
    }
}
