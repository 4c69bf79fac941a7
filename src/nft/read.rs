//! Reading geartopo's table back from `nft -j list table ip geartopo` into the
//! normalized form of [`super::NftTable`], which does not depend on the nft
//! version's layout: JSON, not text (text prints `priority srcnat` where the input
//! said `priority 100`, and changes between versions), expressions written back
//! in nft's own syntax, set elements sorted, handles and counters' values left out.
//!
//! What a node sends is untrusted: this never panics on any input, refuses input
//! over [`READ_MAX`] bytes, and holds memory proportional to the input: the
//! listing is read in one streaming pass (items one at a time, statements as
//! borrowed slices of the input, each parsed to a tree only when at most
//! [`STATEMENT_MAX`] bytes). Objects other than chains and rules (sets, maps,
//! counters...) are skipped: nothing in the table acts unless a rule refers to it,
//! and such a rule is itself a difference.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{chain_head, NftRule, NftTable, FAMILY, TABLE};
use crate::state::short_hash;

/// The largest listing read: 10,000 links list as about 12 MB of JSON.
pub const READ_MAX: usize = 64 << 20;
/// The largest single statement turned into a tree; larger ones (none of
/// geartopo's is over 300 bytes) are named by size and hash.
pub const STATEMENT_MAX: usize = 4096;

/// Why a listing could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("nft's listing is {0} bytes, more than the {READ_MAX} bytes geartopo reads")]
    TooLarge(usize),
    #[error("nft's listing is not the JSON geartopo expects: {0}")]
    Json(String),
}

/// geartopo's table from the output of `nft -j list table ip geartopo` (or of
/// `nft -j list ruleset`: other tables are ignored); `None` when it lists no
/// such table.
pub fn parse_list(json: &str) -> Result<Option<NftTable>, ReadError> {
    if json.len() > READ_MAX {
        return Err(ReadError::TooLarge(json.len()));
    }
    let mut reader = Reader::default();
    let mut de = serde_json::Deserializer::from_str(json);
    Document(&mut reader)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| ReadError::Json(e.to_string()))?;
    Ok(reader.found.then_some(reader.table))
}

#[derive(Default)]
struct Reader {
    found: bool,
    table: NftTable,
}

fn ours(family: &Option<String>, table: &Option<String>) -> bool {
    family.as_deref() == Some(FAMILY) && table.as_deref() == Some(TABLE)
}

impl Reader {
    fn item(&mut self, item: Item<'_>) {
        if let Some(t) = item.table {
            if ours(&t.family, &t.name) {
                self.found = true;
            }
        }
        if let Some(c) = item.chain {
            if let (true, Some(name)) = (ours(&c.family, &c.table), &c.name) {
                self.found = true;
                let head = c.head();
                self.table.chains.entry(name.clone()).or_default().head = head;
            }
        }
        if let Some(r) = item.rule {
            if let (true, Some(chain)) = (ours(&r.family, &r.table), r.chain) {
                self.found = true;
                self.table
                    .chains
                    .entry(chain)
                    .or_default()
                    .rules
                    .push(NftRule {
                        statements: r.expr.map(|s| s.0).unwrap_or_default(),
                        comment: r.comment,
                    });
            }
        }
    }
}

/// The top level: `{"nftables": [ITEM, ...]}`, items handed to the reader one
/// at a time rather than collected.
struct Document<'r>(&'r mut Reader);

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with an \"nftables\" list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "nftables" && !seen {
                seen = true;
                map.next_value_seed(Items(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(de::Error::missing_field("nftables"))
        }
    }
}

struct Items<'r>(&'r mut Reader);

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of nftables objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<Item>()? {
            self.0.item(item);
        }
        Ok(())
    }
}

/// One element of the list; other kinds (`metainfo`, `set`, ...) are skipped
/// without being kept.
#[derive(Deserialize)]
struct Item<'a> {
    table: Option<TableObject>,
    #[serde(borrow)]
    chain: Option<ChainObject<'a>>,
    rule: Option<RuleObject>,
}

#[derive(Deserialize)]
struct TableObject {
    family: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ChainObject<'a> {
    family: Option<String>,
    table: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    #[serde(borrow)]
    prio: Option<&'a RawValue>,
    policy: Option<String>,
}

impl ChainObject<'_> {
    fn head(&self) -> Option<String> {
        if self.kind.is_none() && self.hook.is_none() && self.prio.is_none() {
            return None;
        }
        let prio = self
            .prio
            .map_or_else(|| "?".to_string(), |raw| priority(raw.get()));
        Some(chain_head(
            self.kind.as_deref().unwrap_or("?"),
            self.hook.as_deref().unwrap_or("?"),
            prio,
            // A base chain's policy is accept unless said otherwise.
            self.policy.as_deref().unwrap_or("accept"),
        ))
    }
}

/// A priority as a number: JSON carries a number today, and nft's text (and
/// possibly other versions' JSON) the standard names of the ip family.
fn priority(raw: &str) -> String {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::String(name)) => match name.as_str() {
            "raw" => "-300".into(),
            "mangle" => "-150".into(),
            "dstnat" => "-100".into(),
            "filter" => "0".into(),
            "security" => "50".into(),
            "srcnat" => "100".into(),
            _ => name,
        },
        Ok(v) => {
            let mut out = String::new();
            json(&v, &mut out);
            out
        }
        Err(_) => "?".into(),
    }
}

#[derive(Deserialize)]
struct RuleObject {
    family: Option<String>,
    table: Option<String>,
    chain: Option<String>,
    comment: Option<String>,
    expr: Option<Statements>,
}

