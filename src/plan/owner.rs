//! Which observed containers are this topology's. Observe keeps every container
//! that carries the topology's name; when the topology has an id, those that carry
//! another id belong to another topology of the same name and are set aside here,
//! before anything is planned, so no change can ever name them. Those without an
//! id (made before ids) are adopted. Pure: no I/O.

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::state::{NodeState, ObservedContainer, ObservedState};

use super::Adopted;

/// A container of the same topology name but another id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Foreign {
    pub node: String,
    pub runtime_name: String,
    pub id: String,
}

/// The observed state cut down to what this topology owns: borrowed when that is
/// all of it (no id), so a plan of a fleet does not copy every container it read.
pub(crate) struct Owned<'a> {
    pub state: Cow<'a, ObservedState>,
    /// Owned containers without an id (only when the topology has one).
    pub adopted: Vec<Adopted>,
    pub foreign: Vec<Foreign>,
}

/// Splits `state` by owner. Without an id, everything observed is owned (as
/// before ids). The ports and names of foreign containers stay in the node's
/// `taken_ports` and `names`, so nothing of ours is planned onto them.
pub(crate) fn owned<'a>(id: Option<&str>, state: &'a ObservedState) -> Owned<'a> {
    let Some(id) = id else {
        return Owned {
            state: Cow::Borrowed(state),
            adopted: Vec::new(),
            foreign: Vec::new(),
        };
    };
    let mut out = state.clone();
    let mut adopted = Vec::new();
    let mut foreign = Vec::new();
    for (node, ns) in &mut out.nodes {
        split_node(id, node, ns, &mut adopted, &mut foreign);
    }
    Owned {
        state: Cow::Owned(out),
        adopted,
        foreign,
    }
}

/// `owned` on one node: sets aside in `foreign` the containers of `ns` that
/// carry another id than `id`, and notes in `adopted` those without one.
pub(crate) fn split_node(
    id: &str,
    node: &str,
    ns: &mut NodeState,
    adopted: &mut Vec<Adopted>,
    foreign: &mut Vec<Foreign>,
) {
    // Observe put the first container of each name in `containers` and later
    // ones in `extras`; a foreign one may have taken the first place.
    let all: Vec<ObservedContainer> = std::mem::take(&mut ns.containers)
        .into_values()
        .chain(std::mem::take(&mut ns.extras))
        .collect();
    let mut containers = BTreeMap::new();
    for oc in all {
        match oc.owner_id.as_deref() {
            Some(other) if other != id => {
                foreign.push(Foreign {
                    node: node.to_string(),
                    runtime_name: oc.runtime_name.clone(),
                    id: other.to_string(),
                });
                continue;
            }
            Some(_) => {}
            None => adopted.push(Adopted {
                container: oc.container.clone(),
                node: node.to_string(),
                runtime_name: oc.runtime_name.clone(),
            }),
        }
        if containers.contains_key(&oc.container) {
            ns.extras.push(oc);
        } else {
            containers.insert(oc.container.clone(), oc);
        }
    }
    ns.containers = containers;
}

#[cfg(test)]
mod tests;
