//! What the validated model holds after replicas and views are expanded: the
//! contract plan and apply build on.

use std::net::Ipv4Addr;

use geartopo::topology::model::{LinkOrigin, LinkTarget, NodeAddress, Protocol, Runtime};
use geartopo::topology::{self, Topology};

fn parse(text: &str) -> Topology {
    match topology::parse("test.toml", text.as_bytes()) {
        Ok(t) => t,
        Err(e) => panic!("{}", e.render_with(true)),
    }
}

fn example(name: &str) -> Topology {
    topology::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .unwrap()
    .topology
}

fn env<'a>(t: &'a Topology, c: &str, k: &str) -> Option<&'a str> {
    t.container(c)?.env.get(k).map(|v| v.value.as_str())
}

#[test]
fn redis_todo_app_sees_redis_at_localhost() {
    let t = example("redis-todo.toml");
    assert_eq!(t.name, "todo");
    assert_eq!(
        t.node("node4").unwrap().address,
        NodeAddress::Remote("198.18.0.4".into())
    );
    let app = t.container("app1").unwrap();
    assert_eq!(app.node, "node1");
    assert_eq!(app.command, ["sleep", "1000000"]);
    assert_eq!(app.links.len(), 1);
    let l = &app.links[0];
    assert_eq!(
        (l.listen_ip, l.listen_port, l.protocol),
        (Ipv4Addr::LOCALHOST, 6379, Protocol::Tcp)
    );
    assert_eq!(
        l.target,
        LinkTarget::Container {
            container: "redisdb".into(),
            port: 6379
        }
    );
    assert_eq!(l.origin, LinkOrigin::Declared { index: 0 });
    let redis = t.container("redisdb").unwrap();
    assert_eq!(redis.publish[0].host_port, Some(50000));
    assert_eq!(env(&t, "app1", "GEARTOPO_TOPOLOGY"), Some("todo"));
    assert_eq!(env(&t, "app1", "GEARTOPO_CONTAINER"), Some("app1"));
    assert_eq!(env(&t, "app1", "GEARTOPO_REPLICA"), None);
    assert_eq!(env(&t, "app1", "REDIS_URL"), Some("redis://127.0.0.1:6379"));
}

#[test]
fn defaults_are_merged_into_every_node() {
    let t = parse(
        "name = \"d\"\n[defaults]\nuser = \"deploy\"\nport = 2222\nruntime = \"docker\"\nhost_ports = \"5000-5100\"\n\
         [nodes.a]\naddress = \"local\"\n[nodes.b]\naddress = \"db.example.com\"\nport = 22\nidentity = \"/keys/id\"\n",
    );
    let a = t.node("a").unwrap();
    assert_eq!(a.address, NodeAddress::Local);
    assert_eq!(
        (a.user.as_str(), a.port, a.runtime),
        ("deploy", 2222, Runtime::Docker)
    );
    assert_eq!((a.host_ports.first, a.host_ports.last), (5000, 5100));
    assert_eq!(a.identity, None);
    let b = t.node("b").unwrap();
    assert_eq!(b.port, 22);
    assert_eq!(
        b.identity.as_deref(),
        Some(std::path::Path::new("/keys/id"))
    );
    // Unset everywhere: the documented defaults, with `~` expanded.
    let t = parse("name = \"d\"\n[nodes.a]\naddress = \"10.0.0.1\"\n");
    let a = t.node("a").unwrap();
    assert_eq!(
        (a.user.as_str(), a.port, a.runtime),
        ("root", 22, Runtime::Podman)
    );
    assert_eq!((a.host_ports.first, a.host_ports.last), (4000, 60000));
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        assert_eq!(
            a.known_hosts,
            std::path::PathBuf::from(home).join(".ssh/known_hosts")
        );
    }
}

