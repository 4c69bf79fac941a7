//! The deployed descriptor written as topology TOML (DESIGN.md "The topology
//! file"), laid out for a person to keep in git: one table per container,
//! replicated containers where geard's placement allows, views where geard gave
//! replicas one address each. Meaning is decided in `deploy`; this only chooses
//! the shortest faithful way to write it down. No I/O here. Which shape each
//! container takes (tables, replicas, views) is found in `shapes`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::deploy::{Deployed, InstanceLink};
use super::descriptor::{join, Descriptor};
use super::{Diagnostics, Options};

mod shapes;

use shapes::{find_view, same_meaning, shape, view_links, Shape, View};

/// A character allowed in geartopo names (they reach remote shells).
pub(crate) fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        s.to_string()
    } else {
        string(s)
    }
}

/// A TOML basic string.
fn string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Writes the topology; errors (names, host port clashes) go to `d`.
pub(crate) fn render(
    desc: &Descriptor,
    deployed: &Deployed,
    name: &str,
    options: &Options,
    d: &mut Diagnostics,
) -> Option<String> {
    let nodes = &options.nodes;
    let shapes: Vec<Shape> = (0..desc.containers.len())
        .map(|ci| shape(desc, deployed, ci, nodes.len()))
        .collect();

    // Names: every table key and every concrete name must be a geartopo name and unique.
    let mut tables: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |table: &str, ptr: &str, d: &mut Diagnostics| {
        if !table.chars().all(name_char) {
            d.error(
                ptr,
                format!("`{table}` is not a geartopo name (A-Z a-z 0-9 _ . - only); rename it"),
            );
        } else if let Some(other) = tables.insert(table.to_string(), ptr.to_string()) {
            d.error(
                ptr,
                format!("`{table}` would be named twice (also at {other})"),
            );
        }
    };
    for (ci, shape) in shapes.iter().enumerate() {
        let c = &deployed.containers[ci];
        match shape {
            Shape::Absent => {}
            Shape::PerInstance => c.instances.iter().for_each(|i| claim(&i.id, &i.id_ptr, d)),
            Shape::Replicated { declared, .. } => {
                claim(declared, &desc.containers[ci].name_ptr, d);
                // Its replicas' names must not clash with another table either.
                c.instances.iter().for_each(|i| claim(&i.id, &i.id_ptr, d));
            }
        }
    }
    if !desc.id_prefix.is_empty() && !desc.id_prefix.chars().all(name_char) {
        d.error(
            &desc.id_prefix_ptr,
            "`IdPrefix` must be made of A-Z a-z 0-9 _ . -".to_string(),
        );
    }

    // Two containers publishing one host port on one node would fail at apply
    // (and failed in geard's install too): say so here.
    let mut host_ports: BTreeMap<(usize, u16), &str> = BTreeMap::new();
    for inst in deployed.containers.iter().flat_map(|c| &c.instances) {
        for m in inst.ports.iter().filter(|m| m.external != 0) {
            if let Some(other) = host_ports.insert((inst.node, m.external), &inst.id) {
                d.error(
                    &join(&m.ptr, "External"),
                    format!(
                        "`{other}` and `{}` would both publish host port {} on node `{}`; \
                         give another External or more --node",
                        inst.id, m.external, nodes[inst.node].name
                    ),
                );
            }
        }
    }

    // Links to a container without instances mean nothing; say which.
    for (si, spec) in desc.containers.iter().enumerate() {
        if deployed.containers[si].instances.is_empty() {
            continue;
        }
        for l in &spec.links {
            let target = desc.containers.iter().position(|c| c.name == l.to);
            if target.is_some_and(|t| deployed.containers[t].instances.is_empty()) {
                d.warning(
                    &l.to_ptr,
                    format!("`{}` has no instances, so this link gives nothing", l.to),
                );
            }
        }
    }

    // Views first: they take links off the explicit lists.
    let views: Vec<View> = (0..desc.containers.len())
        .filter_map(|ci| find_view(deployed, ci, shapes[ci] == Shape::PerInstance))
        .collect();
    let mut explicit: Vec<Vec<InstanceLink>> = deployed
        .containers
        .iter()
        .map(|c| c.links.clone())
        .collect();
    for view in &views {
        let covered = view_links(view);
        for si in std::iter::once(view.container).chain(view.observers.iter().copied()) {
            explicit[si].retain(|l| !covered.iter().any(|v| same_meaning(v, l)));
        }
    }
    // geard repeated a link given twice; one is enough, and two would clash.
    for (si, links) in explicit.iter_mut().enumerate() {
        let mut kept: Vec<InstanceLink> = Vec::new();
        for l in links.drain(..) {
            if let Some(first) = kept.iter().find(|k| same_meaning(k, &l)) {
                if first.link != l.link {
                    let spec = &desc.containers[si];
                    let ptr = &spec.links[l.link].ptr;
                    let earlier = &spec.links[first.link].ptr;
                    if !kept.iter().any(|k| k.link == l.link) {
                        d.warning(
                            ptr,
                            format!("gives the same links as {earlier}; written once"),
                        );
                    }
                }
                continue;
            }
            kept.push(l);
        }
        *links = kept;
    }
    peer_links_between_tables(desc, deployed, &shapes, &explicit, d);
    if d.has_errors() {
        return None;
    }

    let instance_name = |ci: usize, i: usize| deployed.containers[ci].instances[i].id.clone();
    let table_names = |ci: usize| -> Vec<String> {
        match &shapes[ci] {
            Shape::Absent => Vec::new(),
            Shape::PerInstance => deployed.containers[ci]
                .instances
                .iter()
                .map(|i| i.id.clone())
                .collect(),
            Shape::Replicated { declared, .. } => vec![declared.clone()],
        }
    };

    let mut out = String::new();
    let file = options
        .file_name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(&options.file_name);
    let hosts: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let _ = writeln!(
        out,
        "# Imported by `geartopo import` from the geard deployment descriptor {file}:"
    );
    let _ = writeln!(
        out,
        "# what `gear deploy {file} {}` made of it.",
        hosts.join(" ")
    );
    if !desc.instances.is_empty() {
        let _ = writeln!(
            out,
            "# The instances it listed keep their node, host ports and link addresses."
        );
    }
    let _ = writeln!(out, "name = {}", string(name));
    for n in nodes {
        let _ = writeln!(
            out,
            "\n[nodes.{}]\naddress = {}",
            key(&n.name),
            string(&n.address)
        );
    }

    for (ci, shape) in shapes.iter().enumerate() {
        let dc = &deployed.containers[ci];
        let render_link = |l: &InstanceLink| {
            let to = format!("{}:{}", instance_name(l.target, l.instance), l.port);
            if l.listen == SocketAddrV4::new(Ipv4Addr::LOCALHOST, l.port) {
                format!("{{ to = {} }}", string(&to))
            } else {
                let listen = string(&l.listen.to_string());
                format!("{{ to = {}, listen = {listen} }}", string(&to))
            }
        };
        // `None`: the links of every replica (replicated form, one shared list).
        let links_of = |inst: Option<usize>| -> (Vec<String>, Vec<u16>) {
            let mut noop = Vec::new();
            let mut kept = Vec::new();
            for l in &explicit[ci] {
                // A link from an instance to itself at 127.0.0.1 on the same port
                // needs no rule (geard's went out to the node and back): the
                // container reaches itself there anyway, and validate refuses it.
                let to_self = inst == Some(l.instance) && l.target == ci;
                if to_self && l.listen == SocketAddrV4::new(Ipv4Addr::LOCALHOST, l.port) {
                    noop.push(l.port);
                } else {
                    kept.push(render_link(l));
                }
            }
            (kept, noop)
        };
        let body = |out: &mut String, inst: usize, links: Vec<String>| {
            let i = &dc.instances[inst];
            let _ = writeln!(out, "image = {}", string(&i.image));
            if !i.ports.is_empty() {
                let publish: Vec<String> = i
                    .ports
                    .iter()
                    .map(|m| match m.external {
                        0 => format!("{{ port = {} }}", m.internal),
                        h => format!("{{ port = {}, host_port = {h} }}", m.internal),
                    })
                    .collect();
                let _ = writeln!(out, "publish = {}", list(&publish));
            }
            match links.len() {
                0 => {}
                1 => {
                    let _ = writeln!(out, "links = [{}]", links[0]);
                }
                _ => {
                    let _ = writeln!(out, "links = [");
                    for l in &links {
                        let _ = writeln!(out, "  {l},");
                    }
                    let _ = writeln!(out, "]");
                }
            }
        };
        match shape {
            Shape::Absent => {}
            Shape::PerInstance => {
                for (k, inst) in dc.instances.iter().enumerate() {
                    let (links, noop) = links_of(Some(k));
                    let _ = writeln!(out, "\n[containers.{}]", key(&inst.id));
                    for port in noop {
                        let _ = writeln!(
                            out,
                            "# geard's link from `{}` to itself at 127.0.0.1:{port} needs no rule here.",
                            inst.id
                        );
                    }
                    let _ = writeln!(out, "node = {}", string(&nodes[inst.node].name));
                    body(&mut out, k, links);
                }
            }
            Shape::Replicated {
                declared,
                nodes: on,
            } => {
                let names: Vec<String> = on.iter().map(|&n| string(&nodes[n].name)).collect();
                let _ = writeln!(out);
                if explicit[ci].iter().any(|l| l.target == ci) {
                    let _ = writeln!(
                        out,
                        "# `{}` links to itself: every replica reaches every replica by the links below.",
                        desc.containers[ci].name
                    );
                }
                let _ = writeln!(out, "[containers.{}]", key(declared));
                let _ = writeln!(out, "replicas = {}", dc.instances.len());
                let _ = writeln!(out, "nodes = {}", list(&names));
                body(&mut out, 0, links_of(None).0);
            }
        }
    }

    for view in &views {
        let ci = view.container;
        let spec = &desc.containers[ci];
        let view_name = match &shapes[ci] {
            Shape::Replicated { declared, .. } => declared.clone(),
            _ => format!("{}{}", desc.id_prefix, spec.name),
        };
        let [a, b, c, _] = view.subnet.octets();
        if view.order.iter().enumerate().all(|(k, &i)| k == i) {
            let _ = writeln!(
                out,
                "\n# `{}` links to itself: geard gave its instance i the address {a}.{b}.{c}.i.",
                spec.name
            );
        } else {
            let _ = writeln!(
                out,
                "\n# `{}` links to itself: geard gave the members, in this order, \
                 the addresses {a}.{b}.{c}.1, .2, ...",
                spec.name
            );
        }
        let _ = writeln!(out, "[views.{}]", key(&view_name));
        let members: Vec<String> = match &shapes[ci] {
            Shape::Replicated { declared, .. } => vec![string(declared)],
            _ => view
                .order
                .iter()
                .map(|&i| string(&instance_name(ci, i)))
                .collect(),
        };
        let _ = writeln!(out, "members = {}", list(&members));
        let _ = writeln!(out, "subnet = {}", string(&format!("{}/24", view.subnet)));
        let ports: Vec<String> = view.ports.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "ports = {}", list(&ports));
        let observers: Vec<String> = view
            .observers
            .iter()
            .flat_map(|&o| table_names(o))
            .map(|s| string(&s))
            .collect();
        if !observers.is_empty() {
            let _ = writeln!(out, "observers = {}", list(&observers));
        }
    }
    Some(out)
}

