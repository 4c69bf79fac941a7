//! The dependency graph of a validated topology: which step (create a container,
//! install its link rules, start it) must happen before which. Pure: no I/O, no
//! runtime names; apply walks [`DepGraph::steps_in_order`], `graph` prints it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::model::{Container, LinkOrigin, LinkTarget, Topology};

/// One thing apply does to one container (named by its concrete name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Ord, PartialOrd)]
pub enum Step {
    /// Create the container and publish its ports (not started).
    Create(String),
    /// Install its link rules and sysctls in its network namespace.
    Rules(String),
    /// Start its process.
    Start(String),
}

impl Step {
    /// The container this step is about.
    pub fn container(&self) -> &str {
        match self {
            Step::Create(c) | Step::Rules(c) | Step::Start(c) => c,
        }
    }

    /// `create app1`, `rules app1`, `start app1`.
    pub fn label(&self) -> String {
        match self {
            Step::Create(c) => format!("create {c}"),
            Step::Rules(c) => format!("rules {c}"),
            Step::Start(c) => format!("start {c}"),
        }
    }
}

/// A start-order cycle: containers that each (transitively) link to the next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("start-order cycle: {}", path.join(" -> "))]
pub struct Cycle {
    /// In link direction, first repeated at the end: `["app1", "app2", "app1"]`
    /// means app1 links to app2 and app2 links to app1.
    pub path: Vec<String>,
}

/// Why an edge exists, to style it in the printed graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Why {
    /// A container's own sequence: create, rules, start.
    Own,
    /// A declared link: the target exists (create) / runs (start) first.
    Link,
    /// A view link, or a link between replicas of one container: the target exists
    /// before the rules pointing at it, and nothing more.
    View,
}

/// Steps and their order for one topology (petgraph inside).
#[derive(Debug, Clone)]
pub struct DepGraph {
    name: String,
    graph: DiGraph<Step, Why>,
    index: BTreeMap<Step, NodeIndex>,
    /// Container -> containers its links target (declared and view), for `needed_by`.
    targets: BTreeMap<String, BTreeSet<String>>,
}

impl DepGraph {
    /// Builds the graph; fails when declared links make a start-order cycle.
    pub fn build(t: &Topology) -> Result<DepGraph, Cycle> {
        let mut g = DepGraph {
            name: t.name.clone(),
            graph: DiGraph::new(),
            index: BTreeMap::new(),
            targets: BTreeMap::new(),
        };
        // Edges made so far: `find_edge` scans a step's edges, and a view's
        // members each have one to every participant.
        let mut edges: HashSet<(NodeIndex, NodeIndex)> = HashSet::new();
        // Each container's (create, rules, start), by name, without building a
        // `Step` (and its string) per lookup.
        let mut steps: HashMap<&str, [NodeIndex; 3]> = HashMap::new();
        for c in &t.containers {
            let create = g.node(Step::Create(c.name.clone()));
            let rules = g.node(Step::Rules(c.name.clone()));
            let start = g.node(Step::Start(c.name.clone()));
            g.edge(&mut edges, create, rules, Why::Own);
            g.edge(&mut edges, rules, start, Why::Own);
            g.targets.entry(c.name.clone()).or_default();
            steps
                .entry(c.name.as_str())
                .or_insert([create, rules, start]);
        }
        // By name: a link's target was found by a scan of every container, which
        // made a valid file of thousands of replicas cost seconds
        // (bench/hostile.sh, `big-valid`).
        let by_name: HashMap<&str, &Container> =
            t.containers.iter().map(|c| (c.name.as_str(), c)).collect();
        // Borrowed while links are walked (a string copied per link cost more
        // than the rest of the graph); owned once at the end.
        let mut targets: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for c in &t.containers {
            for l in &c.links {
                let LinkTarget::Container {
                    container: target, ..
                } = &l.target
                else {
                    continue;
                };
                // Only containers of this topology have steps; the model guarantees it,
                // but a lookup is cheaper than a panic.
                let (Some(&[tc, _, ts]), Some(&[_, cr, cs])) =
                    (steps.get(target.as_str()), steps.get(c.name.as_str()))
                else {
                    continue;
                };
                targets
                    .entry(c.name.as_str())
                    .or_default()
                    .insert(target.as_str());
                match l.origin {
                    LinkOrigin::Declared { .. } if !replica_peers(&by_name, c, target) => {
                        g.edge(&mut edges, tc, cr, Why::Link);
                        g.edge(&mut edges, ts, cs, Why::Link);
                    }
                    // Replicas of one container linking to each other (geard's
                    // self-link) are peers, like view members: each must exist
                    // before rules point at it, but they start in any order.
                    LinkOrigin::Declared { .. } | LinkOrigin::View { .. } => {
                        g.edge(&mut edges, tc, cr, Why::View)
                    }
                }
            }
        }
        for (c, ts) in targets {
            g.targets
                .entry(c.to_string())
                .or_default()
                .extend(ts.into_iter().map(str::to_string));
        }
        match g.find_cycle() {
            Some(path) => Err(Cycle { path }),
            None => Ok(g),
        }
    }

