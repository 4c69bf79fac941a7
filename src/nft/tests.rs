use std::net::Ipv4Addr;

use super::read::parse_list;
use super::*;
use crate::rules::render_rules;
use crate::topology::model::Protocol;

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

fn self_link() -> ResolvedLink {
    ResolvedLink {
        listen_ip: Ipv4Addr::new(192, 168, 1, 1),
        listen_port: 27017,
        protocol: Protocol::Udp,
        dest_ip: Ipv4Addr::LOCALHOST,
        dest_port: 27017,
        describe: "db-1:27017 (itself)".into(),
    }
}

/// The comment of every iptables rule line, in order.
fn iptables_comments(rules: &[String]) -> Vec<String> {
    rules
        .iter()
        .map(|r| {
            let start = r.find("--comment \"").unwrap() + "--comment \"".len();
            r[start..start + r[start..].find('"').unwrap()].to_string()
        })
        .collect()
}

#[test]
fn carries_the_same_links_with_the_same_comments_as_the_iptables_rules() {
    let mut second = redis_link();
    second.listen_ip = Ipv4Addr::new(127, 0, 0, 2);
    let links = [redis_link(), self_link(), second];
    // The links' rules; the route_localnet guard is compared in its own test.
    let mut iptables = render_rules("todo", "app1", &links);
    iptables.retain(|r| !r.starts_with("-A GEARTOPO-INPUT "));
    let table = desired("todo", "app1", &links);
    let nft: Vec<String> = ["output", "postrouting"]
        .iter()
        .flat_map(|c| table.chains[*c].rules.iter())
        .filter(|r| r.statements != "return")
        .map(|r| r.comment.clone().unwrap())
        .collect();
    assert_eq!(nft, iptables_comments(&iptables));
    // Two links to one destination, one masquerade; none for the link to itself.
    assert_eq!(table.chains["output"].rules.len(), 3);
    assert_eq!(table.chains["postrouting"].rules.len(), 2);
    assert_eq!(
        table.chains["output"].rules[1].statements,
        "ip daddr 192.168.1.1 udp dport 27017 dnat to 127.0.0.1:27017"
    );
}

#[test]
fn every_comment_fits_in_128_bytes_and_a_long_one_is_cut_on_a_character_boundary() {
    let mut link = redis_link();
    link.describe = format!("{}.example:53", "é".repeat(200));
    let name = "c".repeat(63);
    let topology = "t".repeat(32);
    let table = desired(&topology, &name, &[link]);
    for rule in table.chains.values().flat_map(|c| &c.rules) {
        let text = rule.comment.as_deref().unwrap();
        assert!(text.len() <= COMMENT_MAX, "{} bytes: {text}", text.len());
    }
    // 9 + 32 + 1 + 63 + " 127.0.0.1:6379/tcp to " (23) = 128: the description
    // is cut whole.
    assert_eq!(comment(&"é".repeat(100)).len(), 128);
    assert_eq!(comment(&format!("a{}", "é".repeat(100))).len(), 127);
    assert_eq!(comment("say \"hi\"\n"), "say _hi__");
}

#[test]
fn the_marker_keeps_its_hash_when_the_names_are_long() {
    let table = desired(&"t".repeat(32), &"c".repeat(63), &[redis_link()]);
    let marker = table.chains["postrouting"].rules.last().unwrap();
    assert!(marker.comment.as_ref().unwrap().len() <= COMMENT_MAX);
    assert_eq!(table.marker(), Some(table.content_hash().as_str()));
    assert!(table.intact());
}

#[test]
fn a_rule_deleted_or_edited_by_hand_breaks_the_marker() {
    let want = desired("todo", "app1", &[redis_link(), self_link()]);
    let mut deleted = want.clone();
    deleted.chains.get_mut("output").unwrap().rules.remove(0);
    assert!(!deleted.intact());
    assert_ne!(deleted, want);

    let mut policy = want.clone();
    policy.chains.get_mut("input").unwrap().head = Some(chain_head("filter", "input", 0, "drop"));
    assert!(!policy.intact());

    let mut no_marker = want.clone();
    no_marker.chains.get_mut("postrouting").unwrap().rules.pop();
    assert_eq!(no_marker.marker(), None);
    assert!(!no_marker.intact());
}

