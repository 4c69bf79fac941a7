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
    let mut listed: Option<Vec<Value>> = None;
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
                    // NAME|PORTS, or NAME|PORTS|ID|TOPOLOGY (docker's listing).
                    let (name, rest) = line.split_once('|').unwrap_or(("", line));
                    let ports = rest.split('|').next().unwrap_or("");
                    if !name.is_empty() {
                        state.names.insert(name.trim().to_string());
                    }
                    state.taken_ports.extend(published_in_ps(ports));
                }
            }
            (Section::Inspect, []) => {
                inspected = inspect_body(body)
                    .map_err(|e| err(format!("inspect output is not JSON: {e}")))?;
            }
            (Section::List, []) => {
                let list: Option<Vec<Value>> = if body.trim().is_empty() {
                    None
                } else {
                    serde_json::from_str(body)
                        .map_err(|e| err(format!("ps output is not JSON: {e}")))?
                };
                let list = list.unwrap_or_default();
                for v in &list {
                    for name in v
                        .get("Names")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(name) = name.as_str().filter(|n| !n.is_empty()) {
                            state.names.insert(name.to_string());
                        }
                    }
                    for p in listed_ports(v) {
                        state.taken_ports.insert((p.protocol, p.host_port));
                    }
                }
                listed = Some(list);
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
            (Section::NodeFilter, []) => {
                let (chains, jumps) = crate::private_ports::parse_filter(body);
                state.filter.chains = chains;
                state.filter.jumps = jumps;
            }
            (Section::Subnets, nets) => {
                state.filter.subnets = nets
                    .iter()
                    .filter_map(|n| crate::private_ports::network(n))
                    .collect();
            }
            (Section::Durable, [state_dir, hooks_dir, systemd]) => {
                let mut d = crate::state::DurableState {
                    state_dir: state_dir.to_string(),
                    hooks_dir: hooks_dir.to_string(),
                    systemd: systemd.to_string(),
                    ..Default::default()
                };
                let mut modes = BTreeMap::new();
                let mut shas = BTreeMap::new();
                for line in body.lines() {
                    let mut w = line.split_whitespace();
                    match (w.next(), w.next(), w.next()) {
                        (Some("mode"), Some(m), Some(p)) => {
                            modes.insert(p.to_string(), m.to_string());
                        }
                        (Some("sha"), Some(h), Some(p)) => {
                            shas.insert(p.to_string(), h.to_string());
                        }
                        (Some("dockerruntime"), path, _) => {
                            d.docker_runtime = Some(path.unwrap_or("").to_string());
                        }
                        _ => {}
                    }
                }
                for (p, m) in modes {
                    let h = shas.remove(&p).unwrap_or_default();
                    d.files.insert(p, (m, h));
                }
                state.durable = Some(d);
            }
            (Section::Nft, []) => {
                if let Some(id) = &current_ns {
                    namespaces.get_mut(id).expect("ns before nft").nft = Some(body.clone());
                }
            }
            (Section::Images, []) => {
                for line in body.lines() {
                    match line.split_once(' ') {
                        Some(("missing", image)) => {
                            state.images.missing.insert(image.to_string());
                        }
                        Some(("auth", key)) => {
                            state.images.logins.insert(key.to_string());
                        }
                        _ => {}
                    }
                }
            }
            (Section::Volumes, []) => {
                let prefix = format!("{topology}-");
                let mut volumes = BTreeMap::new();
                for line in body.lines() {
                    let mut w = line.split(' ');
                    let name = w.next().unwrap_or("");
                    if name.starts_with(&prefix) {
                        let t = w.next().unwrap_or("").to_string();
                        let id = w.next().unwrap_or("").to_string();
                        volumes.insert(name.to_string(), (t, id));
                    }
                }
                state.volumes = Some(volumes);
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
    // (container, its topology label, the pid the listing shows if it shows one)
    let mut found: Vec<(ObservedContainer, Option<String>, Option<u32>)> = Vec::new();
    for value in &inspected {
        if let Some(c) = parse_inspect(value).map_err(err)? {
            let t = value.pointer("/Config/Labels/geartopo.topology");
            found.push((c, t.and_then(Value::as_str).map(str::to_string), None));
        }
    }
    for value in listed.iter().flatten() {
        if let Some(c) = parse_listed(value).map_err(err)? {
            let t = value.pointer("/Labels/geartopo.topology");
            let pid = value.get("Pid").and_then(Value::as_u64).unwrap_or(0) as u32;
            found.push((c, t.and_then(Value::as_str).map(str::to_string), Some(pid)));
        }
    }
    for (mut c, t, listed_pid) in found {
        if t.as_deref() != Some(topology) {
            continue;
        }
        match (namespaces.get(&c.id), listed_pid) {
            (None, Some(pid)) if pid > 0 => {
                return Err(err(format!(
                    "container {} has a process (pid {pid}) but its namespace was not read",
                    c.runtime_name
                )))
            }
            _ => {}
        }
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
    // podman's listing: the lines the lock's digest re-check compares.
    if listed.is_some() {
        state.canonical = super::digest::Canonical(Some(std::sync::Arc::new(
            super::digest::canonical(output, topology),
        )));
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

/// The inspect section's body: a JSON array, or one `ID PID JSON` line per
/// container (`docker inspect -f '{{.Id}} {{.State.Pid}} {{json .}}'`).
fn inspect_body(body: &str) -> Result<Vec<Value>, serde_json::Error> {
    if body.trim_start().starts_with('[') {
        return serde_json::from_str(body);
    }
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let json = l.splitn(3, ' ').nth(2).unwrap_or("");
            serde_json::from_str(json)
        })
        .collect()
}

/// The published ports of one element of podman's `ps --format json`: `Ports`
/// is a list of `{container_port, host_port, range, protocol}` (null when none).
fn listed_ports(v: &Value) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for p in v
        .get("Ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let protocol = match p.get("protocol").and_then(Value::as_str) {
            Some("tcp") => ProtocolName::Tcp,
            Some("udp") => ProtocolName::Udp,
            _ => continue,
        };
        let num = |k: &str| p.get(k).and_then(Value::as_u64);
        let (Some(port), Some(host_port)) = (num("container_port"), num("host_port")) else {
            continue;
        };
        let range = num("range").unwrap_or(1).max(1);
        for i in 0..range {
            let (Ok(port), Ok(host_port)) = (u16::try_from(port + i), u16::try_from(host_port + i))
            else {
                continue;
            };
            if host_port == 0 {
                continue;
            }
            out.push(PublishedPort {
                protocol,
                port,
                host_port,
            });
        }
    }
    out
}

