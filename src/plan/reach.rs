//! Partial reachability: which nodes a plan limited by `--target` needs. The
//! targets and what they link to (`DepGraph::needed_by`) live on some nodes; only
//! those are connected to and read, so that a node that is down does not block
//! work that never touches it. Without targets every node must answer, as before.
//! Pure: decided from the model alone, before anything is contacted.

use std::collections::BTreeSet;

use crate::graph::DepGraph;
use crate::topology::model::{LinkTarget, Topology};

/// The part of `topology` a plan limited to `targets` needs: its nodes reduced to
/// those the targets and their link targets live on, its containers to those on
/// these nodes (the others are out of the plan's scope anyway), with every link
/// that points off these nodes dropped (such a link belongs to a container that
/// is out of scope). `None` when every node is needed, or when a target is not a
/// container of the file (it may exist only on some node, which only a read of
/// every node can find).
pub fn reachable_part(
    topology: &Topology,
    graph: &DepGraph,
    targets: &[String],
) -> Option<Topology> {
    if targets.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for target in targets {
        let found: Vec<String> = topology
            .containers
            .iter()
            .filter(|c| c.name == *target || (c.declared == *target && c.replica.is_some()))
            .map(|c| c.name.clone())
            .collect();
        if found.is_empty() {
            return None;
        }
        names.extend(found);
    }
    let mut needed = graph.needed_by(&names);
    needed.extend(names);
    let nodes: BTreeSet<&str> = topology
        .containers
        .iter()
        .filter(|c| needed.contains(&c.name))
        .map(|c| c.node.as_str())
        .collect();
    if nodes.len() == topology.nodes.len() {
        return None;
    }
    let mut part = topology.clone();
    part.nodes.retain(|n, _| nodes.contains(n.as_str()));
    part.containers.retain(|c| nodes.contains(c.node.as_str()));
    let kept: BTreeSet<String> = part.containers.iter().map(|c| c.name.clone()).collect();
    for c in &mut part.containers {
        c.links.retain(|l| match &l.target {
            LinkTarget::Container { container, .. } => kept.contains(container),
            LinkTarget::Raw { .. } | LinkTarget::Loopback { .. } => true,
        });
    }
    for v in &mut part.views {
        v.members.retain(|m| kept.contains(m));
        v.observers.retain(|m| kept.contains(m));
    }
    Some(part)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::redis_todo;

    fn part(targets: &[&str]) -> Option<Topology> {
        let t = redis_todo();
        let g = DepGraph::build(&t).unwrap();
        let targets: Vec<String> = targets.iter().map(|s| s.to_string()).collect();
        reachable_part(&t, &g, &targets)
    }

    fn node_names(t: &Topology) -> Vec<&str> {
        t.nodes.keys().map(String::as_str).collect()
    }

    #[test]
    fn a_target_needs_its_node_only() {
        let p = part(&["redisdb"]).expect("node1 is not needed");
        assert_eq!(node_names(&p), ["node4"]);
        let names: Vec<&str> = p.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["redisdb"]);
    }

    #[test]
    fn a_target_needs_the_nodes_of_what_it_links_to() {
        // app1 (node1) links to redisdb (node4): both nodes, i.e. every node.
        assert!(part(&["app1"]).is_none());
    }

    #[test]
    fn without_targets_or_with_a_name_only_nodes_know_every_node_is_read() {
        assert!(part(&[]).is_none());
        assert!(part(&["old-thing"]).is_none());
    }
}
