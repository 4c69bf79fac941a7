//! Private published ports (issue 15, docs/private-ports.md): a port published
//! with `private = true` is open only to the nodes whose containers link to it.
//! On the node, one chain geartopo owns in the filter table, jumped to first from
//! FORWARD, lets through new flows to the port's host port (`--ctstate DNAT
//! --ctorigdstport`, the runtime's own DNAT in nat PREROUTING having already
//! happened) from the linking nodes' addresses, and refuses the rest; replies and
//! other traffic return untouched. The chain is named after the topology's id (its
//! name without one), so two topologies on one node never share it.
//!
//! Here: the chain's name, the rules in iptables-save's own form, the restore
//! document that applies them, and the reading of the owned lines out of the
//! node's `iptables-save -t filter`. Pure text, no I/O; nothing here reads or
//! writes any chain but `GEARTOPO-PP-*`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::state::short_hash;
use crate::topology::model::Protocol;

/// What every private-ports chain is called before its owner's hash.
pub const PREFIX: &str = "GEARTOPO-PP-";

/// The built-in chain that jumps into it.
pub const BUILTIN: &str = "FORWARD";

/// The chain of one topology: `GEARTOPO-PP-` and 16 hex digits of a hash of its
/// id (of its name when it has none): 28 characters, iptables' limit.
pub fn chain_name(topology: &str, id: Option<&str>) -> String {
    let owner = match id {
        Some(id) => format!("id:{id}"),
        None => format!("name:{topology}"),
    };
    let hash = short_hash(&owner);
    format!("{PREFIX}{}", &hash[..16.min(hash.len())])
}

/// The owned part of a node's filter table, and what sources a local container
/// has there (the runtime's container networks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFilter {
    /// Every `GEARTOPO-PP-*` chain declared, with its rules in order (whoever
    /// owns it: plan keeps to its own).
    pub chains: BTreeMap<String, Vec<String>>,
    /// How many times FORWARD jumps into each `GEARTOPO-PP-*` chain.
    pub jumps: BTreeMap<String, usize>,
    /// The runtime's default container network(s), `A.B.C.D/N`: where a
    /// container on this node comes from when it links to a port of this node.
    pub subnets: Vec<String>,
}

impl NodeFilter {
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.jumps.is_empty() && self.subnets.is_empty()
    }
}

/// Reads the owned lines of `iptables-save -t filter` (the node script already
/// keeps only those; anything else is ignored here too).
pub fn parse_filter(save: &str) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, usize>) {
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut jumps: BTreeMap<String, usize> = BTreeMap::new();
    let jump_prefix = format!("-A {BUILTIN} -j {PREFIX}");
    for line in save.lines() {
        if let Some(rest) = line.strip_prefix(':') {
            let name = rest.split_whitespace().next().unwrap_or("");
            if name.starts_with(PREFIX) {
                chains.entry(name.to_string()).or_default();
            }
        } else if let Some(chain) = line.strip_prefix(&jump_prefix) {
            if !chain.contains(' ') {
                *jumps.entry(format!("{PREFIX}{chain}")).or_default() += 1;
            }
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            if name.starts_with(PREFIX) {
                chains
                    .entry(name.to_string())
                    .or_default()
                    .push(line.to_string());
            }
        }
    }
    (chains, jumps)
}

/// A `A.B.C.D/N` network in iptables-save's form (the network address), or
/// `None` for anything else.
pub fn network(cidr: &str) -> Option<String> {
    let (addr, len) = cidr.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(format!("{}/{len}", Ipv4Addr::from(u32::from(addr) & mask)))
}

/// A source that may reach a private port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A linking node's address (its runtime masquerades its containers' flows).
    Node(Ipv4Addr),
    /// A container network of the port's own node, in iptables-save's form.
    Network(String),
}

impl Source {
    fn arg(&self) -> String {
        match self {
            Source::Node(ip) => format!("{ip}/32"),
            Source::Network(n) => n.clone(),
        }
    }
}

/// One private port on a node and who may reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivatePort {
    pub container: String,
    pub protocol: Protocol,
    pub port: u16,
    pub host_port: u16,
    /// Sorted, no repeats.
    pub sources: Vec<Source>,
}

/// The chain's rules as iptables-save prints them: per port (in the order
/// given), a RETURN for each accepted source, then a refusal (a TCP reset, or an
/// ICMP port unreachable for UDP). Only flows in their original direction are
/// matched, so that replies (whose source is the container) pass.
pub fn render_rules(topology: &str, chain: &str, ports: &[PrivatePort]) -> Vec<String> {
    let mut out = Vec::new();
    for p in ports {
        let proto = p.protocol.as_str();
        let matches = format!(
            "-p {proto} -m conntrack --ctstate DNAT --ctorigdstport {} --ctdir ORIGINAL -m comment --comment \"geartopo {topology} {} {}/{proto}\"",
            p.host_port, p.container, p.port
        );
        for s in &p.sources {
            out.push(format!("-A {chain} -s {} {matches} -j RETURN", s.arg()));
        }
        let refuse = match p.protocol {
            Protocol::Tcp => "tcp-reset",
            Protocol::Udp => "icmp-port-unreachable",
        };
        out.push(format!(
            "-A {chain} {matches} -j REJECT --reject-with {refuse}"
        ));
    }
    out
}

