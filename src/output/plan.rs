//! `plan --json` (format_version 1). Keys are declared in alphabetical order: a
//! saved plan records this document through `serde_json::Value`, whose maps are
//! sorted, and what is printed is the same text.

use schemars::JsonSchema;
use serde::Serialize;

use super::{FormatVersion, Protocol};
use crate::plan::{Action, Change, Desired, Drift, Plan};

/// The plan as `geartopo plan --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "geartopo plan")]
pub struct PlanDocument {
    /// Containers of this topology made before topology ids (no id label): adopted
    /// as they are, nothing changes on the node; each carries the id from its next
    /// replace on.
    pub adopted: Vec<PlanAdopted>,
    /// One entry per container to create, replace, update or delete.
    pub changes: Vec<PlanChange>,
    /// Objects changed outside geartopo since the last apply.
    pub drift: Vec<PlanDrift>,
    /// The fingerprint of the live state the plan was made against.
    pub fingerprint: String,
    pub format_version: FormatVersion<1>,
    /// Changes to the nodes' own private-ports chains (docs/private-ports.md);
    /// left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub node_changes: Vec<PlanNodeChange>,
    /// Containers made before durable links: their links do not survive a
    /// restart; left as they are unless `--make-durable` (or `--replace`) asks.
    pub not_durable: Vec<PlanAdopted>,
    /// Groups replaced a few members at a time, each healthy before the next
    /// goes down (docs/rolling.md); left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolls: Vec<PlanRoll>,
    pub summary: PlanSummary,
    /// The topology's name.
    pub topology: String,
    /// Warnings about nodes (e.g. podman's boot service not enabled).
    pub warnings: Vec<String>,
}

/// A rolling replacement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanRoll {
    /// `view NAME` or `container NAME` (its replicas).
    pub group: String,
    /// At most this many are down at once.
    pub max_unavailable: u32,
    /// The containers replaced, in the order they go.
    pub members: Vec<String>,
}

/// What happens to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    Create,
    Replace,
    Update,
    Delete,
}

/// One container's change.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PlanChange {
    pub action: PlanAction,
    /// The container's name in the topology (`db-2`).
    pub container: String,
    /// For `replace`: the attributes that force it (`image`, `publish`, ...).
    pub forced_by: Vec<String>,
    /// The image wanted, or (for `delete`) the image found; `null` when unknown.
    pub image: Option<String>,
    /// The links the container will see (empty for `delete`).
    pub links: Vec<PlanLink>,
    pub node: String,
    /// Published ports wanted (empty for `delete`).
    pub publish: Vec<PlanPublish>,
    /// For `update`: what is repaired (`rules`, `start`, `sysctls`, ...).
    pub reasons: Vec<String>,
    /// The owned rules after apply.
    pub rules_after: Vec<String>,
    /// The owned rules found; `null` when the container has no namespace (or none yet).
    pub rules_before: Option<Vec<String>>,
    /// The name the runtime knows it by (`todo-app1`).
    pub runtime_name: String,
    /// Whether apply starts it.
    pub start: bool,
    /// Named volumes made before the container (docs/volumes.md); left out when
    /// there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_created: Vec<String>,
}

/// One resolved link of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanLink {
    /// `IP:PORT` the link leads to (a node's address and host port, or a raw endpoint).
    pub destination: String,
    /// `IP:PORT` as the container sees it.
    pub listen: String,
    pub protocol: Protocol,
    /// What the link names: `container:port`, a raw endpoint, or `name:port (itself)`.
    pub to: String,
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanPublish {
    /// On the node.
    pub host_port: u16,
    /// Inside the container.
    pub port: u16,
    pub protocol: Protocol,
}

/// An object changed outside geartopo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanDrift {
    pub container: String,
    pub node: String,
    pub what: String,
}

/// A change to a node's own private-ports chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanNodeChange {
    /// `GEARTOPO-PP-` and 16 hex digits of the topology's id.
    pub chain: String,
    pub node: String,
    /// `rules`, `jump` (FORWARD's jump missing or repeated), `removed`.
    pub reasons: Vec<String>,
    /// The chain's rules after apply; empty: the chain and its jump are removed.
    pub rules_after: Vec<String>,
    /// The chain's rules found; `null` when it does not exist.
    pub rules_before: Option<Vec<String>>,
}

/// A container adopted by the topology's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanAdopted {
    pub container: String,
    pub node: String,
    /// The name the runtime knows it by (`todo-app1`).
    pub runtime_name: String,
}