/// One element of podman's `ps -a --format json`; `None` without our labels.
/// It carries all that `parse_inspect` reads: Id, Names, State, Labels, Ports
/// and Image (the pid comes with the namespace read).
fn parse_listed(v: &Value) -> Result<Option<ObservedContainer>, String> {
    let label = |k: &str| {
        v.pointer("/Labels")
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
        .ok_or("ps entry without Id")?
        .to_string();
    let runtime_name = v
        .get("Names")
        .and_then(Value::as_array)
        .and_then(|n| n.first())
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut published = listed_ports(v);
    published.sort();
    published.dedup();
    Ok(Some(ObservedContainer {
        id,
        runtime_name,
        container,
        spec: spec_label(label("geartopo.spec")),
        owner_id: label("geartopo.id"),
        rules_file: label(crate::node::durable::LABEL),
        oci_runtime: None,
        nft: None,
        image: v
            .get("Image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        state: run_state(v.get("State").and_then(Value::as_str).unwrap_or("unknown")),
        pid: None,
        published,
        chains: None,
        sysctls: BTreeMap::new(),
        host_network: false,
    }))
}

fn spec_label(spec: Option<String>) -> BTreeMap<String, String> {
    spec.unwrap_or_default()
        .split(',')
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn run_state(status: &str) -> RunState {
    match status {
        "running" => RunState::Running,
        "created" | "initialized" | "configured" => RunState::Created,
        other => RunState::Stopped(other.to_string()),
    }
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
    let spec = spec_label(label("geartopo.spec"));
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
    let state = run_state(status);
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
        rules_file: label(crate::node::durable::LABEL),
        oci_runtime: v
            .pointer("/HostConfig/Runtime")
            .and_then(Value::as_str)
            .map(str::to_string),
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

    /// The same node as `PODMAN_SAMPLE`, read as the observe script now reads
    /// podman: one `ps -a --format json` of every container.
    const PODMAN_LIST_SAMPLE: &str = r#"@@geartopo tcp
@@geartopo udp
@@geartopo list
[
  {
    "Id": "abc123",
    "Image": "localhost/geartopo-busybox:latest",
    "Labels": {
      "geartopo.container": "redisdb",
      "geartopo.spec": "command=1,env=2,image=3,publish=4",
      "geartopo.topology": "todo"
    },
    "Names": [
      "todo-redisdb"
    ],
    "Pid": 4242,
    "Ports": [
      {
        "host_ip": "",
        "container_port": 6379,
        "host_port": 50000,
        "range": 1,
        "protocol": "tcp"
      }
    ],
    "State": "running"
  },
  {
    "Id": "def456",
    "Image": "nginx",
    "Labels": null,
    "Names": [
      "other-web"
    ],
    "Pid": 99,
    "Ports": [
      {
        "host_ip": "",
        "container_port": 81,
        "host_port": 4001,
        "range": 2,
        "protocol": "udp"
      }
    ],
    "State": "running"
  },
  {
    "Id": "0a0",
    "Image": "localhost/geartopo-busybox:latest",
    "Labels": {
      "geartopo.container": "app1",
      "geartopo.topology": "todo"
    },
    "Names": [
      "todo-app1"
    ],
    "Pid": 0,
    "Ports": null,
    "State": "initialized"
  }
]
@@geartopo ns abc123 4242
@@geartopo sysctl 1 1
*nat
:OUTPUT ACCEPT [0:0]
:GEARTOPO-OUTPUT - [0:0]
-A OUTPUT -j GEARTOPO-OUTPUT
COMMIT
@@geartopo end
"#;

    /// podman's listing gives what its inspect gave: the same container, field
    /// for field, and every container's names and published ports.
    #[test]
    fn a_podman_listing_reads_as_its_inspect_did() {
        let s = parse_node("node4", "todo", PODMAN_LIST_SAMPLE).unwrap();
        let from_inspect = parse_node("node4", "todo", PODMAN_SAMPLE).unwrap();
        assert_eq!(s.containers["redisdb"], from_inspect.containers["redisdb"]);
        let names: Vec<&str> = s.names.iter().map(String::as_str).collect();
        assert_eq!(names, ["other-web", "todo-app1", "todo-redisdb"]);
        let taken: Vec<_> = s.taken_ports.iter().cloned().collect();
        assert_eq!(
            taken,
            vec![
                (ProtocolName::Tcp, 50000),
                (ProtocolName::Udp, 4001),
                (ProtocolName::Udp, 4002)
            ]
        );
        let app1 = &s.containers["app1"];
        assert_eq!(app1.state, RunState::Created);
        assert_eq!(app1.pid, None);
        assert_eq!(app1.chains, None);
        assert_eq!(s.containers.len(), 2);
    }

    /// A container of ours with a process whose namespace the script did not
    /// read (the listing was not as the script expected): an error, never a
    /// container read as having no rules (which a plan would then "repair").
    #[test]
    fn a_running_container_whose_namespace_was_not_read_is_an_error() {
        let start = PODMAN_LIST_SAMPLE.find("@@geartopo ns").unwrap();
        let end = PODMAN_LIST_SAMPLE.find("@@geartopo end").unwrap();
        let out = PODMAN_LIST_SAMPLE.replace(&PODMAN_LIST_SAMPLE[start..end], "");
        let e = parse_node("node4", "todo", &out).unwrap_err().to_string();
        assert!(
            e.contains("node4") && e.contains("todo-redisdb") && e.contains("4242"),
            "{e}"
        );
    }

    /// docker: one listing `NAME|PORTS|ID|TOPOLOGY` and one inspect line
    /// `ID PID JSON` per container of ours.
    #[test]
    fn a_docker_listing_and_inspect_lines() {
        let out = r#"@@geartopo tcp
@@geartopo udp
@@geartopo ports
todo-app1|0.0.0.0:8080->80/tcp|d1|todo
web||e2|
odd|0.0.0.0:9000->9000/tcp|e3|to|do
@@geartopo inspect
d1 0 {"Id":"d1","Name":"/todo-app1","State":{"Status":"exited","Pid":0},"Config":{"Image":"busybox","Labels":{"geartopo.topology":"todo","geartopo.container":"app1"}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]}}}
@@geartopo ns d1 0
@@geartopo end
"#;
        let s = parse_node("node5", "todo", out).unwrap();
        let names: Vec<&str> = s.names.iter().map(String::as_str).collect();
        assert_eq!(names, ["odd", "todo-app1", "web"]);
        let taken: Vec<_> = s.taken_ports.iter().cloned().collect();
        assert_eq!(
            taken,
            vec![(ProtocolName::Tcp, 8080), (ProtocolName::Tcp, 9000)]
        );
        let c = &s.containers["app1"];
        assert_eq!(c.runtime_name, "todo-app1");
        assert_eq!(c.state, RunState::Stopped("exited".into()));
        assert_eq!(
            c.host_port(crate::topology::model::Protocol::Tcp, 80),
            Some(8080)
        );
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
