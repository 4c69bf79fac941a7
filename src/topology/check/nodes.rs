//! Checks of `[defaults]` and `[nodes]`: addresses, users, ports, paths, host-port
//! ranges and runtimes. Reports problems with spans; never reads the network or a
//! file (only `$HOME`, for `~`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_spanned::Spanned;

use super::Checker;
use crate::topology::diag::Problem;
use crate::topology::model::{Firewall, Node, NodeAddress, OpenSsh, PortRange, Runtime};
use crate::topology::names::host_problem;
use crate::topology::raw::{Document, Entry, RawFirewall, RawRuntime, RawTransport};

impl Checker<'_> {
    pub(super) fn nodes(&mut self, doc: &Document) -> BTreeMap<String, Node> {
        let d = &doc.defaults;
        let default_user = self.user(d.user.as_ref()).unwrap_or_else(|| "root".into());
        let default_port = self.port_value(d.port.as_ref()).unwrap_or(22);
        let default_identity = self.path(d.identity.as_ref());
        let default_known = self
            .path(d.known_hosts.as_ref())
            .unwrap_or_else(|| expand_tilde("~/.ssh/known_hosts"));
        let default_runtime = d
            .runtime
            .as_ref()
            .map(|r| runtime(*r.get_ref()))
            .unwrap_or(Runtime::Podman);
        let default_firewall = d
            .firewall
            .as_ref()
            .map(|f| firewall(*f.get_ref()))
            .unwrap_or_default();
        let default_range = self.host_ports(d.host_ports.as_ref()).unwrap_or(PortRange {
            first: 4000,
            last: 60000,
        });
        let default_sudo = d.sudo.as_ref().map(|s| *s.get_ref()).unwrap_or(false);
        let default_openssh = d
            .transport
            .as_ref()
            .is_some_and(|t| *t.get_ref() == RawTransport::Openssh);

        let default_binds = self.allow_binds(d.allow_binds.as_ref());
        let mut nodes = BTreeMap::new();
        for Entry {
            name,
            key_span,
            value,
        } in &doc.nodes
        {
            self.node_names.insert(name.clone());
            let good_name = self.entity_name("node", name, key_span.clone());
            let Some(raw) = value else { continue };
            let mut binds = default_binds.clone();
            binds.extend(self.allow_binds(raw.allow_binds.as_ref()));
            self.allow_binds.insert(name.clone(), binds);
            let address = self.address(&raw.address);
            let ssh_host = self.ssh_host(raw.ssh_host.as_ref(), address.as_ref());
            let node = Node {
                name: name.clone(),
                address: address.unwrap_or(NodeAddress::Local),
                user: self
                    .user(raw.user.as_ref())
                    .unwrap_or_else(|| default_user.clone()),
                port: self.port_value(raw.port.as_ref()).unwrap_or(default_port),
                identity: self
                    .path(raw.identity.as_ref())
                    .or_else(|| default_identity.clone()),
                known_hosts: self
                    .path(raw.known_hosts.as_ref())
                    .unwrap_or_else(|| default_known.clone()),
                runtime: raw
                    .runtime
                    .as_ref()
                    .map(|r| runtime(*r.get_ref()))
                    .unwrap_or(default_runtime),
                firewall: raw
                    .firewall
                    .as_ref()
                    .map(|f| firewall(*f.get_ref()))
                    .unwrap_or(default_firewall),
                host_ports: self
                    .host_ports(raw.host_ports.as_ref())
                    .unwrap_or(default_range),
                ssh_host,
                sudo: raw
                    .sudo
                    .as_ref()
                    .map(|s| *s.get_ref())
                    .unwrap_or(default_sudo),
                openssh: raw
                    .transport
                    .as_ref()
                    .map(|t| *t.get_ref() == RawTransport::Openssh)
                    .unwrap_or(default_openssh)
                    .then(|| OpenSsh {
                        user: raw
                            .user
                            .as_ref()
                            .or(d.user.as_ref())
                            .map(|u| u.get_ref().clone()),
                        port: raw.port.as_ref().or(d.port.as_ref()).map(|p| *p.get_ref()),
                        known_hosts: raw
                            .known_hosts
                            .as_ref()
                            .or(d.known_hosts.as_ref())
                            .map(|k| expand_tilde(k.get_ref())),
                        jump: None,
                    }),
            };
            if good_name {
                nodes.insert(name.clone(), node);
            }
        }
        self.ssh_jumps(doc, &mut nodes);
        nodes
    }

    /// `ssh_jump`: another node of the topology, itself reached directly, for a
    /// node on the OpenSSH transport (the built-in client has no jump).
    fn ssh_jumps(&mut self, doc: &Document, nodes: &mut BTreeMap<String, Node>) {
        let mut jumps = Vec::new();
        for Entry { name, value, .. } in &doc.nodes {
            let Some(jump) = value.as_ref().and_then(|raw| raw.ssh_jump.as_ref()) else {
                continue;
            };
            let Some(node) = nodes.get(name) else {
                continue;
            };
            let to = jump.get_ref();
            let problem = |why: String, help: &str| {
                Problem::at(format!("invalid ssh_jump {to:?}"), jump.span(), why).help(help)
            };
            if node.openssh.is_none() {
                self.push(problem(
                    format!("node {name} uses the built-in SSH client (transport = \"ssh2\"), which has no jump host"),
                    "jump hosts need transport = \"openssh\" (on the node or in [defaults])",
                ));
                continue;
            }
            let bastion = match nodes.get(to) {
                None => {
                    self.push(problem(
                        format!("there is no node {to:?}"),
                        "ssh_jump names another node of this topology (a jump that only ~/.ssh/config knows needs no ssh_jump: use ProxyJump there)",
                    ));
                    continue;
                }
                Some(_) if to == name => {
                    self.push(problem(
                        "a node cannot be its own jump host".into(),
                        "name the bastion node",
                    ));
                    continue;
                }
                Some(b) => b,
            };
            let chained = doc
                .nodes
                .iter()
                .any(|e| e.name == *to && e.value.as_ref().is_some_and(|r| r.ssh_jump.is_some()));
            if chained || bastion.address == NodeAddress::Local {
                self.push(problem(
                    format!("node {to} is itself behind a jump host or local"),
                    "a jump host is a node reached directly over SSH; chains of jumps belong in ~/.ssh/config (ProxyJump a,b)",
                ));
                continue;
            }
            jumps.push((name.clone(), bastion.clone()));
        }
        for (name, bastion) in jumps {
            if let Some(o) = nodes.get_mut(&name).and_then(|n| n.openssh.as_mut()) {
                o.jump = Some(Box::new(bastion));
            }
        }
    }

    pub(super) fn address(&mut self, a: &Spanned<String>) -> Option<NodeAddress> {
        let s = a.get_ref();
        if s == "local" {
            return Some(NodeAddress::Local);
        }
        if let Some(why) = host_problem(s) {
            self.push(
                Problem::at(format!("invalid node address {s:?}"), a.span(), why).help(
                    "an address is an IPv4 address, a DNS name, or \"local\" for this machine",
                ),
            );
            return None;
        }
        Some(NodeAddress::Remote(s.clone()))
    }

    /// `ssh_host`: a host name or address, as `address` is; meaningless on `local`.
    fn ssh_host(
        &mut self,
        h: Option<&Spanned<String>>,
        address: Option<&NodeAddress>,
    ) -> Option<String> {
        let h = h?;
        let s = h.get_ref();
        if address == Some(&NodeAddress::Local) {
            self.push(
                Problem::at(
                    "ssh_host on a local node",
                    h.span(),
                    "a `local` node is reached without SSH",
                )
                .help("remove ssh_host, or give the node its network address"),
            );
            return None;
        }
        if let Some(why) = host_problem(s) {
            self.push(
                Problem::at(format!("invalid ssh_host {s:?}"), h.span(), why)
                    .help("ssh_host is a DNS name, an IPv4 address or an ssh_config Host alias"),
            );
            return None;
        }
        Some(s.clone())
    }

    pub(super) fn user(&mut self, u: Option<&Spanned<String>>) -> Option<String> {
        let u = u?;
        let s = u.get_ref();
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !s.starts_with('-');
        if !ok {
            self.push(Problem::at(
                format!("invalid user name {s:?}"),
                u.span(),
                "must be 1 to 32 characters of A-Z a-z 0-9 _ . - (not starting with -)",
            ));
            return None;
        }
        Some(s.clone())
    }

    pub(super) fn port_value(&mut self, p: Option<&Spanned<u16>>) -> Option<u16> {
        let p = p?;
        if *p.get_ref() == 0 {
            self.push(Problem::at(
                "port 0 is not a port",
                p.span(),
                "expected 1 to 65535",
            ));
            return None;
        }
        Some(*p.get_ref())
    }

    pub(super) fn path(&mut self, p: Option<&Spanned<String>>) -> Option<PathBuf> {
        let p = p?;
        let s = p.get_ref();
        if s.is_empty() || s.contains('\0') {
            self.push(Problem::at(
                "invalid path",
                p.span(),
                "must be non-empty, without NUL",
            ));
            return None;
        }
        Some(expand_tilde(s))
    }

    pub(super) fn host_ports(&mut self, r: Option<&Spanned<String>>) -> Option<PortRange> {
        let r = r?;
        let parsed = r.get_ref().split_once('-').and_then(|(a, b)| {
            let first: u16 = a.trim().parse().ok()?;
            let last: u16 = b.trim().parse().ok()?;
            (first >= 1 && first <= last).then_some(PortRange { first, last })
        });
        if parsed.is_none() {
            self.push(Problem::at(
                format!("invalid host port range {:?}", r.get_ref()),
                r.span(),
                "expected \"FIRST-LAST\" with 1 <= FIRST <= LAST <= 65535",
            ));
        }
        parsed
    }
}

fn runtime(r: RawRuntime) -> Runtime {
    match r {
        RawRuntime::Podman => Runtime::Podman,
        RawRuntime::Docker => Runtime::Docker,
    }
}

fn firewall(f: RawFirewall) -> Firewall {
    match f {
        RawFirewall::Iptables => Firewall::Iptables,
        RawFirewall::Nftables => Firewall::Nftables,
    }
}

/// `~` and `~/...` from `$HOME`; anything else as written.
fn expand_tilde(p: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (p, home) {
        ("~", Some(h)) => PathBuf::from(h),
        (p, Some(h)) if p.starts_with("~/") => PathBuf::from(h).join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}
