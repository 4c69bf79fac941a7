//! Links: declared links and the links views imply, resolved to concrete
//! containers, with each container's identity env. Listen and target syntax is
//! checked here; nothing here checks a container's own fields.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;

use serde_spanned::Spanned;

use super::views::Expanded;
use super::{declared_of, plain, protocol, suggest, Checker, Declared, Named};
use crate::topology::diag::Problem;
use crate::topology::model::{Container, Link, LinkOrigin, LinkTarget, Node, Protocol};
use crate::topology::names::host_problem;
use crate::topology::raw::RawLink;

impl Checker<'_> {
    /// Builds the concrete containers: declared links, then view links, with identity env.
    pub(super) fn links(
        &mut self,
        topology: &str,
        declared: &[Declared<'_>],
        views: &[Expanded<'_>],
        nodes: &BTreeMap<String, Node>,
    ) -> Vec<Container> {
        let _ = (topology, nodes);
        let mut containers = Vec::new();
        for d in declared {
            // Links are resolved once per declaration; every replica gets the same list.
            let resolved = self.declared_links(d, declared);
            // Replicas share their declaration: report a clash once, not once per replica.
            let mut reported = BTreeSet::new();
            for (cname, node, replica) in &d.concrete {
                let mut env = d.env.clone();
                env.insert("GEARTOPO_CONTAINER".into(), plain(cname));
                if let Some(i) = replica {
                    env.insert("GEARTOPO_REPLICA".into(), plain(&i.to_string()));
                }
                // (link, span, label) in order; for duplicate-listen reports.
                let mut links: Vec<(Link, Range<usize>, String)> = Vec::new();
                for (link, span) in &resolved {
                    let mut link = link.clone();
                    if let LinkTarget::Container { container, port } = &link.target {
                        if container == cname {
                            if replica.is_none() {
                                self.push(
                                    Problem::at(
                                        format!("`{cname}` links to itself"),
                                        span.clone(),
                                        "this link",
                                    )
                                    .help("a container reaches itself at 127.0.0.1; inside a view, its own view address works too"),
                                );
                                continue;
                            }
                            // Replicas share one list of links to every replica (geard's
                            // self-link); the one to itself leads back inside it.
                            link.target = LinkTarget::Loopback { port: *port };
                        }
                    }
                    links.push((link, span.clone(), "this link listens there".into()));
                }
                for x in views {
                    let v = &x.view;
                    let member = v.members.iter().position(|m| m == cname);
                    let observer = v.observers.iter().any(|o| o == cname);
                    if member.is_none() && !observer {
                        continue;
                    }
                    let addresses: Vec<String> = (1..=v.members.len() as u32)
                        .map(|i| v.address(i).to_string())
                        .collect();
                    if let Some(i) = member {
                        env.insert(
                            format!("GEARTOPO_VIEW_{}", x.env_name),
                            plain(&addresses[i]),
                        );
                    }
                    env.insert(
                        format!("GEARTOPO_VIEW_{}_MEMBERS", x.env_name),
                        plain(&addresses.join(",")),
                    );
                    for (i, m) in v.members.iter().enumerate() {
                        for &port in &v.ports {
                            let target = if m == cname {
                                LinkTarget::Loopback { port }
                            } else {
                                LinkTarget::Container {
                                    container: m.clone(),
                                    port,
                                }
                            };
                            links.push((
                                Link {
                                    listen_ip: v.address(i as u32 + 1),
                                    listen_port: port,
                                    protocol: Protocol::Tcp,
                                    target,
                                    origin: LinkOrigin::View {
                                        view: v.name.clone(),
                                    },
                                },
                                x.key_span.clone(),
                                format!("view `{}` listens there", v.name),
                            ));
                        }
                    }
                }
                self.duplicate_listens(d, cname, &links, &mut reported);
                // A loopback link at 127.0.0.1 on its own port is already where it
                // leads: no rule. It stays in the duplicate check above, since another
                // link there would hide the container from itself.
                links.retain(|(l, _, _)| !is_identity(l));
                containers.push(Container {
                    name: cname.clone(),
                    declared: d.name.clone(),
                    replica: *replica,
                    node: node.clone(),
                    image: d.image.clone(),
                    command: d.command.clone(),
                    env,
                    publish: d.publish.iter().map(|(p, _)| *p).collect(),
                    links: links.into_iter().map(|(l, _, _)| l).collect(),
                    restart: d.restart,
                    health: d.health.clone(),
                    max_unavailable: d.max_unavailable,
                    volumes: d.volumes.iter().map(|(m, _)| m.clone()).collect(),
                    options: d.options.clone(),
                });
            }
        }
        containers
    }

    pub(super) fn duplicate_listens(
        &mut self,
        d: &Declared<'_>,
        cname: &str,
        links: &[(Link, Range<usize>, String)],
        reported: &mut BTreeSet<(Ipv4Addr, u16, Protocol)>,
    ) {
        let mut seen: BTreeMap<(Ipv4Addr, u16, Protocol), (&Range<usize>, &str)> = BTreeMap::new();
        for (l, span, label) in links {
            let key = (l.listen_ip, l.listen_port, l.protocol);
            let Some((first, first_label)) = seen.get(&key).copied() else {
                seen.insert(key, (span, label));
                continue;
            };
            if !reported.insert(key) {
                continue;
            }
            let who = if d.raw.replicas.is_some() {
                format!("replica `{cname}` of `{}`", d.name)
            } else {
                format!("`{cname}`")
            };
            let mut p = Problem::at(
                format!(
                    "{who} has two links listening on {}:{}/{}",
                    l.listen_ip,
                    l.listen_port,
                    l.protocol.as_str()
                ),
                span.clone(),
                label.clone(),
            );
            if first != span {
                p = p.label(first.clone(), first_label);
            }
            self.push(p.help("give one of them another `listen` address or port"));
        }
    }

    pub(super) fn declared_links(
        &mut self,
        d: &Declared<'_>,
        declared: &[Declared<'_>],
    ) -> Vec<(Link, Range<usize>)> {
        let mut out = Vec::new();
        for (index, l) in d.raw.links.iter().flatten().enumerate() {
            if let Some(link) = self.link(l, index, declared) {
                out.push((link, l.span()));
            }
        }
        out
    }

    pub(super) fn link(
        &mut self,
        l: &Spanned<RawLink>,
        index: usize,
        declared: &[Declared<'_>],
    ) -> Option<Link> {
        // Each form yields: target text + its span, listen (ip, port?) + span, protocol.
        let (to, to_span, listen, listen_span, proto) = match l.get_ref() {
            RawLink::Geard(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (ip, lport, host, rport) = match parts.as_slice() {
                    [lp, h, rp] => ("127.0.0.1", *lp, *h, *rp),
                    [ip, lp, h, rp] => (*ip, *lp, *h, *rp),
                    _ => {
                        self.push(
                            Problem::at(format!("invalid link {s:?}"), l.span(), "not geard's link form")
                                .help("write \"[LOCAL_IP:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT\", or a table { to = \"CONTAINER:PORT\" }"),
                        );
                        return None;
                    }
                };
                (
                    format!("{host}:{rport}"),
                    l.span(),
                    Some(format!("{ip}:{lport}")),
                    l.span(),
                    Protocol::Tcp,
                )
            }
            RawLink::Table(t) => (
                t.to.get_ref().clone(),
                t.to.span(),
                t.listen.as_ref().map(|s| s.get_ref().clone()),
                t.listen
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or_else(|| l.span()),
                protocol(t.protocol.as_ref()),
            ),
        };
        let target = self.target(&to, to_span.clone(), proto, declared);
        let listen = match listen {
            None => None,
            Some(text) => Some(self.listen(&text, listen_span)?),
        };
        let target = target?;
        let target_port = match &target {
            LinkTarget::Container { port, .. }
            | LinkTarget::Raw { port, .. }
            | LinkTarget::Loopback { port } => *port,
        };
        let (listen_ip, listen_port) = match listen {
            Some((ip, port)) => (ip, port.unwrap_or(target_port)),
            None => (Ipv4Addr::LOCALHOST, target_port),
        };
        Some(Link {
            listen_ip,
            listen_port,
            protocol: proto,
            target,
            origin: LinkOrigin::Declared { index },
        })
    }

    /// `IP:PORT` or `IP`: where the container sees a link.
    pub(super) fn listen(
        &mut self,
        text: &str,
        span: Range<usize>,
    ) -> Option<(Ipv4Addr, Option<u16>)> {
        let (ip_text, port_text) = match text.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let Ok(ip) = ip_text.parse::<Ipv4Addr>() else {
            self.push(Problem::at(
                format!("invalid listen address {text:?}"),
                span,
                "expected IPv4:PORT, e.g. 127.0.0.2:7000",
            ));
            return None;
        };
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            self.push(
                Problem::at(
                    format!("cannot listen on {ip}"),
                    span,
                    "not an address a connection can be made to",
                )
                .help("use an address in 127.0.0.0/8, or any unicast IPv4 address"),
            );
            return None;
        }
        let port = match port_text {
            None => None,
            Some(p) => match parse_port(p) {
                Some(p) => Some(p),
                None => {
                    self.push(Problem::at(
                        format!("invalid listen port {p:?}"),
                        span,
                        "expected 1 to 65535",
                    ));
                    return None;
                }
            },
        };
        Some((ip, port))
    }

    /// `CONTAINER:PORT` or `HOST:PORT`.
    pub(super) fn target(
        &mut self,
        to: &str,
        span: Range<usize>,
        proto: Protocol,
        declared: &[Declared<'_>],
    ) -> Option<LinkTarget> {
        let Some((host, port_text)) = to.rsplit_once(':') else {
            self.push(Problem::at(
                format!("invalid link target {to:?}"),
                span,
                "expected CONTAINER:PORT or HOST:PORT",
            ));
            return None;
        };
        let Some(port) = parse_port(port_text) else {
            self.push(Problem::at(
                format!("invalid port {port_text:?} in link target"),
                span,
                "expected 1 to 65535",
            ));
            return None;
        };
        match self.names.get(host).cloned() {
            Some(Named::Broken) => return None,
            Some(Named::Replicated(_, replicas)) => {
                let first = replicas
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{host}-1"));
                self.push(
                    Problem::at(
                        format!("`{host}` is a replicated container: link to one replica"),
                        span,
                        "which replica?",
                    )
                    .help(format!(
                        "link to a replica such as `{first}:{port}`, or put the containers in a view to see every replica"
                    )),
                );
                return None;
            }
            Some(Named::Single(_)) | Some(Named::Replica(_)) => {
                let d = declared_of(&self.names, declared, host)?;
                let published = d
                    .publish
                    .iter()
                    .any(|(p, _)| p.port == port && p.protocol == proto);
                if !published {
                    let list: Vec<String> = d
                        .publish
                        .iter()
                        .map(|(p, _)| format!("{}/{}", p.port, p.protocol.as_str()))
                        .collect();
                    self.push(
                        Problem::at(
                            format!("`{host}` does not publish port {port}/{}", proto.as_str()),
                            span,
                            "not published by the target",
                        )
                        .help(if list.is_empty() {
                            format!("`{host}` publishes no ports; add `publish = [{{ port = {port} }}]` to [containers.{}]", d.name)
                        } else {
                            format!("`{host}` publishes {}", list.join(", "))
                        }),
                    );
                    return None;
                }
                return Some(LinkTarget::Container {
                    container: host.to_owned(),
                    port,
                });
            }
            None => {}
        }
        if let Some(why) = host_problem(host) {
            self.push(Problem::at(
                format!("invalid link target host {host:?}"),
                span,
                why,
            ));
            return None;
        }
        if host.parse::<Ipv4Addr>().is_err() && !host.contains('.') {
            // A single DNS label is far more likely a misspelt container than a host.
            let mut p = Problem::at(
                format!("unknown container `{host}`"),
                span,
                "no container of this name",
            );
            p = p.help(
                match suggest(
                    &mut self.suggestions,
                    host,
                    self.names.keys().map(String::as_str),
                ) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "a raw target needs an IPv4 address or a fully qualified DNS name".into()
                    }
                },
            );
            self.push(p);
            return None;
        }
        if host == "0.0.0.0" {
            self.push(Problem::at(
                "cannot link to 0.0.0.0",
                span,
                "not a destination",
            ));
            return None;
        }
        Some(LinkTarget::Raw {
            host: host.to_owned(),
            port,
        })
    }
}

/// A link from `127.0.0.1:PORT` to the container itself on `PORT`.
fn is_identity(l: &Link) -> bool {
    l.target
        == LinkTarget::Loopback {
            port: l.listen_port,
        }
        && l.listen_ip == Ipv4Addr::LOCALHOST
}

fn parse_port(s: &str) -> Option<u16> {
    // `u16::from_str` accepts a leading `+`; a port is digits only.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}
