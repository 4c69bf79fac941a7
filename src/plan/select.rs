//! Terraform's targeting habits: which containers a plan may touch (`--target`,
//! `--exclude`) and which it must replace although nothing changed (`--replace`),
//! from the names as the operator typed them. Pure: names are resolved against the
//! model, its dependency graph and the observed state; nothing is read here.
//!
//! A name is a container as declared (`db`: every replica of it) or one concrete
//! container (`db-2`: that replica only). What each flag pulls in, with terraform's
//! (and OpenTofu's, for `--exclude`) semantics:
//!
//! | flag        | apply / plan                         | destroy                                  |
//! |-------------|--------------------------------------|------------------------------------------|
//! | `--target`  | the names and what they link to      | the names and what links to them         |
//! | `--exclude` | leaves the names and what links to   | keeps the names and what they link to    |
//! |             | them alone                           | (removing those would break a kept link) |
//!
//! Destroy runs in reverse: a container goes before what it links to. So
//! destroying X removes what links to X too, and keeping X keeps what X needs.

use std::collections::BTreeSet;

use crate::graph::DepGraph;
use crate::state::ObservedState;
use crate::topology::model::Topology;
use crate::topology::names::closest;

/// The names given on the command line, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `--target`: only these and what they need (apply) or what needs them (destroy).
    pub targets: Vec<String>,
    /// `--exclude`: everything but these and what needs them (apply) or what they
    /// need (destroy).
    pub excludes: Vec<String>,
    /// `--replace`: replace these even when nothing changed (apply only).
    pub replace: Vec<String>,
    /// `--make-durable`: replace the containers made before durable links.
    pub make_durable: bool,
}

impl Scope {
    /// Only targets.
    pub fn targets(targets: &[String]) -> Scope {
        Scope {
            targets: targets.to_vec(),
            ..Scope::default()
        }
    }

    /// The warning terraform prints when a plan is limited (on stderr, never in
    /// `--json` output), or `None` when it is not.
    pub fn targeting_warning(&self) -> Option<String> {
        let flag = if !self.targets.is_empty() {
            "--target"
        } else if !self.excludes.is_empty() {
            "--exclude"
        } else {
            return None;
        };
        Some(format!(
            "warning: resource targeting is in effect ({flag}): the plan may be incomplete. \
             It does not show every change the topology calls for; use {flag} only for \
             exceptional situations, and run plan without it afterwards."
        ))
    }
}

/// Whether the plan is for apply (create, update, replace, delete) or destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    Destroy,
}

/// The containers (concrete names) a plan may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Limit {
    /// No `--target` or `--exclude`.
    #[default]
    All,
    /// Only these.
    Only(BTreeSet<String>),
    /// Every container but these.
    AllBut(BTreeSet<String>),
}

impl Limit {
    /// Whether the plan may touch container `name`.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Limit::All => true,
            Limit::Only(set) => set.contains(name),
            Limit::AllBut(set) => !set.contains(name),
        }
    }
}

/// A [`Scope`] resolved to concrete container names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub limit: Limit,
    /// Containers to replace although nothing changed (those that exist; one that
    /// does not is created, as it would be anyway).
    pub replace: BTreeSet<String>,
    /// `--make-durable`: replace every container made before durable links.
    pub make_durable: bool,
}

