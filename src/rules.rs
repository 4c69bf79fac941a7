//! iptables rules as text: rendering a container's owned chains in the exact form
//! `iptables-save` prints them, the `iptables-restore --noflush` document that puts
//! them in place atomically, and parsing the owned part back out of `iptables-save`.
//! Pure functions, no I/O.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};

use crate::state::{hex, OwnedChains};
use crate::topology::model::Protocol;

/// (table, built-in chain, the chain geartopo owns beside it), by owned name: the
/// nat chains that carry the links, and the filter chain of the route_localnet guard.
pub const CHAINS: [(&str, &str, &str); 4] = [
    ("filter", "INPUT", GUARD_CHAIN),
    ("nat", "OUTPUT", "GEARTOPO-OUTPUT"),
    ("nat", "POSTROUTING", "GEARTOPO-POSTROUTING"),
    ("nat", "PREROUTING", "GEARTOPO-PREROUTING"),
];

/// The tables of `CHAINS`, in the order the restore document writes them.
pub const TABLES: [&str; 2] = ["filter", "nat"];

/// The owned filter chain, jumped to from INPUT: the route_localnet guard.
pub const GUARD_CHAIN: &str = "GEARTOPO-INPUT";

/// The route_localnet guard (CVE-2020-8558, what kube-proxy adds): every
/// container has `route_localnet=1` for its links, which lets a neighbour on the
/// same bridge reach services bound to 127.0.0.1 inside it with a frame sent to
/// its MAC. This drops packets to 127.0.0.0/8 that did not come from 127.0.0.0/8
/// and are neither DNAT'd (a link to the container itself) nor part of a flow.
pub fn guard_rule(topology: &str, container: &str) -> String {
    [
        "-A ",
        GUARD_CHAIN,
        " ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"geartopo ",
        topology,
        " ",
        container,
        " route_localnet guard\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
    ]
    .concat()
}

/// The table an owned chain lives in.
pub fn table_of(owned: &str) -> &'static str {
    CHAINS
        .iter()
        .find(|(_, _, o)| *o == owned)
        .map(|(t, _, _)| *t)
        .unwrap_or("nat")
}

/// A link with its destination resolved to an address: what one DNAT does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedLink {
    pub listen_ip: Ipv4Addr,
    pub listen_port: u16,
    pub protocol: Protocol,
    pub dest_ip: Ipv4Addr,
    pub dest_port: u16,
    /// What the link leads to, for the rule comment (`redisdb:6379`).
    pub describe: String,
}

impl ResolvedLink {
    /// A link to the container itself needs no source rewrite.
    fn is_loopback(&self) -> bool {
        self.dest_ip.is_loopback()
    }
}

