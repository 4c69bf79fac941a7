//! The plan's side of the lock's re-check (`node::script::digest`): from the
//! observe output a plan was made from, the canonical lines the node's digest
//! script prints, kept with what decides whether each is in a plan's scope, and
//! their SHA-256 once the scope is known. A port of the script's `AWK`, line for
//! line: the same text in gives the same lines out (a unit test runs both).

use std::collections::BTreeSet;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::node::script::digest::DigestScope;
use crate::state::hex;

/// What puts a canonical line in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    /// Always (identity lines, the node's own, the end).
    Always,
    /// `PROTO:HEX` in `DigestScope::listen`.
    Listen(String),
    /// `PROTO:PORT` in `DigestScope::publish`.
    Publish(String),
    /// In `DigestScope::names`.
    Name(String),
    /// The container's id in `DigestScope::full`.
    Full(String),
    /// A rules file: its name in `DigestScope::files`.
    File(String),
}

/// Consecutive canonical lines with one tag and one prefix (`n ID`: a
/// namespace's lines), kept as one text: a thousand rules are one allocation,
/// and the 64-digit id is not repeated per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub tag: Tag,
    /// What each line begins with, before a space (empty: nothing).
    pub prefix: String,
    /// The rest of each line, each ending in a line break.
    pub text: String,
}

impl Group {
    /// Its lines, whole.
    pub fn lines(&self) -> impl Iterator<Item = String> + '_ {
        self.text.split_terminator('\n').map(|rest| {
            if self.prefix.is_empty() {
                rest.to_string()
            } else {
                format!("{} {rest}", self.prefix)
            }
        })
    }
}

/// Appends a line (`prefix rest`) to `out`, to the last group when it has the
/// same tag and prefix.
fn emit(out: &mut Vec<Group>, tag: Tag, prefix: &str, rest: &str) {
    match out.last_mut() {
        Some(g) if g.tag == tag && g.prefix == prefix => {}
        _ => out.push(Group {
            tag,
            prefix: prefix.to_string(),
            text: String::new(),
        }),
    }
    let g = out.last_mut().expect("a group");
    g.text.push_str(rest);
    g.text.push('\n');
}

/// A node's canonical lines, read with its state. Not part of the state's
/// value: two states are equal whatever lines they carry (they are the same
/// observation in another form).
#[derive(Debug, Clone, Default)]
pub struct Canonical(pub Option<Arc<Vec<Group>>>);

