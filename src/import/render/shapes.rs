//! The shape each descriptor container takes in the topology: one table per
//! instance, or replicas with a `nodes` list that reproduces geard's placement,
//! and the views geard's addresses form. Decides only the shape; writing the TOML
//! is `render`'s, and nothing here reports a diagnostic.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::import::deploy::{Deployed, InstanceLink};
use crate::import::descriptor::Descriptor;

/// How one descriptor container is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Shape {
    /// No instance: nothing to write.
    Absent,
    /// One table per instance, named by the instance id.
    PerInstance,
    /// `replicas = N` with `nodes` (indices into the `--node` list).
    Replicated { declared: String, nodes: Vec<usize> },
}

/// A same-view cluster found in geard's addresses.
pub(super) struct View {
    /// The descriptor container whose instances are the members.
    pub(super) container: usize,
    pub(super) subnet: Ipv4Addr,
    pub(super) ports: Vec<u16>,
    /// Instance indices in member order: `order[k]` is at `subnet` + k + 1.
    pub(super) order: Vec<usize>,
    /// Descriptor containers that see the whole view.
    pub(super) observers: Vec<usize>,
}

/// Chooses `nodes` for a replicated container so that the model's round-robin
/// (replica k on nodes[(k-1) % len]) gives exactly geard's placement: a rotation
/// of every node when geard's counter ran over them in order, else the shortest
/// repeating list without repeats; `None` when no list does.
pub(super) fn nodes_list(placed: &[usize], node_count: usize) -> Option<Vec<usize>> {
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

pub(super) fn shape(desc: &Descriptor, deployed: &Deployed, ci: usize, node_count: usize) -> Shape {
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
pub(super) fn find_view(deployed: &Deployed, ci: usize, any_order: bool) -> Option<View> {
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
pub(super) fn view_links(view: &View) -> Vec<InstanceLink> {
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

pub(super) fn same_meaning(a: &InstanceLink, b: &InstanceLink) -> bool {
    a.listen == b.listen && a.target == b.target && a.instance == b.instance && a.port == b.port
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
}
