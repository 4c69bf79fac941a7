//! `apply --json` and `destroy --json` (format_version 1): one document saying
//! what was planned, what became of every step, and, when nothing could be
//! changed, why. Keys are declared in alphabetical order, as in `plan --json`.

use schemars::JsonSchema;
use serde::Serialize;

use super::plan::PlanDocument;
use super::FormatVersion;
use crate::apply::session::{SessionError, Verb};
use crate::apply::{Outcome, Task};
use crate::node::NodeOp;
use crate::observe::ObserveError;
use crate::plan::{Action, Change, Plan};

/// What `geartopo apply --json` and `geartopo destroy --json` print.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "geartopo apply")]
pub struct ApplyDocument {
    /// The command that ran.
    pub command: ApplyCommand,
    /// Why nothing was changed, when `result` is `error`; `null` otherwise.
    pub error: Option<ApplyError>,
    pub format_version: FormatVersion<1>,
    /// The plan carried out (the document `plan --json` prints); `null` when the
    /// command stopped before a plan was made.
    pub plan: Option<PlanDocument>,
    pub result: ApplyResult,
    /// Every step of the plan, in the order they were planned, with what became
    /// of it (empty for `no_changes` and `error`).
    pub steps: Vec<ApplyStep>,
    pub summary: ApplySummary,
}

/// `apply` or `destroy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplyCommand {
    Apply,
    Destroy,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyResult {
    /// Every step was done (exit 0).
    Complete,
    /// The live state already matches: nothing to do (exit 0).
    NoChanges,
    /// Some steps failed or were not started; `steps` says which (exit 1).
    Failed,
    /// Stopped before any change; `error` says why (exit 1).
    Error,
}

/// Why nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ApplyError {
    pub kind: ApplyErrorKind,
    /// The message, as the command prints it without `--json`.
    pub message: String,
}

/// The class of an error before any change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyErrorKind {
    /// The file cannot be read or is not a valid topology, a `--target` names
    /// nothing, or no plan can be made.
    Input,
    /// A node cannot be reached.
    Unreachable,
    /// A node cannot be read.
    Unreadable,
    /// Another apply holds the lock of a node (the message names the holder).
    Locked,
    /// The live state changed between the plan and the lock.
    StateChanged,
    /// A saved plan no longer matches the nodes or this geartopo.
    StalePlan,
}

/// One operation on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ApplyStep {
    /// The container's name in the topology.
    pub container: String,
    /// The step in words (`create todo-app1`, `remove todo-db to replace it`).
    pub description: String,
    /// For `failed`: the error (the node's message, or the transport's); `null` otherwise.
    pub error: Option<String>,
    pub node: String,
    /// The node operation: `create`, `init`, `rules`, `start` or `remove` (later
    /// versions may add operations without a new `format_version`).
    pub operation: String,
    pub outcome: StepOutcome,
    /// For `not_started`: why (what it needed did not complete); `null` otherwise.
    pub reason: Option<String>,
    /// The name the runtime knows the container by.
    pub runtime_name: String,
}

/// What became of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Done,
    Failed,
    NotStarted,
}

/// Counts: containers whose every step was done (`add`, `change`, `destroy`,
/// counted as the plan counts them), and steps by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
pub struct ApplySummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
    pub done: usize,
    pub failed: usize,
    pub not_started: usize,
}

impl From<Verb> for ApplyCommand {
    fn from(v: Verb) -> Self {
        match v {
            Verb::Apply => ApplyCommand::Apply,
            Verb::Destroy => ApplyCommand::Destroy,
        }
    }
}

impl From<&SessionError> for ApplyErrorKind {
    fn from(e: &SessionError) -> Self {
        match e {
            SessionError::Read(errors)
                if errors
                    .iter()
                    .any(|e| matches!(e, ObserveError::Locked { .. })) =>
            {
                ApplyErrorKind::Locked
            }
            SessionError::Read(_) => ApplyErrorKind::Unreadable,
            SessionError::Moved { .. } => ApplyErrorKind::StateChanged,
        }
    }
}