    fn node(&mut self, s: Step) -> NodeIndex {
        if let Some(&i) = self.index.get(&s) {
            return i;
        }
        let i = self.graph.add_node(s.clone());
        self.index.insert(s, i);
        i
    }

    fn edge(
        &mut self,
        made: &mut HashSet<(NodeIndex, NodeIndex)>,
        a: NodeIndex,
        b: NodeIndex,
        why: Why,
    ) {
        // One edge per pair: two links to the same target are one dependency.
        if made.insert((a, b)) {
            self.graph.add_edge(a, b, why);
        }
    }

    /// The smallest cycle through the alphabetically first container on any cycle,
    /// in link direction; deterministic for a given topology.
    fn find_cycle(&self) -> Option<Vec<String>> {
        let sccs = petgraph::algo::tarjan_scc(&self.graph);
        let mut best: Option<Vec<String>> = None;
        for scc in sccs {
            let cyclic = scc.len() > 1
                || scc
                    .first()
                    .is_some_and(|&n| self.graph.find_edge(n, n).is_some());
            if !cyclic {
                continue;
            }
            // Only Start steps can form cycles: Create has no predecessors and
            // Rules feeds only its own Start.
            let Some(&start) = scc.iter().min_by_key(|&&n| &self.graph[n]) else {
                continue;
            };
            let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
            // Breadth-first along reversed edges (link direction: a container's
            // Start is preceded by its targets' Starts) back to `start`.
            let mut prev: BTreeMap<NodeIndex, NodeIndex> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut found = false;
            while let Some(n) = queue.pop_front() {
                let mut next: Vec<NodeIndex> = self
                    .graph
                    .neighbors_directed(n, Direction::Incoming)
                    .filter(|m| members.contains(m))
                    .collect();
                next.sort_by_key(|&m| &self.graph[m]);
                for m in next {
                    if m == start {
                        prev.insert(start, n);
                        found = true;
                        break;
                    }
                    if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(m) {
                        e.insert(n);
                        queue.push_back(m);
                    }
                }
                if found {
                    break;
                }
            }
            if !found {
                continue;
            }
            // Walk back from start's predecessor to start, then reverse.
            let mut path = vec![self.graph[start].container().to_owned()];
            let mut at = prev[&start];
            while at != start {
                path.push(self.graph[at].container().to_owned());
                at = prev[&at];
            }
            path.push(self.graph[start].container().to_owned());
            path.reverse();
            if best.as_ref().is_none_or(|b| path < *b) {
                best = Some(path);
            }
        }
        best
    }

