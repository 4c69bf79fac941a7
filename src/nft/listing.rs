//! For tests only: the `nft -j list table ip geartopo` listing that a real nft
//! prints for a table geartopo rendered (given as its lines, `table_lines`), so
//! that simulated nodes answer in nft's own JSON and the real reader reads it.
//! It knows only the statements geartopo renders (a DNAT, a masquerade, the
//! marker's return, the guard); anything else becomes a statement the reader
//! does not know, which is what a real listing of a foreign rule looks like.

use serde_json::{json, Value};

use super::{FAMILY, GUARD, TABLE};

/// The JSON listing of the table whose nft text is `lines`.
pub fn listing_json(lines: &[String]) -> String {
    let mut items = vec![json!({"metainfo": {"version": "1.0.6", "json_schema_version": 1}})];
    items.push(json!({"table": {"family": FAMILY, "name": TABLE, "handle": 1}}));
    let mut chain: Option<String> = None;
    let mut handle = 1;
    let mut rules = Vec::new();
    for line in lines {
        let text = line.trim();
        if let Some(name) = text
            .strip_prefix("chain ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            chain = Some(name.to_string());
            continue;
        }
        let Some(name) = &chain else { continue };
        if text == "}" {
            chain = None;
            continue;
        }
        handle += 1;
        if let Some(head) = text.strip_prefix("type ") {
            // type KIND hook HOOK priority N; policy P;
            let words: Vec<&str> = head.split([' ', ';']).filter(|w| !w.is_empty()).collect();
            if let [kind, "hook", hook, "priority", prio, "policy", policy] = words.as_slice() {
                items.push(
                    json!({"chain": {"family": FAMILY, "table": TABLE, "name": name,
                    "handle": handle, "type": kind, "hook": hook,
                    "prio": prio.parse::<i64>().unwrap_or(0), "policy": policy}}),
                );
            }
            continue;
        }
        if !items.iter().any(|i| i["chain"]["name"] == json!(name)) {
            items.push(json!({"chain": {"family": FAMILY, "table": TABLE, "name": name, "handle": handle}}));
        }
        let (statements, comment) = match text.split_once(" comment \"") {
            Some((s, c)) => (s, Some(c.trim_end_matches('"'))),
            None => (text, None),
        };
        let mut rule = json!({"family": FAMILY, "table": TABLE, "chain": name,
            "handle": handle, "expr": expr(statements)});
        if let Some(c) = comment {
            rule["comment"] = json!(c);
        }
        rules.push(json!({ "rule": rule }));
    }
    items.extend(rules);
    json!({ "nftables": items }).to_string()
}

fn payload_match(protocol: &str, field: &str, right: Value) -> Value {
    json!({"match": {"op": "==", "left": {"payload": {"protocol": protocol, "field": field}}, "right": right}})
}

fn expr(statements: &str) -> Value {
    if statements == GUARD {
        let prefix = json!({"prefix": {"addr": "127.0.0.0", "len": 8}});
        return json!([
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": prefix}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": prefix}},
            {"match": {"op": "!", "left": {"ct": {"key": "status"}}, "right": "dnat"}},
            {"match": {"op": "!=", "left": {"ct": {"key": "state"}}, "right": {"set": ["established", "related"]}}},
            {"drop": null}
        ]);
    }
    let words: Vec<&str> = statements.split(' ').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match &words[i..] {
            ["ip", "daddr", addr, ..] => {
                out.push(payload_match("ip", "daddr", json!(addr)));
                i += 3;
            }
            [proto @ ("tcp" | "udp"), "dport", port, ..] => {
                out.push(payload_match(
                    proto,
                    "dport",
                    json!(port.parse::<u16>().unwrap_or(0)),
                ));
                i += 3;
            }
            ["dnat", "to", to, ..] => {
                let (addr, port) = to.split_once(':').unwrap_or((to, "0"));
                out.push(json!({"dnat": {"addr": addr, "port": port.parse::<u16>().unwrap_or(0)}}));
                i += 3;
            }
            [verdict @ ("masquerade" | "return" | "accept" | "drop"), ..] => {
                out.push(json!({ *verdict: null }));
                i += 1;
            }
            [other, ..] => {
                out.push(json!({ "unknown": other }));
                i += 1;
            }
            [] => break,
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::read::parse_list;
    use crate::nft::{desired, table_lines};
    use crate::rules::ResolvedLink;
    use crate::topology::model::Protocol;

    #[test]
    fn the_listing_of_a_rendered_table_reads_back_as_that_table() {
        let link = ResolvedLink {
            listen_ip: "127.0.0.1".parse().unwrap(),
            listen_port: 6379,
            protocol: Protocol::Tcp,
            dest_ip: "198.18.0.4".parse().unwrap(),
            dest_port: 50000,
            describe: "redisdb:6379".into(),
        };
        let table = desired("todo", "app1", &[link]);
        let read = parse_list(&listing_json(&table_lines(&table))).unwrap();
        assert_eq!(read, Some(table));
    }
}
