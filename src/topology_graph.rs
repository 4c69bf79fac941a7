//! The picture of a topology (`geartopo graph --view topology`): nodes as groups,
//! the containers placed on them (replicas expanded), and one edge per link,
//! labelled with the address the source container dials and the target port.
//! Links of a view are dashed; raw endpoints are boxes outside every node.
//!
//! Pure rendering of a validated model into DOT or Mermaid text: no I/O here. Every
//! text that reaches the output goes through `dot_quote` or `mermaid_text`, even
//! names that validation already restricts, so that the output stays well-formed
//! whatever a later version of the format allows.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::topology::model::{Link, LinkOrigin, LinkTarget, NodeAddress, Topology};

/// What one link edge joins and says.
struct Edge {
    from: String,
    to: Endpoint,
    label: String,
    view: bool,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Endpoint {
    Container(String),
    External(String),
}

/// `node1 (198.18.0.1)`, or `node1 (local)`.
fn node_label(t: &Topology, node: &str) -> String {
    match t.node(node).map(|n| &n.address) {
        Some(NodeAddress::Remote(a)) => format!("{node} ({a})"),
        Some(NodeAddress::Local) | None => format!("{node} (local)"),
    }
}

/// `127.0.0.1:6379 -> :6379`; UDP links say so on the listen side.
fn link_label(link: &Link) -> String {
    let port = match &link.target {
        LinkTarget::Container { port, .. }
        | LinkTarget::Raw { port, .. }
        | LinkTarget::Loopback { port } => *port,
    };
    let proto = match link.protocol.as_str() {
        "tcp" => String::new(),
        p => format!("/{p}"),
    };
    format!("{}:{}{proto} -> :{port}", link.listen_ip, link.listen_port)
}

/// One edge per (source, target, kind) in file order; several links between the
/// same two containers (a view with two ports, say) share it, one label line each.
fn edges(t: &Topology) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::new();
    for c in &t.containers {
        for l in &c.links {
            let to = match &l.target {
                LinkTarget::Container { container, .. } => Endpoint::Container(container.clone()),
                LinkTarget::Raw { host, .. } => Endpoint::External(host.clone()),
                LinkTarget::Loopback { .. } => Endpoint::Container(c.name.clone()),
            };
            let view = matches!(l.origin, LinkOrigin::View { .. });
            let label = link_label(l);
            match out
                .iter_mut()
                .find(|e| e.from == c.name && e.to == to && e.view == view)
            {
                Some(e) => {
                    e.label.push('\n');
                    e.label.push_str(&label);
                }
                None => out.push(Edge {
                    from: c.name.clone(),
                    to,
                    label,
                    view,
                }),
            }
        }
    }
    out
}

/// Raw endpoint hosts, each drawn once.
fn externals(edges: &[Edge]) -> BTreeSet<String> {
    edges
        .iter()
        .filter_map(|e| match &e.to {
            Endpoint::External(h) => Some(h.clone()),
            Endpoint::Container(_) => None,
        })
        .collect()
}

/// A DOT double-quoted string: `"` and `\` escaped (a backslash would otherwise
/// start one of DOT's label escapes), line breaks as `\n`.
pub(crate) fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The DOT id of an endpoint. Container names cannot contain `:`, so `external:`
/// (and `empty:`) ids never collide with them.
fn dot_id(e: &Endpoint) -> String {
    match e {
        Endpoint::Container(c) => dot_quote(c),
        Endpoint::External(h) => dot_quote(&format!("external:{h}")),
    }
}

/// The topology as a DOT digraph, one `cluster_` subgraph per node.
pub fn to_dot(t: &Topology) -> String {
    let edges = edges(t);
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_quote(&t.name));
    // newrank: ranks across clusters; without it graphviz fails to route the
    // edges of a view between clusters ("triangulation failed").
    out.push_str("  rankdir=LR;\n  newrank=true;\n  node [shape=box];\n");
    for node in t.nodes.keys() {
        let _ = writeln!(
            out,
            "  subgraph {} {{",
            dot_quote(&format!("cluster_{node}"))
        );
        let _ = writeln!(out, "    label={};", dot_quote(&node_label(t, node)));
        let mut empty = true;
        for c in t.containers.iter().filter(|c| &c.node == node) {
            let _ = writeln!(out, "    {};", dot_quote(&c.name));
            empty = false;
        }
        if empty {
            // Graphviz draws no empty cluster; the node is still part of the topology.
            let _ = writeln!(
                out,
                "    {} [label=\"no containers\", shape=plaintext];",
                dot_quote(&format!("empty:{node}"))
            );
        }
        out.push_str("  }\n");
    }
    let externals = externals(&edges);
    if !externals.is_empty() {
        out.push_str("  subgraph \"cluster_external\" {\n");
        out.push_str("    label=\"outside the topology\";\n    style=dashed;\n");
        for h in &externals {
            let _ = writeln!(
                out,
                "    {} [label={}];",
                dot_id(&Endpoint::External(h.clone())),
                dot_quote(h)
            );
        }
        out.push_str("  }\n");
    }
    for e in &edges {
        let style = if e.view { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{style}];",
            dot_quote(&e.from),
            dot_id(&e.to),
            dot_quote(&e.label)
        );
    }
    out.push_str("}\n");
    out
}