    /// Every step in a deterministic topological order: among the steps that are
    /// ready, the smallest by (kind, container) goes first.
    pub fn steps_in_order(&self) -> Vec<Step> {
        let mut indegree: BTreeMap<NodeIndex, usize> = self
            .graph
            .node_indices()
            .map(|n| {
                (
                    n,
                    self.graph
                        .neighbors_directed(n, Direction::Incoming)
                        .count(),
                )
            })
            .collect();
        let mut ready: BTreeSet<(Step, NodeIndex)> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(n, _)| (self.graph[*n].clone(), *n))
            .collect();
        let mut out = Vec::with_capacity(self.graph.node_count());
        while let Some((step, n)) = ready.pop_first() {
            out.push(step);
            for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                if let Some(d) = indegree.get_mut(&m) {
                    *d -= 1;
                    if *d == 0 {
                        ready.insert((self.graph[m].clone(), m));
                    }
                }
            }
        }
        out
    }

    /// The steps that must be done right before `step` (its direct predecessors), sorted.
    pub fn dependencies(&self, step: &Step) -> Vec<Step> {
        let Some(&n) = self.index.get(step) else {
            return Vec::new();
        };
        let mut deps: Vec<Step> = self
            .graph
            .neighbors_directed(n, Direction::Incoming)
            .map(|m| self.graph[m].clone())
            .collect();
        deps.sort();
        deps
    }

    /// The containers `containers` need: themselves and, transitively, every container
    /// their links (declared or view) lead to. Unknown names are left out.
    pub fn needed_by(&self, containers: &[String]) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&String> = containers.iter().collect();
        while let Some(c) = todo.pop() {
            let Some(targets) = self.targets.get(c) else {
                continue;
            };
            if out.insert(c.clone()) {
                todo.extend(targets.iter());
            }
        }
        out
    }

    /// The containers that need `containers`: themselves and, transitively, every
    /// container whose links (declared or view) lead to one of them. The inverse of
    /// [`DepGraph::needed_by`]; unknown names are left out.
    pub fn dependents_of(&self, containers: &[String]) -> BTreeSet<String> {
        let mut by_target: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
        for (source, targets) in &self.targets {
            for t in targets {
                by_target.entry(t.as_str()).or_default().push(source);
            }
        }
        let mut out = BTreeSet::new();
        let mut todo: Vec<&String> = containers.iter().collect();
        while let Some(c) = todo.pop() {
            if !self.targets.contains_key(c) {
                continue;
            }
            if out.insert(c.clone()) {
                todo.extend(by_target.get(c.as_str()).into_iter().flatten());
            }
        }
        out
    }

    fn edges_sorted(&self) -> Vec<(&Step, &Step, Why)> {
        let mut edges: Vec<(&Step, &Step, Why)> = self
            .graph
            .edge_indices()
            .filter_map(|e| {
                let (a, b) = self.graph.edge_endpoints(e)?;
                Some((&self.graph[a], &self.graph[b], self.graph[e]))
            })
            .collect();
        edges.sort();
        edges
    }

    fn steps_sorted(&self) -> Vec<&Step> {
        self.index.keys().collect()
    }

    /// Graphviz: one node per step, declared-link edges bold, view-link (and
    /// replica-peer) edges dashed.
    pub fn to_dot(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "digraph {} {{", dot_quote(&self.name));
        out.push_str("  rankdir=LR;\n  node [shape=box];\n");
        for s in self.steps_sorted() {
            let _ = writeln!(out, "  {};", dot_quote(&s.label()));
        }
        for (a, b, why) in self.edges_sorted() {
            let style = match why {
                Why::Own => "",
                Why::Link => " [style=bold]",
                Why::View => " [style=dashed]",
            };
            let _ = writeln!(
                out,
                "  {} -> {}{style};",
                dot_quote(&a.label()),
                dot_quote(&b.label())
            );
        }
        out.push_str("}\n");
        out
    }

    /// Mermaid flowchart: same content as [`DepGraph::to_dot`].
    pub fn to_mermaid(&self) -> String {
        let steps = self.steps_sorted();
        let ids: BTreeMap<&Step, usize> = steps.iter().enumerate().map(|(i, s)| (*s, i)).collect();
        let mut out = String::from("flowchart LR\n");
        for (i, s) in steps.iter().enumerate() {
            let _ = writeln!(out, "  s{i}[\"{}\"]", s.label());
        }
        for (a, b, why) in self.edges_sorted() {
            let arrow = match why {
                Why::Own => "-->",
                Why::Link => "==>",
                Why::View => "-.->",
            };
            let _ = writeln!(out, "  s{} {arrow} s{}", ids[a], ids[b]);
        }
        out
    }
}

/// Whether `c` is a replica and `target` another replica of the same declared
/// container: their declared links to each other set no start order.
fn replica_peers(by_name: &HashMap<&str, &Container>, c: &Container, target: &str) -> bool {
    c.replica.is_some()
        && by_name
            .get(target)
            .is_some_and(|x| x.replica.is_some() && x.declared == c.declared)
}