/// Counts of changes, as the summary line says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct PlanSummary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl PlanDocument {
    pub fn new(plan: &Plan) -> Self {
        let s = plan.summary();
        PlanDocument {
            adopted: plan
                .adopted
                .iter()
                .map(|a| PlanAdopted {
                    container: a.container.clone(),
                    node: a.node.clone(),
                    runtime_name: a.runtime_name.clone(),
                })
                .collect(),
            changes: plan.changes.iter().map(change).collect(),
            drift: plan.drift.iter().map(drift).collect(),
            fingerprint: plan.fingerprint.clone(),
            format_version: FormatVersion,
            node_changes: plan
                .node_changes
                .iter()
                .map(|n| PlanNodeChange {
                    chain: n.chain.clone(),
                    node: n.node.clone(),
                    reasons: n.reasons.clone(),
                    rules_after: n.rules_after.clone(),
                    rules_before: n.rules_before.clone(),
                })
                .collect(),
            not_durable: plan
                .not_durable
                .iter()
                .map(|a| PlanAdopted {
                    container: a.container.clone(),
                    node: a.node.clone(),
                    runtime_name: a.runtime_name.clone(),
                })
                .collect(),
            rolls: plan
                .rolls
                .iter()
                .map(|r| PlanRoll {
                    group: r.group.clone(),
                    max_unavailable: r.max_unavailable,
                    members: r.members.clone(),
                })
                .collect(),
            summary: PlanSummary {
                add: s.add,
                change: s.change,
                destroy: s.destroy,
            },
            topology: plan.topology.clone(),
            warnings: plan.warnings.clone(),
        }
    }
}

fn change(c: &Change) -> PlanChange {
    let (action, forced_by) = match &c.action {
        Action::Create => (PlanAction::Create, vec![]),
        Action::Replace { forced_by } => (PlanAction::Replace, forced_by.clone()),
        Action::Update => (PlanAction::Update, vec![]),
        Action::Delete => (PlanAction::Delete, vec![]),
    };
    let d = c.desired.as_ref();
    PlanChange {
        action,
        container: c.container.clone(),
        forced_by,
        image: d.map(|d| d.image.clone()).or(c.observed_image.clone()),
        links: d.map(links).unwrap_or_default(),
        node: c.node.clone(),
        publish: d
            .map(|d| {
                d.publish
                    .iter()
                    .map(|(p, port, hp)| PlanPublish {
                        host_port: *hp,
                        port: *port,
                        protocol: (*p).into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        reasons: c.reasons.clone(),
        rules_after: c.rules_after.clone(),
        rules_before: c.rules_before.clone(),
        runtime_name: c.runtime_name.clone(),
        start: c.start,
        volumes_created: match c.action {
            Action::Create | Action::Replace { .. } => c
                .desired
                .iter()
                .flat_map(|d| &d.mounts)
                .filter(|m| m.new)
                .filter_map(|m| m.volume.clone())
                .collect(),
            _ => Vec::new(),
        },
    }
}

/// A container's resolved links.
pub fn links(d: &Desired) -> Vec<PlanLink> {
    d.links
        .iter()
        .map(|l| PlanLink {
            destination: format!("{}:{}", l.dest_ip, l.dest_port),
            listen: format!("{}:{}", l.listen_ip, l.listen_port),
            protocol: l.protocol.into(),
            to: l.describe.clone(),
        })
        .collect()
}

fn drift(d: &Drift) -> PlanDrift {
    PlanDrift {
        container: d.container.clone(),
        node: d.node.clone(),
        what: d.what.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{applied_state, empty_state};

    /// `plan --json` prints the typed document; a saved plan and the golden files
    /// go through `serde_json::Value`: the same text, since keys are declared sorted.
    #[test]
    fn printed_plan_equals_the_recorded_one() {
        let t = crate::topology::parse(
            "cluster.toml",
            include_bytes!("../../examples/cluster.toml"),
        )
        .unwrap();
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        let mut s = applied_state(&t, &p);
        for ns in s.nodes.values_mut() {
            for c in ns.containers.values_mut() {
                c.chains.as_mut().unwrap().rules.clear();
            }
        }
        let changed = crate::plan::plan(&t, &s, None).unwrap();
        assert!(changed
            .changes
            .iter()
            .any(|c| c.rules_before == Some(vec![])));
        for plan in [p, changed] {
            let doc = PlanDocument::new(&plan);
            assert!(!doc.changes.is_empty());
            let direct = serde_json::to_string_pretty(&doc).unwrap();
            let recorded = serde_json::to_string_pretty(&crate::render::plan_json(&plan)).unwrap();
            assert_eq!(direct, recorded);
        }
    }
}
