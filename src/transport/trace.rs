//! `GEARTOPO_TRACE`: one stderr line per command a transport runs, so tests
//! (and curious operators) can count round trips per node. A wrapper around any
//! transport; it changes nothing about the commands themselves.

use std::io::Write;

use super::{Output, Transport, TransportError};

/// Set (non-empty) to trace every `run` on stderr.
pub const ENV_TRACE: &str = "GEARTOPO_TRACE";

/// Wraps `inner` in a tracer if `GEARTOPO_TRACE` is set and non-empty.
pub(crate) fn from_env(inner: Box<dyn Transport>) -> Box<dyn Transport> {
    if std::env::var_os(ENV_TRACE).is_some_and(|v| !v.is_empty()) {
        Box::new(Traced::new(inner, Box::new(std::io::stderr())))
    } else {
        inner
    }
}

/// A transport that reports each run before doing it.
pub(crate) struct Traced {
    inner: Box<dyn Transport>,
    runs: u64,
    sink: Box<dyn Write + Send>,
}

impl Traced {
    pub(crate) fn new(inner: Box<dyn Transport>, sink: Box<dyn Write + Send>) -> Self {
        Traced {
            inner,
            runs: 0,
            sink,
        }
    }
}

/// One trace line, newline included.
pub(crate) fn line(node: &str, run: u64, bytes_in: usize) -> String {
    format!("geartopo-trace: node={node} run={run} bytes_in={bytes_in}\n")
}

impl Transport for Traced {
    fn node(&self) -> &str {
        self.inner.node()
    }

    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        self.runs += 1;
        // Written before the run, so a run that hangs is still counted; one write
        // call so lines from nodes traced in parallel do not interleave.
        let _ = self
            .sink
            .write_all(line(self.inner.node(), self.runs, stdin.len()).as_bytes());
        self.inner.run(command, stdin)
    }

    fn run_within(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: std::time::Duration,
    ) -> Result<Output, TransportError> {
        self.runs += 1;
        let _ = self
            .sink
            .write_all(line(self.inner.node(), self.runs, stdin.len()).as_bytes());
        self.inner.run_within(command, stdin, limit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    struct Echo;
    impl Transport for Echo {
        fn node(&self) -> &str {
            "n1"
        }
        fn run(&mut self, _command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
            Ok(Output {
                status: 0,
                stdout: stdin.to_vec(),
                stderr: Vec::new(),
            })
        }
    }

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn counts_runs_per_transport_and_passes_results_through() {
        let sink = Shared::default();
        let mut traced = Traced::new(Box::new(Echo), Box::new(sink.clone()));
        assert_eq!(traced.run("a", b"").unwrap().stdout, b"");
        assert_eq!(traced.run("b", b"12345").unwrap().stdout, b"12345");
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "geartopo-trace: node=n1 run=1 bytes_in=0\ngeartopo-trace: node=n1 run=2 bytes_in=5\n"
        );
        assert_eq!(traced.node(), "n1");
    }
}
