//! Rolling replacement (docs/rolling.md): the members of one view, or the
//! replicas of one container, that the plan replaces are replaced a few at a time
//! (`max_unavailable`, default 1), each healthy before the next goes down, so
//! that a cluster keeps its quorum. This decides which containers roll and in
//! which order; `apply::apply_tasks` orders the steps.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Action, Change};
use crate::topology::model::Topology;

/// One group of containers replaced a few at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Roll {
    /// What they are members of: `view etcd`, `container db`.
    pub group: String,
    /// The containers replaced, in the order they go (member or replica order).
    pub members: Vec<String>,
    /// At most this many are down at once.
    pub max_unavailable: u32,
}

/// The rolls of `changes`: per view (in file order), then per replicated
/// container, the replaced containers that exist now (a replace of nothing is a
/// create), when there are at least two and fewer may be down than are replaced.
/// A container rolls in one group only: its first view's.
pub fn rolls(topology: &Topology, changes: &[Change]) -> Vec<Roll> {
    let replaced: BTreeSet<&str> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Replace { .. }) && c.observed_id.is_some())
        .map(|c| c.container.as_str())
        .collect();
    let mut taken: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    let mut push = |group: String, members: Vec<&str>, max: u32, taken: &mut BTreeSet<String>| {
        let members: Vec<String> = members
            .into_iter()
            .filter(|m| replaced.contains(m) && !taken.contains(*m))
            .map(str::to_string)
            .collect();
        if members.len() >= 2 && (max as usize) < members.len() {
            taken.extend(members.iter().cloned());
            out.push(Roll {
                group,
                members,
                max_unavailable: max,
            });
        }
    };
    for v in &topology.views {
        let members = v.members.iter().map(String::as_str).collect();
        push(
            format!("view {}", v.name),
            members,
            v.max_unavailable,
            &mut taken,
        );
    }
    let mut declared: Vec<&str> = Vec::new();
    for c in &topology.containers {
        if c.replica.is_some() && !declared.contains(&c.declared.as_str()) {
            declared.push(&c.declared);
        }
    }
    for d in declared {
        let replicas: Vec<&crate::topology::model::Container> = topology
            .containers
            .iter()
            .filter(|c| c.declared == d && c.replica.is_some())
            .collect();
        let max = replicas.first().map_or(1, |c| c.max_unavailable);
        push(
            format!("container {d}"),
            replicas.iter().map(|c| c.name.as_str()).collect(),
            max,
            &mut taken,
        );
    }
    out
}
