//! The reader of the observe output: splits it by `Section` headers (the names
//! the observe script writes, from the same definition) and turns each section
//! into `state`. Pure: text in, state out.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ObserveError;
use crate::nft::read::parse_list;
use crate::node::section::Section;
use crate::node::SYSCTLS;
use crate::rules::parse_owned;
use crate::state::{NodeState, ObservedContainer, ProtocolName, PublishedPort, RunState};

/// What was read of one container's namespace.
#[derive(Default)]
struct NamespaceRead {
    pid: Option<u32>,
    /// The values of `SYSCTLS`, in that order.
    sysctls: Vec<String>,
    save: Option<String>,
    /// The body of its `Nft` section (`None`: the node has no nft).
    nft: Option<String>,
    /// The namespace is the node's own.
    host: bool,
}

/// Parses one node's observe output.
pub fn parse_node(node: &str, topology: &str, output: &str) -> Result<NodeState, ObserveError> {
    let err = |reason: String| ObserveError::Parse {
        node: node.to_string(),
        reason,
    };
    let mut sections: Vec<(Section, Vec<&str>, String)> = Vec::new();
    for line in output.lines() {
        match Section::parse_header(line) {
            Some(Ok((section, args))) => sections.push((section, args, String::new())),
            Some(Err(head)) => return Err(err(format!("unknown section {head:?}"))),
            None => {
                if let Some((_, _, body)) = sections.last_mut() {
                    body.push_str(line);
                    body.push('\n');
                }
            }
        }
    }
    if sections.last().map(|(s, _, _)| *s) != Some(Section::End) {
        return Err(err("output ended early".into()));
    }
    let mut state = NodeState::default();
    let mut inspected: Vec<Value> = Vec::new();
    let mut namespaces: BTreeMap<String, NamespaceRead> = BTreeMap::new();
    let mut current_ns: Option<String> = None;
    for (section, args, body) in &sections {
        match (section, args.as_slice()) {
            (Section::Tcp, []) => {
                state
                    .taken_ports
                    .extend(listening(body, ProtocolName::Tcp, "0A"))
            }
            (Section::Udp, []) => {
                state
                    .taken_ports
                    .extend(listening(body, ProtocolName::Udp, "07"))
            }
            (Section::Ports, []) => {
                for line in body.lines() {
                    let (name, ports) = line.split_once('|').unwrap_or(("", line));
                    if !name.is_empty() {
                        state.names.insert(name.trim().to_string());
                    }
                    state.taken_ports.extend(published_in_ps(ports));
                }
            }
            (Section::Inspect, []) => {
                inspected = serde_json::from_str(body)
                    .map_err(|e| err(format!("inspect output is not JSON: {e}")))?;
            }
            (Section::Namespace, [id, pid]) => {
                let pid = pid.parse::<u32>().ok().filter(|p| *p > 0);
                namespaces.insert(
                    id.to_string(),
                    NamespaceRead {
                        pid,
                        ..Default::default()
                    },
                );
                current_ns = Some(id.to_string());
            }
            (Section::HostNetwork, []) => {
                if let Some(id) = &current_ns {
                    namespaces.get_mut(id).expect("ns before hostns").host = true;
                }
            }
            (Section::Sysctl, values) => {
                if let Some(id) = &current_ns {
                    let e = namespaces.get_mut(id).expect("ns before sysctl");
                    e.sysctls = values.iter().map(|v| v.to_string()).collect();
                    e.save = Some(body.clone());
                }
            }
            (Section::Nft, []) => {
                if let Some(id) = &current_ns {
                    namespaces.get_mut(id).expect("ns before nft").nft = Some(body.clone());
                }
            }
            (Section::End, []) => {}
            (section, args) => {
                return Err(err(format!(
                    "unknown section {:?}",
                    std::iter::once(section.as_str())
                        .chain(args.iter().copied())
                        .collect::<Vec<_>>()
                        .join(" ")
                )))
            }
        }
    }
    for value in inspected {
        let c = parse_inspect(&value).map_err(err)?;
        let Some(c) = c else { continue };
        if value
            .pointer("/Config/Labels/geartopo.topology")
            .and_then(Value::as_str)
            != Some(topology)
        {
            continue;
        }
        let mut c = c;
        if let Some(ns) = namespaces.get(&c.id) {
            c.pid = ns.pid;
            c.host_network = ns.host;
            if let Some(save) = &ns.save {
                if ns.sysctls.len() == SYSCTLS.len() {
                    for ((name, _), value) in SYSCTLS.iter().zip(&ns.sysctls) {
                        c.sysctls.insert(name.to_string(), value.clone());
                    }
                }
                c.chains = Some(parse_owned(save));
                let listing = ns.nft.as_deref().unwrap_or("");
                if !listing.trim().is_empty() {
                    c.nft = parse_list(listing)
                        .map_err(|e| err(format!("container {}: {e}", c.runtime_name)))?;
                }
            }
        }
        if c.pid.is_none() {
            c.chains = None;
            c.nft = None;
        }
        if state.containers.contains_key(&c.container) {
            state.extras.push(c);
        } else {
            state.containers.insert(c.container.clone(), c);
        }
    }
    Ok(state)
}