#[test]
fn replicas_are_placed_round_robin_and_know_their_number() {
    let t = parse(
        "name = \"r\"\n[nodes.a]\naddress = \"local\"\n[nodes.b]\naddress = \"local\"\n\
         [containers.db]\nreplicas = 3\nnodes = [\"a\", \"b\"]\nimage = \"mongo\"\npublish = [{ port = 27017 }]\n",
    );
    let placed: Vec<(&str, &str, Option<u32>, &str)> = t
        .containers
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.node.as_str(),
                c.replica,
                c.declared.as_str(),
            )
        })
        .collect();
    assert_eq!(
        placed,
        [
            ("db-1", "a", Some(1), "db"),
            ("db-2", "b", Some(2), "db"),
            ("db-3", "a", Some(3), "db")
        ]
    );
    assert_eq!(env(&t, "db-3", "GEARTOPO_REPLICA"), Some("3"));
    assert_eq!(env(&t, "db-3", "GEARTOPO_CONTAINER"), Some("db-3"));
    assert_eq!(t.container("db-2").unwrap().runtime_name(&t.name), "r-db-2");
}

#[test]
fn a_view_gives_members_and_observers_the_same_addresses() {
    let t = example("mongo-replica-set.toml");
    let v = &t.views[0];
    assert_eq!(v.members, ["db-1", "db-2", "db-3"]);
    assert_eq!(v.observers, ["shell"]);
    assert_eq!(
        (v.subnet, v.prefix_len),
        (Ipv4Addr::new(192, 168, 1, 0), 24)
    );
    for i in 1..=3u8 {
        let name = format!("db-{i}");
        let c = t.container(&name).unwrap();
        let want_ip = format!("192.168.1.{i}");
        assert_eq!(
            env(&t, &name, "GEARTOPO_VIEW_MONGO"),
            Some(want_ip.as_str())
        );
        assert_eq!(
            env(&t, &name, "GEARTOPO_VIEW_MONGO_MEMBERS"),
            Some("192.168.1.1,192.168.1.2,192.168.1.3")
        );
        assert_eq!(c.links.len(), 3);
        for (j, l) in c.links.iter().enumerate() {
            let j = j as u8 + 1;
            assert_eq!(l.listen_ip, Ipv4Addr::new(192, 168, 1, j));
            assert_eq!(l.listen_port, 27017);
            assert_eq!(
                l.origin,
                LinkOrigin::View {
                    view: "mongo".into()
                }
            );
            if j == i {
                assert_eq!(l.target, LinkTarget::Loopback { port: 27017 });
            } else {
                assert_eq!(
                    l.target,
                    LinkTarget::Container {
                        container: format!("db-{j}"),
                        port: 27017
                    }
                );
            }
        }
    }
    // The observer sees the members but is not one.
    assert_eq!(env(&t, "shell", "GEARTOPO_VIEW_MONGO"), None);
    assert!(env(&t, "shell", "GEARTOPO_VIEW_MONGO_MEMBERS").is_some());
    assert_eq!(t.container("shell").unwrap().links.len(), 3);
}

#[test]
fn view_env_names_are_upper_cased_with_underscores() {
    let t = parse(
        "name = \"v\"\n[nodes.a]\naddress = \"local\"\n[containers.x]\nnode = \"a\"\nimage = \"i\"\npublish = [{ port = 1 }]\n\
         [views.\"my-set.v2\"]\nmembers = [\"x\"]\nsubnet = \"10.9.0.0/29\"\nports = [1]\n",
    );
    assert_eq!(env(&t, "x", "GEARTOPO_VIEW_MY_SET_V2"), Some("10.9.0.1"));
    assert_eq!(
        env(&t, "x", "GEARTOPO_VIEW_MY_SET_V2_MEMBERS"),
        Some("10.9.0.1")
    );
}

