//! The apply session, the one safety protocol around executing a plan: lock every
//! node and read it again in the same round trip, carry on only if what was read
//! is what the plan was made from, execute, and release every lock whatever
//! happened (success, failure, a panic). Nothing here prints; progress and
//! warnings go to a `Progress`, the report comes back as text.

use crate::node::{Connections, NodeOp};
use crate::observe::{observe_locking, ObserveError};
use crate::plan::Plan;
use crate::topology::model::Topology;

use super::{execute, Outcome, Progress, Task};

/// Why a session changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Some node could not be locked (another apply holds it: `Locked`, naming
    /// the holder) or read.
    #[error("cannot lock and read every node")]
    Read(Vec<ObserveError>),
    /// What the nodes hold now is not what the plan was made from.
    #[error("the live state changed while the plan was shown; nothing was changed. Run the command again.")]
    Moved { planned: String, now: String },
}

/// Locks every node (re-reading it in the same round trip), checks that the state
/// did not move since `plan` was made, runs `tasks`, and unlocks every node. On
/// an error nothing was run. A panic while running is resumed once the locks are
/// released.
pub fn run_locked(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    plan: &Plan,
    tasks: &[Task],
    holder: &str,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, SessionError> {
    let locked = observe_locking(topology, conns, parallelism, Some(holder));
    let result = match locked {
        Err(errors) => Err(SessionError::Read(errors)),
        Ok(state) if state.fingerprint() != plan.fingerprint => Err(SessionError::Moved {
            planned: plan.fingerprint.clone(),
            now: state.fingerprint(),
        }),
        // Same state and same inputs give the same plan: the one shown still holds.
        Ok(_) => Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || {
                progress.begin();
                execute(tasks, conns, parallelism, progress)
            },
        ))),
    };
    unlock(conns, holder, progress);
    match result? {
        Ok(outcomes) => Ok(outcomes),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Releases the lock on every node that can still be reached; a node locked by
/// another apply keeps its lock (the unlock only removes this holder's).
fn unlock(conns: &mut Connections, holder: &str, progress: &dyn Progress) {
    let op = NodeOp::Unlock {
        holder: holder.to_string(),
    };
    for conn in conns.iter_mut() {
        if let Err(e) = conn.run(std::slice::from_ref(&op)) {
            progress.unlock_failed(conn.node(), &e);
        }
    }
}

/// Who holds a lock: shown to a second apply.
pub fn lock_holder(topology: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!(
        "geartopo apply of {topology} by {user}@{host} pid {} since unix time {since}",
        std::process::id()
    )
}

/// The command a session runs for, whose words its report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Apply,
    Destroy,
}

impl Verb {
    /// `Apply`, `Destroy`: how its closing lines begin.
    pub fn word(self) -> &'static str {
        match self {
            Verb::Apply => "Apply",
            Verb::Destroy => "Destroy",
        }
    }

    /// `apply`, `destroy`: the subcommand.
    pub fn command(self) -> &'static str {
        match self {
            Verb::Apply => "apply",
            Verb::Destroy => "destroy",
        }
    }
}

/// What a session did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Every task done.
    pub complete: bool,
    pub text: String,
}

/// The closing words of `verb`: the summary when every task was done (as
/// terraform says it: "Apply complete! ...", "Destroy complete! ..."),
/// otherwise every task with what became of it.
pub fn report(plan: &Plan, tasks: &[Task], outcomes: &[Outcome], verb: Verb) -> Report {
    let complete = outcomes.iter().all(|o| *o == Outcome::Done);
    let what = verb.word();
    if complete {
        let s = plan.summary();
        let text = match verb {
            Verb::Apply => format!(
                "\nApply complete! Containers: {} added, {} changed, {} destroyed.\n",
                s.add, s.change, s.destroy
            ),
            Verb::Destroy => format!("\nDestroy complete! {} destroyed.\n", containers(s.destroy)),
        };
        return Report { complete, text };
    }
    let mut text = format!("\n{what} failed. What was done and what was not:\n");
    for (t, o) in tasks.iter().zip(outcomes) {
        let line = match o {
            Outcome::Done => format!("  done        {}: {}", t.node, t.label),
            Outcome::Failed(e) => format!(
                "  FAILED      {}: {}: {}",
                t.node,
                t.label,
                crate::text::escape_controls(e)
            ),
            Outcome::Skipped(why) => format!("  not started {}: {} ({why})", t.node, t.label),
        };
        text.push_str(&line);
        text.push('\n');
    }
    text.push_str(&format!(
        "\nNothing was left half-way; run `geartopo {}` again once the cause is fixed and it will converge.\n",
        verb.command()
    ));
    Report { complete, text }
}

/// `1 container`, `5 containers`.
fn containers(n: usize) -> String {
    if n == 1 {
        "1 container".into()
    } else {
        format!("{n} containers")
    }
}

#[cfg(test)]
mod tests;