/// A rule's statements in nft syntax, written while the list is read.
struct Statements(String);

impl<'de> Deserialize<'de> for Statements {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(StatementsVisitor)
    }
}

struct StatementsVisitor;

impl<'de> Visitor<'de> for StatementsVisitor {
    type Value = Statements;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of statements")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Statements, A::Error> {
        let mut out = String::new();
        while let Some(raw) = seq.next_element::<&'de RawValue>()? {
            if !out.is_empty() {
                out.push(' ');
            }
            statement_raw(raw.get(), &mut out);
        }
        Ok(Statements(out))
    }
}

fn statement_raw(raw: &str, out: &mut String) {
    if raw.len() > STATEMENT_MAX {
        out.push_str(&format!(
            "?statement({} bytes, {})",
            raw.len(),
            short_hash(raw)
        ));
        return;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v) => statement(&v, out),
        Err(_) => out.push_str("?statement"),
    }
}

/// The only key of a one-key object, with its value.
fn single(v: &Value) -> Option<(&str, &Value)> {
    let map = v.as_object()?;
    if map.len() != 1 {
        return None;
    }
    map.iter().next().map(|(k, v)| (k.as_str(), v))
}

/// True when `v` is an object whose keys are all in `allowed`.
fn keys_within(v: &Value, allowed: &[&str]) -> bool {
    v.as_object()
        .is_some_and(|m| m.keys().all(|k| allowed.contains(&k.as_str())))
}

/// One statement in nft syntax; a form this does not know is written as its
/// JSON (keys sorted), which never equals a rule geartopo renders.
fn statement(v: &Value, out: &mut String) {
    let Some((kind, body)) = single(v) else {
        return json(v, out);
    };
    match kind {
        "match" if keys_within(body, &["op", "left", "right"]) => {
            let (Some(left), Some(right)) = (body.get("left"), body.get("right")) else {
                return json(v, out);
            };
            expression(left, out);
            // `==` is implicit in nft's syntax, and so is `in` (a flag test).
            match body.get("op").map(Value::as_str) {
                None | Some(Some("==" | "in")) => out.push(' '),
                Some(Some(op)) => {
                    out.push(' ');
                    out.push_str(op);
                    out.push(' ');
                }
                Some(None) => return json(v, out),
            }
            expression(right, out);
        }
        "accept" | "drop" | "return" | "continue" if body.is_null() => out.push_str(kind),
        "jump" | "goto" if keys_within(body, &["target"]) => match body.get("target") {
            Some(Value::String(target)) => {
                out.push_str(kind);
                out.push(' ');
                out.push_str(target);
            }
            _ => json(v, out),
        },
        // The table is `ip`, so a `family` of ip says nothing more.
        "dnat" | "snat"
            if keys_within(body, &["addr", "port", "family"])
                && body.get("family").is_none_or(|f| f == FAMILY) =>
        {
            let Some(addr) = body.get("addr") else {
                return json(v, out);
            };
            out.push_str(kind);
            out.push_str(" to ");
            expression(addr, out);
            if let Some(port) = body.get("port") {
                out.push(':');
                expression(port, out);
            }
        }
        "masquerade" if body.is_null() || keys_within(body, &[]) => out.push_str(kind),
        // A counter's values change with traffic: its presence is what counts.
        "counter" if body.is_null() || keys_within(body, &["packets", "bytes"]) => {
            out.push_str(kind)
        }
        _ => json(v, out),
    }
}

/// One expression in nft syntax (unknown forms as JSON, as for statements).
fn expression(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => return out.push_str(s),
        Value::Number(n) => return out.push_str(&n.to_string()),
        // A bare list is how JSON writes a flag combination (`established,related`);
        // for single-flag values such as ct state it tests what a set does.
        Value::Array(items) => return set(items, out),
        _ => {}
    }
    let Some((kind, body)) = single(v) else {
        return json(v, out);
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    match kind {
        "payload" if keys_within(body, &["protocol", "field"]) => {
            match (text("protocol"), text("field")) {
                (Some(protocol), Some(field)) => {
                    out.push_str(protocol);
                    out.push(' ');
                    out.push_str(field);
                }
                _ => json(v, out),
            }
        }
        "meta" | "ct" if keys_within(body, &["key"]) => match text("key") {
            Some(key) => {
                out.push_str(kind);
                out.push(' ');
                out.push_str(key);
            }
            None => json(v, out),
        },
        "prefix" if keys_within(body, &["addr", "len"]) => {
            match (body.get("addr"), body.get("len")) {
                (Some(addr), Some(Value::Number(len))) => {
                    expression(addr, out);
                    out.push('/');
                    out.push_str(&len.to_string());
                }
                _ => json(v, out),
            }
        }
        "range" => match body.as_array().map(Vec::as_slice) {
            Some([low, high]) => {
                expression(low, out);
                out.push('-');
                expression(high, out);
            }
            _ => json(v, out),
        },
        "set" => match body {
            Value::Array(items) => set(items, out),
            single => set(std::slice::from_ref(single), out),
        },
        _ => json(v, out),
    }
}

/// `{ a, b }`, elements sorted: a set has no order, and versions list it in theirs.
fn set(items: &[Value], out: &mut String) {
    let mut elements: Vec<String> = items
        .iter()
        .map(|item| {
            let mut text = String::new();
            expression(item, &mut text);
            text
        })
        .collect();
    elements.sort();
    out.push_str("{ ");
    out.push_str(&elements.join(", "));
    out.push_str(" }");
}

/// Compact JSON with keys sorted, whatever order the node sent them in.
fn json(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                json(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
