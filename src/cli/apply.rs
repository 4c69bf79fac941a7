//! `geartopo apply` and `geartopo destroy`: read the arguments, plan, confirm,
//! then hand the plan to the apply session (`apply::session::run_locked`: lock,
//! re-read, compare, execute, unlock) and print what it reports.
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::plan::SavedPlan;
use super::session::{load, load_source, stdout_style, Session};
use crate::apply::session::{lock_holder, report, run_locked, SessionError};
use crate::apply::{apply_tasks, destroy_tasks, Outcome, PlainProgress, Progress, Task};
use crate::plan::{Plan, Scope};
use crate::render::{no_plan, plan_text};
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
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct DestroyArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Skip the confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Destroy only this container and what links to it, transitively (repeat for
    /// more). A declared name means all its replicas, `db-2` one replica.
    #[arg(long = "target", value_name = "CONTAINER")]
    pub targets: Vec<String>,
    /// Keep this container and what it links to, transitively; destroy the rest
    /// (repeat for more; not with --target).
    #[arg(long = "exclude", value_name = "CONTAINER")]
    pub excludes: Vec<String>,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

fn confirm(question: &str) -> Result<bool> {
    print!("{question}\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

pub fn run_apply(args: ApplyArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let bytes =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let saved = SavedPlan::read(&bytes);
    if saved.is_some() && args.scope.any() {
        bail!("--target, --exclude and --replace cannot be given with a saved plan: the plan carries the ones it was made with");
    }
    let (topology, graph, source) = match &saved {
        Some(s) => load_source(&s.topology_path, s.topology_source.clone().into_bytes())?,
        None => load(&path)?,
    };
    let scope = saved
        .as_ref()
        .map(SavedPlan::scope)
        .unwrap_or_else(|| args.scope.scope());
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe()?;
    if let Some(s) = &saved {
        if s.fingerprint != state.fingerprint() {
            bail!(
                "stale plan: the live state of the nodes has changed since {} was made (fingerprint {} then, {} now). Nothing was changed; run `geartopo plan` again.",
                path.display(),
                s.fingerprint,
                state.fingerprint()
            );
        }
    }
    let plan = session.plan_scoped(&state, &scope)?;
    if let Some(warning) = scope.targeting_warning() {
        eprintln!("{warning}");
    }
    if let Some(s) = &saved {
        // Same inputs, same plan, unless this geartopo plans differently from the
        // one that saved it: then carry out nothing rather than something else.
        if crate::render::plan_json(&plan) != s.plan {
            bail!("{} was made by a geartopo that plans differently from this one; nothing was changed. Run `geartopo plan` again.", path.display());
        }
    }
    print!("{}", plan_text(&plan, stdout_style()));
    if !plan.has_changes() {
        return Ok(0);
    }
    if saved.is_none() && !args.auto_approve && !confirm("\nDo you want to perform these actions?")?
    {
        println!("\nApply cancelled.");
        return Ok(1);
    }
    let tasks = apply_tasks(&session.topology, &session.graph, &plan);
    run_session(&mut session, &plan, &tasks, "Apply")
}

pub fn run_destroy(args: DestroyArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe()?;
    let scope = Scope {
        targets: args.targets.clone(),
        excludes: args.excludes.clone(),
        replace: Vec::new(),
    };
    let plan = session.destroy_plan(&state, &scope)?;
    if let Some(warning) = scope.targeting_warning() {
        eprintln!("{warning}");
    }
    print!("{}", plan_text(&plan, stdout_style()));
    if !plan.has_changes() {
        return Ok(0);
    }
    let question = if scope.targets.is_empty() && scope.excludes.is_empty() {
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
        println!("\nDestroy cancelled.");
        return Ok(1);
    }
    let tasks = destroy_tasks(&session.topology, &session.graph, &plan);
    run_session(&mut session, &plan, &tasks, "Destroy")
}

/// Runs the apply session with progress fit for stdout, and prints its report.
fn run_session(session: &mut Session, plan: &Plan, tasks: &[Task], what: &str) -> Result<i32> {
    let holder = lock_holder(&session.topology.name);
    let terminal = std::io::stdout().is_terminal();
    let bars = BarProgress::new(session.conns.iter().map(|c| c.node().to_string()).collect());
    let progress: &dyn Progress = if terminal { &bars } else { &PlainProgress };
    let outcomes = run_locked(
        &session.topology,
        &mut session.conns,
        session.parallelism,
        plan,
        tasks,
        &holder,
        progress,
    )
    .map_err(|e| match e {
        SessionError::Read(errors) => anyhow::anyhow!(no_plan("cannot read every node", &errors)),
        moved @ SessionError::Moved { .. } => anyhow::anyhow!(moved),
    })?;
    if terminal {
        bars.clear();
        for (t, o) in tasks.iter().zip(&outcomes) {
            PlainProgress.finished(&t.node, &t.label, o);
        }
    }
    let report = report(plan, tasks, &outcomes, what);
    print!("{}", report.text);
    Ok(if report.complete { 0 } else { 1 })
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
        println!();
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
