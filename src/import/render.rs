//! The deployed descriptor written as topology TOML (DESIGN.md "The topology
//! file"), laid out for a person to keep in git: one table per container,
//! replicated containers where geard's placement allows, views where geard gave
//! replicas one address each. Meaning is decided in `deploy`; this only chooses
//! the shortest faithful way to write it down. No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::deploy::{Deployed, InstanceLink};
use super::descriptor::{join, Descriptor};
use super::{Diagnostics, Options};

/// A character allowed in geartopo names (they reach remote shells).
pub(crate) fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// How one descriptor container is written.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// No instance: nothing to write.
    Absent,
    /// One table per instance, named by the instance id.
    PerInstance,
    /// `replicas = N` with `nodes` (indices into the `--node` list).
    Replicated { declared: String, nodes: Vec<usize> },
}

/// A same-view cluster found in geard's addresses.
struct View {
    /// The descriptor container whose instances are the members.
    container: usize,
    subnet: Ipv4Addr,
    ports: Vec<u16>,
    /// Instance indices in member order: `order[k]` is at `subnet` + k + 1.
    order: Vec<usize>,
    /// Descriptor containers that see the whole view.
    observers: Vec<usize>,
}

/// Chooses `nodes` for a replicated container so that the model's round-robin
/// (replica k on nodes[(k-1) % len]) gives exactly geard's placement: a rotation
/// of every node when geard's counter ran over them in order, else the shortest
/// repeating list without repeats; `None` when no list does.
fn nodes_list(placed: &[usize], node_count: usize) -> Option<Vec<usize>> {
    if let Some(&first) = placed.first() {
        if placed
            .iter()
            .enumerate()
            .all(|(k, &n)| n == (first + k) % node_count)
        {
            return Some((0..node_count).map(|k| (first + k) % node_count).collect());
        }
    }
    (1..=placed.len()).find_map(|period| {
        let head = &placed[..period];
        let distinct = head.iter().collect::<BTreeSet<_>>().len() == period;
        let repeats = placed
            .iter()
            .enumerate()
            .all(|(k, n)| *n == head[k % period]);
        (distinct && repeats).then(|| head.to_vec())
    })
}

fn shape(desc: &Descriptor, deployed: &Deployed, ci: usize, node_count: usize) -> Shape {
    let spec = &desc.containers[ci];
    let insts = &deployed.containers[ci].instances;
    if insts.is_empty() {
        return Shape::Absent;
    }
    if insts.len() == 1 {
        return Shape::PerInstance;
    }
    let declared = format!("{}{}", desc.id_prefix, spec.name);
    let named = insts
        .iter()
        .enumerate()
        .all(|(k, i)| i.id == format!("{declared}-{}", k + 1));
    let publish = |i: usize| -> Vec<(u16, u16)> {
        insts[i]
            .ports
            .iter()
            .map(|m| (m.internal, m.external))
            .collect()
    };
    let alike = insts.iter().all(|i| i.image == insts[0].image)
        && (1..insts.len()).all(|i| publish(i) == publish(0));
    let placed: Vec<usize> = insts.iter().map(|i| i.node).collect();
    match nodes_list(&placed, node_count) {
        Some(nodes) if named && alike => Shape::Replicated { declared, nodes },
        _ => Shape::PerInstance,
    }
}

