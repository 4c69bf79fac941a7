//! The dependency graph (start order). Minimal stand-in with the agreed API until
//! the topology work lands; replaced by the full petgraph version.

use std::collections::BTreeSet;

use crate::topology::model::{LinkOrigin, LinkTarget, Topology};

/// One unit of work on one container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    Create(String),
    Rules(String),
    Start(String),
}

/// A start-order cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    pub path: Vec<String>,
}

/// Steps and their dependencies.
pub struct DepGraph {
    edges: Vec<(Step, Step)>,
    order: Vec<Step>,
}

impl DepGraph {
    pub fn build(t: &Topology) -> Result<DepGraph, Cycle> {
        let mut edges = Vec::new();
        for c in &t.containers {
            edges.push((Step::Create(c.name.clone()), Step::Rules(c.name.clone())));
            edges.push((Step::Rules(c.name.clone()), Step::Start(c.name.clone())));
            for l in &c.links {
                if let LinkTarget::Container { container, .. } = &l.target {
                    edges.push((Step::Create(container.clone()), Step::Rules(c.name.clone())));
                    if matches!(l.origin, LinkOrigin::Declared { .. }) && container != &c.name {
                        edges.push((Step::Start(container.clone()), Step::Start(c.name.clone())));
                    }
                }
            }
        }
        let mut steps: Vec<Step> = t
            .containers
            .iter()
            .flat_map(|c| {
                [
                    Step::Create(c.name.clone()),
                    Step::Rules(c.name.clone()),
                    Step::Start(c.name.clone()),
                ]
            })
            .collect();
        let mut order = Vec::new();
        let mut done: BTreeSet<Step> = BTreeSet::new();
        while !steps.is_empty() {
            let ready = steps.iter().position(|s| {
                edges
                    .iter()
                    .filter(|(_, to)| to == s)
                    .all(|(from, _)| done.contains(from))
            });
            let Some(i) = ready else {
                return Err(Cycle {
                    path: steps.iter().map(|s| format!("{s:?}")).collect(),
                });
            };
            let s = steps.remove(i);
            done.insert(s.clone());
            order.push(s);
        }
        Ok(DepGraph { edges, order })
    }

    pub fn steps_in_order(&self) -> Vec<Step> {
        self.order.clone()
    }

    pub fn dependencies(&self, step: &Step) -> Vec<Step> {
        self.edges
            .iter()
            .filter(|(_, to)| to == step)
            .map(|(from, _)| from.clone())
            .collect()
    }

    pub fn needed_by(&self, containers: &[String]) -> BTreeSet<String> {
        let mut needed: BTreeSet<String> = containers.iter().cloned().collect();
        loop {
            let before = needed.len();
            for (from, to) in &self.edges {
                let (Step::Create(f) | Step::Rules(f) | Step::Start(f)) = from;
                let (Step::Create(t) | Step::Rules(t) | Step::Start(t)) = to;
                if needed.contains(t) {
                    needed.insert(f.clone());
                }
            }
            if needed.len() == before {
                return needed;
            }
        }
    }
}