#[test]
fn link_forms_listen_addresses_and_protocols() {
    let t = parse(
        "name = \"l\"\n[nodes.a]\naddress = \"local\"\n\
         [containers.dns]\nnode = \"a\"\nimage = \"i\"\npublish = [{ port = 53, protocol = \"udp\" }, { port = 53 }]\n\
         [containers.app]\nnode = \"a\"\nimage = \"i\"\nlinks = [\n\
           { to = \"dns:53\", protocol = \"udp\" },\n\
           { to = \"dns:53\", listen = \"127.0.0.2:5353\" },\n\
           \"127.0.0.3:6380:10.16.138.9:50001\",\n\
           \"7000:dns:53\",\n\
           { to = \"cache.example.com:11211\", listen = \"127.0.0.4\" },\n]\n",
    );
    let links = &t.container("app").unwrap().links;
    let got: Vec<(String, u16, Protocol, LinkTarget)> = links
        .iter()
        .map(|l| {
            (
                l.listen_ip.to_string(),
                l.listen_port,
                l.protocol,
                l.target.clone(),
            )
        })
        .collect();
    let dns = |port| LinkTarget::Container {
        container: "dns".into(),
        port,
    };
    assert_eq!(
        got,
        [
            ("127.0.0.1".into(), 53, Protocol::Udp, dns(53)),
            ("127.0.0.2".into(), 5353, Protocol::Tcp, dns(53)),
            (
                "127.0.0.3".into(),
                6380,
                Protocol::Tcp,
                LinkTarget::Raw {
                    host: "10.16.138.9".into(),
                    port: 50001
                }
            ),
            ("127.0.0.1".into(), 7000, Protocol::Tcp, dns(53)),
            (
                "127.0.0.4".into(),
                11211,
                Protocol::Tcp,
                LinkTarget::Raw {
                    host: "cache.example.com".into(),
                    port: 11211
                }
            ),
        ]
    );
    let indexes: Vec<LinkOrigin> = links.iter().map(|l| l.origin.clone()).collect();
    assert_eq!(indexes[4], LinkOrigin::Declared { index: 4 });
}

#[test]
fn secret_env_values_are_marked_and_never_in_reports() {
    let text = "name = \"s\"\n[nodes.a]\naddress = \"local\"\n[containers.db]\nnode = \"a\"\nimage = \"i\"\n\
                env = { PASSWORD = { value = \"hunter2\", secret = true }, PLAIN = \"x\" }\n";
    let t = parse(text);
    let c = t.container("db").unwrap();
    assert!(c.env["PASSWORD"].secret);
    assert_eq!(c.env["PASSWORD"].value, "hunter2");
    assert!(!c.env["PLAIN"].secret);
    // A broken file that holds a secret does not echo it in problem messages.
    let bad = text
        .replace("node = \"a\"", "node = \"zz\"")
        .replace("secret = true", "secret = true, x = 1");
    let e = topology::parse("s.toml", bad.as_bytes()).unwrap_err();
    assert!(
        e.problems.iter().all(|p| !p.message.contains("hunter2")),
        "{:?}",
        e.lines()
    );
    // Nor in the source lines shown under the labels: table-form values are masked.
    let report = e.render_with(true);
    assert!(report.contains("unknown key `x`"), "{report}");
    assert!(
        report.contains("PASSWORD = { value = \"*******\""),
        "{report}"
    );
    assert!(!report.contains("hunter2"), "{report}");
}

#[test]
fn every_problem_in_a_file_is_reported_in_one_run() {
    let e = topology::parse(
        "bad.toml",
        b"name = \"X\"\nbogus = 1\n[nodes.n]\naddress = \"1.2.3.999\"\nprot = 1\n\
          [containers.a]\nnode = \"m\"\nimage = \"i\"\nlinks = [{ to = \"zz:1\" }]\n",
    )
    .unwrap_err();
    let messages: Vec<&str> = e.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "invalid topology name \"X\"",
            "unknown key `bogus`",
            "invalid node address \"1.2.3.999\"",
            "unknown key `prot`",
            "unknown node `m`",
            "unknown container `zz`",
        ]
    );
    // One line per problem with file and line, for logs.
    let lines = e.lines();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0], "bad.toml:1: invalid topology name \"X\"");
    assert_eq!(lines[5], "bad.toml:9: unknown container `zz`");
    // Display is the whole report (what `eprint!("{invalid}")` shows).
    let shown = e.to_string();
    assert!(shown.ends_with("bad.toml: 6 errors\n"), "{shown}");
    assert!(shown.contains("[bad.toml:9:17]"), "{shown}");
}

