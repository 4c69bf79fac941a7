//! geard's `Deployment.Describe` (openshift/geard, deployment/deployment.go,
//! links.go, ports.go, placement.go) replayed on a parsed descriptor: which
//! instances exist, on which node, which ports they publish, and at which address
//! every linking container sees every linked port. Each step names the geard
//! function it mirrors. No TOML here (that is `render`), no I/O.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::descriptor::{join, Descriptor};
use super::{Diagnostics, NodeArg};

/// The result of `gear deploy`, one entry per descriptor container, same order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deployed {
    pub containers: Vec<DeployedContainer>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct DeployedContainer {
    /// After geard's `trimInstances`: at most `Count`, existing ones first.
    pub instances: Vec<Instance>,
    /// The links every instance of this container gets (geard's `appendLinks`
    /// gives each source instance the same list), in descriptor link order.
    pub links: Vec<InstanceLink>,
}

#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub id: String,
    /// Where the id comes from (the instance, or the container's `Name`).
    pub id_ptr: String,
    pub image: String,
    /// Index into the `--node` list.
    pub node: usize,
    pub ports: Vec<Mapping>,
}

/// geard's `PortMapping`.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub internal: u16,
    /// The host port; 0: picked by the node.
    pub external: u16,
    /// The address linking containers see this port at, once a link reserved it.
    pub target: Option<SocketAddrV4>,
    pub ptr: String,
}

/// One link inside every instance of a source container: `listen` leads to
/// `port` of instance `instance` of container `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceLink {
    /// Index of the descriptor link (in the source container's `Links`).
    pub link: usize,
    pub listen: SocketAddrV4,
    pub target: usize,
    pub instance: usize,
    pub port: u16,
}

/// A descriptor link resolved to its target, as geard's `containerLink`.
struct ContainerLink {
    source: usize,
    link: usize,
    target: usize,
    non_local: bool,
    match_port: bool,
    /// (target port, port it is seen at or 0, pointer for diagnostics).
    aliases: Vec<(u16, u16, String)>,
}

impl ContainerLink {
    /// geard's `containerLink.priority`: the more specific links reserve first.
    fn priority(&self) -> u8 {
        4 * u8::from(self.match_port)
            + 2 * u8::from(self.non_local)
            + u8::from(self.source == self.target)
    }
}

/// Finds the `--node` an instance's `On` (a geard host locator, `host[:port]`)
/// names: by node name or address; `localhost` also matches a `local` node.
fn resolve_on(on: &str, nodes: &[NodeArg]) -> Option<usize> {
    let host = match on.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => on,
    };
    let same = |a: &str| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(on);
    let loopback = |a: &str| {
        matches!(host, "localhost" | "127.0.0.1")
            && matches!(a, "local" | "localhost" | "127.0.0.1")
    };
    nodes
        .iter()
        .position(|n| same(&n.name) || same(&n.address) || loopback(&n.address))
}

/// geard's `HostPort.Local()`: an address only reachable inside the container.
fn is_local(addr: &SocketAddrV4) -> bool {
    *addr.ip() == Ipv4Addr::LOCALHOST
}

