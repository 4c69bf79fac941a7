//! The fixed inputs of the nftables golden files, shared by the tests that
//! render them and the one that applies them with a real nft.

use std::net::Ipv4Addr;

use geartopo::rules::ResolvedLink;
use geartopo::topology::model::Protocol;

pub struct Case {
    /// The golden files' base name.
    pub name: &'static str,
    pub topology: &'static str,
    pub container: &'static str,
    pub links: Vec<ResolvedLink>,
}

fn link(
    listen: [u8; 4],
    listen_port: u16,
    protocol: Protocol,
    dest: [u8; 4],
    dest_port: u16,
    describe: &str,
) -> ResolvedLink {
    ResolvedLink {
        listen_ip: Ipv4Addr::from(listen),
        listen_port,
        protocol,
        dest_ip: Ipv4Addr::from(dest),
        dest_port,
        describe: describe.to_string(),
    }
}

pub fn cases() -> Vec<Case> {
    vec![
        // The iptables golden's input: a link to another node and a member's own
        // view address, which leads to the container itself (no masquerade).
        Case {
            name: "todo-app1",
            topology: "todo",
            container: "app1",
            links: vec![
                link(
                    [127, 0, 0, 1],
                    6379,
                    Protocol::Tcp,
                    [198, 18, 0, 4],
                    50000,
                    "redisdb:6379",
                ),
                link(
                    [192, 168, 1, 1],
                    27017,
                    Protocol::Udp,
                    [127, 0, 0, 1],
                    27017,
                    "db-1:27017 (itself)",
                ),
            ],
        },
        // Names at their longest and a long raw DNS target: comments cut to 128
        // bytes, the marker's hash kept; two links to one destination masquerade
        // once; tcp and udp to the same port are two destinations.
        Case {
            name: "long-names",
            topology: "a-topology-name-of-32-characters",
            container: "a-container-name-that-is-as-long-as-validation-allows-63-chars1",
            links: vec![
                link(
                    [127, 0, 0, 1],
                    53,
                    Protocol::Udp,
                    [198, 18, 7, 9],
                    53,
                    &format!("{}.resolver.example:53", "very-long-label".repeat(8)),
                ),
                link(
                    [127, 0, 0, 1],
                    53,
                    Protocol::Tcp,
                    [198, 18, 7, 9],
                    53,
                    "resolver:53",
                ),
                link(
                    [127, 0, 0, 2],
                    5353,
                    Protocol::Udp,
                    [198, 18, 7, 9],
                    53,
                    "resolver:53",
                ),
            ],
        },
        // No links: the guard and the marker alone.
        Case {
            name: "no-links",
            topology: "todo",
            container: "lonely",
            links: vec![],
        },
    ]
}