/// A DOT ID in double quotes. Names are `[A-Za-z0-9_.-]` already; quote anyway.
fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::Ipv4Addr;

    use super::*;
    use crate::topology::model::{Link, Protocol};

    fn container(name: &str, links: &[(&str, LinkOrigin)]) -> Container {
        Container {
            name: name.into(),
            declared: name.into(),
            replica: None,
            node: "n".into(),
            image: "i".into(),
            command: vec![],
            env: BTreeMap::new(),
            publish: vec![],
            restart: Default::default(),
            health: None,
            max_unavailable: 1,
            volumes: vec![],
            options: Default::default(),
            links: links
                .iter()
                .enumerate()
                .map(|(i, (to, origin))| Link {
                    listen_ip: Ipv4Addr::new(127, 0, 0, 1),
                    listen_port: 1000 + i as u16,
                    protocol: Protocol::Tcp,
                    target: LinkTarget::Container {
                        container: (*to).into(),
                        port: 80,
                    },
                    origin: origin.clone(),
                })
                .collect(),
        }
    }

    fn topology(containers: Vec<Container>) -> Topology {
        Topology {
            name: "t".into(),
            id: None,
            nodes: BTreeMap::new(),
            containers,
            views: vec![],
        }
    }

    const DECLARED: LinkOrigin = LinkOrigin::Declared { index: 0 };

    #[test]
    fn a_cycle_is_named_in_link_direction_from_its_smallest_container() {
        let t = topology(vec![
            container("c", &[("a", DECLARED)]),
            container("b", &[("c", DECLARED)]),
            container("a", &[("b", DECLARED)]),
        ]);
        let err = DepGraph::build(&t).unwrap_err();
        assert_eq!(err.path, ["a", "b", "c", "a"]);
        assert_eq!(err.to_string(), "start-order cycle: a -> b -> c -> a");
    }

    #[test]
    fn containers_linking_each_other_through_a_view_are_not_a_cycle() {
        let view = LinkOrigin::View { view: "v".into() };
        let t = topology(vec![
            container("a", &[("b", view.clone())]),
            container("b", &[("a", view.clone())]),
        ]);
        let g = DepGraph::build(&t).unwrap();
        let order = g.steps_in_order();
        assert_eq!(
            order.iter().map(Step::label).collect::<Vec<_>>(),
            ["create a", "create b", "rules a", "rules b", "start a", "start b"]
        );
    }

    fn replica(declared: &str, i: u32, links: &[(&str, LinkOrigin)]) -> Container {
        Container {
            declared: declared.into(),
            replica: Some(i),
            ..container(&format!("{declared}-{i}"), links)
        }
    }

    #[test]
    fn replicas_of_one_container_linking_each_other_start_in_any_order() {
        // geard's self-link on a replicated container: web-1 and web-2 see each other.
        let t = topology(vec![
            replica("web", 1, &[("web-2", DECLARED)]),
            replica("web", 2, &[("web-1", DECLARED)]),
        ]);
        let g = DepGraph::build(&t).expect("replica peers are not a start-order cycle");
        // No start edge between the peers: each start waits only for its own rules.
        assert_eq!(
            g.dependencies(&Step::Start("web-1".into())),
            [Step::Rules("web-1".into())]
        );
        assert_eq!(
            g.dependencies(&Step::Start("web-2".into())),
            [Step::Rules("web-2".into())]
        );
        // But the peer exists before the rules that point at it.
        assert_eq!(
            g.dependencies(&Step::Rules("web-1".into())),
            [Step::Create("web-1".into()), Step::Create("web-2".into())]
        );
        assert_eq!(
            g.dependencies(&Step::Rules("web-2".into())),
            [Step::Create("web-1".into()), Step::Create("web-2".into())]
        );
        assert!(g
            .to_dot()
            .contains("\"create web-2\" -> \"rules web-1\" [style=dashed];"));
        // Each still needs the other (for `plan --target`).
        assert_eq!(
            g.needed_by(&["web-1".into()])
                .into_iter()
                .collect::<Vec<_>>(),
            ["web-1", "web-2"]
        );
    }

    #[test]
    fn a_replica_linking_to_a_replica_of_another_container_waits_for_it_to_start() {
        let t = topology(vec![
            replica("db", 1, &[]),
            replica("web", 1, &[("db-1", DECLARED)]),
        ]);
        let g = DepGraph::build(&t).unwrap();
        assert_eq!(
            g.dependencies(&Step::Start("web-1".into())),
            [Step::Rules("web-1".into()), Step::Start("db-1".into())]
        );
    }

    #[test]
    fn replica_peer_links_order_no_starts_but_links_through_others_still_do() {
        // web-1 -> web-2 is a peer link, but web-2 -> app -> web-1 orders starts.
        let t = topology(vec![
            replica("web", 1, &[("web-2", DECLARED)]),
            replica("web", 2, &[("app", DECLARED)]),
            container("app", &[("web-1", DECLARED)]),
        ]);
        assert!(DepGraph::build(&t).is_ok(), "a chain, not a cycle");
        let t = topology(vec![
            replica("web", 1, &[("app", DECLARED)]),
            container("app", &[("web-1", DECLARED)]),
        ]);
        assert_eq!(
            DepGraph::build(&t).unwrap_err().path,
            ["app", "web-1", "app"]
        );
    }

    #[test]
    fn unknown_steps_have_no_dependencies() {
        let g = DepGraph::build(&topology(vec![container("a", &[])])).unwrap();
        assert!(g.dependencies(&Step::Start("zz".into())).is_empty());
        assert_eq!(
            g.dependencies(&Step::Start("a".into())),
            [Step::Rules("a".into())]
        );
    }
}
