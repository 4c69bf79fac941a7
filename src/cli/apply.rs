//! `geartopo apply` and `geartopo destroy`: read the arguments, plan, confirm,
//! then hand the plan to the apply session (`apply::session::run_locked`: lock,
//! re-read, compare, execute, unlock) and print what it reports.
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Result;

use super::plan::SavedPlan;
use super::session::{load, load_source, stdout_style, Session};
use crate::apply::interrupt;
use crate::apply::session::{
    lock_holder, report, run_controlled, stale_nodes, Control, SessionError, Verb,
};
use crate::apply::{apply_tasks, destroy_tasks, Outcome, PlainProgress, Progress, Task};
use crate::node::lock::LockHolder;
use crate::observe::ObserveError;
use crate::output::apply::{ApplyDocument, ApplyErrorKind, ApplyResult};
use crate::plan::{Plan, Scope};
use crate::render::{no_plan, plan_text};
use crate::transport::shell::quote;
use crate::transport::TransportError;

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Topology file or saved plan (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Skip the confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub scope: super::plan::ScopeArgs,
    /// Print what was done and not done as one JSON document on stdout (the plan,
    /// every step with its outcome, the counts); needs --auto-approve or a saved plan.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

/// How apply and destroy wait for a lock.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// How long to wait for a node's lock held by another apply, trying again about
    /// every second (`30s`, `2m`, `1h`, `500ms`; a bare number is seconds; 0: do not
    /// wait). A stale lock is never waited for.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = parse_duration)]
    pub lock_timeout: std::time::Duration,
}

/// `30s`, `2m`, `1h`, `500ms`, `0`, `12` (seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 2m, 1h, 500ms)"))?;
    let secs = |k: u64| {
        n.checked_mul(k)
            .map(std::time::Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    };
    match unit {
        "" | "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "ms" => Ok(std::time::Duration::from_millis(n)),
        _ => Err(format!(
            "`{text}` is not a duration: the unit is one of ms, s, m, h (e.g. 30s, 2m)"
        )),
    }
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Skip the confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Print what was done and not done as one JSON document on stdout (the plan,
    /// every step with its outcome, the counts); needs --auto-approve.
    #[arg(long)]
    pub json: bool,
    /// Destroy only this container and what links to it, transitively (repeat for
    /// more). A declared name means all its replicas, `db-2` one replica.
    #[arg(long = "target", value_name = "CONTAINER")]
    pub targets: Vec<String>,
    /// Keep this container and what it links to, transitively; destroy the rest
    /// (repeat for more; not with --target).
    #[arg(long = "exclude", value_name = "CONTAINER", conflicts_with = "targets")]
    pub excludes: Vec<String>,
    /// A node removed from the file that still runs this topology's containers: read it
    /// at ADDR (with the file's [defaults] for SSH and runtime) and destroy only what the
    /// topology owns there (repeat for more nodes).
    #[arg(long = "node", value_name = "NAME=ADDR", value_parser = node_arg)]
    pub nodes: Vec<(String, String)>,
    /// Also remove the named volumes of the destroyed containers (their data);
    /// without it they are kept, and listed.
    #[arg(long)]
    pub volumes: bool,
    #[command(flatten)]
    pub lock: LockArgs,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

fn node_arg(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, addr)) if !name.is_empty() && !addr.is_empty() => {
            Ok((name.to_string(), addr.to_string()))
        }
        _ => Err("expected NAME=ADDR, for example node2=198.18.0.2".into()),
    }
}