/// The `iptables-restore --noflush` document that makes `chain` exactly `rules`
/// (declaring it flushes it and only it).
pub fn render_restore(chain: &str, rules: &[String]) -> String {
    let mut s = format!("*filter\n:{chain} - [0:0]\n");
    for r in rules {
        s.push_str(r);
        s.push('\n');
    }
    s.push_str("COMMIT\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_topologies_of_one_name_get_two_chains_within_iptables_limit() {
        let a = chain_name("web", Some("0123456789abcdef0123"));
        let b = chain_name("web", Some("fedcba98765432100123"));
        let c = chain_name("web", None);
        assert_ne!(a, b);
        assert_ne!(a, c);
        for n in [&a, &b, &c] {
            assert!(n.starts_with(PREFIX) && n.len() == 28, "{n}");
        }
        assert_eq!(a, chain_name("web", Some("0123456789abcdef0123")));
    }

    #[test]
    fn only_owned_lines_are_read() {
        let save = "*filter\n:FORWARD ACCEPT [0:0]\n:GEARTOPO-PP-aaaa - [0:0]\n:GEARTOPO-PP-bbbb - [0:0]\n:DOCKER-USER - [0:0]\n\
            -A FORWARD -j GEARTOPO-PP-aaaa\n-A FORWARD -j GEARTOPO-PP-aaaa\n-A FORWARD -j DOCKER-USER\n\
            -A FORWARD -i x -j GEARTOPO-PP-bbbb\n-A GEARTOPO-PP-aaaa -s 1.2.3.4/32 -j RETURN\n-A DOCKER-USER -j RETURN\nCOMMIT\n";
        let (chains, jumps) = parse_filter(save);
        assert_eq!(
            chains,
            BTreeMap::from([
                (
                    "GEARTOPO-PP-aaaa".to_string(),
                    vec!["-A GEARTOPO-PP-aaaa -s 1.2.3.4/32 -j RETURN".to_string()]
                ),
                ("GEARTOPO-PP-bbbb".to_string(), vec![]),
            ])
        );
        // A jump with conditions is not ours: not counted.
        assert_eq!(jumps, BTreeMap::from([("GEARTOPO-PP-aaaa".to_string(), 2)]));
    }

    #[test]
    fn networks_are_written_as_iptables_save_writes_them() {
        assert_eq!(network("10.88.0.1/16").as_deref(), Some("10.88.0.0/16"));
        assert_eq!(network("172.17.0.0/16").as_deref(), Some("172.17.0.0/16"));
        assert_eq!(network("fd00::/64"), None);
        assert_eq!(network("10.0.0.0/33"), None);
    }

    /// The form checked against `iptables-save` on a lab node (podman 4.3 and
    /// docker 20.10): what is written is what is read back, so no false drift.
    #[test]
    fn rules_in_iptables_save_form() {
        let rules = render_rules(
            "todo",
            "GEARTOPO-PP-0123456789abcdef",
            &[PrivatePort {
                container: "redisdb".into(),
                protocol: Protocol::Tcp,
                port: 6379,
                host_port: 50000,
                sources: vec![
                    Source::Node(Ipv4Addr::new(198, 18, 0, 2)),
                    Source::Network("10.88.0.0/16".into()),
                ],
            }],
        );
        assert_eq!(
            rules,
            [
                "-A GEARTOPO-PP-0123456789abcdef -s 198.18.0.2/32 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment \"geartopo todo redisdb 6379/tcp\" -j RETURN",
                "-A GEARTOPO-PP-0123456789abcdef -s 10.88.0.0/16 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment \"geartopo todo redisdb 6379/tcp\" -j RETURN",
                "-A GEARTOPO-PP-0123456789abcdef -p tcp -m conntrack --ctstate DNAT --ctorigdstport 50000 --ctdir ORIGINAL -m comment --comment \"geartopo todo redisdb 6379/tcp\" -j REJECT --reject-with tcp-reset",
            ]
        );
        let doc = render_restore("GEARTOPO-PP-0123456789abcdef", &rules);
        assert!(doc.starts_with("*filter\n:GEARTOPO-PP-0123456789abcdef - [0:0]\n-A "));
        assert!(doc.ends_with("COMMIT\n"));
    }
}
