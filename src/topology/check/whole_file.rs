//! Checks across the whole file, once every part is checked on its own: host ports
//! published twice on a node, start-order cycles. Nothing here reports a problem
//! that a single entry shows by itself.

use std::collections::BTreeMap;
use std::ops::Range;

use super::{Checker, Declared};
use crate::topology::diag::Problem;
use crate::topology::model::{LinkOrigin, LinkTarget, Protocol, Topology};

/// Most links of a start-order cycle labelled in the report.
const MAX_CYCLE_LABELS: usize = 10;

impl Checker<'_> {
    pub(super) fn host_port_conflicts(&mut self, declared: &[Declared<'_>]) {
        // (node, host port, protocol) -> (container, span of its publish entry)
        let mut seen: BTreeMap<(String, u16, Protocol), (String, Range<usize>)> = BTreeMap::new();
        for d in declared {
            for (cname, node, _) in &d.concrete {
                for (p, span) in &d.publish {
                    let Some(h) = p.host_port else { continue };
                    let key = (node.clone(), h, p.protocol);
                    if let Some((other, first)) = seen.get(&key) {
                        let by = if other == cname {
                            format!("by `{cname}`")
                        } else {
                            format!("by `{other}` and by `{cname}`")
                        };
                        let mut problem = Problem::at(
                            format!(
                                "host port {h}/{} is published twice on node `{node}`: {by}",
                                p.protocol.as_str()
                            ),
                            span.clone(),
                            format!("`{cname}` publishes it here"),
                        );
                        if first != span {
                            problem = problem
                                .label(first.clone(), format!("`{other}` publishes it here"));
                        } else {
                            problem = problem.help("replicas on one node cannot share a host port: omit `host_port` or spread the replicas over more nodes");
                        }
                        self.push(problem);
                    } else {
                        seen.insert(key, (cname.clone(), span.clone()));
                    }
                }
            }
        }
    }

    /// The start-order graph, built once here for the whole run; a cycle is a
    /// problem labelled on the links that make it.
    pub(super) fn start_cycles(
        &mut self,
        t: &Topology,
        declared: &[Declared<'_>],
    ) -> Option<crate::topology::graph::DepGraph> {
        let cycle = match crate::topology::graph::DepGraph::build(t) {
            Ok(graph) => return Some(graph),
            Err(cycle) => cycle,
        };
        let path = cycle.path.join(" -> ");
        let mut p = Problem::new(format!("start-order cycle: {path}"));
        // The report renders every label with its source lines: a cycle through
        // hundreds of containers labelled link by link took seconds to print
        // (bench/hostile.sh, `long-cycle`). The message names the whole path; the
        // first links are enough to show where to cut it.
        let links = cycle.path.len().saturating_sub(1);
        for pair in cycle.path.windows(2).take(MAX_CYCLE_LABELS) {
            let (from, to) = (&pair[0], &pair[1]);
            let Some(c) = t.container(from) else { continue };
            let Some(d) = declared.iter().find(|d| d.name == c.declared) else {
                continue;
            };
            let index = c.links.iter().find_map(|l| match (&l.target, &l.origin) {
                (LinkTarget::Container { container, .. }, LinkOrigin::Declared { index })
                    if container == to =>
                {
                    Some(*index)
                }
                _ => None,
            });
            if let Some(link) = index.and_then(|i| d.raw.links.as_ref()?.get(i)) {
                p = p.label(
                    link.span(),
                    format!("`{from}` links to `{to}`, so `{to}` starts first"),
                );
            }
        }
        let mut help = "links between containers set their start order; to link containers both ways, put them in a view".to_string();
        if links > MAX_CYCLE_LABELS {
            help.push_str(&format!(
                " (the first {MAX_CYCLE_LABELS} of the cycle's {links} links are labelled)"
            ));
        }
        self.push(p.help(help));
        None
    }
}