pub(super) fn confirm(question: &str) -> Result<bool> {
    out!("{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ")?;
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Why an apply or destroy stopped before any change: the error, and its class
/// for `--json`. `kind` is `None` for a usage error, which prints no document.
struct Stop {
    kind: Option<ApplyErrorKind>,
    error: anyhow::Error,
}

impl From<anyhow::Error> for Stop {
    fn from(error: anyhow::Error) -> Self {
        Stop {
            kind: Some(ApplyErrorKind::Input),
            error,
        }
    }
}

/// A write to a closed stdout or stderr: no document, the quiet exit of `main`.
impl From<std::io::Error> for Stop {
    fn from(e: std::io::Error) -> Self {
        Stop {
            kind: None,
            error: e.into(),
        }
    }
}

fn stop(kind: ApplyErrorKind) -> impl FnOnce(anyhow::Error) -> Stop {
    move |error| Stop {
        kind: Some(kind),
        error,
    }
}

/// How a command that got past its checks ended.
enum Ran {
    NoChanges,
    Cancelled,
    Executed {
        tasks: Vec<Task>,
        outcomes: Vec<Outcome>,
    },
}

/// `--json` cannot ask for a confirmation: as `terraform apply -json`, it needs
/// the approval given beforehand.
fn json_needs_approval(verb: Verb, how: &str) -> Stop {
    Stop {
        kind: None,
        error: anyhow::anyhow!(
            "{} --json needs {how}: there is no prompt to confirm at in JSON mode; nothing was changed",
            verb.command()
        ),
    }
}

pub fn run_apply(args: ApplyArgs) -> Result<i32> {
    let mut plan = None;
    let ran = apply(&args, &mut plan);
    finish(Verb::Apply, args.json, plan.as_ref(), ran)
}

pub fn run_destroy(args: DestroyArgs) -> Result<i32> {
    let mut plan = None;
    let ran = destroy(&args, &mut plan);
    finish(Verb::Destroy, args.json, plan.as_ref(), ran)
}

fn apply(args: &ApplyArgs, planned: &mut Option<Plan>) -> Result<Ran, Stop> {
    let path = super::topology_path(args.file.clone());
    let bytes = super::read_file(&path)?;
    let saved = SavedPlan::read(&bytes);
    if args.json && saved.is_none() && !args.auto_approve {
        return Err(json_needs_approval(
            Verb::Apply,
            "--auto-approve or a saved plan (geartopo plan -o PLAN, then geartopo apply --json PLAN)",
        ));
    }
    if saved.is_some() && args.scope.any() {
        return Err(anyhow::anyhow!("--target, --exclude and --replace cannot be given with a saved plan: the plan carries the ones it was made with").into());
    }
    let (topology, graph, source) = match &saved {
        Some(s) => load_source(&s.topology_path, s.topology_source.clone().into_bytes())?,
        None => load_source(&path.display().to_string(), bytes)?,
    };
    // A plan saved before secret hashes existed has no salt: nothing to compare.
    if let Some(s) = saved.as_ref().filter(|s| !s.secret_salt.is_empty()) {
        crate::apply::saved::check_secrets(
            &path.display().to_string(),
            &s.secret_salt,
            &s.secret_hashes,
            &topology,
        )
        .map_err(|e| stop(ApplyErrorKind::StalePlan)(e.into()))?;
    }
    let scope = saved
        .as_ref()
        .map(SavedPlan::scope)
        .unwrap_or_else(|| args.scope.scope());
    let (topology, graph) = super::session::narrowed(topology, graph, &scope.targets)?;
    let mut session = Session::connect(topology, graph, source, &args.connect)
        .map_err(stop(ApplyErrorKind::Unreachable))?;
    let file = match &saved {
        Some(s) => s.topology_path.clone(),
        None => path.display().to_string(),
    };
    let holder = lock_holder(&session.topology.name);
    let (state, held) = read_state(
        &mut session,
        saved.is_none() && args.auto_approve,
        &holder,
        &file,
    )?;
    let next = releasing_on_panic(&mut session, held.then_some(&holder), |session| {
        plan_apply(
            args,
            &path,
            saved.as_ref(),
            &scope,
            session,
            &state,
            planned,
        )
    });
    let locks = Locks {
        holder,
        held,
        wait: &args.lock,
    };
    proceed(
        &mut session,
        planned,
        next,
        &locks,
        |session, plan, tasks| run_session(session, plan, tasks, args.json, &file, &locks),
    )
}

/// The rest of an apply once the nodes are read: the plan, the checks of a saved
/// plan, the plan shown, the confirmation; the tasks to run, or how it ended.
fn plan_apply(
    args: &ApplyArgs,
    path: &std::path::Path,
    saved: Option<&SavedPlan>,
    scope: &Scope,
    session: &Session,
    state: &crate::state::ObservedState,
    planned: &mut Option<Plan>,
) -> Result<Next, Stop> {
    let plan = planned.insert(session.plan_scoped(state, scope)?);
    if let Some(s) = saved {
        crate::apply::saved::check_fingerprint(
            &path.display().to_string(),
            &s.fingerprint,
            plan,
            state,
        )
        .map_err(|e| stop(ApplyErrorKind::StalePlan)(e.into()))?;
    }
    if let Some(warning) = scope.targeting_warning() {
        errln!("{warning}")?;
    }
    if let Some(s) = saved {
        crate::apply::saved::check_same_plan(&path.display().to_string(), &s.plan, plan)
            .map_err(|e| stop(ApplyErrorKind::StalePlan)(e.into()))?;
    }
    if !args.json {
        out!("{}", plan_text(plan, stdout_style()))?;
    }
    if !plan.has_changes() {
        return Ok(Next::Ended(Ran::NoChanges));
    }
    if saved.is_none() && !args.auto_approve && !confirm("\nDo you want to perform these actions?")?
    {
        return Ok(Next::Ended(Ran::Cancelled));
    }
    Ok(Next::Run(apply_tasks(
        &session.topology,
        &session.graph,
        plan,
    )))
}

/// This run's locks: whose they are, whether the read took them already
/// (`read_state`), how long to wait for one another apply holds.
struct Locks<'a> {
    holder: LockHolder,
    held: bool,
    wait: &'a LockArgs,
}

