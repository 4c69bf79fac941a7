//! What a caller hears while the nodes are connected to and read: one event per
//! step of each node, from the thread that works on that node. The library only
//! calls these; how they are shown (spinners on a terminal, nothing on a pipe) is
//! the caller's business, so no terminal code lives here.

use std::time::Duration;

/// Hears each node's steps while `connect_all` and `observe_with` run, in this
/// order per node: `connecting`, then `reading`, then `read` or `failed` (a node
/// that cannot be reached goes from `connecting` to `failed`). Called from several
/// threads at once, one node per thread.
pub trait ReadProgress: Sync {
    /// Opening the connection to `node`.
    fn connecting(&self, node: &str);
    /// The read round trip to `node` has started.
    fn reading(&self, node: &str);
    /// `node` was read: `containers` of this topology found on it, in `elapsed`
    /// (the round trip and its parsing).
    fn read(&self, node: &str, containers: usize, elapsed: Duration);
    /// `node` could not be reached or read; `reason` is the error as reported
    /// afterwards (it names the node).
    fn failed(&self, node: &str, reason: &str);
}

/// Hears nothing: for pipes, tests and callers that show no progress.
pub struct NoProgress;

impl ReadProgress for NoProgress {
    fn connecting(&self, _: &str) {}
    fn reading(&self, _: &str) {}
    fn read(&self, _: &str, _: usize, _: Duration) {}
    fn failed(&self, _: &str, _: &str) {}
}
