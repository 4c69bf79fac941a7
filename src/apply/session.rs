//! The apply session, the one safety protocol around executing a plan: lock every
//! node and, in the same round trip, digest again what the plan depends on there
//! (`observe::recheck`), carry on only if it is what the plan was made from, execute, and release every lock whatever
//! happened (success, failure, a panic). Nothing here prints; progress and
//! warnings go to a `Progress`, the report comes back as text.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::node::lock::{judge, LockHolder, STALE_MARK};
use crate::node::{Connections, NodeOp};
use crate::observe::recheck::lock_and_fingerprint;
use crate::observe::ObserveError;
use crate::plan::Plan;
use crate::topology::model::Topology;

use super::{execute_releasing, Outcome, Progress, Task};

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

/// How a session waits for locks and learns that it should stop.
pub struct Control<'a> {
    /// How long to wait for a lock another apply holds (0: not at all).
    pub lock_timeout: Duration,
    /// How long between two tries to take the locks.
    pub retry_every: Duration,
    /// Set when the operator asked to stop (the first Ctrl-C): no new step starts.
    pub stop: &'a AtomicBool,
    /// Every node is locked already, by this holder, and the plan was made from
    /// a read under those locks (`observe_with` with a holder): nothing can have
    /// moved since, so there is no lock round trip and nothing to re-check.
    pub held: bool,
}

/// Locks every node (re-checking it by digest in the same round trip), checks that the state
/// did not move since `plan` was made, runs `tasks`, and unlocks every node. On
/// an error nothing was run. A panic while running is resumed once the locks are
/// released.
pub fn run_locked(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    plan: &Plan,
    tasks: &[Task],
    holder: &LockHolder,
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, SessionError> {
    let stop = AtomicBool::new(false);
    let control = Control {
        lock_timeout: Duration::ZERO,
        retry_every: Duration::from_secs(1),
        stop: &stop,
        held: false,
    };
    run_controlled(
        topology,
        conns,
        parallelism,
        plan,
        tasks,
        holder,
        progress,
        &control,
    )
}

/// As `run_locked`, waiting up to `control.lock_timeout` for locks other applies
/// hold (every lock taken meanwhile is released between two tries, so that two
/// waiting applies never hold a part each), and stopping early when
/// `control.stop` is set. A lock whose holder is provably gone is reported as
/// stale (`lock::STALE_MARK`) and never waited for.
#[allow(clippy::too_many_arguments)]
pub fn run_controlled(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    plan: &Plan,
    tasks: &[Task],
    holder: &LockHolder,
    progress: &dyn Progress,
    control: &Control,
) -> Result<Vec<Outcome>, SessionError> {
    let deadline = Instant::now() + control.lock_timeout;
    let locked = loop {
        if control.held {
            break Ok(plan.fingerprint.clone());
        }
        match lock_and_fingerprint(topology, conns, parallelism, holder, &plan.recheck) {
            Err(errors) => {
                let errors = judged(errors);
                let waitable = errors.iter().all(|e| {
                    matches!(e, ObserveError::Locked { holder, .. } if !holder.starts_with(STALE_MARK))
                });
                if waitable && Instant::now() < deadline && !control.stop.load(Ordering::SeqCst) {
                    unlock(conns, holder, progress);
                    sleep_until_next_try(control, deadline);
                    if !control.stop.load(Ordering::SeqCst) {
                        continue;
                    }
                }
                break Err(errors);
            }
            Ok(now) => break Ok(now),
        }
    };
    let result = match locked {
        Err(errors) => Err(SessionError::Read(errors)),
        Ok(now) if now != plan.fingerprint => Err(SessionError::Moved {
            planned: plan.fingerprint.clone(),
            now,
        }),
        // Same state and same inputs give the same plan: the one shown still holds.
        Ok(_) => Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
            || {
                #[cfg(feature = "testing")]
                super::pause::at("after-lock");
                progress.begin();
                let release = NodeOp::Release {
                    holder: holder.clone(),
                };
                execute_releasing(
                    tasks,
                    conns,
                    parallelism,
                    progress,
                    control.stop,
                    Some(&release),
                )
            },
        ))),
    };
    // The nodes whose last step released the lock need no other round trip.
    let released = match &result {
        Ok(Ok((_, released))) => released.clone(),
        _ => Default::default(),
    };
    unlock_except(conns, holder, progress, &released);
    let result = result.map(|r| r.map(|(outcomes, _)| outcomes));
    match result? {
        Ok(outcomes) => Ok(outcomes),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Sleeps `control.retry_every`, not past `deadline`, waking early on a stop.
fn sleep_until_next_try(control: &Control, deadline: Instant) {
    let until = (Instant::now() + control.retry_every).min(deadline);
    while Instant::now() < until && !control.stop.load(Ordering::SeqCst) {
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
}

/// The refused locks with their holders judged from this machine: a holder that
/// is provably gone is marked stale, with the reason.
fn judged(errors: Vec<ObserveError>) -> Vec<ObserveError> {
    errors
        .into_iter()
        .map(|e| match e {
            ObserveError::Locked { node, holder } => ObserveError::Locked {
                node,
                holder: judge(&holder),
            },
            other => other,
        })
        .collect()
}

/// The nodes whose lock was refused by a stale holder.
pub fn stale_nodes(errors: &[ObserveError]) -> Vec<&str> {
    errors
        .iter()
        .filter_map(|e| match e {
            ObserveError::Locked { node, holder } if holder.starts_with(STALE_MARK) => {
                Some(node.as_str())
            }
            _ => None,
        })
        .collect()
}

/// Releases the lock on every node that can still be reached; a node locked by
/// another apply keeps its lock (the unlock only removes this holder's).
pub fn unlock(conns: &mut Connections, holder: &LockHolder, progress: &dyn Progress) {
    unlock_except(conns, holder, progress, &Default::default());
}

/// As `unlock`, leaving out the nodes in `released` (already unlocked).
fn unlock_except(
    conns: &mut Connections,
    holder: &LockHolder,
    progress: &dyn Progress,
    released: &std::collections::BTreeSet<String>,
) {
    let op = NodeOp::Unlock {
        holder: holder.clone(),
    };
    for conn in conns.iter_mut().filter(|c| !released.contains(c.node())) {
        if let Err(e) = conn.run(std::slice::from_ref(&op)) {
            progress.unlock_failed(conn.node(), &e);
        }
    }
}

/// Who holds a lock: this process, for `topology`.
pub fn lock_holder(topology: &str) -> LockHolder {
    LockHolder::this_process(topology)
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
    let interrupted = outcomes
        .iter()
        .any(|o| matches!(o, Outcome::Skipped(why) if why == super::INTERRUPTED));
    let ended = if interrupted { "interrupted" } else { "failed" };
    let mut text = format!("\n{what} {ended}. What was done and what was not:\n");
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