/// What comes after the plan: tasks to run, or the end.
enum Next {
    Run(Vec<Task>),
    Ended(Ran),
}

/// Reads every node. With `lock_first` (the approval given beforehand, so that
/// nothing waits between the read and the steps), each node's lock is taken in
/// its read's own round trip: the plan is made from a state read under the
/// locks, which the session then runs without a lock round trip or a re-check.
/// Signals are caught from before the first lock (a Ctrl-C from then on ends
/// the command in good order, releasing the locks). When a node's lock is held
/// by another apply (or left by a killed one), the locks taken are released and
/// the nodes read without them, as an apply with a confirmation does: the
/// session then waits for the lock (`--lock-timeout`) or reports it, and
/// re-checks by digest.
fn read_state(
    session: &mut Session,
    lock_first: bool,
    holder: &LockHolder,
    file: &str,
) -> Result<(crate::state::ObservedState, bool), Stop> {
    if lock_first {
        let nodes: Vec<String> = session.conns.iter().map(|c| c.node().to_string()).collect();
        interrupt::install(&nodes, &quote(file));
        match session.observe_locking(holder) {
            Ok(state) => {
                #[cfg(feature = "testing")]
                crate::apply::pause::at("after-locked-read");
                return Ok((state, true));
            }
            Err(errors) => {
                release(session, holder);
                if !errors
                    .iter()
                    .all(|e| matches!(e, ObserveError::Locked { .. }))
                {
                    return Err(stop(ApplyErrorKind::Unreadable)(anyhow::anyhow!(no_plan(
                        "cannot read every node",
                        &errors
                    ))));
                }
            }
        }
    }
    let state = session
        .observe()
        .map_err(stop(ApplyErrorKind::Unreadable))?;
    Ok((state, false))
}

