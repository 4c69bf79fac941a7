//! Checks of `[views]`: members and observers, the subnet and the addresses each
//! member gets. Only expands views into [`Expanded`]; the links views imply are made
//! in `links`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;

use serde_spanned::Spanned;

use super::{declared_of, suggest, Checker, Declared, Named};
use crate::topology::diag::Problem;
use crate::topology::model::{Protocol, View};
use crate::topology::names::{view_env_name, MAX_VIEW_MEMBERS};
use crate::topology::raw::{Document, Entry, RawView};

impl Checker<'_> {
    pub(super) fn views<'d>(
        &mut self,
        doc: &'d Document,
        declared: &[Declared<'_>],
    ) -> Vec<Expanded<'d>> {
        let mut out: Vec<Expanded<'d>> = Vec::new();
        let mut env_names: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();
        for Entry {
            name,
            key_span,
            value,
        } in &doc.views
        {
            let good = self.entity_name("view", name, key_span.clone());
            let Some(raw) = value else { continue };
            let env_name = view_env_name(name);
            if good {
                if let Some((other, span)) = env_names.get(&env_name) {
                    self.push(
                        Problem::at(
                            format!("views `{other}` and `{name}` both set GEARTOPO_VIEW_{env_name}"),
                            key_span.clone(),
                            "this view",
                        )
                        .label(span.clone(), "clashes with this one")
                        .help("view names are upper-cased with other characters made `_` in the environment; rename one"),
                    );
                } else {
                    env_names.insert(env_name.clone(), (name.clone(), key_span.clone()));
                }
            }
            if let Some(v) = self.view(name, key_span, raw, declared, env_name) {
                out.push(v);
            }
        }
        out
    }

    /// Resolves a member or observer reference to concrete containers.
    pub(super) fn participants(&mut self, r: &Spanned<String>, role: &str) -> Option<Vec<String>> {
        let n = r.get_ref();
        match self.names.get(n) {
            Some(Named::Single(_)) | Some(Named::Replica(_)) => Some(vec![n.clone()]),
            Some(Named::Replicated(_, replicas)) => Some(replicas.clone()),
            Some(Named::Broken) => None,
            None => {
                let mut p = Problem::at(
                    format!("unknown container `{n}`"),
                    r.span(),
                    format!("no such container ({role})"),
                );
                if let Some(s) = suggest(
                    &mut self.suggestions,
                    n,
                    self.names.keys().map(String::as_str),
                ) {
                    p = p.help(format!("did you mean `{s}`?"));
                }
                self.push(p);
                None
            }
        }
    }

    pub(super) fn view<'d>(
        &mut self,
        name: &str,
        key_span: &Range<usize>,
        raw: &'d RawView,
        declared: &[Declared<'_>],
        env_name: String,
    ) -> Option<Expanded<'d>> {
        let mut ok = true;
        // Members, expanded, each with the span that named it.
        let mut members: Vec<(String, Range<usize>)> = Vec::new();
        if raw.members.get_ref().is_empty() {
            self.push(Problem::at(
                format!("view `{name}` has no members"),
                raw.members.span(),
                "list at least one container",
            ));
            ok = false;
        }
        for m in raw.members.get_ref() {
            match self.participants(m, "member") {
                Some(list) => {
                    for c in list {
                        if let Some((_, first)) = members.iter().find(|(x, _)| *x == c) {
                            self.push(
                                Problem::at(
                                    format!("`{c}` is a member of view `{name}` twice"),
                                    m.span(),
                                    "again here",
                                )
                                .label(first.clone(), "first here"),
                            );
                            ok = false;
                        } else {
                            members.push((c, m.span()));
                        }
                    }
                }
                None => ok = false,
            }
        }
        if members.len() > MAX_VIEW_MEMBERS {
            self.push(
                Problem::at(
                    format!(
                        "view `{name}` has {} members, more than {MAX_VIEW_MEMBERS}",
                        members.len()
                    ),
                    raw.members.span(),
                    "replicas counted",
                )
                .help("a view is limited to 256 members (docs/format.md, \"Limits\"); every member sees every other one, so links grow with the square of members"),
            );
            return None;
        }
        let mut observers: Vec<(String, Range<usize>)> = Vec::new();
        for o in raw.observers.iter().flat_map(|o| o.get_ref()) {
            match self.participants(o, "observer") {
                Some(list) => {
                    for c in list {
                        if let Some((_, first)) =
                            members.iter().chain(&observers).find(|(x, _)| *x == c)
                        {
                            self.push(
                                Problem::at(
                                    format!("`{c}` is already in view `{name}`"),
                                    o.span(),
                                    "observer here",
                                )
                                .label(first.clone(), "already listed here"),
                            );
                            ok = false;
                        } else {
                            observers.push((c, o.span()));
                        }
                    }
                }
                None => ok = false,
            }
        }
        let subnet = self.subnet(&raw.subnet);
        let mut ports: Vec<u16> = Vec::new();
        if raw.ports.get_ref().is_empty() {
            self.push(Problem::at(
                format!("view `{name}` has no ports"),
                raw.ports.span(),
                "list at least one port",
            ));
            ok = false;
        }
        for p in raw.ports.get_ref() {
            let Some(port) = self.port_value(Some(p)) else {
                ok = false;
                continue;
            };
            if ports.contains(&port) {
                self.push(Problem::at(
                    format!("port {port} is listed twice"),
                    p.span(),
                    "again here",
                ));
                ok = false;
                continue;
            }
            ports.push(port);
            // Every member must publish every view port: that is what others reach.
            let mut reported = BTreeSet::new();
            for (m, m_span) in &members {
                let Some(d) = declared_of(&self.names, declared, m) else {
                    continue;
                };
                let publishes = d
                    .publish
                    .iter()
                    .any(|(q, _)| q.port == port && q.protocol == Protocol::Tcp);
                if !publishes && reported.insert(d.name.clone()) {
                    self.push(
                        Problem::at(
                            format!(
                                "`{}` does not publish port {port}/tcp, which view `{name}` needs",
                                d.name
                            ),
                            p.span(),
                            "view port",
                        )
                        .label(m_span.clone(), "member here")
                        .help(format!(
                            "add `publish = [{{ port = {port} }}]` to [containers.{}]",
                            d.name
                        )),
                    );
                    ok = false;
                }
            }
        }
        let (net, prefix_len) = subnet?;
        let hosts: u64 = if prefix_len <= 30 {
            (1u64 << (32 - prefix_len)) - 2
        } else {
            0
        };
        if (members.len() as u64) > hosts {
            self.push(
                Problem::at(
                    format!("view `{name}`: subnet too small"),
                    raw.subnet.span(),
                    format!(
                        "{} host address{} for {} member{}",
                        hosts,
                        if hosts == 1 { "" } else { "es" },
                        members.len(),
                        if members.len() == 1 { "" } else { "s" }
                    ),
                )
                .help("use a larger subnet (a shorter prefix)"),
            );
            return None;
        }
        let max_unavailable = self.max_unavailable(raw.max_unavailable.as_ref());
        if !ok {
            return None;
        }
        Some(Expanded {
            key_span: key_span.clone(),
            env_name,
            view: View {
                name: name.to_owned(),
                members: members.into_iter().map(|m| m.0).collect(),
                observers: observers.into_iter().map(|o| o.0).collect(),
                subnet: net,
                prefix_len,
                ports,
                max_unavailable,
            },
            _raw: raw,
        })
    }

    pub(super) fn subnet(&mut self, s: &Spanned<String>) -> Option<(Ipv4Addr, u8)> {
        let text = s.get_ref();
        let parsed = text.split_once('/').and_then(|(a, p)| {
            let ip: Ipv4Addr = a.parse().ok()?;
            let len: u8 = p.parse().ok().filter(|l| *l <= 32)?;
            Some((ip, len))
        });
        let Some((ip, len)) = parsed else {
            self.push(Problem::at(
                format!("invalid subnet {text:?}"),
                s.span(),
                "expected an IPv4 network like 192.168.1.0/24",
            ));
            return None;
        };
        let mask: u32 = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = Ipv4Addr::from(u32::from(ip) & mask);
        if net != ip {
            self.push(
                Problem::at(
                    format!("subnet {text:?} has host bits set"),
                    s.span(),
                    "not a network address",
                )
                .help(format!("did you mean \"{net}/{len}\"?")),
            );
            return None;
        }
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.octets()[0] >= 240 {
            self.push(Problem::at(
                format!("subnet {text:?} cannot hold view addresses"),
                s.span(),
                "0.0.0.0/8, 127.0.0.0/8, multicast and reserved ranges are not allowed",
            ));
            return None;
        }
        Some((net, len))
    }
}

/// A view after checks, with what links and env need.
pub(super) struct Expanded<'d> {
    #[allow(dead_code)]
    pub(super) key_span: Range<usize>,
    pub(super) env_name: String,
    pub(super) view: View,
    pub(super) _raw: &'d RawView,
}