/// Finds the view geard's addresses for container `ci` form, if its instances
/// link to one another at x.y.z.1, x.y.z.2, ... on unchanged ports. Instance i
/// need not be at x.y.z.i when `any_order` (each instance is its own table, so
/// the members can be listed in address order); a replicated container's
/// members are its replicas in order, so there it must be.
fn find_view(deployed: &Deployed, ci: usize, any_order: bool) -> Option<View> {
    let c = &deployed.containers[ci];
    let n = c.instances.len();
    let self_links: Vec<&InstanceLink> = c.links.iter().filter(|l| l.target == ci).collect();
    let ports: BTreeSet<u16> = self_links.iter().map(|l| l.port).collect();
    // (subnet, member order) of the first port that forms a view; later ports join
    // only with the same ones.
    let mut found: Option<(Ipv4Addr, Vec<usize>)> = None;
    let mut view_ports = Vec::new();
    for port in ports {
        let addr = |i: usize| {
            self_links
                .iter()
                .find(|l| l.instance == i && l.port == port)
                .map(|l| l.listen)
        };
        let Some(first) = addr(0) else { continue };
        let [a, b, cc, _] = first.ip().octets();
        // validate refuses view subnets in 127.0.0.0/8 (DESIGN: views are
        // addresses every member routes to); loopback self-links stay explicit.
        if a == 127 || n > 254 {
            continue;
        }
        let base = Ipv4Addr::new(a, b, cc, 0);
        // order[k]: the instance at x.y.z.(k+1).
        let mut order: Vec<Option<usize>> = vec![None; n];
        let fits = (0..n).all(|i| {
            let Some(at) = addr(i) else { return false };
            let [a2, b2, c2, d] = at.ip().octets();
            let k = usize::from(d).wrapping_sub(1);
            if (a2, b2, c2) != (a, b, cc) || at.port() != port || k >= n || order[k].is_some() {
                return false;
            }
            order[k] = Some(i);
            any_order || k == i
        });
        let order: Vec<usize> = order.into_iter().flatten().collect();
        if !fits || order.len() != n {
            continue;
        }
        match &found {
            None => {
                found = Some((base, order));
                view_ports.push(port);
            }
            Some(f) if *f == (base, order) => view_ports.push(port),
            Some(_) => {}
        }
    }
    let (subnet, order) = found?;
    let mut view = View {
        container: ci,
        subnet,
        ports: view_ports,
        order,
        observers: Vec::new(),
    };
    for (si, s) in deployed.containers.iter().enumerate() {
        let sees_all = |v: &InstanceLink| s.links.iter().any(|l| same_meaning(l, v));
        if si != ci && !s.instances.is_empty() && view_links(&view).iter().all(sees_all) {
            view.observers.push(si);
        }
    }
    Some(view)
}

/// The links a view gives each member and observer (the `link` index is not
/// part of what they mean and is matched separately).
fn view_links(view: &View) -> Vec<InstanceLink> {
    let [a, b, c, _] = view.subnet.octets();
    let mut out = Vec::new();
    for (k, &instance) in view.order.iter().enumerate() {
        for &port in &view.ports {
            out.push(InstanceLink {
                link: usize::MAX,
                listen: SocketAddrV4::new(Ipv4Addr::new(a, b, c, k as u8 + 1), port),
                target: view.container,
                instance,
                port,
            });
        }
    }
    out
}

fn same_meaning(a: &InstanceLink, b: &InstanceLink) -> bool {
    a.listen == b.listen && a.target == b.target && a.instance == b.instance && a.port == b.port
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
    fn nodes_list_rotates_all_nodes_when_geard_went_round_in_order() {
        assert_eq!(nodes_list(&[1, 0, 1], 2), Some(vec![1, 0]));
        assert_eq!(nodes_list(&[2, 0], 3), Some(vec![2, 0, 1]));
    }

    #[test]
    fn nodes_list_falls_back_to_a_period_or_nothing() {
        // All on one node of three (an earlier deploy on one host).
        assert_eq!(nodes_list(&[1, 1, 1], 3), Some(vec![1]));
        assert_eq!(nodes_list(&[0, 2, 0, 2], 3), Some(vec![0, 2]));
        assert_eq!(nodes_list(&[0, 0, 1], 3), None);
    }

    #[test]
    fn toml_keys_are_quoted_only_when_needed() {
        assert_eq!(key("db-1"), "db-1");
        assert_eq!(key("a.b"), "\"a.b\"");
        assert_eq!(string("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
    }
}