/// The rule lines of a container's owned chains, exactly as `iptables-save` prints
/// them, grouped by chain in the order `iptables-save` lists chains (by name):
/// the route_localnet guard first (GEARTOPO-INPUT, in the filter table), then the
/// nat chains of the links. The marker rule is not included.
pub fn render_rules(topology: &str, container: &str, links: &[ResolvedLink]) -> Vec<String> {
    // The chains in iptables-save's order (by name): GEARTOPO-INPUT (the guard),
    // GEARTOPO-OUTPUT, GEARTOPO-POSTROUTING.
    let mut output = Vec::with_capacity(links.len());
    let mut postrouting = Vec::with_capacity(links.len());
    let mut masqueraded = Vec::new();
    // The link's addresses and ports as text, written by hand into one buffer
    // reused for every link: `Display` of four addresses and ports a rule was
    // most of rendering a large plan's rules.
    let mut scratch = String::with_capacity(48);
    for link in links {
        let p = link.protocol.as_str();
        // Pieces joined by `concat` (one allocation per rule): every plan renders
        // every rule of every container. The forms, as iptables-save prints:
        // -A GEARTOPO-OUTPUT -d L/32 -p P -m P --dport LP -m comment --comment
        //   "geartopo T C L:LP/P to DESCRIBE" -j DNAT --to-destination D:DP
        // -A GEARTOPO-POSTROUTING -d D/32 -p P -m P --dport DP -m comment --comment
        //   "geartopo T C source for D:DP/P" -j MASQUERADE
        scratch.clear();
        push_ipv4(&mut scratch, link.listen_ip);
        let a = scratch.len();
        push_u16(&mut scratch, link.listen_port);
        let b = scratch.len();
        push_ipv4(&mut scratch, link.dest_ip);
        let c = scratch.len();
        push_u16(&mut scratch, link.dest_port);
        let (listen, listen_port) = (&scratch[..a], &scratch[a..b]);
        let (dest, dest_port) = (&scratch[b..c], &scratch[c..]);
        // iptables keeps at most 255 bytes of a comment; a long raw DNS target
        // would make the restore fail at apply time, so its description is cut.
        let fixed = "geartopo ".len()
            + topology.len()
            + container.len()
            + listen.len()
            + listen_port.len()
            + p.len()
            + 8;
        let describe = shorten(&link.describe, COMMENT_MAX.saturating_sub(fixed));
        output.push(
            [
                "-A GEARTOPO-OUTPUT -d ",
                listen,
                "/32 -p ",
                p,
                " -m ",
                p,
                " --dport ",
                listen_port,
                " -m comment --comment \"geartopo ",
                topology,
                " ",
                container,
                " ",
                listen,
                ":",
                listen_port,
                "/",
                p,
                " to ",
                describe,
                "\" -j DNAT --to-destination ",
                dest,
                ":",
                dest_port,
            ]
            .concat(),
        );
        let key = (link.dest_ip, link.dest_port, link.protocol);
        if !link.is_loopback() && !masqueraded.contains(&key) {
            masqueraded.push(key);
            postrouting.push(
                [
                    "-A GEARTOPO-POSTROUTING -d ",
                    dest,
                    "/32 -p ",
                    p,
                    " -m ",
                    p,
                    " --dport ",
                    dest_port,
                    " -m comment --comment \"geartopo ",
                    topology,
                    " ",
                    container,
                    " source for ",
                    dest,
                    ":",
                    dest_port,
                    "/",
                    p,
                    "\" -j MASQUERADE",
                ]
                .concat(),
            );
        }
    }
    let mut rules = Vec::with_capacity(1 + output.len() + postrouting.len());
    rules.push(guard_rule(topology, container));
    rules.append(&mut output);
    rules.append(&mut postrouting);
    rules
}

/// `n` in decimal, as `Display` writes it.
fn push_u16(s: &mut String, n: u16) {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.push_str(std::str::from_utf8(&digits[i..]).expect("ascii digits"));
}

/// `ip` in dotted decimal, as `Display` writes it.
fn push_ipv4(s: &mut String, ip: Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        push_u16(s, u16::from(octet));
    }
}

/// The longest comment iptables keeps.
const COMMENT_MAX: usize = 255;

/// `text`, cut to at most `max` bytes. Rule text is ASCII (names are
/// validated), so any byte is a character boundary.
fn shorten(text: &str, max: usize) -> &str {
    &text[..text.len().min(max)]
}

/// The hash a marker records: of the owned rules, in order.
pub fn rules_hash(rules: &[String]) -> String {
    // The hash of the rules joined by newlines, without making the joined text:
    // every plan checks every container's marker with it.
    let mut hasher = Sha256::new();
    for (i, rule) in rules.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(rule.as_bytes());
    }
    hex(&hasher.finalize())[..16].to_string()
}

/// The marker rule: the last rule of GEARTOPO-POSTROUTING, recording what the last
/// apply wrote, so that a change made by hand shows as drift. It only returns.
pub fn marker_rule(topology: &str, container: &str, hash: &str) -> String {
    format!("-A GEARTOPO-POSTROUTING -m comment --comment \"geartopo {topology} {container} applied {hash}\" -j RETURN")
}

/// The `iptables-restore --noflush` document that replaces the owned chains (and
/// only them) with `rules`: one section per table (filter, then nat), each
/// committed atomically; the marker last, in the nat section, so that it is
/// only written once everything else is.
pub fn render_restore(topology: &str, container: &str, rules: &[String]) -> String {
    let size: usize = rules.iter().map(|r| r.len() + 1).sum();
    let mut doc = String::with_capacity(size + 256 + topology.len() + container.len());
    for table in TABLES {
        doc.push('*');
        doc.push_str(table);
        doc.push('\n');
        for (_, _, owned) in CHAINS.iter().filter(|(t, _, _)| *t == table) {
            doc.push(':');
            doc.push_str(owned);
            doc.push_str(" - [0:0]\n");
        }
        for rule in rules {
            let chain = rule.split_whitespace().nth(1).unwrap_or("");
            if table_of(chain) == table {
                doc.push_str(rule);
                doc.push('\n');
            }
        }
        if table == "nat" {
            doc.push_str(&marker_rule(topology, container, &rules_hash(rules)));
            doc.push('\n');
        }
        doc.push_str("COMMIT\n");
    }
    doc
}