#[test]
fn links_change_the_marker_hash() {
    let one = desired("todo", "app1", &[redis_link()]);
    let two = desired("todo", "app1", &[redis_link(), self_link()]);
    assert_ne!(one.marker(), two.marker());
    assert!(desired("todo", "app1", &[]).intact());
}

#[test]
fn the_document_declares_then_deletes_then_writes_the_whole_table() {
    let doc = render_apply("todo", "app1", &[redis_link()]);
    assert!(
        doc.starts_with("table ip geartopo {}\ndelete table ip geartopo\ntable ip geartopo {\n")
    );
    // Nothing but geartopo's table is named.
    for line in doc
        .lines()
        .filter(|l| l.starts_with("table") || l.starts_with("delete"))
    {
        assert!(line.contains("ip geartopo"), "{line}");
    }
    assert_eq!(doc.matches("\tchain ").count(), 3);
}

#[test]
fn a_listing_without_the_table_reads_as_absent() {
    let empty = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}]}"#;
    assert_eq!(parse_list(empty), Ok(None));
    let other = r#"{"nftables": [{"table": {"family": "ip", "name": "other", "handle": 1}},
        {"chain": {"family": "ip", "table": "other", "name": "c", "handle": 1}},
        {"table": {"family": "inet", "name": "geartopo", "handle": 2}}]}"#;
    assert_eq!(parse_list(other), Ok(None));
}

#[test]
fn forms_other_versions_may_print_read_the_same() {
    // Named priority, no `op` for equality, a `family` on dnat, a flag list for a
    // set, set elements in another order, keys in another order.
    let json = r#"{"nftables": [
        {"table": {"handle": 9, "name": "geartopo", "family": "ip"}},
        {"chain": {"family": "ip", "table": "geartopo", "name": "output", "type": "nat",
                   "hook": "output", "prio": "dstnat", "policy": "accept"}},
        {"chain": {"family": "ip", "table": "geartopo", "name": "input", "type": "filter",
                   "hook": "input", "prio": "filter"}},
        {"rule": {"family": "ip", "table": "geartopo", "chain": "output", "comment": "c",
                  "expr": [{"match": {"left": {"payload": {"field": "daddr", "protocol": "ip"}}, "right": "127.0.0.1"}},
                           {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 6379}},
                           {"dnat": {"family": "ip", "addr": "198.18.0.4", "port": 50000}}]}},
        {"rule": {"family": "ip", "table": "geartopo", "chain": "input",
                  "expr": [{"match": {"op": "!=", "left": {"ct": {"key": "state"}}, "right": ["related", "established"]}},
                           {"counter": {"packets": 12, "bytes": 900}},
                           {"drop": null}]}}
    ]}"#;
    let table = parse_list(json).unwrap().unwrap();
    assert_eq!(
        table.chains["output"].head.as_deref(),
        Some("type nat hook output priority -100; policy accept;")
    );
    assert_eq!(
        table.chains["output"].rules[0].to_string(),
        "ip daddr 127.0.0.1 tcp dport 6379 dnat to 198.18.0.4:50000 comment \"c\""
    );
    assert_eq!(
        table.chains["input"].rules[0].to_string(),
        "ct state != { established, related } counter drop"
    );
}

#[test]
fn unknown_forms_are_kept_as_json_and_never_match_a_rendered_rule() {
    let json = r#"{"nftables": [
        {"rule": {"family": "ip", "table": "geartopo", "chain": "output",
                  "expr": [{"mangle": {"key": {"meta": {"key": "mark"}}, "value": 1}}, {"accept": null}]}}
    ]}"#;
    let table = parse_list(json).unwrap().unwrap();
    assert_eq!(
        table.chains["output"].rules[0].statements,
        r#"{"mangle":{"key":{"meta":{"key":"mark"}},"value":1}} accept"#
    );
    assert_eq!(table.chains["output"].head, None);
}

#[test]
fn broken_listings_are_errors() {
    for input in [
        "",
        "[]",
        "{}",
        r#"{"nftables": 5}"#,
        r#"{"nftables": [5]}"#,
        r#"{"nftables": []} x"#,
    ] {
        assert!(parse_list(input).is_err(), "{input:?}");
    }
}
