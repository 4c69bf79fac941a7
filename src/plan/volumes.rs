//! Named volumes in a plan: what each container mounts as the runtime takes it,
//! which named volumes do not exist yet (the plan shows them being made), which
//! one of the same name belongs to another owner (no plan), and which volumes a
//! destroy keeps or removes. Pure.

use std::collections::BTreeMap;

use crate::state::{NodeState, ObservedState};
use crate::topology::model::{volume_name, Container, MountSource, Topology};

use super::{Change, PlanError};

/// One mount as the runtime takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedMount {
    /// The named volume's name on the node; `None` for a bind mount.
    pub volume: Option<String>,
    /// The volume name or the node path.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// A named volume that the node does not have yet: made before the container.
    pub new: bool,
}

impl ResolvedMount {
    /// The `--volume` value: `SOURCE:TARGET`, `:ro` when read-only.
    pub fn arg(&self) -> String {
        let ro = if self.read_only { ":ro" } else { "" };
        format!("{}:{}{ro}", self.source, self.target)
    }
}

/// Whether any container of `topology` mounts a named volume (then observe
/// lists the nodes' volumes).
pub fn has_named_volumes(topology: &Topology) -> bool {
    topology.containers.iter().any(|c| {
        c.volumes
            .iter()
            .any(|m| matches!(m.source, MountSource::Volume(_)))
    })
}

/// `c`'s mounts, with each named volume's name on its node and whether it is
/// new; an error for one of that name that this topology does not own.
pub(super) fn resolve_mounts(
    topology: &Topology,
    ns: Option<&NodeState>,
    c: &Container,
) -> Result<Vec<ResolvedMount>, PlanError> {
    let runtime_name = c.runtime_name(&topology.name);
    let observed = ns.and_then(|n| n.volumes.as_ref());
    let mut out = Vec::with_capacity(c.volumes.len());
    for m in &c.volumes {
        let (volume, source, new) = match &m.source {
            MountSource::Bind(path) => (None, path.clone(), false),
            MountSource::Volume(v) => {
                let name = volume_name(&runtime_name, v);
                let new = match observed.and_then(|o| o.get(&name)) {
                    None => true,
                    Some((t, id)) => {
                        let ours = *t == topology.name
                            && (topology.id.is_none()
                                || id.is_empty()
                                || Some(id) == topology.id.as_ref());
                        if !ours {
                            return Err(PlanError::VolumeTaken {
                                node: c.node.clone(),
                                name,
                            });
                        }
                        false
                    }
                };
                (Some(name.clone()), name, new)
            }
        };
        out.push(ResolvedMount {
            volume,
            source,
            target: m.target.clone(),
            read_only: m.read_only,
            new,
        });
    }
    Ok(out)
}

/// The volumes of this topology on each node that belong to containers `changes`
/// delete (all of them for a whole destroy): by node, names in order.
pub fn destroyed_volumes(
    topology: &str,
    id: Option<&str>,
    state: &ObservedState,
    changes: &[Change],
    whole: bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, ns) in &state.nodes {
        let Some(volumes) = &ns.volumes else { continue };
        for (name, (t, vid)) in volumes {
            let ours =
                t == topology && (id.is_none() || vid.is_empty() || Some(vid.as_str()) == id);
            if !ours {
                continue;
            }
            let of_deleted = changes.iter().any(|c| {
                &c.node == node
                    && name
                        .strip_prefix(&format!("{}.", c.runtime_name))
                        .is_some_and(|v| !v.contains('.'))
            });
            if whole || of_deleted {
                out.entry(node.clone()).or_default().push(name.clone());
            }
        }
    }
    out
}
