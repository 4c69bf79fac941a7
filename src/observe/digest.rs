//! The plan's side of the lock's re-check (`node::script::digest`): from the
//! observe output a plan was made from, the canonical lines the node's digest
//! script prints, kept with what decides whether each is in a plan's scope, and
//! their SHA-256 once the scope is known. A port of the script's `AWK`, line for
//! line: the same text in gives the same lines out (a unit test runs both).

use std::collections::HashSet;
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

/// The group `out` ends with when it has `prefix` and a tag `same` accepts, else
/// a new one of `tag()`: its text, to append a line's rest to. Takes the tag
/// and prefix by reference, so that a line joining the group allocates nothing.
fn group<'g>(
    out: &'g mut Vec<Group>,
    same: impl Fn(&Tag) -> bool,
    tag: impl FnOnce() -> Tag,
    prefix: &str,
) -> &'g mut String {
    let joins = matches!(out.last(), Some(g) if g.prefix == prefix && same(&g.tag));
    if !joins {
        out.push(Group {
            tag: tag(),
            prefix: prefix.to_string(),
            text: String::new(),
        });
    }
    &mut out.last_mut().expect("a group").text
}

/// Appends `%06d` of `n` and a space, as awk's `sprintf("%06d", n)` then " ".
fn push_seq(text: &mut String, n: usize) {
    if n < 1_000_000 {
        let mut digits = [b'0'; 6];
        let mut v = n;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        text.push_str(std::str::from_utf8(&digits).expect("ascii digits"));
    } else {
        use std::fmt::Write as _;
        let _ = write!(text, "{n:06}");
    }
    text.push(' ');
}

/// One line of a `list` object kept until its end: (class, its number, the line).
type Kept<'a> = (char, usize, &'a str);

/// Writes a listed object's kept lines (when it is this topology's) and resets
/// the object.
fn flush(buf: &mut Vec<Kept<'_>>, id: &str, ours: bool, out: &mut Vec<Group>) {
    if ours && !id.is_empty() {
        let (pi, pl) = (format!("i {id}"), format!("l {id}"));
        for (c, seq, l) in buf.iter() {
            let text = if *c == 'i' {
                group(out, |t| *t == Tag::Always, || Tag::Always, &pi)
            } else {
                group(
                    out,
                    |t| matches!(t, Tag::Full(x) if x == id),
                    || Tag::Full(id.to_string()),
                    &pl,
                )
            };
            push_seq(text, *seq);
            text.push_str(l);
            text.push('\n');
        }
    }
    buf.clear();
}

