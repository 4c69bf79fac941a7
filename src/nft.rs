//! nftables rules as text: a container's links as one table of geartopo's own
//! (`table ip geartopo`) in its network namespace, the `nft -f` document that
//! replaces that table in one kernel transaction, and (in [`read`]) the table read
//! back from `nft -j list table ip geartopo` into the same normalized form.
//!
//! The same links, guard and marker as the iptables form of `crate::rules`:
//! - chain `output` (nat, hook output, priority -100): one DNAT per link;
//! - chain `postrouting` (nat, hook postrouting, priority 100): one masquerade per
//!   distinct remote destination, then the marker rule, last;
//! - chain `input` (filter, hook input, priority 0): the route_localnet guard
//!   (CVE-2020-8558), as kube-proxy adds it.
//!
//! Pure functions, no I/O: the document is text for a transport to carry to a
//! node (`nft -f -` there), never run here. Nothing here names another table.

#[cfg(any(test, feature = "testing"))]
pub mod listing;
pub mod read;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::rules::{rules_hash, ResolvedLink};

/// The address family of geartopo's table.
pub const FAMILY: &str = "ip";
/// The name of geartopo's table in every container namespace.
pub const TABLE: &str = "geartopo";
/// The longest comment nft accepts, in bytes ("comment too long, 128 characters
/// maximum allowed" is checked with `strlen`, checked here with nft 1.0.6).
pub const COMMENT_MAX: usize = 128;

/// The chain names, hooks and priorities geartopo's table is made of.
pub const OUTPUT: &str = "output";
pub const POSTROUTING: &str = "postrouting";
pub const INPUT: &str = "input";

/// The route_localnet guard: drops what reaches 127.0.0.0/8 from elsewhere unless
/// it was DNAT'd here or belongs to a flow already accepted. The same test as the
/// iptables form `! -s 127.0.0.0/8 -d 127.0.0.0/8 -m conntrack ! --ctstate
/// RELATED,ESTABLISHED,DNAT -j DROP`. `ct status ! dnat` (the dnat bit not set),
/// not `ct status != dnat`: `!=` compares the whole status word with the dnat bit
/// alone, which a DNAT'd connection's status (dnat, seen-reply, confirmed...)
/// never equals, so that form dropped every link of a container to itself.
pub const GUARD: &str = "ip saddr != 127.0.0.0/8 ip daddr 127.0.0.0/8 ct status ! dnat ct state != { established, related } drop";

/// geartopo's table in normalized form: what the renderer produces and what
/// [`read::parse_list`] reads back, equal when the namespace holds what was
/// applied. Chains by name; rules in the order nft evaluates them (order is part
/// of a ruleset's meaning, so it is compared, not sorted away).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftTable {
    pub chains: BTreeMap<String, NftChain>,
}

/// One chain: its base-chain head (`type nat hook output priority -100; policy
/// accept;`), `None` for a regular chain, and its rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftChain {
    pub head: Option<String>,
    pub rules: Vec<NftRule>,
}

/// One rule in nft's own syntax: its statements and its comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftRule {
    pub statements: String,
    pub comment: Option<String>,
}

impl fmt::Display for NftRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.statements)?;
        if let Some(comment) = &self.comment {
            write!(f, " comment \"{comment}\"")?;
        }
        Ok(())
    }
}

/// The head of a base chain, in the form [`read`] normalizes nft's JSON to.
pub fn chain_head(kind: &str, hook: &str, priority: impl fmt::Display, policy: &str) -> String {
    format!("type {kind} hook {hook} priority {priority}; policy {policy};")
}

/// `text` made safe inside an nft quoted string and cut to [`COMMENT_MAX`] bytes.
/// nft's quoted strings have no escapes, so `"` (and control characters, which
/// would break the line-based document) become `_`; the cut falls on a character
/// boundary, so a multi-byte character is dropped whole, never split.
pub fn comment(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c == '"' || c.is_control() { '_' } else { c })
        .collect();
    cut(&clean, COMMENT_MAX).to_string()
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The marker's comment. Its tail (` applied HASH`) is what [`NftTable::marker`]
/// reads, so when the names are long it is they that are cut, never the hash.
fn marker_comment(topology: &str, container: &str, hash: &str) -> String {
    let tail = format!(" applied {hash}");
    let head = comment(&format!("geartopo {topology} {container}"));
    format!("{}{tail}", cut(&head, COMMENT_MAX - tail.len()))
}

const MARKER_STATEMENTS: &str = "return";