/// Runs `f` (the plan, between a read that took the locks and the session that
/// releases them); should it panic (a bug), the locks `held` names are
/// released before the panic goes on, so that no stale lock is left behind.
fn releasing_on_panic<T>(
    session: &mut Session,
    held: Option<&LockHolder>,
    f: impl FnOnce(&Session) -> T,
) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(session))) {
        Ok(value) => value,
        Err(panic) => {
            if let Some(holder) = held {
                release(session, holder);
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Releases this run's locks (taken by `read_state`) on every node, warning on
/// stderr about a node where that failed.
fn release(session: &mut Session, holder: &LockHolder) {
    crate::apply::session::unlock(&mut session.conns, holder, &PlainProgress);
}

/// Runs the tasks with `run`, or ends; locks taken with the read and not handed
/// to a session are released on every way out.
fn proceed(
    session: &mut Session,
    planned: &Option<Plan>,
    next: Result<Next, Stop>,
    locks: &Locks,
    run: impl FnOnce(&mut Session, &Plan, Vec<Task>) -> Result<Ran, Stop>,
) -> Result<Ran, Stop> {
    match next {
        Ok(Next::Run(tasks)) => {
            let plan = planned
                .as_ref()
                .expect("a plan was made before anything runs");
            run(session, plan, tasks)
        }
        ended => {
            if locks.held {
                release(session, &locks.holder);
            }
            ended.map(|n| match n {
                Next::Ended(ran) => ran,
                Next::Run(_) => unreachable!("matched above"),
            })
        }
    }
}

fn destroy(args: &DestroyArgs, planned: &mut Option<Plan>) -> Result<Ran, Stop> {
    if args.json && !args.auto_approve {
        return Err(json_needs_approval(Verb::Destroy, "--auto-approve"));
    }
    let path = super::topology_path(args.file.clone());
    let (mut topology, graph, source) = load(&path)?;
    let file = path.display().to_string();
    let mut extra = std::collections::BTreeSet::new();
    for (name, address) in &args.nodes {
        let node = crate::topology::extra_node::extra_node(&file, &source, name, address)
            .map_err(|e| anyhow::anyhow!(e))?;
        topology.nodes.insert(name.clone(), node);
        extra.insert(name.clone());
    }
    let mut session = Session::connect(topology, graph, source, &args.connect)
        .map_err(stop(ApplyErrorKind::Unreachable))?;
    let holder = lock_holder(&session.topology.name);
    let (state, held) = read_state(&mut session, args.auto_approve, &holder, &file)?;
    let next = releasing_on_panic(&mut session, held.then_some(&holder), |session| {
        plan_destroy(args, &extra, session, &state, planned)
    });
    let locks = Locks {
        holder,
        held,
        wait: &args.lock,
    };
    proceed(
        &mut session,
        planned,
        next,
        &locks,
        |session, plan, tasks| run_session(session, plan, tasks, args.json, &file, &locks),
    )
}

/// The rest of a destroy once the nodes are read: the plan, the volumes it
/// keeps or removes, the plan shown, the confirmation; the tasks, or the end.
fn plan_destroy(
    args: &DestroyArgs,
    extra: &std::collections::BTreeSet<String>,
    session: &Session,
    state: &crate::state::ObservedState,
    planned: &mut Option<Plan>,
) -> Result<Next, Stop> {
    let scope = Scope {
        targets: args.targets.clone(),
        excludes: args.excludes.clone(),
        replace: Vec::new(),
        make_durable: false,
    };
    let mut destroy_plan = session.destroy_plan(state, &scope)?;
    if !extra.is_empty() {
        destroy_plan.retain_nodes(extra);
    }
    let whole = scope.targets.is_empty() && scope.excludes.is_empty();
    let mut volumes = crate::plan::volumes::destroyed_volumes(
        &session.topology.name,
        session.topology.id.as_deref(),
        state,
        &destroy_plan.changes,
        whole,
    );
    if !extra.is_empty() {
        volumes.retain(|node, _| extra.contains(node));
    }
    let plan = planned.insert(destroy_plan);
    if let Some(warning) = scope.targeting_warning() {
        errln!("{warning}")?;
    }
    if !args.json && !volumes.is_empty() {
        let list: String = volumes
            .iter()
            .map(|(node, names)| format!("  {node}: {}\n", names.join(", ")))
            .collect();
        if args.volumes {
            out!("Named volumes to remove (--volumes), with their data:\n{list}\n")?;
        } else {
            out!("Named volumes kept (destroy --volumes removes them):\n{list}\n")?;
        }
    }
    let remove_volumes = args.volumes && !volumes.is_empty();
    if !plan.has_changes() && !remove_volumes {
        if !args.json {
            outln!(
                "No changes. No container of topology {} to destroy.",
                session.topology.name
            )?;
        }
        return Ok(Next::Ended(Ran::NoChanges));
    }
    if !args.json {
        out!("{}", plan_text(plan, stdout_style()))?;
    }
    let question = if !extra.is_empty() {
        format!(
            "\nDo you really want to destroy everything topology {} owns on {}?",
            session.topology.name,
            extra.iter().cloned().collect::<Vec<_>>().join(", ")
        )
    } else if scope.targets.is_empty() && scope.excludes.is_empty() {
        format!(
            "\nDo you really want to destroy everything topology {} owns?",
            session.topology.name
        )
    } else {
        format!(
            "\nDo you really want to destroy these containers of topology {}?",
            session.topology.name
        )
    };
    if !args.auto_approve && !confirm(&question)? {
        return Ok(Next::Ended(Ran::Cancelled));
    }
    let mut tasks = destroy_tasks(&session.topology, &session.graph, plan);
    if args.volumes {
        crate::apply::remove_volume_tasks(&mut tasks, &volumes);
    }
    Ok(Next::Run(tasks))
}

/// Prints how the command ended (text, or with `json` one document on stdout)
/// and gives its exit code.
fn finish(verb: Verb, json: bool, plan: Option<&Plan>, ran: Result<Ran, Stop>) -> Result<i32> {
    let what = verb.word();
    if !json {
        return match ran.map_err(|s| s.error)? {
            Ran::NoChanges => Ok(0),
            Ran::Cancelled => {
                outln!("\n{what} cancelled.")?;
                Ok(1)
            }
            Ran::Executed { tasks, outcomes } => {
                let plan = plan.expect("a plan was made before anything ran");
                let report = report(plan, &tasks, &outcomes, verb);
                out!("{}", report.text)?;
                Ok(if report.complete { 0 } else { 1 })
            }
        };
    }
    let doc = match ran {
        Ok(Ran::NoChanges) => {
            ApplyDocument::no_changes(verb, plan.expect("a plan was made before anything ran"))
        }
        Ok(Ran::Executed { tasks, outcomes }) => ApplyDocument::ran(
            verb,
            plan.expect("a plan was made before anything ran"),
            &tasks,
            &outcomes,
        ),
        Ok(Ran::Cancelled) => unreachable!("--json never asks for a confirmation"),
        Err(Stop { kind: None, error }) => return Err(error),
        Err(Stop {
            kind: Some(kind),
            error,
        }) => ApplyDocument::error(verb, plan, kind, format!("{error:#}")),
    };
    outln!("{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(match doc.result {
        ApplyResult::Complete | ApplyResult::NoChanges => 0,
        ApplyResult::Failed | ApplyResult::Error => 1,
    })
}

/// Runs the apply session: with progress fit for stdout, or (for `--json`,
/// whose stdout carries the document only) with none.
fn run_session(
    session: &mut Session,
    plan: &Plan,
    tasks: Vec<Task>,
    json: bool,
    file: &str,
    locks: &Locks,
) -> Result<Ran, Stop> {
    let terminal = !json && std::io::stdout().is_terminal();
    let bars = BarProgress::new(session.conns.iter().map(|c| c.node().to_string()).collect());
    let progress: &dyn Progress = match (json, terminal) {
        (true, _) => &SilentProgress,
        (false, true) => &bars,
        (false, false) => &PlainProgress,
    };
    // From here on Ctrl-C and SIGTERM stop the session in good order: the
    // first lets running steps finish and releases the locks.
    let nodes: Vec<String> = session.conns.iter().map(|c| c.node().to_string()).collect();
    interrupt::install(&nodes, &quote(file));
    let control = Control {
        lock_timeout: locks.wait.lock_timeout,
        retry_every: std::time::Duration::from_secs(1),
        stop: &interrupt::INTERRUPTED,
        held: locks.held,
    };
    let outcomes = run_controlled(
        &session.topology,
        &mut session.conns,
        session.parallelism,
        plan,
        &tasks,
        &locks.holder,
        progress,
        &control,
    )
    .map_err(|e| {
        let kind = ApplyErrorKind::from(&e);
        let message = match e {
            SessionError::Read(errors) => {
                let mut text = no_plan("cannot read every node", &errors);
                for node in stale_nodes(&errors) {
                    text.push_str(&format!(
                        "\n\nThe lock on node {node} is stale: the apply that took it is gone. \
                         geartopo never removes a lock by itself; once you know no geartopo \
                         runs against that node, remove it with:\n  geartopo force-unlock {} --node {node}",
                        quote(file)
                    ));
                }
                text
            }
            moved @ SessionError::Moved { .. } => moved.to_string(),
        };
        stop(kind)(anyhow::anyhow!(message))
    })?;
    if terminal {
        bars.clear();
        for (t, o) in tasks.iter().zip(&outcomes) {
            PlainProgress.finished(&t.node, &t.label, o);
        }
    }
    Ok(Ran::Executed { tasks, outcomes })
}

/// No progress at all, for `--json`: the document says what became of each
/// step. A lock that cannot be released is still warned about, on stderr.
struct SilentProgress;

impl Progress for SilentProgress {
    fn started(&self, _node: &str, _label: &str) {}
    fn finished(&self, _node: &str, _label: &str, _outcome: &Outcome) {}
    fn unlock_failed(&self, node: &str, error: &TransportError) {
        PlainProgress.unlock_failed(node, error);
    }
}

/// One spinner per node, for terminals; drawn from `begin` (once the session
/// holds every lock) until `clear`.
struct BarProgress {
    nodes: Vec<String>,
    shown: std::sync::OnceLock<Bars>,
}

struct Bars {
    bars: indicatif::MultiProgress,
    by_node: std::collections::BTreeMap<String, indicatif::ProgressBar>,
}

impl BarProgress {
    fn new(nodes: Vec<String>) -> Self {
        BarProgress {
            nodes,
            shown: std::sync::OnceLock::new(),
        }
    }

    fn bar(&self, node: &str) -> Option<&indicatif::ProgressBar> {
        self.shown.get()?.by_node.get(node)
    }

    fn clear(&self) {
        if let Some(shown) = self.shown.get() {
            shown.bars.clear().ok();
        }
    }
}

impl Progress for BarProgress {
    fn begin(&self) {
        let _ = outln!();
        self.shown.get_or_init(|| {
            let bars = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:>10} {msg}")
                .expect("valid template");
            let by_node = self
                .nodes
                .iter()
                .map(|n| {
                    let bar = bars.add(indicatif::ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(n.clone());
                    bar.enable_steady_tick(std::time::Duration::from_millis(120));
                    (n.clone(), bar)
                })
                .collect();
            Bars { bars, by_node }
        });
    }
    fn started(&self, node: &str, label: &str) {
        if let Some(b) = self.bar(node) {
            b.set_message(format!("{label}..."));
        }
    }
    fn finished(&self, node: &str, label: &str, outcome: &Outcome) {
        if let Some(b) = self.bar(node) {
            b.set_message(match outcome {
                Outcome::Done => format!("{label}: done"),
                Outcome::Failed(_) => format!("{label}: FAILED"),
                Outcome::Skipped(_) => format!("{label}: not started"),
            });
        }
    }
    fn unlock_failed(&self, node: &str, error: &TransportError) {
        match self.shown.get() {
            Some(shown) => shown
                .bars
                .suspend(|| PlainProgress.unlock_failed(node, error)),
            None => PlainProgress.unlock_failed(node, error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::sim::simulated;
    use crate::plan::tests::redis_todo;

    fn session_on(
        t: &crate::topology::model::Topology,
    ) -> (
        std::sync::Arc<std::sync::Mutex<crate::apply::sim::Sim>>,
        Session,
    ) {
        let (sim, nodes) = simulated(t, &[]);
        let conns = nodes.connections(t);
        (sim, Session::with_connections(t.clone(), conns))
    }

    #[test]
    fn a_panic_while_planning_under_the_read_s_locks_releases_them() {
        let t = redis_todo();
        let (sim, mut session) = session_on(&t);
        let holder = lock_holder(&t.name);
        session.observe_locking(&holder).unwrap();
        assert_eq!(
            sim.lock().unwrap().locks.len(),
            2,
            "the read took the locks"
        );
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            releasing_on_panic(&mut session, Some(&holder), |_| -> () {
                panic!("a bug in the planner")
            })
        }));
        assert!(caught.is_err(), "the panic goes on");
        assert!(sim.lock().unwrap().locks.is_empty(), "a lock was left");
    }

    #[test]
    fn a_lock_held_by_another_leaves_none_of_this_run_s_after_the_locked_read() {
        let t = redis_todo();
        let (sim, mut session) = session_on(&t);
        let other = crate::testing::holder_elsewhere();
        sim.lock()
            .unwrap()
            .locks
            .insert("node4".into(), other.clone());
        let holder = lock_holder(&t.name);
        let errors = session.observe_locking(&holder).unwrap_err();
        assert!(errors
            .iter()
            .all(|e| matches!(e, ObserveError::Locked { node, .. } if node == "node4")));
        // What read_state does before reading again without locks.
        release(&mut session, &holder);
        let locks = sim.lock().unwrap().locks.clone();
        assert_eq!(locks.len(), 1, "{locks:?}");
        assert_eq!(locks["node4"], other, "the other apply's lock is kept");
    }
}
