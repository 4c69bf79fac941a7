//! A test-only injection point (built only with the `testing` feature): with
//! `GEARTOPO_TEST_PAUSE_AT=POINT` in the environment, apply stops at `POINT`
//! (`after-lock`: every node locked, nothing run; `after-locked-read`: the read
//! of `--auto-approve` done, which took the locks, before the plan; `step`: before each step's
//! round trip; `after-KIND`: after each step of that kind, e.g. `after-create`) for `GEARTOPO_TEST_PAUSE_MS` milliseconds (default 5000), after
//! saying so on stderr, so that a fault test can kill or interrupt it there.

pub fn at(point: &str) {
    if std::env::var("GEARTOPO_TEST_PAUSE_AT").ok().as_deref() != Some(point) {
        return;
    }
    let ms = std::env::var("GEARTOPO_TEST_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    eprintln!(
        "geartopo-test: paused at {point} (pid {})",
        std::process::id()
    );
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

/// A test-only remote hang: with `GEARTOPO_TEST_HANG_AFTER=KIND` (an operation
/// kind, `NodeOp::kind`), every round trip that carries such an operation ends
/// with `sleep 3600` on the node, after its own work: a remote command that hangs
/// past `--command-timeout`, for the fault tests.
pub fn remote_hang(ops: &[crate::node::NodeOp]) -> &'static str {
    let Ok(kind) = std::env::var("GEARTOPO_TEST_HANG_AFTER") else {
        return "";
    };
    if ops.iter().any(|op| op.kind() == kind) {
        "sleep 3600\n"
    } else {
        ""
    }
}