/// Local ports of sockets in `state` (hex) from a /proc/net/{tcp,udp} dump.
fn listening(body: &str, protocol: ProtocolName, state: &str) -> Vec<(ProtocolName, u16)> {
    body.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != state {
                return None;
            }
            let port = cols[1].rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok().map(|p| (protocol, p))
        })
        .collect()
}

/// Host ports in a `ps --format {{.Ports}}` line: `0.0.0.0:50000->6379/tcp, ...`.
fn published_in_ps(line: &str) -> Vec<(ProtocolName, u16)> {
    line.split(',')
        .filter_map(|part| {
            let (host, rest) = part.trim().split_once("->")?;
            let proto = match rest.rsplit('/').next()? {
                "tcp" => ProtocolName::Tcp,
                "udp" => ProtocolName::Udp,
                _ => return None,
            };
            let host_port = host.rsplit(':').next()?;
            // podman shows ranges as 50000-50001->6379-6380/tcp; take each.
            let (first, last) = match host_port.split_once('-') {
                Some((a, b)) => (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?),
                None => {
                    let p = host_port.parse::<u16>().ok()?;
                    (p, p)
                }
            };
            Some((first..=last).map(|p| (proto, p)).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// One element of `podman inspect` / `docker inspect`; `None` without our labels.
fn parse_inspect(v: &Value) -> Result<Option<ObservedContainer>, String> {
    let labels = v.pointer("/Config/Labels");
    let label = |k: &str| {
        labels
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let Some(container) = label("geartopo.container") else {
        return Ok(None);
    };
    let id = v
        .get("Id")
        .and_then(Value::as_str)
        .ok_or("inspect without Id")?
        .to_string();
    let runtime_name = v
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let spec = label("geartopo.spec")
        .unwrap_or_default()
        .split(',')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let image = v
        .pointer("/Config/Image")
        .and_then(Value::as_str)
        .or_else(|| v.get("ImageName").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let status = v
        .pointer("/State/Status")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let state = match status {
        "running" => RunState::Running,
        "created" | "initialized" | "configured" => RunState::Created,
        other => RunState::Stopped(other.to_string()),
    };
    let mut published = Vec::new();
    if let Some(bindings) = v
        .pointer("/HostConfig/PortBindings")
        .and_then(Value::as_object)
    {
        for (key, hosts) in bindings {
            let Some((port, proto)) = key.split_once('/') else {
                continue;
            };
            let protocol = match proto {
                "tcp" => ProtocolName::Tcp,
                "udp" => ProtocolName::Udp,
                _ => continue,
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for h in hosts.as_array().into_iter().flatten() {
                if let Some(hp) = h
                    .get("HostPort")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u16>().ok())
                {
                    published.push(PublishedPort {
                        protocol,
                        port,
                        host_port: hp,
                    });
                }
            }
        }
    }
    published.sort();
    published.dedup();
    Ok(Some(ObservedContainer {
        id,
        runtime_name,
        container,
        spec,
        owner_id: label("geartopo.id"),
        image,
        state,
        pid: None,
        published,
        chains: None,
        nft: None,
        sysctls: BTreeMap::new(),
        host_network: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PODMAN_SAMPLE: &str = r#"@@geartopo tcp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 040012C6:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 040012C6:0016 010012C6:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
@@geartopo udp
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  7: 00000000:1388 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 0
@@geartopo ports
todo-redisdb|0.0.0.0:50000->6379/tcp
other-idle|
other-web|0.0.0.0:4000->80/tcp, 0.0.0.0:4001-4002->81-82/udp
@@geartopo inspect
[{"Id":"abc123","Name":"todo-redisdb","State":{"Status":"running","Pid":4242},"Config":{"Image":"localhost/geartopo-busybox:latest","Labels":{"geartopo.topology":"todo","geartopo.container":"redisdb","geartopo.spec":"command=1,env=2,image=3,publish=4"}},"HostConfig":{"PortBindings":{"6379/tcp":[{"HostIp":"","HostPort":"50000"}]}}}]
@@geartopo ns abc123 4242
@@geartopo sysctl 1 1
*nat
:OUTPUT ACCEPT [0:0]
:GEARTOPO-OUTPUT - [0:0]
-A OUTPUT -j GEARTOPO-OUTPUT
COMMIT
@@geartopo end
"#;

    #[test]
    fn parses_a_podman_node() {
        let s = parse_node("node4", "todo", PODMAN_SAMPLE).unwrap();
        let taken: Vec<_> = s.taken_ports.iter().cloned().collect();
        assert_eq!(
            taken,
            vec![
                (ProtocolName::Tcp, 22),
                (ProtocolName::Tcp, 4000),
                (ProtocolName::Tcp, 50000),
                (ProtocolName::Udp, 4001),
                (ProtocolName::Udp, 4002),
                (ProtocolName::Udp, 5000)
            ]
        );
        let names: Vec<&str> = s.names.iter().map(String::as_str).collect();
        assert_eq!(names, ["other-idle", "other-web", "todo-redisdb"]);
        let c = &s.containers["redisdb"];
        assert_eq!(c.runtime_name, "todo-redisdb");
        assert_eq!(c.pid, Some(4242));
        assert_eq!(c.state, RunState::Running);
        assert_eq!(
            c.host_port(crate::topology::model::Protocol::Tcp, 6379),
            Some(50000)
        );
        assert_eq!(c.spec["image"], "3");
        assert_eq!(c.sysctls["net.ipv4.ip_forward"], "1");
        let chains = c.chains.as_ref().unwrap();
        assert_eq!(chains.jumps.get("OUTPUT"), Some(&1));
        assert!(!chains.intact());
    }

    /// A container of ours whose namespace is the node's own: named as such,
    /// with nothing read in it (no chains: the node's tables are not its own).
    #[test]
    fn a_container_in_the_nodes_own_namespace_is_marked_host_network() {
        let start = PODMAN_SAMPLE.find("@@geartopo sysctl").unwrap();
        let end = PODMAN_SAMPLE.find("@@geartopo end").unwrap();
        let out = PODMAN_SAMPLE.replace(&PODMAN_SAMPLE[start..end], "@@geartopo hostns\n");
        let c = &parse_node("node4", "todo", &out).unwrap().containers["redisdb"];
        assert!(c.host_network);
        assert_eq!(c.pid, Some(4242));
        assert_eq!(c.chains, None);
        let c = &parse_node("node4", "todo", PODMAN_SAMPLE)
            .unwrap()
            .containers["redisdb"];
        assert!(!c.host_network);
    }

    #[test]
    fn another_topology_whose_name_starts_alike_is_not_ours() {
        let out = PODMAN_SAMPLE.replace(
            r#"[{"Id":"abc123""#,
            r#"[{"Id":"x1","Name":"todo-x-app1","State":{"Status":"running","Pid":7},"Config":{"Image":"i","Labels":{"geartopo.topology":"todo-x","geartopo.container":"app1"}},"HostConfig":{}},{"Id":"abc123""#,
        );
        let s = parse_node("node4", "todo", &out).unwrap();
        assert_eq!(s.containers.keys().collect::<Vec<_>>(), ["redisdb"]);
        assert!(s.extras.is_empty());
        let plan = crate::plan::destroy(
            "todo",
            &crate::state::ObservedState {
                nodes: [("node4".to_string(), s)].into(),
                ..Default::default()
            },
        );
        let ids: Vec<_> = plan
            .changes
            .iter()
            .map(|c| c.observed_id.clone().unwrap())
            .collect();
        assert_eq!(ids, ["abc123"]);
    }

    #[test]
    fn truncated_output_is_an_error_naming_the_node() {
        let cut = &PODMAN_SAMPLE[..PODMAN_SAMPLE.len() - 20];
        let e = parse_node("node4", "todo", cut).unwrap_err();
        assert!(e.to_string().contains("node4"), "{e}");
    }

    #[test]
    fn docker_names_and_states() {
        let out = r#"@@geartopo tcp
@@geartopo udp
@@geartopo ports
@@geartopo inspect
[{"Id":"d1","Name":"/todo-app1","State":{"Status":"exited","Pid":0},"Config":{"Image":"busybox","Labels":{"geartopo.topology":"todo","geartopo.container":"app1"}},"HostConfig":{"PortBindings":{}}}]
@@geartopo ns d1 0
@@geartopo end
"#;
        let s = parse_node("node1", "todo", out).unwrap();
        let c = &s.containers["app1"];
        assert_eq!(c.runtime_name, "todo-app1");
        assert_eq!(c.state, RunState::Stopped("exited".into()));
        assert_eq!(c.pid, None);
        assert!(c.chains.is_none());
    }

    /// An nftables namespace: its table read from the JSON listing into the
    /// normalized form; no listing (empty body) is no table; a listing that is not
    /// nft's JSON is an error naming the node and the container.
    #[test]
    fn the_nft_section_is_read_into_the_table() {
        let listing = include_str!("../../tests/golden/nft/todo-app1.list.json");
        let with = |body: &str| {
            PODMAN_SAMPLE.replace(
                "COMMIT\n@@geartopo end",
                &format!("COMMIT\n@@geartopo nft\n{body}@@geartopo end"),
            )
        };
        let s = parse_node("node4", "todo", &with(&format!("{}\n", listing.trim()))).unwrap();
        let table = s.containers["redisdb"].nft.as_ref().unwrap();
        assert_eq!(
            table,
            &crate::nft::read::parse_list(listing).unwrap().unwrap()
        );
        assert!(table.intact());
        let s = parse_node("node4", "todo", &with("")).unwrap();
        assert_eq!(s.containers["redisdb"].nft, None);
        let e = parse_node("node4", "todo", &with("{\"nftables\": 7}\n")).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("node4") && e.contains("todo-redisdb"), "{e}");
    }
}