impl PartialEq for Canonical {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Canonical {}

/// `%06d`.
fn pad(n: &mut usize) -> String {
    let s = format!("{:06}", *n);
    *n += 1;
    s
}

/// The canonical lines of one node's observe output (podman's), with their tags.
pub fn canonical(output: &str, topology: &str) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut sec = String::new();
    let mut k = 0usize;
    let mut nk = 0usize;
    let mut cid = String::new();
    // The JSON object being read: (class, seq, line), id, ours, key.
    let mut buf: Vec<(char, String, String)> = Vec::new();
    let (mut ni, mut nl) = (0usize, 0usize);
    let mut id = String::new();
    let mut ours = false;
    let mut key = String::new();
    let (mut hp, mut rg, mut pr) = (0u64, 1u64, String::new());
    let flush = |buf: &mut Vec<(char, String, String)>,
                 id: &mut String,
                 ours: &mut bool,
                 key: &mut String,
                 ni: &mut usize,
                 nl: &mut usize,
                 out: &mut Vec<Group>| {
        if *ours && !id.is_empty() {
            for (c, seq, l) in buf.iter() {
                let tag = if *c == 'i' {
                    Tag::Always
                } else {
                    Tag::Full(id.clone())
                };
                emit(out, tag, &format!("{c} {id}"), &format!("{seq} {l}"));
            }
        }
        buf.clear();
        *ni = 0;
        *nl = 0;
        id.clear();
        *ours = false;
        key.clear();
    };
    let mut lines: Vec<&str> = output.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    for line in lines {
        if let Some(rest) = line.strip_prefix("@@geartopo ") {
            if sec == "list" {
                flush(
                    &mut buf, &mut id, &mut ours, &mut key, &mut ni, &mut nl, &mut out,
                );
            }
            let f: Vec<&str> = rest.split_whitespace().collect();
            sec = f.first().copied().unwrap_or("").to_string();
            k = 0;
            if sec == "ns" {
                cid = f.get(1).copied().unwrap_or("").to_string();
                nk = 0;
            }
            match sec.as_str() {
                "ns" | "hostns" | "sysctl" | "nft" => {
                    let rest = format!("{} {line}", pad(&mut nk));
                    emit(&mut out, Tag::Full(cid.clone()), &format!("n {cid}"), &rest);
                }
                "subnets" | "durable" | "end" => {
                    emit(&mut out, Tag::Always, "", &format!("x {line}"))
                }
                _ => {}
            }
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        match sec.as_str() {
            "tcp" | "udp" => {
                let want = if sec == "tcp" { "0A" } else { "07" };
                if fields.len() >= 4 && fields[3] == want {
                    let p = fields[1].rsplit(':').next().unwrap_or("");
                    let tag = Tag::Listen(format!("{sec}:{p}"));
                    emit(&mut out, tag, "", &format!("listen {sec} {p}"));
                }
            }
            "sysctl" | "nft"
                if sec == "nft" || line.contains("GEARTOPO") || line.starts_with('*') =>
            {
                let rest = format!("{} {line}", pad(&mut nk));
                emit(&mut out, Tag::Full(cid.clone()), &format!("n {cid}"), &rest);
            }
            "nodefilter" => {
                let rest = format!("x nodefilter {} {line}", pad(&mut k));
                emit(&mut out, Tag::Always, "", &rest);
            }
            "durable" => {
                let p = fields.get(2).copied().unwrap_or("");
                let (d, f) = match p.rsplit_once('/') {
                    Some((d, f)) => (d, f),
                    None => ("", p),
                };
                let tag = if d.ends_with("/rules") {
                    Tag::File(f.to_string())
                } else {
                    Tag::Always
                };
                emit(&mut out, tag, "", &format!("x {line}"));
            }
            "list" => {
                let l = line.strip_suffix(',').unwrap_or(line);
                if l == "  {" || l == "  }" {
                    flush(
                        &mut buf, &mut id, &mut ours, &mut key, &mut ni, &mut nl, &mut out,
                    );
                    continue;
                }
                if let Some(rest) = l.strip_prefix("    \"") {
                    key = rest.split('"').next().unwrap_or("").to_string();
                }
                if key == "Id" {
                    if let Some(rest) = l.strip_prefix("    \"Id\": \"") {
                        id = rest.strip_suffix('"').unwrap_or(rest).to_string();
                    }
                }
                if key == "Labels" && l == format!("      \"geartopo.topology\": \"{topology}\"") {
                    ours = true;
                }
                if key == "Names" {
                    if let Some(rest) = l.strip_prefix("      \"") {
                        let n = rest.strip_suffix('"').unwrap_or(rest);
                        emit(&mut out, Tag::Name(n.to_string()), "", &format!("name {n}"));
                    }
                }
                if key == "Ports" {
                    if l == "      {" {
                        (hp, rg, pr) = (0, 1, String::new());
                    } else if let Some(v) = l.strip_prefix("        \"host_port\": ") {
                        hp = awk_number(v);
                    } else if let Some(v) = l.strip_prefix("        \"range\": ") {
                        rg = awk_number(v);
                    } else if let Some(v) = l.strip_prefix("        \"protocol\": \"") {
                        pr = v.strip_suffix('"').unwrap_or(v).to_string();
                    } else if l == "      }" {
                        let rg = rg.max(1);
                        let mut i = 0;
                        while i < rg && hp > 0 && hp + i <= 65535 {
                            let port = hp + i;
                            let tag = Tag::Publish(format!("{pr}:{port}"));
                            emit(&mut out, tag, "", &format!("publish {pr} {port}"));
                            i += 1;
                        }
                    }
                }
                let c = match key.as_str() {
                    "Id" | "Image" | "Labels" | "Names" => Some('i'),
                    "State" | "Pid" | "Ports" => Some('l'),
                    _ => None,
                };
                if let Some(c) = c {
                    let seq = if c == 'i' { pad(&mut ni) } else { pad(&mut nl) };
                    buf.push((c, seq, l.to_string()));
                }
            }
            _ => {}
        }
    }
    out
}

/// A number as awk reads the start of a field (`12,` is 12; none is 0).
fn awk_number(v: &str) -> u64 {
    let v = v.trim_start();
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().unwrap_or(0)
}

/// The digest of `lines` in `scope`: what the node's script answers when it
/// reads the same.
pub fn digest(groups: &[Group], scope: &DigestScope) -> String {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<String>>();
    let (lh, pp, nm, fu, fl) = (
        set(&scope.listen),
        set(&scope.publish),
        set(&scope.names),
        set(&scope.full),
        set(&scope.files),
    );
    let kept: BTreeSet<String> = groups
        .iter()
        .filter(|g| match &g.tag {
            Tag::Always => true,
            Tag::Listen(k) => lh.contains(k),
            Tag::Publish(k) => pp.contains(k),
            Tag::Name(n) => nm.contains(n),
            Tag::Full(id) => fu.contains(id),
            Tag::File(f) => fl.contains(f),
        })
        .flat_map(Group::lines)
        .collect();
    let mut h = Sha256::new();
    for l in kept {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    hex(&h.finalize())
}

/// The node's answer to its digest script: the hex digest.
pub fn answer(stdout: &str) -> Option<String> {
    let prefix = format!("{} ", crate::node::script::digest::ANSWER);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|h| h.trim().to_string())
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
