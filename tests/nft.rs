//! The nftables form: golden `nft -f` documents of fixed inputs
//! (tests/golden/nft/*.nft), listings captured from a real nft 1.0.6 after applying
//! them (tests/golden/nft/*.list.json) read back equal to what was rendered, and
//! the reader never panicking on hostile input.
//!
//! `GEARTOPO_BLESS=1 cargo test --test nft` rewrites the .nft files; the .json
//! files are rewritten by `cargo test --test nft_namespace` with the same
//! variable (that needs root: it runs nft).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use geartopo::nft::read::{parse_list, ReadError, READ_MAX};
use geartopo::nft::{desired, render_apply, render_document};
use geartopo::rules::ResolvedLink;
use geartopo::topology::model::Protocol;
use proptest::prelude::*;

mod nft_cases;
use nft_cases::{cases, Case};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/nft")
}

fn golden(path: &Path, actual: &str) {
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (GEARTOPO_BLESS=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{} differs from what is rendered now:\n{}",
        path.display(),
        similar::TextDiff::from_lines(expected.as_str(), actual).unified_diff()
    );
}

#[test]
fn rendered_documents_match_their_golden_files() {
    for Case {
        name,
        topology,
        container,
        links,
    } in cases()
    {
        let doc = render_apply(topology, container, &links);
        golden(&golden_dir().join(format!("{name}.nft")), &doc);
    }
}

#[test]
fn listings_from_a_real_nft_read_back_equal_to_what_was_rendered() {
    for Case {
        name,
        topology,
        container,
        links,
    } in cases()
    {
        let path = golden_dir().join(format!("{name}.list.json"));
        let json = std::fs::read_to_string(&path).unwrap();
        let read = parse_list(&json).unwrap().expect("the table is listed");
        let want = desired(topology, container, &links);
        assert_eq!(read, want, "{}", path.display());
        assert!(read.intact());
        // The normalized form prints back as the table part of the document.
        assert!(render_apply(topology, container, &links).ends_with(&read.to_nft()));
        assert_eq!(
            render_document(&read),
            render_apply(topology, container, &links)
        );
    }
}

#[test]
fn a_listing_with_a_rule_removed_by_hand_is_drift() {
    let case = &cases()[0];
    let path = golden_dir().join(format!("{}.list.json", case.name));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let items = json["nftables"].as_array().unwrap();
    let first_rule = items.iter().position(|i| i.get("rule").is_some()).unwrap();
    let mut edited = items.clone();
    edited.remove(first_rule);
    let edited = serde_json::json!({ "nftables": edited }).to_string();
    let read = parse_list(&edited).unwrap().unwrap();
    assert_ne!(read, desired(case.topology, case.container, &case.links));
    assert!(!read.intact());
}

#[test]
fn a_listing_over_the_limit_is_refused_unread() {
    let big = " ".repeat(READ_MAX + 1);
    assert_eq!(parse_list(&big), Err(ReadError::TooLarge(READ_MAX + 1)));
}

fn link_strategy() -> impl Strategy<Value = ResolvedLink> {
    (
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<bool>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        "[ -~]{0,300}",
    )
        .prop_map(|(l, lp, udp, d, dp, describe)| ResolvedLink {
            listen_ip: Ipv4Addr::from(l),
            listen_port: lp,
            protocol: if udp { Protocol::Udp } else { Protocol::Tcp },
            dest_ip: Ipv4Addr::from(d),
            dest_port: dp,
            describe,
        })
}

/// JSON shaped like a listing, with pieces cut, swapped and retyped.
fn hostile_listing() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        Just("\"geartopo\"".to_string()),
        Just("\"ip\"".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-z\\\\\"é]{0,8}".prop_map(|s| serde_json::Value::String(s).to_string()),
    ];
    let value = leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "table", "chain", "rule", "expr", "match", "left", "right", "op",
                        "payload", "set", "prefix", "dnat", "family", "name", "prio", "comment",
                        "nftables", "addr", "port", "range", "ct", "key",
                    ]),
                    inner
                ),
                0..5
            )
            .prop_map(|kv| format!(
                "{{{}}}",
                kv.iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )),
        ]
    });
    (value, any::<usize>()).prop_map(|(v, cut)| {
        let doc = format!("{{\"nftables\":[{v}]}}");
        // Truncated at any byte, as a dropped connection leaves it.
        let mut end = cut % (doc.len() + 1);
        while !doc.is_char_boundary(end) {
            end -= 1;
        }
        doc[..end].to_string()
    })
}

/// Every node of `v`, as a path of object keys and array indexes.
fn paths(v: &serde_json::Value, here: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(here.clone());
    match v {
        serde_json::Value::Object(map) => {
            for (k, child) in map {
                let mut p = here.clone();
                p.push(k.clone());
                paths(child, p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let mut p = here.clone();
                p.push(i.to_string());
                paths(child, p, out);
            }
        }
        _ => {}
    }
}

fn node_at<'v>(v: &'v mut serde_json::Value, path: &[String]) -> &'v mut serde_json::Value {
    path.iter().fold(v, |v, step| match v {
        serde_json::Value::Object(map) => map.get_mut(step).unwrap(),
        serde_json::Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
        _ => unreachable!("paths only lead through containers"),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_reader_never_panics_on_hostile_input(doc in hostile_listing()) {
        let _ = parse_list(&doc);
    }

    #[test]
    fn the_reader_never_panics_on_arbitrary_text(doc in "\\PC{0,400}") {
        let _ = parse_list(&doc);
    }

    #[test]
    fn the_reader_never_panics_on_a_real_listing_cut_anywhere(cut in any::<usize>()) {
        let json = std::fs::read_to_string(golden_dir().join("todo-app1.list.json")).unwrap();
        let mut end = cut % (json.len() + 1);
        while !json.is_char_boundary(end) { end -= 1; }
        let _ = parse_list(&json[..end]);
    }

    /// A real listing with parts replaced: reaches every branch of the reader.
    #[test]
    fn the_reader_never_panics_on_a_real_listing_with_parts_replaced(
        picks in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
            Just(serde_json::json!(null)),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
            Just(serde_json::json!("geartopo")),
            Just(serde_json::json!(-100)),
            Just(serde_json::json!(1e300)),
            Just(serde_json::json!({"set": [{"prefix": {"addr": [], "len": "x"}}]})),
            Just(serde_json::json!({"range": [1]})),
            Just(serde_json::json!(["a", {"b": null}])),
        ]), 1..6),
    ) {
        let name = "long-names.list.json";
        let mut listing: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(golden_dir().join(name)).unwrap()).unwrap();
        for (index, replacement) in picks {
            let mut all = Vec::new();
            paths(&listing, Vec::new(), &mut all);
            let path = index.get(&all).clone();
            *node_at(&mut listing, &path) = replacement;
        }
        let _ = parse_list(&listing.to_string());
    }

    #[test]
    fn any_links_render_a_table_that_is_intact_and_whose_comments_fit(
        links in prop::collection::vec(link_strategy(), 0..8),
        topology in "[a-z0-9-]{1,32}",
        container in "[a-z0-9-]{1,63}",
    ) {
        let table = desired(&topology, &container, &links);
        prop_assert!(table.intact());
        for rule in table.chains.values().flat_map(|c| &c.rules) {
            prop_assert!(rule.comment.as_ref().unwrap().len() <= 128);
        }
    }
}