/// The table geartopo wants in `container`'s namespace for `links`: the same
/// links as `crate::rules::render_rules` (one DNAT per link, one masquerade per
/// distinct remote destination, none for a link to the container itself), the
/// route_localnet guard, and the marker last in `postrouting`.
pub fn desired(topology: &str, container: &str, links: &[ResolvedLink]) -> NftTable {
    let who = format!("geartopo {topology} {container}");
    let mut output = Vec::with_capacity(links.len());
    let mut postrouting = Vec::new();
    let mut masqueraded = Vec::new();
    for link in links {
        let p = link.protocol.as_str();
        output.push(NftRule {
            statements: format!(
                "ip daddr {} {p} dport {} dnat to {}:{}",
                link.listen_ip, link.listen_port, link.dest_ip, link.dest_port
            ),
            comment: Some(comment(&format!(
                "{who} {}:{}/{p} to {}",
                link.listen_ip, link.listen_port, link.describe
            ))),
        });
        let key = (link.dest_ip, link.dest_port, link.protocol);
        if !link.dest_ip.is_loopback() && !masqueraded.contains(&key) {
            masqueraded.push(key);
            postrouting.push(NftRule {
                statements: format!(
                    "ip daddr {} {p} dport {} masquerade",
                    link.dest_ip, link.dest_port
                ),
                comment: Some(comment(&format!(
                    "{who} source for {}:{}/{p}",
                    link.dest_ip, link.dest_port
                ))),
            });
        }
    }
    let mut table = NftTable::default();
    table.chains.insert(
        INPUT.to_string(),
        NftChain {
            head: Some(chain_head("filter", "input", 0, "accept")),
            rules: vec![NftRule {
                statements: GUARD.to_string(),
                comment: Some(comment(&format!("{who} route_localnet guard"))),
            }],
        },
    );
    table.chains.insert(
        OUTPUT.to_string(),
        NftChain {
            head: Some(chain_head("nat", "output", -100, "accept")),
            rules: output,
        },
    );
    table.chains.insert(
        POSTROUTING.to_string(),
        NftChain {
            head: Some(chain_head("nat", "postrouting", 100, "accept")),
            rules: postrouting,
        },
    );
    let hash = table.content_hash();
    table
        .chains
        .get_mut(POSTROUTING)
        .expect("inserted above")
        .rules
        .push(NftRule {
            statements: MARKER_STATEMENTS.to_string(),
            comment: Some(marker_comment(topology, container, &hash)),
        });
    table
}

/// The `nft -f` document that replaces geartopo's table with `table` in one
/// transaction: declaring the table first makes the delete succeed when it does
/// not exist yet, so the same document applies the first time and every time.
pub fn render_document(table: &NftTable) -> String {
    let mut doc = String::from(DELETE_DOCUMENT);
    doc.push_str(&table.to_nft());
    doc
}

/// `render_document(&desired(..))`: what apply sends to a container's namespace.
pub fn render_apply(topology: &str, container: &str, links: &[ResolvedLink]) -> String {
    render_document(&desired(topology, container, links))
}

/// The lines of `table` in nft's own syntax (`NftTable::to_nft`): what a plan
/// carries as a container's rules on an nftables node and diffs line by line.
pub fn table_lines(table: &NftTable) -> Vec<String> {
    table.to_nft().lines().map(str::to_string).collect()
}

/// The `nft -f` document that replaces geartopo's table with the table whose
/// lines are `lines` (as [`table_lines`] gives them): the same text as
/// [`render_document`] of that table, self-contained and idempotent.
pub fn document_from_lines(lines: &[String]) -> String {
    let mut doc = String::from(DELETE_DOCUMENT);
    for line in lines {
        doc.push_str(line);
        doc.push('\n');
    }
    doc
}

/// The `nft -f` document that removes geartopo's table, and only it, whether or
/// not it exists.
pub const DELETE_DOCUMENT: &str = "table ip geartopo {}\ndelete table ip geartopo\n";

impl NftTable {
    /// The table in nft's own syntax, as `nft -f` reads it: also the text a plan
    /// diffs, line by line.
    pub fn to_nft(&self) -> String {
        let mut out = format!("table {FAMILY} {TABLE} {{\n");
        for (name, chain) in &self.chains {
            out.push_str(&format!("\tchain {name} {{\n"));
            if let Some(head) = &chain.head {
                out.push_str(&format!("\t\t{head}\n"));
            }
            for rule in &chain.rules {
                out.push_str(&format!("\t\t{rule}\n"));
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
    }

    /// The hash the marker records: of every chain, head and rule but the marker.
    pub fn content_hash(&self) -> String {
        let mut lines = Vec::new();
        for (name, chain) in &self.chains {
            lines.push(format!("chain {name}"));
            if let Some(head) = &chain.head {
                lines.push(head.clone());
            }
            let marker = self.marker_index(name);
            for (i, rule) in chain.rules.iter().enumerate() {
                if Some(i) != marker {
                    lines.push(rule.to_string());
                }
            }
        }
        rules_hash(&lines)
    }

    /// The hash recorded by the marker (the last rule of `postrouting`, which
    /// only returns, commented `geartopo T C applied HASH`), if there is one.
    pub fn marker(&self) -> Option<&str> {
        let i = self.marker_index(POSTROUTING)?;
        let text = self.chains[POSTROUTING].rules[i].comment.as_deref()?;
        text.rsplit_once(" applied ").map(|(_, hash)| hash)
    }

    fn marker_index(&self, chain: &str) -> Option<usize> {
        if chain != POSTROUTING {
            return None;
        }
        let rules = &self.chains.get(POSTROUTING)?.rules;
        let last = rules.last()?;
        let text = last.comment.as_deref()?;
        let (head, hash) = text.rsplit_once(" applied ")?;
        let is_marker = last.statements == MARKER_STATEMENTS
            && head.starts_with("geartopo ")
            && hash.len() == 16
            && hash.bytes().all(|b| b.is_ascii_hexdigit());
        is_marker.then(|| rules.len() - 1)
    }

    /// True when the table is exactly what the last apply wrote: the marker is
    /// there and matches the rest. (A plan compares with the desired table as a
    /// whole; this says whether a hand edit happened since the last apply.)
    pub fn intact(&self) -> bool {
        self.marker() == Some(self.content_hash().as_str())
    }
}

#[cfg(test)]
mod tests;