/// Text inside a Mermaid `"..."` label. Mermaid reads `#name;` as its entity
/// codes and puts labels into HTML, where `<` opens a tag and `&` an entity, so
/// those are written as entity codes (`#` first, since the others introduce one);
/// a lone `>` is plain text and stays readable (`127.0.0.1:6379 -> :6379`). A line
/// break becomes `<br>`.
pub(crate) fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '&' => out.push_str("#amp;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The topology as a Mermaid flowchart, one `subgraph` per node. Ids are generated
/// (`n0`, `c0`, `x0`), so that no name can be read as a keyword such as `end`.
pub fn to_mermaid(t: &Topology) -> String {
    let edges = edges(t);
    let externals: Vec<String> = externals(&edges).into_iter().collect();
    let id = |e: &Endpoint| -> String {
        match e {
            Endpoint::Container(c) => {
                let i = t.containers.iter().position(|x| &x.name == c);
                format!("c{}", i.unwrap_or(usize::MAX))
            }
            Endpoint::External(h) => {
                let i = externals.iter().position(|x| x == h);
                format!("x{}", i.unwrap_or(usize::MAX))
            }
        }
    };
    let mut out = String::from("flowchart LR\n");
    for (n, node) in t.nodes.keys().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph n{n} [\"{}\"]",
            mermaid_text(&node_label(t, node))
        );
        let mut empty = true;
        for c in t.containers.iter().filter(|c| &c.node == node) {
            let _ = writeln!(
                out,
                "    {}[\"{}\"]",
                id(&Endpoint::Container(c.name.clone())),
                mermaid_text(&c.name)
            );
            empty = false;
        }
        if empty {
            let _ = writeln!(out, "    e{n}[\"no containers\"]");
        }
        out.push_str("  end\n");
    }
    if !externals.is_empty() {
        out.push_str("  subgraph external [\"outside the topology\"]\n");
        for h in &externals {
            let _ = writeln!(
                out,
                "    {}[\"{}\"]",
                id(&Endpoint::External(h.clone())),
                mermaid_text(h)
            );
        }
        out.push_str("  end\n");
    }
    for e in &edges {
        let arrow = if e.view { "-.->" } else { "-->" };
        let _ = writeln!(
            out,
            "  {} {arrow}|\"{}\"| {}",
            id(&Endpoint::Container(e.from.clone())),
            mermaid_text(&e.label),
            id(&e.to)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(toml: &str) -> Topology {
        crate::topology::parse("t.toml", toml.as_bytes())
            .unwrap_or_else(|invalid| panic!("{}", invalid.render_with(true)))
    }

    const TWO_NODES: &str = r#"
name = "t"
[nodes.node1]
address = "198.18.0.1"
[nodes.node2]
address = "198.18.0.2"
[containers.db]
node = "node2"
image = "docker.io/library/redis:7"
publish = [{ port = 6379 }, { port = 53, protocol = "udp" }]
[containers.app]
node = "node1"
image = "docker.io/library/busybox:1"
links = [
  { to = "db:6379" },
  { to = "db:53", protocol = "udp", listen = "127.0.0.1:5353" },
  { to = "ext.example.com:5432" },
]
"#;

    #[test]
    fn dot_puts_each_container_in_its_nodes_cluster_and_labels_links() {
        // Two links from app to db share one edge, one label line each.
        let dot = to_dot(&topology(TWO_NODES));
        assert!(
            dot.contains(
                "  subgraph \"cluster_node1\" {\n    label=\"node1 (198.18.0.1)\";\n    \"app\";\n  }\n"
            ),
            "{dot}"
        );
        assert!(
            dot.contains(
                "  \"app\" -> \"db\" [label=\"127.0.0.1:6379 -> :6379\\n127.0.0.1:5353/udp -> :53\"];\n"
            ),
            "{dot}"
        );
        assert!(
            dot.contains("\"external:ext.example.com\" [label=\"ext.example.com\"];"),
            "{dot}"
        );
        assert!(
            dot.contains(
                "\"app\" -> \"external:ext.example.com\" [label=\"127.0.0.1:5432 -> :5432\"];"
            ),
            "{dot}"
        );
    }

    #[test]
    fn mermaid_uses_generated_ids_and_labels_links() {
        let mmd = to_mermaid(&topology(TWO_NODES));
        // Containers are numbered in file order: db is c0, app is c1.
        assert!(
            mmd.contains("  subgraph n0 [\"node1 (198.18.0.1)\"]\n    c1[\"app\"]\n  end\n"),
            "{mmd}"
        );
        assert!(
            mmd.contains("  c1 -->|\"127.0.0.1:6379 -> :6379<br>127.0.0.1:5353/udp -> :53\"| c0\n"),
            "{mmd}"
        );
        assert!(mmd.contains("    x0[\"ext.example.com\"]\n"), "{mmd}");
    }

    #[test]
    fn dot_quote_escapes_quotes_backslashes_and_line_breaks() {
        assert_eq!(dot_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(dot_quote("x\r\ny"), r#""x\ny""#);
        assert_eq!(dot_quote(""), r#""""#);
    }

    #[test]
    fn mermaid_text_turns_markup_and_quotes_into_entities() {
        assert_eq!(
            mermaid_text(r#"say "hi" <b>#1 & 2"#),
            "say #quot;hi#quot; #lt;b>#35;1 #amp; 2"
        );
        assert_eq!(mermaid_text("a\nb"), "a<br>b");
    }
}
