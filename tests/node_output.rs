//! Property tests of what a node sends back (issue 16): the parsers of a node's
//! output (the observe sections: /proc/net, the runtime's ps line and inspect
//! JSON, each namespace's sysctls and iptables-save; nft's JSON) never panic on
//! hostile or truncated input, and parse in memory bounded by a small multiple of
//! the input (measured with this binary's own counting allocator). Output beyond
//! the transport's size limit is refused before parsing (src/transport, tested
//! there).

use geartopo::node::section::Section;
use geartopo::observe::parse_node;
use proptest::prelude::*;

#[path = "support/counting.rs"]
mod counting;

/// A well-formed observe output of one container with a link, as a podman node
/// writes it.
fn sample() -> String {
    let h = |s: Section| s.header();
    format!(
        "{tcp}
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:C350 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
{udp}
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  7: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 0
{ports}
todo-app1|0.0.0.0:50000->6379/tcp, 0.0.0.0:50001->53/udp
other|
{inspect}
[{{\"Id\": \"abc123\", \"Name\": \"todo-app1\", \"State\": {{\"Status\": \"running\", \"Pid\": 4242}},
  \"Config\": {{\"Image\": \"localhost/img:1\", \"Labels\": {{\"geartopo.topology\": \"todo\", \"geartopo.container\": \"app1\", \"geartopo.spec\": \"command=1,env=2,image=3\"}}}},
  \"HostConfig\": {{\"PortBindings\": {{\"6379/tcp\": [{{\"HostIp\": \"\", \"HostPort\": \"50000\"}}]}}}}}}]
{ns} abc123 4242
{sysctl} 1 1
*nat
:GEARTOPO-OUTPUT - [0:0]
:GEARTOPO-POSTROUTING - [0:0]
-A OUTPUT -j GEARTOPO-OUTPUT
-A POSTROUTING -j GEARTOPO-POSTROUTING
-A GEARTOPO-OUTPUT -d 127.0.0.1/32 -p tcp -m tcp --dport 6379 -m comment --comment \"geartopo todo app1 127.0.0.1:6379/tcp to redisdb:6379\" -j DNAT --to-destination 198.18.0.4:50000
COMMIT
*filter
:GEARTOPO-INPUT - [0:0]
-A INPUT -j GEARTOPO-INPUT
COMMIT
{end}
",
        tcp = h(Section::Tcp),
        udp = h(Section::Udp),
        ports = h(Section::Ports),
        inspect = h(Section::Inspect),
        ns = h(Section::Namespace),
        sysctl = h(Section::Sysctl),
        end = h(Section::End),
    )
}

/// Pieces a hostile or broken node could send.
const HOSTILE: &[&str] = &[
    "@@geartopo ns\n",
    "@@geartopo ns abc123\n",
    "@@geartopo ns abc123 -1\n",
    "@@geartopo ns abc123 99999999999999999999\n",
    "@@geartopo sysctl\n",
    "@@geartopo sysctl 1 1 1 1 1\n",
    "@@geartopo hostns\n",
    "@@geartopo nonsense\n",
    "@@geartopo end\n",
    "@@geartopo inspect\n",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
    "{\"Id\": 5}\n",
    "[{\"Id\": \"x\", \"State\": {\"Pid\": -7}}]\n",
    "[{\"Id\": \"x\", \"HostConfig\": {\"PortBindings\": {\"99999/tcp\": [{\"HostPort\": \"-1\"}]}}}]\n",
    "   0: 00000000:FFFFFFFFFF 00000000:0000 0A\n",
    "   0: zz:zz 0A\n",
    "   0:\n",
    "name|0.0.0.0:99999->1/tcp\n",
    "name|0.0.0.0:-5->1/sctp, :::->/\n",
    "name|||||\n",
    "-A\n",
    "-A GEARTOPO-OUTPUT\n",
    ":GEARTOPO-OUTPUT\n",
    "*nat\n",
    "COMMIT\n",
    "-A GEARTOPO-OUTPUT -m comment --comment \"geartopo todo app1 rules-hash \n",
    "\u{0}\u{1b}[31m\u{7f}\n",
    "\u{fffd}\u{202e}\n",
    "\n\n\n",
];

fn parse(text: &str) {
    let _ = parse_node("node1", "todo", text);
    let _ = geartopo::rules::parse_owned(text);
    let _ = geartopo::nft::read::parse_list(text);
}

#[test]
fn the_sample_parses() {
    let state = parse_node("node1", "todo", &sample()).expect("the sample is well formed");
    assert_eq!(state.containers.len(), 1, "{state:?}");
    assert!(!state.taken_ports.is_empty());
}

/// A node that stops talking half-way: every prefix of a good output is either
/// parsed or refused as ended early, naming the node; never a panic.
#[test]
fn every_truncation_is_refused_naming_the_node() {
    let text = sample();
    for cut in (0..text.len()).filter(|i| text.is_char_boundary(*i)) {
        let prefix = &text[..cut];
        if let Err(e) = parse_node("node1", "todo", prefix) {
            assert!(e.to_string().contains("node node1"), "{e}");
        }
        parse(prefix);
    }
}

/// Peak memory of parsing `text`, over what was live before.
fn peak_of(text: &str) -> usize {
    counting::peak_while(|| parse(text)).1
}

/// Large hostile outputs (a megabyte of each piece, and of the sample's body
/// repeated) parse in memory within a small multiple of their size.
#[test]
fn large_hostile_outputs_parse_in_bounded_memory() {
    const SIZE: usize = 1 << 20;
    let mut inputs: Vec<String> = HOSTILE
        .iter()
        .map(|p| {
            let mut s = sample().replace("@@geartopo end\n", "");
            while s.len() < SIZE {
                s.push_str(p);
            }
            s + "@@geartopo end\n"
        })
        .collect();
    let body: String = sample()
        .lines()
        .filter(|l| !l.starts_with("@@"))
        .map(|l| format!("{l}\n"))
        .collect();
    inputs.push(
        sample().replace("@@geartopo end\n", "")
            + &body.repeat(SIZE / body.len())
            + "@@geartopo end\n",
    );
    for text in &inputs {
        let peak = peak_of(text);
        assert!(
            peak < 16 * text.len() + (1 << 20),
            "{} bytes of input took {peak} bytes at peak: {:?}...",
            text.len(),
            &text[text.len() - 200..]
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn hostile_pieces_in_a_good_output_never_panic(
        cuts in proptest::collection::vec((0usize..4096, 0..HOSTILE.len()), 1..12),
    ) {
        let mut text = sample();
        for (at, piece) in cuts {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, HOSTILE[piece]);
        }
        parse(&text);
    }

    #[test]
    fn lines_of_a_good_output_dropped_or_doubled_never_panic(
        edits in proptest::collection::vec((0usize..64, any::<bool>()), 1..16),
    ) {
        let mut lines: Vec<String> = sample().lines().map(str::to_string).collect();
        for (i, double) in edits {
            if lines.is_empty() {
                break;
            }
            let i = i % lines.len();
            if double {
                let l = lines[i].clone();
                lines.insert(i, l);
            } else {
                lines.remove(i);
            }
        }
        parse(&(lines.join("\n") + "\n"));
    }
}
