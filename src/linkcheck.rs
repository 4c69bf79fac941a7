//! `geartopo check`: whether each link carries traffic. For every link of every
//! container, a TCP connect from inside the source container's network namespace
//! to the link's listen address (what the container's own process would do),
//! all of a node's probes in one round trip (`node::probe`). A UDP link has no
//! connect to make: it is reported `not checkable`. Changes nothing anywhere.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::node::probe::{Probe, MARK};
use crate::node::{Connections, NodeOp};
use crate::observe::parallel_map;
use crate::topology::model::{LinkTarget, Protocol, Topology};

/// One link and what became of its probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkCheck {
    /// The source container (`app1`, `db-2`).
    pub container: String,
    pub node: String,
    /// `IP:PORT` inside the container.
    pub listen: String,
    pub protocol: &'static str,
    /// What the link leads to: `db:6379`, `HOST:PORT`, or `itself:PORT`.
    pub target: String,
    /// `ok`, `refused`, `timeout`, `unreachable`, `not running`, `not checkable`
    /// (UDP), `no probe` (neither bash nor nc on the node), or `error: ...`.
    pub result: String,
}

impl LinkCheck {
    /// Whether this link counts as failed (exit status 1). A UDP link, which
    /// cannot be checked by a connect, does not.
    pub fn failed(&self) -> bool {
        !matches!(self.result.as_str(), "ok" | "not checkable")
    }
}

/// Every link of every container, in file order, each still to probe (`result`
/// empty; UDP ones `not checkable`).
pub fn links(topology: &Topology) -> Vec<LinkCheck> {
    let mut out = Vec::new();
    for c in &topology.containers {
        for l in &c.links {
            let target = match &l.target {
                LinkTarget::Container { container, port } => format!("{container}:{port}"),
                LinkTarget::Raw { host, port } => format!("{host}:{port}"),
                LinkTarget::Loopback { port } => format!("itself:{port}"),
            };
            out.push(LinkCheck {
                container: c.name.clone(),
                node: c.node.clone(),
                listen: format!("{}:{}", l.listen_ip, l.listen_port),
                protocol: l.protocol.as_str(),
                target,
                result: match l.protocol {
                    Protocol::Udp => "not checkable".into(),
                    Protocol::Tcp => String::new(),
                },
            });
        }
    }
    out
}

/// Probes every TCP link in `checks` (one round trip per node that has any) and
/// fills in its result.
pub fn check(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    timeout_secs: u32,
    checks: &mut [LinkCheck],
) {
    // Per node: (index into checks, probe).
    let mut by_node: BTreeMap<String, Vec<(usize, Probe)>> = BTreeMap::new();
    for (i, c) in checks.iter().enumerate() {
        if !c.result.is_empty() {
            continue;
        }
        let (ip, port) = c.listen.rsplit_once(':').expect("IP:PORT");
        by_node.entry(c.node.clone()).or_default().push((
            i,
            Probe {
                runtime_name: format!("{}-{}", topology.name, c.container),
                ip: ip.to_string(),
                port: port.parse().expect("a port"),
            },
        ));
    }
    let jobs: Vec<_> = conns
        .iter_mut()
        .filter_map(|conn| {
            let probes = by_node.get(conn.node())?.clone();
            Some((conn, probes))
        })
        .collect();
    let answers = parallel_map(jobs, parallelism, |(conn, probes)| {
        let op = NodeOp::CheckLinks {
            topology: topology.name.clone(),
            timeout_secs,
            probes: probes.iter().map(|(_, p)| p.clone()).collect(),
        };
        let results: Vec<String> = match conn.run(&[op]) {
            Ok(out) => {
                let found = parse(&out.stdout_str(), probes.len());
                let failed = (!out.success()).then(|| {
                    format!(
                        "error: the probe script failed ({}): {}",
                        out.status,
                        out.stderr_str().trim()
                    )
                });
                found
                    .into_iter()
                    .map(|r| {
                        r.or_else(|| failed.clone())
                            .unwrap_or_else(|| "error: no answer".into())
                    })
                    .collect()
            }
            Err(e) => vec![format!("error: {e}"); probes.len()],
        };
        probes
            .into_iter()
            .map(|(i, _)| i)
            .zip(results)
            .collect::<Vec<_>>()
    });
    for (i, result) in answers.into_iter().flatten() {
        checks[i].result = crate::text::escape_controls(&result).into_owned();
    }
}

/// The results in the probe script's answer, by probe index (`None`: no line).
pub fn parse(stdout: &str, n: usize) -> Vec<Option<String>> {
    let mut out = vec![None; n];
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix(MARK) else {
            continue;
        };
        let mut words = rest.trim_start().splitn(2, ' ');
        let (Some(i), Some(result)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if let Some(slot) = out.get_mut(i) {
            let result = result.trim();
            *slot = Some(match result {
                "not-running" => "not running".to_string(),
                "no-probe" => "no probe".to_string(),
                r if r.starts_with("error") => {
                    format!("error: {}", r.trim_start_matches("error").trim())
                }
                r => r.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_index_and_missing_ones_stay_none() {
        let out = format!(
            "junk\n{MARK} 2 refused\n{MARK} 0 ok\n{MARK} 3 error nsenter: cannot open\n{MARK} 9 ok\n{MARK} x ok\n"
        );
        assert_eq!(
            parse(&out, 4),
            [
                Some("ok".to_string()),
                None,
                Some("refused".to_string()),
                Some("error: nsenter: cannot open".to_string())
            ]
        );
    }

    #[test]
    fn udp_links_are_not_checkable_and_do_not_fail() {
        let t = crate::topology::parse(
            "t.toml",
            br#"
name = "t"
[nodes.n1]
address = "198.18.0.1"
[containers.dns]
node = "n1"
image = "dns:1"
publish = [{ port = 53, protocol = "udp" }, { port = 80 }]
[containers.app]
node = "n1"
image = "app:1"
links = [{ to = "dns:53", protocol = "udp" }, { to = "dns:80" }]
"#,
        )
        .unwrap();
        let checks = links(&t);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].result, "not checkable");
        assert!(!checks[0].failed());
        assert_eq!(checks[1].result, "");
        assert_eq!(checks[1].target, "dns:80");
        assert_eq!(checks[1].listen, "127.0.0.1:80");
    }
}
