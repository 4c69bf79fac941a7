//! `geartopo plan`: read live state, print the diff, optionally save it.
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::session::{load, stdout_style, Session};
use crate::output::plan::PlanDocument;
use crate::plan::Scope;
use crate::render::{plan_json, plan_text};

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Write the plan here, to apply it later exactly.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0: no changes, 1: error, 2: changes present.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Print the plan as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub scope: ScopeArgs,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

/// `--target`, `--exclude` and `--replace` of plan and apply (terraform's habits).
#[derive(Debug, Clone, clap::Args)]
pub struct ScopeArgs {
    /// Limit the plan to this container and what it links to, transitively (repeat
    /// for more). A declared name means all its replicas, `db-2` one replica.
    #[arg(long = "target", value_name = "CONTAINER")]
    pub targets: Vec<String>,
    /// Leave this container and what links to it, transitively, alone: nothing is
    /// created, changed, replaced or removed for them (repeat for more; not with --target).
    #[arg(long = "exclude", value_name = "CONTAINER", conflicts_with = "targets")]
    pub excludes: Vec<String>,
    /// Replace this container (all its replicas) or one replica (`db-2`) even when
    /// nothing changed (repeat for more).
    #[arg(long = "replace", value_name = "CONTAINER")]
    pub replace: Vec<String>,
    /// Replace every container made before durable links (plan shows them as
    /// "not durable"), so that its links survive restarts and reboots.
    #[arg(long = "make-durable")]
    pub make_durable: bool,
}

impl ScopeArgs {
    pub fn scope(&self) -> Scope {
        Scope {
            targets: self.targets.clone(),
            excludes: self.excludes.clone(),
            replace: self.replace.clone(),
            make_durable: self.make_durable,
        }
    }

    /// Whether any of the three was given.
    pub fn any(&self) -> bool {
        !(self.targets.is_empty()
            && self.excludes.is_empty()
            && self.replace.is_empty()
            && !self.make_durable)
    }
}

/// A saved plan: the topology it was made from, the targets, and the fingerprint
/// of the state it was made against. `apply PLAN` re-reads the nodes and refuses
/// to go on unless the fingerprint still matches; then the same inputs give the
/// same plan.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub geartopo_plan: u32,
    pub topology_path: String,
    pub topology_source: String,
    pub targets: Vec<String>,
    /// `--exclude` (absent in plans saved before it existed).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// `--replace` (absent in plans saved before it existed).
    #[serde(default)]
    pub replace: Vec<String>,
    /// `--make-durable` (absent in plans saved before it existed).
    #[serde(default)]
    pub make_durable: bool,
    pub fingerprint: String,
    /// The plan as shown (`plan --json`), for the record.
    pub plan: serde_json::Value,
    /// The salt of `secret_hashes` (absent in plans saved before it existed).
    #[serde(default)]
    pub secret_salt: String,
    /// A salted hash of every secret env value (`apply::saved::secret_hashes`),
    /// never the value: `apply` reads the values again and refuses changed ones.
    #[serde(default)]
    pub secret_hashes: std::collections::BTreeMap<String, String>,
}

impl SavedPlan {
    /// The names the plan was made with.
    pub fn scope(&self) -> Scope {
        Scope {
            targets: self.targets.clone(),
            excludes: self.excludes.clone(),
            replace: self.replace.clone(),
            make_durable: self.make_durable,
        }
    }

    /// Reads a saved plan, or `None` when the file is not one (a topology).
    pub fn read(bytes: &[u8]) -> Option<SavedPlan> {
        serde_json::from_slice::<SavedPlan>(bytes)
            .ok()
            .filter(|p| p.geartopo_plan == 1)
    }
}

pub fn run(args: PlanArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let scope = args.scope.scope();
    let (topology, graph) = super::session::narrowed(topology, graph, &scope.targets)?;
    let (session, plan) =
        Session::connect_and_plan(topology, graph, source, &args.connect, &scope)?;
    if let Some(warning) = scope.targeting_warning() {
        errln!("{warning}")?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&PlanDocument::new(&plan))?
        )?;
    } else {
        out!("{}", plan_text(&plan, stdout_style()))?;
    }
    if let Some(out) = &args.out {
        let salt = random_salt().with_context(|| "cannot read /dev/urandom")?;
        let saved = SavedPlan {
            geartopo_plan: 1,
            topology_path: path.display().to_string(),
            topology_source: String::from_utf8_lossy(&session.source).into_owned(),
            targets: scope.targets.clone(),
            excludes: scope.excludes.clone(),
            replace: scope.replace.clone(),
            make_durable: scope.make_durable,
            fingerprint: plan.fingerprint.clone(),
            plan: plan_json(&plan),
            secret_hashes: crate::apply::saved::secret_hashes(&session.topology, &salt),
            secret_salt: salt,
        };
        write_private(out, &serde_json::to_vec_pretty(&saved)?)
            .with_context(|| format!("cannot write {}", out.display()))?;
        if !args.json {
            outln!(
                "\nSaved the plan to {}. To perform exactly these actions, run: geartopo apply {}",
                out.display(),
                out.display()
            )?;
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    })
}

/// 16 random bytes, hex: the salt of a saved plan's secret hashes.
fn random_salt() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes a file only its owner can read: a saved plan carries the topology,
/// secret values included.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `apply PLAN` carries out the plan with the names it was made with; a plan
    /// saved before `--exclude` and `--replace` existed still reads, without them.
    #[test]
    fn a_saved_plan_carries_its_targets_exclusions_and_replacements() {
        let saved = SavedPlan {
            geartopo_plan: 1,
            topology_path: "t.toml".into(),
            topology_source: String::new(),
            targets: vec![],
            excludes: vec!["app1".into()],
            replace: vec!["db-2".into()],
            make_durable: false,
            fingerprint: "f".into(),
            plan: serde_json::Value::Null,
            secret_salt: String::new(),
            secret_hashes: Default::default(),
        };
        let read = SavedPlan::read(&serde_json::to_vec(&saved).unwrap()).unwrap();
        assert_eq!(
            read.scope(),
            Scope {
                targets: vec![],
                excludes: vec!["app1".into()],
                replace: vec!["db-2".into()],
                make_durable: false,
            }
        );
        let old = br#"{"geartopo_plan": 1, "topology_path": "t.toml", "topology_source": "",
            "targets": ["redisdb"], "fingerprint": "f", "plan": null}"#;
        assert_eq!(
            SavedPlan::read(old).unwrap().scope(),
            Scope::targets(&["redisdb".into()])
        );
    }
}