/// The jump rule from a built-in chain into its owned chain.
pub fn jump_rule(builtin: &str, owned: &str) -> String {
    format!("-A {builtin} -j {owned}")
}

/// Reads the owned part of `iptables-save` output of the nat and filter tables
/// (one after the other). A jump counts only in its own table (nat has an INPUT
/// chain too); output without `*table` lines is read as any table.
pub fn parse_owned(save: &str) -> OwnedChains {
    let mut chains = OwnedChains::default();
    let owned_names: Vec<&str> = CHAINS.iter().map(|(_, _, o)| *o).collect();
    let mut table: Option<&str> = None;
    for line in save.lines() {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix('*') {
            table = Some(name.trim());
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl.split_whitespace().next().unwrap_or("");
            if owned_names.contains(&name) {
                chains.declared.insert(name.to_string());
            }
            continue;
        }
        let Some(rest) = line.strip_prefix("-A ") else {
            continue;
        };
        let chain = rest.split_whitespace().next().unwrap_or("");
        if owned_names.contains(&chain) {
            if let Some(hash) = marker_hash(line) {
                chains.marker = Some(hash);
            } else {
                chains.rules.push(line.to_string());
            }
            continue;
        }
        for (t, builtin, owned) in CHAINS {
            // `line == jump_rule(builtin, owned)`, without making the rule's text
            // for every line of every namespace read.
            let jump = rest
                .strip_prefix(builtin)
                .and_then(|r| r.strip_prefix(" -j "))
                == Some(owned);
            if table.is_none_or(|table| table == t) && jump {
                *chains.jumps.entry(builtin.to_string()).or_default() += 1;
            }
        }
    }
    // Keep the canonical order (by chain name, stable within a chain), whatever
    // order this iptables-save listed its chains in.
    chains.rules.sort_by(|a, b| {
        a.split_whitespace()
            .nth(1)
            .cmp(&b.split_whitespace().nth(1))
    });
    chains
}

fn marker_hash(line: &str) -> Option<String> {
    if !line.ends_with("-j RETURN") {
        return None;
    }
    let start = line.find("--comment \"geartopo ")?;
    let comment = &line[start + "--comment \"".len()..];
    let comment = &comment[..comment.find('"')?];
    let words: Vec<&str> = comment.split(' ').collect();
    match words.as_slice() {
        ["geartopo", _, _, "applied", hash] => Some(hash.to_string()),
        _ => None,
    }
}

impl OwnedChains {
    /// True when these are the chains of a geartopo from before the route_localnet
    /// guard, as it left them: marker matching, nat chains in place, nothing of
    /// the guard. (Once a guard was applied, the marker's hash covers it, so a
    /// guard removed by hand never looks like this.)
    pub fn before_guard(&self) -> bool {
        !self.declared.contains(GUARD_CHAIN)
            && !self.jumps.contains_key("INPUT")
            && !self
                .rules
                .iter()
                .any(|r| r.split_whitespace().nth(1) == Some(GUARD_CHAIN))
            && self.marker.as_deref() == Some(rules_hash(&self.rules).as_str())
            && CHAINS
                .iter()
                .filter(|(t, _, _)| *t == "nat")
                .all(|(_, b, o)| self.declared.contains(*o) && self.jumps.get(*b) == Some(&1))
    }

