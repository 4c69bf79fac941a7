//! Property tests: `topology::parse` never panics, whatever the bytes, and what it
//! returns is usable: a model whose graph builds, or a report whose labels lie
//! inside the file and that renders.

use geartopo::graph::DepGraph;
use geartopo::topology;
use proptest::prelude::*;

const EXAMPLES: &[&str] = &[
    include_str!("../examples/redis-todo.toml"),
    include_str!("../examples/cluster.toml"),
    include_str!("../examples/mongo-replica-set.toml"),
];

/// Pieces that make it likely to hit the checker's corners, not just the parser's.
const PIECES: &[&str] = &[
    "name = \"t\"\n",
    "[nodes.n1]\n",
    "address = \"198.18.0.1\"\n",
    "address = \"local\"\n",
    "[containers.a]\n",
    "[containers.b]\n",
    "node = \"n1\"\n",
    "image = \"busybox\"\n",
    "replicas = 3\n",
    "replicas = -1\n",
    "replicas = 9223372036854775807\n",
    "nodes = [\"n1\"]\n",
    "publish = [{ port = 80 }]\n",
    "publish = [{ port = 80, host_port = 80 }]\n",
    "links = [{ to = \"a:80\" }]\n",
    "links = [{ to = \"b:80\" }]\n",
    "links = [\"80:a:80\"]\n",
    "links = [{ to = \"a-1:80\", listen = \"192.168.0.1:80\" }]\n",
    "[views.v]\n",
    "members = [\"a\", \"b\"]\n",
    "observers = [\"a\"]\n",
    "subnet = \"192.168.0.0/30\"\n",
    "subnet = \"0.0.0.0/0\"\n",
    "ports = [80, 0, 65535]\n",
    "env = { A = \"1\" }\n",
    "port = 99999999999999999999999\n",
    "=",
    "[",
    "]",
    "\"",
    "{",
    "}",
    "\n",
    "\u{0}",
    "é",
];

fn check(bytes: &[u8]) {
    match topology::parse("fuzz.toml", bytes) {
        Ok(t) => {
            // A valid topology always has a graph with three steps per container.
            let g = DepGraph::build(&t).expect("valid topologies have no cycle");
            assert_eq!(g.steps_in_order().len(), 3 * t.containers.len());
            let _ = g.to_dot();
            let _ = g.to_mermaid();
        }
        Err(invalid) => {
            assert!(!invalid.problems.is_empty());
            for p in &invalid.problems {
                for l in &p.labels {
                    assert!(
                        l.span.start <= l.span.end && l.span.end <= bytes.len().max(1),
                        "label {:?} outside a {}-byte file: {}",
                        l.span,
                        bytes.len(),
                        p.message
                    );
                }
            }
            let report = invalid.render_with(true);
            assert!(report.ends_with(if invalid.problems.len() == 1 {
                "1 error\n"
            } else {
                "errors\n"
            }));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn arbitrary_toml_like_text_never_panics(pieces in proptest::collection::vec(0..PIECES.len(), 0..40)) {
        let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
        check(text.as_bytes());
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0..EXAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..8),
    ) {
        let mut bytes = EXAMPLES[which].as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(i, byte),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = byte,
                _ => bytes.push(byte),
            }
        }
        check(&bytes);
    }
}

#[test]
fn huge_inputs_do_not_hang_or_panic() {
    // Deep nesting, a huge number, a huge replica count, a long line.
    let deep = format!(
        "name = \"t\"\nx = {}{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    check(deep.as_bytes());
    check(
        b"name = \"t\"\n[containers.a]\nnode=\"n\"\nimage=\"i\"\nreplicas = 9223372036854775807\n",
    );
    check(b"name = \"t\"\n[containers.a]\nnode=\"n\"\nimage=\"i\"\npublish=[{port=18446744073709551616}]\n");
    let long = format!("name = \"{}\"\n", "a".repeat(1 << 20));
    check(long.as_bytes());
}