/// Replays `Deployment.Describe` with `SimplePlacement(nodes)`.
pub(crate) fn describe(
    desc: &Descriptor,
    nodes: &[NodeArg],
    d: &mut Diagnostics,
) -> Option<Deployed> {
    let mut cs: Vec<DeployedContainer> = vec![DeployedContainer::default(); desc.containers.len()];

    // Describe: "assign instances to containers or the remove list".
    for inst in &desc.instances {
        let Some(on) = &inst.on else {
            d.warning(
                &inst.ptr,
                format!(
                    "instance `{}` has no `On` (it was never placed): geard's deploy skips it, \
                     so it is not carried over",
                    inst.id
                ),
            );
            continue;
        };
        let Some(node) = resolve_on(on, nodes) else {
            d.error(
                &inst.on_ptr,
                format!(
                    "instance `{}` is on host `{on}`, which is no --node (by name or address); \
                     add --node NAME={on} to keep it where it is",
                    inst.id
                ),
            );
            continue;
        };
        let Some(ci) = desc.containers.iter().position(|c| c.name == inst.from) else {
            d.warning(
                &inst.ptr,
                format!(
                    "instance `{}` comes from `{}`, which is not among the Containers: geard's \
                     deploy deletes it, so it is not carried over",
                    inst.id, inst.from
                ),
            );
            continue;
        };
        let spec = &desc.containers[ci];
        let mut ports = Vec::new();
        for m in &inst.ports {
            let target = match &m.target {
                None => None,
                Some((host, port)) => {
                    // geard's HostPort.Local() treats "" and "localhost" as loopback.
                    let ip = match host.as_str() {
                        "" | "localhost" => Some(Ipv4Addr::LOCALHOST),
                        h => h.parse::<Ipv4Addr>().ok(),
                    };
                    match ip {
                        Some(ip) => Some(SocketAddrV4::new(ip, *port)),
                        None => {
                            d.error(
                                &join(&join(&m.ptr, "Target"), "Host"),
                                format!("`{host}` is not an IPv4 address"),
                            );
                            None
                        }
                    }
                }
            };
            ports.push(Mapping {
                internal: m.internal,
                external: m.external,
                target,
                ptr: m.ptr.clone(),
            });
        }
        let image = if inst.image.is_empty() {
            spec.image.clone()
        } else {
            inst.image.clone()
        };
        if !inst.image.is_empty() && inst.image != spec.image {
            d.warning(
                &join(&inst.ptr, "Image"),
                format!(
                    "instance `{}` keeps the image it was deployed with, `{}`, not the \
                     container's `{}`: geard's deploy does not reinstall existing instances",
                    inst.id, inst.image, spec.image
                ),
            );
        }
        cs[ci].instances.push(Instance {
            id: inst.id.clone(),
            id_ptr: inst.id_ptr.clone(),
            image,
            node,
            ports,
        });
    }

    // Describe: "create new instances for each container" (createInstances), then
    // SimplePlacement.Assign: one counter over every added instance, in order.
    let mut pos = 0usize;
    for (ci, spec) in desc.containers.iter().enumerate() {
        let existing = cs[ci].instances.len();
        for i in existing..spec.count {
            let id = format!("{}{}-{}", desc.id_prefix, spec.name, i + 1);
            let taken = cs.iter().flat_map(|c| &c.instances).any(|x| x.id == id);
            if taken {
                d.error(
                    &spec.name_ptr,
                    format!(
                        "geard would name a new instance of `{}` `{id}`, which an existing \
                         instance already is; renumber the Instances",
                        spec.name
                    ),
                );
            }
            let ports = spec
                .public_ports
                .iter()
                .map(|p| Mapping {
                    internal: p.internal,
                    external: p.external,
                    target: None,
                    ptr: p.ptr.clone(),
                })
                .collect();
            let node = pos % nodes.len().max(1);
            pos += 1;
            cs[ci].instances.push(Instance {
                id,
                id_ptr: spec.name_ptr.clone(),
                image: spec.image.clone(),
                node,
                ports,
            });
        }
        // trimInstances: more instances than Count: geard deletes the last ones.
        if cs[ci].instances.len() > spec.count {
            for gone in cs[ci].instances.drain(spec.count..) {
                d.warning(
                    &spec.ptr,
                    format!(
                        "instance `{}` is beyond `Count` {}: geard's deploy deletes it, so it \
                         is not carried over",
                        gone.id, spec.count
                    ),
                );
            }
        }
    }
    let mut seen = HashSet::new();
    for inst in cs.iter().flat_map(|c| &c.instances) {
        if !seen.insert(inst.id.as_str()) {
            d.error(
                &inst.id_ptr,
                format!("two instances are named `{}`", inst.id),
            );
        }
    }

    // OrderLinks: resolve targets, default the ports, sort by priority.
    let mut links = Vec::new();
    for (si, spec) in desc.containers.iter().enumerate() {
        for (li, l) in spec.links.iter().enumerate() {
            let Some(ti) = desc.containers.iter().position(|c| c.name == l.to) else {
                d.error(
                    &l.to_ptr,
                    format!(
                        "`{}` links to `{}`, which is not among the Containers",
                        spec.name, l.to
                    ),
                );
                continue;
            };
            let target = &desc.containers[ti];
            if target.public_ports.is_empty() {
                d.error(
                    &l.to_ptr,
                    format!(
                        "`{}` links to `{}`, which has no PublicPorts: there is nothing to \
                         link to (geard refused this too); give `{}` PublicPorts or drop the link",
                        spec.name, target.name, target.name
                    ),
                );
                continue;
            }
            // "ensure all direct ports are copied over to aliased ports"
            let mut aliases: Vec<(u16, u16, String)> = l
                .alias_ports
                .iter()
                .map(|a| (a.internal, a.external, a.ptr.clone()))
                .collect();
            for (p, ptr) in &l.ports {
                if !aliases.iter().any(|a| a.0 == *p) {
                    aliases.push((*p, 0, ptr.clone()));
                }
            }
            // "by default, use all target ports if non-specified"
            if aliases.is_empty() {
                aliases = target
                    .public_ports
                    .iter()
                    .map(|p| (p.internal, 0, l.to_ptr.clone()))
                    .collect();
            }
            links.push(ContainerLink {
                source: si,
                link: li,
                target: ti,
                non_local: l.non_local,
                match_port: l.match_port,
                aliases,
            });
        }
    }
    // geard used sort.Sort, which on short lists (up to 7 or 12 elements, by Go
    // version) is an insertion sort and so keeps file order among equal
    // priorities; on longer ones geard's order was unspecified. A stable sort
    // gives geard's order wherever it was defined.
    links.sort_by_key(|l| std::cmp::Reverse(l.priority()));

    // exposePorts: a linked port an existing instance does not publish yet.
    for l in &links {
        let target = &desc.containers[l.target];
        for (p, _, ptr) in &l.aliases {
            if !target.public_ports.iter().any(|pp| pp.internal == *p) {
                if cs[l.target]
                    .instances
                    .iter()
                    .any(|i| !i.ports.iter().any(|m| m.internal == *p))
                {
                    d.error(
                        ptr,
                        format!(
                            "port {p} of `{}` is not among its PublicPorts, so `{}` cannot link \
                             to it (geard: \"target port {p} on {} is not found\")",
                            target.name, desc.containers[l.source].name, target.name
                        ),
                    );
                }
                continue;
            }
            for inst in &mut cs[l.target].instances {
                if !inst.ports.iter().any(|m| m.internal == *p) {
                    inst.ports.push(Mapping {
                        internal: *p,
                        external: 0,
                        target: None,
                        ptr: ptr.clone(),
                    });
                }
            }
        }
    }
    if d.has_errors() {
        return None;
    }

    // NewInstancePortTable: the addresses earlier deploys already handed out.
    let mut table = PortTable::default();
    for inst in cs.iter().flat_map(|c| &c.instances) {
        for m in &inst.ports {
            if let Some(t) = m.target {
                if !table.reserved.insert(t) {
                    d.error(
                        &join(&m.ptr, "Target"),
                        format!(
                            "the address {t} is given to two instances (last: `{}`)",
                            inst.id
                        ),
                    );
                }
            }
        }
    }

    // containerLink.reserve, in priority order.
    for l in &links {
        let lname = format!(
            "{}-{}",
            desc.containers[l.source].name, desc.containers[l.target].name
        );
        for (internal, external, ptr) in &l.aliases {
            for inst in &mut cs[l.target].instances {
                let Some(m) = inst.ports.iter_mut().find(|m| m.internal == *internal) else {
                    continue; // exposePorts made sure of it
                };
                if let Some(t) = m.target {
                    if l.non_local && is_local(&t) {
                        d.error(
                            &join(&m.ptr, "Target"),
                            format!(
                                "link {lname} is NonLocal, but `{}` port {internal} is already \
                                 seen at the loopback address {t}; geard refused this too \
                                 (reset the Target)",
                                inst.id
                            ),
                        );
                    } else if l.match_port && t.port() != m.internal {
                        d.error(
                            &join(&m.ptr, "Target"),
                            format!(
                                "link {lname} has MatchPort, but `{}` port {internal} is already \
                                 seen at port {}; geard refused this too (reset the Target)",
                                inst.id,
                                t.port()
                            ),
                        );
                    } else if *external != 0 && t.port() != *external {
                        d.error(
                            ptr,
                            format!(
                                "link {lname} asks for port {internal} of `{}` at port \
                                 {external}, but it is already seen at {t}; geard refused this \
                                 too (reset the Target)",
                                inst.id
                            ),
                        );
                    }
                    continue;
                }
                // "If an alias was requested, force matching"
                let (same, requested) = if *external != 0 {
                    (true, *external)
                } else {
                    (l.match_port, *internal)
                };
                match table.reserve(!l.non_local, same, requested) {
                    Some(t) => m.target = Some(t),
                    None => d.error(ptr, format!("no free address left for link {lname}")),
                }
            }
        }
    }
    if d.has_errors() {
        return None;
    }

    // appendLinks: every source instance gets one link per target instance and port.
    for l in &links {
        let mut out = Vec::new();
        for (j, inst) in cs[l.target].instances.iter().enumerate() {
            for (internal, _, _) in &l.aliases {
                let m = inst.ports.iter().find(|m| m.internal == *internal);
                if let Some(listen) = m.and_then(|m| m.target) {
                    out.push(InstanceLink {
                        link: l.link,
                        listen,
                        target: l.target,
                        instance: j,
                        port: *internal,
                    });
                }
            }
        }
        cs[l.source].links.extend(out);
    }
    // Reservation followed priority; what a person reads follows the file.
    for c in &mut cs {
        c.links.sort_by_key(|l| l.link);
    }
    Some(Deployed { containers: cs })
}

