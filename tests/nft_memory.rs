//! The nft listing reader holds memory in proportion to its input, whatever the
//! input's shape: measured with a counting allocator (this test binary's own, so
//! it holds one test only and nothing else allocates beside it).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use geartopo::nft::read::parse_list;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
        PEAK.fetch_max(live, Ordering::SeqCst);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let grow = new_size - layout.size();
            let live = LIVE.fetch_add(grow, Ordering::SeqCst) + grow;
            PEAK.fetch_max(live, Ordering::SeqCst);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::SeqCst);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// `{"nftables":[ITEM,ITEM,...]}` of about `size` bytes.
fn listing(item: &str, size: usize) -> String {
    let items = vec![item; size / (item.len() + 1)];
    format!("{{\"nftables\":[{}]}}", items.join(","))
}

/// Peak bytes allocated while reading `input`, beyond what was live before.
fn peak_of(input: &str) -> usize {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let read = parse_list(input);
    let peak = PEAK.load(Ordering::SeqCst) - before;
    drop(read);
    peak
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
