//! The nft listing reader holds memory in proportion to its input, whatever the
//! input's shape: measured with a counting allocator (this test binary's own, so
//! it holds one test only and nothing else allocates beside it).

use geartopo::nft::read::parse_list;

#[path = "support/counting.rs"]
mod counting;

/// `{"nftables":[ITEM,ITEM,...]}` of about `size` bytes.
fn listing(item: &str, size: usize) -> String {
    let items = vec![item; size / (item.len() + 1)];
    format!("{{\"nftables\":[{}]}}", items.join(","))
}

/// Peak bytes allocated while reading `input`, beyond what was live before.
fn peak_of(input: &str) -> usize {
    counting::peak_while(|| parse_list(input)).1
}

#[test]
fn reading_any_shape_of_listing_costs_memory_in_proportion_to_its_size() {
    const SIZE: usize = 2 << 20;
    let statements = format!(
        "{{\"rule\":{{\"family\":\"ip\",\"table\":\"geartopo\",\"chain\":\"c\",\"expr\":[{}]}}}}",
        vec!["{}"; SIZE / 3].join(",")
    );
    let shapes = [
        (
            "tiny rules",
            listing(
                r#"{"rule":{"family":"ip","table":"geartopo","chain":"c"}}"#,
                SIZE,
            ),
        ),
        ("tiny chains", {
            let items: Vec<String> = (0..SIZE / 60)
                .map(|i| {
                    format!(r#"{{"chain":{{"family":"ip","table":"geartopo","name":"{i}"}}}}"#)
                })
                .collect();
            format!("{{\"nftables\":[{}]}}", items.join(","))
        }),
        (
            "one rule of tiny statements",
            format!("{{\"nftables\":[{statements}]}}"),
        ),
        (
            "skipped objects",
            listing(r#"{"set":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}"#, SIZE),
        ),
        (
            "a long string",
            format!(
                "{{\"nftables\":[{{\"rule\":{{\"comment\":\"{}\"}}}}]}}",
                "x".repeat(SIZE)
            ),
        ),
    ];
    for (what, input) in &shapes {
        let peak = peak_of(input);
        let ratio = peak as f64 / input.len() as f64;
        eprintln!(
            "{what}: {} bytes read with a peak of {peak} bytes ({ratio:.2}x)",
            input.len()
        );
        assert!(ratio < 6.0, "{what}: {ratio:.2}x the input");
    }
}