/// Instances written one table each are plain containers to validate: one may
/// not link to itself (but at 127.0.0.1 on its own port, which needs no rule), and
/// two may not link both ways (a start-order cycle). Views and replicas are how
/// geartopo says that; where neither fits, the descriptor cannot be carried over.
fn peer_links_between_tables(
    desc: &Descriptor,
    deployed: &Deployed,
    shapes: &[Shape],
    explicit: &[Vec<InstanceLink>],
    d: &mut Diagnostics,
) {
    for (ci, shape) in shapes.iter().enumerate() {
        if *shape != Shape::PerInstance {
            continue;
        }
        let instances = &deployed.containers[ci].instances;
        let spec = &desc.containers[ci];
        let mut reported = BTreeSet::new();
        for l in explicit[ci].iter().filter(|l| l.target == ci) {
            let identity = l.listen == SocketAddrV4::new(Ipv4Addr::LOCALHOST, l.port);
            if (instances.len() == 1 && identity) || !reported.insert(l.link) {
                continue;
            }
            let Some(at) = spec.links.get(l.link) else {
                continue;
            };
            let message = if instances.len() == 1 {
                format!(
                    "`{}` would see itself at {} (its port {}): a container reaches itself \
                     only at 127.0.0.1 on its own port, or at its address in a view",
                    instances[0].id, l.listen, l.port
                )
            } else {
                format!(
                    "the instances of `{}` would link to one another, but they cannot be \
                     replicas here (their ids, nodes, host ports or images differ), and \
                     containers linking both ways have no start order; with `NonLocal` and \
                     `MatchPort` (addresses x.y.z.1, x.y.z.2, ...) they become a view",
                    spec.name
                )
            };
            d.error(&at.ptr, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_are_quoted_only_when_needed() {
        assert_eq!(key("db-1"), "db-1");
        assert_eq!(key("a.b"), "\"a.b\"");
        assert_eq!(string("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
    }
}