/// The canonical lines of one node's observe output (podman's), with their tags.
/// Every plan of a large fleet reads a thousand of these: a line of a section
/// the digest keeps nothing of costs a prefix check, and a kept one is copied
/// once into its group's text.
pub fn canonical(output: &str, topology: &str) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    let mut sec: &str = "";
    let mut k = 0usize;
    let mut nk = 0usize;
    let mut cid: &str = "";
    let mut ns_prefix = String::new();
    // The JSON object being read: its kept lines, id, ours, key.
    let mut buf: Vec<Kept> = Vec::new();
    let (mut ni, mut nl) = (0usize, 0usize);
    let mut id: &str = "";
    let mut ours = false;
    let mut key: &str = "";
    let (mut hp, mut rg, mut pr) = (0u64, 1u64, "");
    let label = format!("      \"geartopo.topology\": \"{topology}\"");
    let full_cid = |cid: &str| {
        let cid = cid.to_string();
        move || Tag::Full(cid)
    };
    // Lines as awk reads them: a last line break ends the last line.
    let body = output.strip_suffix('\n').unwrap_or(output);
    let lines = (!output.is_empty()).then(|| body.split('\n'));
    for line in lines.into_iter().flatten() {
        if let Some(rest) = line.strip_prefix("@@geartopo ") {
            if sec == "list" {
                flush(&mut buf, id, ours, &mut out);
                (ni, nl, id, ours, key) = (0, 0, "", false, "");
            }
            let mut f = rest.split_whitespace();
            sec = f.next().unwrap_or("");
            k = 0;
            if sec == "ns" {
                cid = f.next().unwrap_or("");
                ns_prefix = format!("n {cid}");
                nk = 0;
            }
            match sec {
                "ns" | "hostns" | "sysctl" | "nft" => {
                    let text = group(
                        &mut out,
                        |t| matches!(t, Tag::Full(x) if x == cid),
                        full_cid(cid),
                        &ns_prefix,
                    );
                    push_seq(text, nk);
                    nk += 1;
                    text.push_str(line);
                    text.push('\n');
                }
                "subnets" | "durable" | "end" => {
                    let text = group(&mut out, |t| *t == Tag::Always, || Tag::Always, "");
                    text.push_str("x ");
                    text.push_str(line);
                    text.push('\n');
                }
                _ => {}
            }
            continue;
        }
        match sec {
            "tcp" | "udp" => {
                let want = if sec == "tcp" { "0A" } else { "07" };
                let mut fields = line.split_whitespace();
                let local = fields.nth(1);
                let state = fields.nth(1);
                if let (Some(local), Some(st)) = (local, state) {
                    if st == want {
                        let p = local.rsplit(':').next().unwrap_or("");
                        let tag = Tag::Listen(format!("{sec}:{p}"));
                        emit(&mut out, tag, "", &format!("listen {sec} {p}"));
                    }
                }
            }
            "sysctl" | "nft"
                if sec == "nft" || line.contains("GEARTOPO") || line.starts_with('*') =>
            {
                let text = group(
                    &mut out,
                    |t| matches!(t, Tag::Full(x) if x == cid),
                    full_cid(cid),
                    &ns_prefix,
                );
                push_seq(text, nk);
                nk += 1;
                text.push_str(line);
                text.push('\n');
            }
            "nodefilter" => {
                let text = group(&mut out, |t| *t == Tag::Always, || Tag::Always, "");
                text.push_str("x nodefilter ");
                push_seq(text, k);
                k += 1;
                text.push_str(line);
                text.push('\n');
            }
            "durable" => {
                let p = line.split_whitespace().nth(2).unwrap_or("");
                let (d, f) = match p.rsplit_once('/') {
                    Some((d, f)) => (d, f),
                    None => ("", p),
                };
                let text = if d.ends_with("/rules") {
                    group(
                        &mut out,
                        |t| matches!(t, Tag::File(x) if x == f),
                        || Tag::File(f.to_string()),
                        "",
                    )
                } else {
                    group(&mut out, |t| *t == Tag::Always, || Tag::Always, "")
                };
                text.push_str("x ");
                text.push_str(line);
                text.push('\n');
            }
            "list" => {
                let l = line.strip_suffix(',').unwrap_or(line);
                if l == "  {" || l == "  }" {
                    flush(&mut buf, id, ours, &mut out);
                    (ni, nl, id, ours, key) = (0, 0, "", false, "");
                    continue;
                }
                if let Some(rest) = l.strip_prefix("    \"") {
                    key = rest.split('"').next().unwrap_or("");
                }
                if key == "Id" {
                    if let Some(rest) = l.strip_prefix("    \"Id\": \"") {
                        id = rest.strip_suffix('"').unwrap_or(rest);
                    }
                }
                if key == "Labels" && l == label {
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
                        (hp, rg, pr) = (0, 1, "");
                    } else if let Some(v) = l.strip_prefix("        \"host_port\": ") {
                        hp = awk_number(v);
                    } else if let Some(v) = l.strip_prefix("        \"range\": ") {
                        rg = awk_number(v);
                    } else if let Some(v) = l.strip_prefix("        \"protocol\": \"") {
                        pr = v.strip_suffix('"').unwrap_or(v);
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
                let c = match key {
                    "Id" | "Image" | "Labels" | "Names" => Some('i'),
                    "State" | "Pid" | "Ports" => Some('l'),
                    _ => None,
                };
                if let Some(c) = c {
                    let n = if c == 'i' { &mut ni } else { &mut nl };
                    buf.push((c, *n, l));
                    *n += 1;
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
/// reads the same (its `sort -u` of the kept lines, each hashed with its line
/// break). The kept lines are written once into one text and sorted as slices
/// of it: a plan of a thousand nodes digests each of them.
pub fn digest(groups: &[Group], scope: &DigestScope) -> String {
    fn set(v: &[String]) -> HashSet<&str> {
        v.iter().map(String::as_str).collect()
    }
    let (lh, pp, nm, fu, fl) = (
        set(&scope.listen),
        set(&scope.publish),
        set(&scope.names),
        set(&scope.full),
        set(&scope.files),
    );
    let kept_groups: Vec<&Group> = groups
        .iter()
        .filter(|g| match &g.tag {
            Tag::Always => true,
            Tag::Listen(k) => lh.contains(k.as_str()),
            Tag::Publish(k) => pp.contains(k.as_str()),
            Tag::Name(n) => nm.contains(n.as_str()),
            Tag::Full(id) => fu.contains(id.as_str()),
            Tag::File(f) => fl.contains(f.as_str()),
        })
        .collect();
    // Sized once: each line's rest, and its prefix and a space per line.
    let size = kept_groups
        .iter()
        .map(|g| {
            let lines = g.text.bytes().filter(|&b| b == b'\n').count();
            g.text.len() + lines * (g.prefix.len() + 1)
        })
        .sum();
    let mut text = String::with_capacity(size);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for g in kept_groups {
        for rest in g.text.split_terminator('\n') {
            let start = text.len();
            if !g.prefix.is_empty() {
                text.push_str(&g.prefix);
                text.push(' ');
            }
            text.push_str(rest);
            spans.push((start, text.len()));
        }
    }
    let mut kept: Vec<&str> = spans.iter().map(|&(a, b)| &text[a..b]).collect();
    kept.sort_unstable();
    kept.dedup();
    // Hashed as one text (each line with its break), in one update: an update
    // per line cost more than the hashing itself.
    let mut sorted = Vec::with_capacity(text.len() + kept.len());
    for l in kept {
        sorted.extend_from_slice(l.as_bytes());
        sorted.push(b'\n');
    }
    hex(&Sha256::digest(&sorted))
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