    /// True when the chains are exactly what the last apply wrote (marker matches,
    /// all chains declared, each jump present once).
    pub fn intact(&self) -> bool {
        self.marker.as_deref() == Some(rules_hash(&self.rules).as_str())
            && CHAINS
                .iter()
                .all(|(_, b, o)| self.declared.contains(*o) && self.jumps.get(*b) == Some(&1))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_and_ports_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "198.18.3.250",
            "255.255.255.255",
            "10.0.10.9",
        ] {
            let ip: Ipv4Addr = ip.parse().unwrap();
            let mut s = String::new();
            push_ipv4(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
        for n in [0u16, 1, 9, 10, 99, 100, 6379, 10000, 65535] {
            let mut s = String::new();
            push_u16(&mut s, n);
            assert_eq!(s, n.to_string());
        }
    }

    use super::*;
    use crate::state::short_hash;

    fn redis_link() -> ResolvedLink {
        ResolvedLink {
            listen_ip: Ipv4Addr::new(127, 0, 0, 1),
            listen_port: 6379,
            protocol: Protocol::Tcp,
            dest_ip: Ipv4Addr::new(198, 18, 0, 4),
            dest_port: 50000,
            describe: "redisdb:6379".into(),
        }
    }

    #[test]
    fn restore_document_is_golden() {
        let self_link = ResolvedLink {
            listen_ip: Ipv4Addr::new(192, 168, 1, 1),
            listen_port: 27017,
            protocol: Protocol::Udp,
            dest_ip: Ipv4Addr::LOCALHOST,
            dest_port: 27017,
            describe: "db-1:27017 (itself)".into(),
        };
        let rules = render_rules("todo", "app1", &[redis_link(), self_link]);
        let doc = render_restore("todo", "app1", &rules);
        let expected = format!(
            r#"*filter
:GEARTOPO-INPUT - [0:0]
-A GEARTOPO-INPUT ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "geartopo todo app1 route_localnet guard" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
COMMIT
*nat
:GEARTOPO-OUTPUT - [0:0]
:GEARTOPO-POSTROUTING - [0:0]
:GEARTOPO-PREROUTING - [0:0]
-A GEARTOPO-OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6379 -m comment --comment "geartopo todo app1 127.0.0.1:6379/tcp to redisdb:6379" -j DNAT --to-destination 198.18.0.4:50000
-A GEARTOPO-OUTPUT -d 192.168.1.1/32 -p udp -m udp --dport 27017 -m comment --comment "geartopo todo app1 192.168.1.1:27017/udp to db-1:27017 (itself)" -j DNAT --to-destination 127.0.0.1:27017
-A GEARTOPO-POSTROUTING -d 198.18.0.4/32 -p tcp -m tcp --dport 50000 -m comment --comment "geartopo todo app1 source for 198.18.0.4:50000/tcp" -j MASQUERADE
-A GEARTOPO-POSTROUTING -m comment --comment "geartopo todo app1 applied {}" -j RETURN
COMMIT
"#,
            rules_hash(&rules)
        );
        assert_eq!(doc, expected);
    }

    #[test]
    fn rules_hash_is_the_short_hash_of_the_joined_rules() {
        // Markers written by earlier applies must still match.
        let rules = render_rules("todo", "app1", &[redis_link()]);
        assert_eq!(rules_hash(&rules), short_hash(&rules.join("\n")));
        assert_eq!(rules_hash(&[]), short_hash(""));
    }

    #[test]
    fn a_long_raw_host_keeps_the_comment_within_what_iptables_keeps() {
        let mut link = redis_link();
        link.describe = format!("{}.example:53", "a".repeat(240));
        let name = "c".repeat(63);
        let rules = render_rules(&"t".repeat(32), &name, &[link]);
        for rule in &rules {
            let start = rule.find("--comment \"").unwrap() + "--comment \"".len();
            let comment = &rule[start..start + rule[start..].find('"').unwrap()];
            assert!(
                comment.len() <= COMMENT_MAX,
                "{} bytes: {comment}",
                comment.len()
            );
        }
    }

    #[test]
    fn two_links_to_one_destination_masquerade_once() {
        let mut second = redis_link();
        second.listen_ip = Ipv4Addr::new(127, 0, 0, 2);
        second.listen_port = 7000;
        let rules = render_rules("todo", "app1", &[redis_link(), second]);
        assert_eq!(rules.iter().filter(|r| r.contains("MASQUERADE")).count(), 1);
        assert_eq!(rules.iter().filter(|r| r.contains("-j DNAT")).count(), 2);
    }

    #[test]
    fn parse_reads_back_what_was_rendered_and_ignores_foreign_rules() {
        let rules = render_rules("todo", "app1", &[redis_link()]);
        let (filter, nat) = rules.split_at(1);
        // As the observe script reads them: the nat table, then the filter table.
        let save = format!(
            "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:FOREIGN - [0:0]\n:GEARTOPO-OUTPUT - [0:0]\n:GEARTOPO-POSTROUTING - [0:0]\n:GEARTOPO-PREROUTING - [0:0]\n-A PREROUTING -j GEARTOPO-PREROUTING\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A OUTPUT -d 10.9.9.9/32 -j FOREIGN\n-A POSTROUTING -j GEARTOPO-POSTROUTING\n{}\n{}\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:GEARTOPO-INPUT - [0:0]\n:FOREIGN - [0:0]\n-A INPUT -j GEARTOPO-INPUT\n-A INPUT -s 10.9.9.9/32 -j FOREIGN\n{}\nCOMMIT\n",
            nat.join("\n"),
            marker_rule("todo", "app1", &rules_hash(&rules)),
            filter.join("\n"),
        );
        let owned = parse_owned(&save);
        assert_eq!(owned.rules, rules);
        assert!(owned.intact());
        assert_eq!(owned.jumps.get("OUTPUT"), Some(&1));
        assert_eq!(owned.jumps.get("INPUT"), Some(&1));
    }

    #[test]
    fn the_guard_is_the_first_rule_and_goes_into_the_filter_table() {
        let rules = render_rules("todo", "app1", &[]);
        assert_eq!(rules, [guard_rule("todo", "app1")]);
        let doc = render_restore("todo", "app1", &rules);
        let filter = &doc[..doc.find("*nat").unwrap()];
        assert!(filter.starts_with("*filter\n:GEARTOPO-INPUT - [0:0]\n"));
        assert!(filter.contains(&rules[0]), "{doc}");
        assert!(!doc[doc.find("*nat").unwrap()..].contains("GEARTOPO-INPUT"));
    }

    #[test]
    fn a_jump_into_the_guard_from_the_nat_input_chain_does_not_count() {
        let rules = render_rules("todo", "app1", &[]);
        let save = format!(
            "*nat\n:GEARTOPO-OUTPUT - [0:0]\n:GEARTOPO-POSTROUTING - [0:0]\n:GEARTOPO-PREROUTING - [0:0]\n-A PREROUTING -j GEARTOPO-PREROUTING\n-A INPUT -j GEARTOPO-INPUT\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A POSTROUTING -j GEARTOPO-POSTROUTING\n{}\nCOMMIT\n*filter\n:GEARTOPO-INPUT - [0:0]\n{}\nCOMMIT\n",
            marker_rule("todo", "app1", &rules_hash(&rules)),
            rules[0],
        );
        let owned = parse_owned(&save);
        assert_eq!(owned.jumps.get("INPUT"), None);
        assert!(!owned.intact());
    }

    #[test]
    fn the_guard_flushed_by_hand_breaks_the_marker() {
        let rules = render_rules("todo", "app1", &[redis_link()]);
        let mut doc = render_restore("todo", "app1", &rules);
        doc = doc.replace(&format!("{}\n", rules[0]), "");
        let save = doc.replace(":GEARTOPO-INPUT - [0:0]\n", ":GEARTOPO-INPUT - [0:0]\n-A INPUT -j GEARTOPO-INPUT\n")
            .replace(":GEARTOPO-PREROUTING - [0:0]\n", ":GEARTOPO-PREROUTING - [0:0]\n-A PREROUTING -j GEARTOPO-PREROUTING\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A POSTROUTING -j GEARTOPO-POSTROUTING\n");
        let owned = parse_owned(&save);
        assert!(!owned.rules.contains(&rules[0]));
        assert!(!owned.intact());
    }

    #[test]
    fn a_rule_deleted_by_hand_breaks_the_marker() {
        let rules = render_rules("todo", "app1", &[redis_link()]);
        let save = format!(
            ":GEARTOPO-OUTPUT - [0:0]\n:GEARTOPO-POSTROUTING - [0:0]\n:GEARTOPO-PREROUTING - [0:0]\n-A PREROUTING -j GEARTOPO-PREROUTING\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A POSTROUTING -j GEARTOPO-POSTROUTING\n{}\n{}\n",
            rules[1],
            marker_rule("todo", "app1", &rules_hash(&rules))
        );
        let owned = parse_owned(&save);
        assert!(!owned.intact());
        assert_eq!(owned.rules.len(), 1);
    }

    #[test]
    fn a_duplicated_jump_is_not_intact() {
        let rules: Vec<String> = vec![];
        let save = format!(
            ":GEARTOPO-INPUT - [0:0]\n:GEARTOPO-OUTPUT - [0:0]\n:GEARTOPO-POSTROUTING - [0:0]\n:GEARTOPO-PREROUTING - [0:0]\n-A INPUT -j GEARTOPO-INPUT\n-A PREROUTING -j GEARTOPO-PREROUTING\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A OUTPUT -j GEARTOPO-OUTPUT\n-A POSTROUTING -j GEARTOPO-POSTROUTING\n{}\n",
            marker_rule("todo", "app1", &rules_hash(&rules))
        );
        let owned = parse_owned(&save);
        assert_eq!(owned.jumps.get("OUTPUT"), Some(&2));
        assert!(!owned.intact());
    }
}