/// geard's `InstancePortTable`: every address handed out to a linked port.
#[derive(Default)]
struct PortTable {
    reserved: HashSet<SocketAddrV4>,
}

impl PortTable {
    /// geard's `InstancePortTable.Reserve`: loopback links at 127.0.0.1, the others
    /// at 192.168.1.1; `same` keeps the port and moves the address up
    /// (`nextHost`), otherwise the address stays and the port counts up (`nextPort`).
    fn reserve(&mut self, loopback: bool, same: bool, from: u16) -> Option<SocketAddrV4> {
        let start = if loopback {
            Ipv4Addr::new(127, 0, 0, 1)
        } else {
            Ipv4Addr::new(192, 168, 1, 1)
        };
        if same {
            self.next_host(start, from)
        } else {
            self.next_port(start, from)
        }
    }

    /// geard's `nextHost`: .1, .2, ... .254, then the next /24 from .1.
    fn next_host(&mut self, start: Ipv4Addr, port: u16) -> Option<SocketAddrV4> {
        let [a, b, mut c, mut d] = start.octets();
        loop {
            let key = SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), port);
            if self.reserved.insert(key) {
                return Some(key);
            }
            d += 1;
            if d == 255 {
                c = c.checked_add(1)?;
                d = 1;
            }
        }
    }

    /// geard's `nextPort`: from the target port up. geard wrapped to 40000 past
    /// 65535 only after handing out 65536; here running out is an error instead.
    fn next_port(&mut self, ip: Ipv4Addr, from: u16) -> Option<SocketAddrV4> {
        (from..=u16::MAX)
            .chain(40001..from.max(40001))
            .map(|p| SocketAddrV4::new(ip, p))
            .find(|key| self.reserved.insert(*key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_links_count_ports_up_from_the_target_port() {
        let mut t = PortTable::default();
        assert_eq!(
            t.reserve(true, false, 8080),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            t.reserve(true, false, 8080),
            Some("127.0.0.1:8081".parse().unwrap())
        );
        assert_eq!(
            t.reserve(false, false, 8080),
            Some("192.168.1.1:8080".parse().unwrap())
        );
    }

    #[test]
    fn matched_ports_move_the_address_and_skip_255() {
        let mut t = PortTable::default();
        assert_eq!(
            t.reserve(false, true, 27017),
            Some("192.168.1.1:27017".parse().unwrap())
        );
        assert_eq!(
            t.reserve(false, true, 27017),
            Some("192.168.1.2:27017".parse().unwrap())
        );
        for _ in 3..=254 {
            t.reserve(false, true, 27017).unwrap();
        }
        assert_eq!(
            t.reserve(false, true, 27017),
            Some("192.168.2.1:27017".parse().unwrap())
        );
    }

    #[test]
    fn on_matches_a_node_by_name_or_address_with_geards_port() {
        let nodes = vec![
            NodeArg {
                name: "n1".into(),
                address: "198.18.0.1".into(),
            },
            NodeArg {
                name: "here".into(),
                address: "local".into(),
            },
        ];
        assert_eq!(resolve_on("198.18.0.1:43273", &nodes), Some(0));
        assert_eq!(resolve_on("n1", &nodes), Some(0));
        assert_eq!(resolve_on("localhost", &nodes), Some(1));
        assert_eq!(resolve_on("198.18.0.9", &nodes), None);
    }
}