/// Why the names given cannot be used. Names the flag and the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("--target and --exclude cannot be used together: --target plans only what it names, --exclude everything but what it names; use one of them")]
    TargetAndExclude,
    #[error("--{flag} {name}: no such container in the topology or on its nodes{}", did_you_mean(.suggestion))]
    Unknown {
        flag: &'static str,
        name: String,
        suggestion: Option<String>,
    },
    #[error("--replace {name}: {name} is not in the topology (only on its nodes), so the plan removes it; nothing to replace")]
    ReplaceNotInFile { name: String },
    #[error("--replace {name}: {name} is left out of the plan by {flag}; add it to the targets or drop --replace")]
    ReplaceOutOfScope { name: String, flag: &'static str },
    #[error("--replace cannot be used with destroy")]
    ReplaceOnDestroy,
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// Resolves `scope` for a plan of `mode`.
pub fn select(
    topology: &Topology,
    graph: &DepGraph,
    state: &ObservedState,
    scope: &Scope,
    mode: Mode,
) -> Result<Selection, SelectError> {
    if !scope.targets.is_empty() && !scope.excludes.is_empty() {
        return Err(SelectError::TargetAndExclude);
    }
    if mode == Mode::Destroy && !scope.replace.is_empty() {
        return Err(SelectError::ReplaceOnDestroy);
    }
    let targets = expand_all(topology, state, &scope.targets, "target")?;
    let excludes = expand_all(topology, state, &scope.excludes, "exclude")?;
    let limit = if !targets.is_empty() {
        let names: Vec<String> = targets.iter().cloned().collect();
        // Names only on nodes (no longer in the file) have no graph entry: keep
        // them, so that `--target old` plans their removal.
        let mut set = match mode {
            Mode::Apply => graph.needed_by(&names),
            Mode::Destroy => graph.dependents_of(&names),
        };
        set.extend(targets);
        Limit::Only(set)
    } else if !excludes.is_empty() {
        let names: Vec<String> = excludes.iter().cloned().collect();
        let mut set = match mode {
            Mode::Apply => graph.dependents_of(&names),
            Mode::Destroy => graph.needed_by(&names),
        };
        set.extend(excludes);
        Limit::AllBut(set)
    } else {
        Limit::All
    };
    let mut replace = BTreeSet::new();
    for name in &scope.replace {
        let names = expand(topology, state, name)
            .ok_or_else(|| unknown(topology, state, name, "replace"))?;
        for n in names {
            if topology.container(&n).is_none() {
                return Err(SelectError::ReplaceNotInFile { name: n });
            }
            if !limit.allows(&n) {
                let flag = if scope.targets.is_empty() {
                    "--exclude"
                } else {
                    "--target"
                };
                return Err(SelectError::ReplaceOutOfScope { name: n, flag });
            }
            replace.insert(n);
        }
    }
    Ok(Selection {
        limit,
        replace,
        make_durable: scope.make_durable,
    })
}

fn expand_all(
    topology: &Topology,
    state: &ObservedState,
    names: &[String],
    flag: &'static str,
) -> Result<BTreeSet<String>, SelectError> {
    let mut out = BTreeSet::new();
    for name in names {
        out.extend(
            expand(topology, state, name).ok_or_else(|| unknown(topology, state, name, flag))?,
        );
    }
    Ok(out)
}

/// The concrete containers `name` means: itself, or every replica of a container
/// declared with that name (with replicas a smaller `replicas` left on the nodes).
fn expand(topology: &Topology, state: &ObservedState, name: &str) -> Option<BTreeSet<String>> {
    if topology.container(name).is_some() {
        return Some([name.to_string()].into());
    }
    let mut out: BTreeSet<String> = topology
        .containers
        .iter()
        .filter(|c| c.declared == name && c.replica.is_some())
        .map(|c| c.name.clone())
        .collect();
    let replicated = !out.is_empty();
    for oc in observed_names(state) {
        let replica_of_name = replicated
            && oc
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if oc == name || replica_of_name {
            out.insert(oc.to_string());
        }
    }
    (!out.is_empty()).then_some(out)
}

fn observed_names(state: &ObservedState) -> impl Iterator<Item = &str> {
    state.nodes.values().flat_map(|ns| {
        ns.containers
            .values()
            .chain(&ns.extras)
            .map(|oc| oc.container.as_str())
    })
}

fn unknown(
    topology: &Topology,
    state: &ObservedState,
    name: &str,
    flag: &'static str,
) -> SelectError {
    let candidates: BTreeSet<&str> = topology
        .containers
        .iter()
        .flat_map(|c| [c.name.as_str(), c.declared.as_str()])
        .chain(observed_names(state))
        .collect();
    SelectError::Unknown {
        flag,
        name: name.to_string(),
        suggestion: closest(name, candidates.into_iter()).map(str::to_string),
    }
}

#[cfg(test)]
mod tests;