impl ApplyDocument {
    /// The document of a run: `outcomes` has one entry per task.
    pub fn ran(verb: Verb, plan: &Plan, tasks: &[Task], outcomes: &[Outcome]) -> Self {
        let owners: Vec<Option<&Change>> = tasks.iter().map(|t| owner(plan, t)).collect();
        let steps: Vec<ApplyStep> = tasks
            .iter()
            .zip(outcomes)
            .zip(&owners)
            .map(|((t, o), c)| step(t, o, *c))
            .collect();
        let mut summary = ApplySummary::default();
        for s in &steps {
            match s.outcome {
                StepOutcome::Done => summary.done += 1,
                StepOutcome::Failed => summary.failed += 1,
                StepOutcome::NotStarted => summary.not_started += 1,
            }
        }
        for c in &plan.changes {
            let mine: Vec<&Outcome> = owners
                .iter()
                .zip(outcomes)
                .filter(|(o, _)| o.is_some_and(|o| std::ptr::eq(o, c)))
                .map(|(_, out)| out)
                .collect();
            if mine.is_empty() || mine.iter().any(|o| **o != Outcome::Done) {
                continue;
            }
            match c.action {
                Action::Create => summary.add += 1,
                Action::Replace { .. } => {
                    summary.add += 1;
                    summary.destroy += 1;
                }
                Action::Update => summary.change += 1,
                Action::Delete => summary.destroy += 1,
            }
        }
        let result = if summary.done == steps.len() {
            ApplyResult::Complete
        } else {
            ApplyResult::Failed
        };
        ApplyDocument {
            command: verb.into(),
            error: None,
            format_version: FormatVersion,
            plan: Some(PlanDocument::new(plan)),
            result,
            steps,
            summary,
        }
    }

    /// The document when the live state already matches.
    pub fn no_changes(verb: Verb, plan: &Plan) -> Self {
        ApplyDocument {
            command: verb.into(),
            error: None,
            format_version: FormatVersion,
            plan: Some(PlanDocument::new(plan)),
            result: ApplyResult::NoChanges,
            steps: vec![],
            summary: ApplySummary::default(),
        }
    }

    /// The document of a command stopped before any change (`plan` if one was made).
    pub fn error(verb: Verb, plan: Option<&Plan>, kind: ApplyErrorKind, message: String) -> Self {
        ApplyDocument {
            command: verb.into(),
            error: Some(ApplyError { kind, message }),
            format_version: FormatVersion,
            plan: plan.map(PlanDocument::new),
            result: ApplyResult::Error,
            steps: vec![],
            summary: ApplySummary::default(),
        }
    }
}

/// The container a task acts on: the change on its node whose observed id or
/// runtime name the operation names.
fn owner<'p>(plan: &'p Plan, t: &Task) -> Option<&'p Change> {
    let target = target(&t.op)?;
    plan.changes.iter().find(|c| {
        c.node == t.node && (c.observed_id.as_deref() == Some(target) || c.runtime_name == target)
    })
}

fn target(op: &NodeOp) -> Option<&str> {
    match op {
        NodeOp::Create(spec) => Some(&spec.runtime_name),
        NodeOp::Init { container }
        | NodeOp::Rules { container, .. }
        | NodeOp::Start { container }
        | NodeOp::Remove { container } => Some(container),
        _ => None,
    }
}

fn step(t: &Task, o: &Outcome, c: Option<&Change>) -> ApplyStep {
    let fallback = target(&t.op).unwrap_or_default().to_string();
    let (outcome, error, reason) = match o {
        Outcome::Done => (StepOutcome::Done, None, None),
        Outcome::Failed(e) => (StepOutcome::Failed, Some(e.clone()), None),
        Outcome::Skipped(why) => (StepOutcome::NotStarted, None, Some(why.clone())),
    };
    ApplyStep {
        container: c.map_or(fallback.clone(), |c| c.container.clone()),
        description: t.label.clone(),
        error,
        node: t.node.clone(),
        operation: t.op.kind().to_string(),
        outcome,
        reason,
        runtime_name: c.map_or(fallback, |c| c.runtime_name.clone()),
    }
}