#[test]
fn reports_are_plain_ascii_unless_for_a_terminal() {
    let e = topology::parse("x.toml", b"name = \"X\"\n").unwrap_err();
    let plain = e.render_with(true);
    assert!(plain.is_ascii() && !plain.contains('\u{1b}'), "{plain}");
    let tty = e.render_with(false);
    assert!(tty.contains('\u{1b}'), "colour for a terminal: {tty}");
    assert!(tty.contains("invalid topology name"));
}

/// geard's plain self-link on a replicated container, as `geartopo import` writes it.
const REPLICAS_SEE_EACH_OTHER: &str = r#"
name = "web"
[nodes.n1]
address = "198.18.0.1"
[nodes.n2]
address = "198.18.0.2"
[containers.web]
replicas = 2
nodes = ["n1", "n2"]
image = "busybox"
publish = [{ port = 8080 }]
links = [
  { to = "web-1:8080" },
  { to = "web-2:8080", listen = "127.0.0.1:8081" },
]
"#;

#[test]
fn a_replica_linking_to_itself_is_a_loopback_link_or_no_link_at_all() {
    let t = parse(REPLICAS_SEE_EACH_OTHER);
    let seen = |c: &str| -> Vec<(Ipv4Addr, u16, LinkTarget)> {
        t.container(c)
            .unwrap()
            .links
            .iter()
            .map(|l| (l.listen_ip, l.listen_port, l.target.clone()))
            .collect()
    };
    let web = |i: u32| LinkTarget::Container {
        container: format!("web-{i}"),
        port: 8080,
    };
    // web-1 is already at 127.0.0.1:8080 inside itself: that link needs no rule.
    assert_eq!(seen("web-1"), [(Ipv4Addr::LOCALHOST, 8081, web(2))]);
    // web-2 sees itself at 127.0.0.1:8081: DNAT to its own 8080.
    assert_eq!(
        seen("web-2"),
        [
            (Ipv4Addr::LOCALHOST, 8080, web(1)),
            (
                Ipv4Addr::LOCALHOST,
                8081,
                LinkTarget::Loopback { port: 8080 }
            ),
        ]
    );
    let l = &t.container("web-2").unwrap().links[1];
    assert_eq!(l.origin, LinkOrigin::Declared { index: 1 });
}

#[test]
fn a_replica_linking_to_itself_on_another_address_keeps_the_loopback_link() {
    let t = parse(&REPLICAS_SEE_EACH_OTHER.replace(
        "{ to = \"web-1:8080\" }",
        "{ to = \"web-1:8080\", listen = \"127.0.0.2:8080\" }",
    ));
    let l = &t.container("web-1").unwrap().links[0];
    assert_eq!(
        (l.listen_ip, l.listen_port, &l.target),
        (
            Ipv4Addr::new(127, 0, 0, 2),
            8080,
            &LinkTarget::Loopback { port: 8080 }
        )
    );
}

#[test]
fn the_firewall_backend_is_iptables_unless_defaults_or_the_node_say_otherwise() {
    use geartopo::topology::model::Firewall;
    let t = parse("name = \"d\"\n[nodes.a]\naddress = \"10.0.0.1\"\n");
    assert_eq!(t.node("a").unwrap().firewall, Firewall::Iptables);
    let t = parse(
        "name = \"d\"\n[defaults]\nfirewall = \"nftables\"\n[nodes.a]\naddress = \"10.0.0.1\"\n\
         [nodes.b]\naddress = \"10.0.0.2\"\nfirewall = \"iptables\"\n",
    );
    assert_eq!(t.node("a").unwrap().firewall, Firewall::Nftables);
    assert_eq!(t.node("b").unwrap().firewall, Firewall::Iptables);
}
