//! `geartopo apply` and `geartopo destroy`: plan, confirm, lock every node (reading
//! it again in the same round trip), check nothing moved since the plan was shown,
//! execute, unlock, report what was done and what was not.
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::plan::SavedPlan;
use super::session::{load, load_source, stdout_style, Session};
use crate::apply::{
    apply_tasks, destroy_tasks, execute, lock_holder, Outcome, PlainProgress, Progress, Task,
};
use crate::plan::Plan;
use crate::render::plan_text;
use crate::runtime::{lock_script, unlock_script, SHELL};

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// Topology file or saved plan (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Skip the confirmation.
    #[arg(long)]
    pub auto_approve: bool,
    /// Limit the apply to these containers and what they need.
    #[arg(long = "target")]
    pub targets: Vec<String>,
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
    if saved.is_some() && !args.targets.is_empty() {
        bail!("--target cannot be given with a saved plan: the plan carries the targets it was made with");
    }
    let (topology, graph, source) = match &saved {
        Some(s) => load_source(&s.topology_path, s.topology_source.clone().into_bytes())?,
        None => load(&path)?,
    };
    let targets = saved
        .as_ref()
        .map(|s| s.targets.clone())
        .unwrap_or(args.targets.clone());
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe("")?;
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
    let plan = session.plan(&state, &targets)?;
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
    run_locked(&mut session, &plan, tasks, "Apply")
}

pub fn run_destroy(args: DestroyArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe("")?;
    let plan = crate::plan::destroy(&session.topology.name, &state);
    print!("{}", plan_text(&plan, stdout_style()));
    if !plan.has_changes() {
        return Ok(0);
    }
    if !args.auto_approve
        && !confirm(&format!(
            "\nDo you really want to destroy everything topology {} owns?",
            session.topology.name
        ))?
    {
        println!("\nDestroy cancelled.");
        return Ok(1);
    }
    let tasks = destroy_tasks(&session.topology, &session.graph, &plan);
    run_locked(&mut session, &plan, tasks, "Destroy")
}

/// Locks every node (re-reading it in the same round trip), checks the state did
/// not move since `plan` was shown, executes, unlocks, and reports.
fn run_locked(session: &mut Session, plan: &Plan, tasks: Vec<Task>, what: &str) -> Result<i32> {
    let holder = lock_holder(&session.topology.name);
    let locked = session.observe(&lock_script(&holder));
    let result = match locked {
        Err(e) => Err(e),
        Ok(state) if state.fingerprint() != plan.fingerprint => Err(anyhow::anyhow!(
            "the live state changed while the plan was shown; nothing was changed. Run the command again."
        )),
        // Same state and same inputs give the same plan: the one shown still holds.
        // Should anything in there panic, the locks are still released first.
        Ok(_) => Ok(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_tasks(session, &tasks)
        }))),
    };
    unlock(session, &holder);
    let outcomes = match result? {
        Ok(outcomes) => outcomes,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    report(plan, &tasks, &outcomes, what)
}

fn run_tasks(session: &mut Session, tasks: &[Task]) -> Vec<Outcome> {
    println!();
    if std::io::stdout().is_terminal() {
        let progress =
            BarProgress::new(session.conns.iter().map(|c| c.node().to_string()).collect());
        let outcomes = execute(tasks, &mut session.conns, session.parallelism, &progress);
        progress.bars.clear().ok();
        for (t, o) in tasks.iter().zip(&outcomes) {
            PlainProgress.finished(&t.node, &t.label, o);
        }
        outcomes
    } else {
        execute(
            tasks,
            &mut session.conns,
            session.parallelism,
            &PlainProgress,
        )
    }
}

/// Releases the lock on every node that can still be reached.
fn unlock(session: &mut Session, holder: &str) {
    let script = unlock_script(holder);
    for conn in session.conns.iter_mut() {
        if let Err(e) = conn.run(SHELL, script.as_bytes()) {
            eprintln!(
                "warning: could not release the lock on node {}: {e}",
                conn.node()
            );
        }
    }
}

fn report(plan: &Plan, tasks: &[Task], outcomes: &[Outcome], what: &str) -> Result<i32> {
    let failed = outcomes.iter().any(|o| *o != Outcome::Done);
    if !failed {
        let s = plan.summary();
        println!(
            "\n{what} complete! Containers: {} added, {} changed, {} destroyed.",
            s.add, s.change, s.destroy
        );
        return Ok(0);
    }
    println!("\n{what} failed. What was done and what was not:");
    for (t, o) in tasks.iter().zip(outcomes) {
        let line = match o {
            Outcome::Done => format!("  done        {}: {}", t.node, t.label),
            Outcome::Failed(e) => format!("  FAILED      {}: {}: {}", t.node, t.label, e),
            Outcome::Skipped(why) => format!("  not started {}: {} ({why})", t.node, t.label),
        };
        println!("{line}");
    }
    println!("\nNothing was left half-way; run `geartopo apply` again once the cause is fixed and it will converge.");
    Ok(1)
}

/// One spinner per node, for terminals.
struct BarProgress {
    bars: indicatif::MultiProgress,
    by_node: std::collections::BTreeMap<String, indicatif::ProgressBar>,
}

impl BarProgress {
    fn new(nodes: Vec<String>) -> Self {
        let bars = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{spinner} {prefix:>10} {msg}")
            .expect("valid template");
        let by_node = nodes
            .into_iter()
            .map(|n| {
                let bar = bars.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(n.clone());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                (n, bar)
            })
            .collect();
        BarProgress { bars, by_node }
    }
}

impl Progress for BarProgress {
    fn started(&self, node: &str, label: &str) {
        if let Some(b) = self.by_node.get(node) {
            b.set_message(format!("{label}..."));
        }
    }
    fn finished(&self, node: &str, label: &str, outcome: &Outcome) {
        if let Some(b) = self.by_node.get(node) {
            b.set_message(match outcome {
                Outcome::Done => format!("{label}: done"),
                Outcome::Failed(_) => format!("{label}: FAILED"),
                Outcome::Skipped(_) => format!("{label}: not started"),
            });
        }
    }
}
