//! `show --json` (format_version 1): each container of the topology with its
//! live status, then the containers of the topology found on the nodes but no
//! longer in the file. Keys are declared in alphabetical order, as this
//! document has always printed them.

use schemars::JsonSchema;
use serde::Serialize;

use super::{FormatVersion, Protocol};
use crate::nft::NftRule;
use crate::plan::Plan;
use crate::state::{ObservedContainer, ObservedState, RunState};
use crate::topology::model::Firewall;

/// Live status, as `geartopo show --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(title = "geartopo show")]
pub struct ShowDocument {
    pub containers: Vec<ShowContainer>,
    pub format_version: FormatVersion<1>,
    /// The topology's name.
    pub topology: String,
}

/// A container of the file not found on its node, or a container found.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ShowContainer {
    Absent(AbsentContainer),
    Observed(ObservedStatus),
}

/// A container of the file that is not on its node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AbsentContainer {
    pub container: String,
    pub node: String,
    pub runtime_name: String,
    pub state: Absent,
}

/// The state of a container that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Absent {
    #[serde(rename = "absent")]
    Absent,
}

/// A container found on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ObservedStatus {
    pub container: String,
    /// `healthy` or `unhealthy`: one try of its health check, made by this
    /// read (docs/rolling.md); left out for a container without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// The DNAT rules in force in its namespace.
    pub links: Vec<ShowLink>,
    /// Whether the owned chains are intact and hold the rules the file wants;
    /// `null` when it has no namespace or is not in the file.
    pub matches_file: Option<bool>,
    pub node: String,
    /// The pid of its namespace, when it has one.
    pub pid: Option<u32>,
    pub published: Vec<ShowPublished>,
    pub runtime_name: String,
    /// `running`, `created (not started)`, or the runtime's word (`exited`, ...).
    pub state: String,
    /// False for a container of the topology no longer in the file (not in the JSON).
    #[serde(skip)]
    pub in_file: bool,
}

/// A link in force: a DNAT rule of the owned chains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ShowLink {
    /// `IP:PORT` the traffic goes to.
    pub destination: String,
    /// `IP:PORT` as the container sees it.
    pub listen: String,
    /// As the rule says (`tcp`, `udp`).
    pub protocol: String,
}

/// A published port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ShowPublished {
    /// On the node.
    pub host_port: u16,
    /// Inside the container.
    pub port: u16,
    pub protocol: Protocol,
}

impl ShowDocument {
    /// The status of `plan.desired` in `state`, then of what else `state` holds.
    pub fn new(plan: &Plan, state: &ObservedState) -> Self {
        let mut containers = Vec::new();
        for d in &plan.desired {
            let oc = state
                .nodes
                .get(&d.node)
                .and_then(|n| n.containers.get(&d.container));
            containers.push(match oc {
                Some(oc) => {
                    ShowContainer::Observed(observed(oc, &d.node, Some((&d.rules, d.firewall))))
                }
                None => ShowContainer::Absent(AbsentContainer {
                    container: d.container.clone(),
                    node: d.node.clone(),
                    runtime_name: d.runtime_name.clone(),
                    state: Absent::Absent,
                }),
            });
        }
        for c in &mut containers {
            if let ShowContainer::Observed(o) = c {
                o.health = state
                    .nodes
                    .get(&o.node)
                    .and_then(|n| n.health.get(&o.runtime_name))
                    .map(|h| if *h { "healthy" } else { "unhealthy" }.to_string());
            }
        }
        for (node, ns) in &state.nodes {
            for oc in ns.containers.values() {
                if !plan
                    .desired
                    .iter()
                    .any(|d| d.container == oc.container && &d.node == node)
                {
                    containers.push(ShowContainer::Observed(observed(oc, node, None)));
                }
            }
        }
        ShowDocument {
            containers,
            format_version: FormatVersion,
            topology: plan.topology.clone(),
        }
    }
}

/// A DNAT rule of an owned chain as a link in force.
fn link_in_force(rule: &str) -> Option<ShowLink> {
    let words: Vec<&str> = rule.split_whitespace().collect();
    let after = |flag: &str| {
        words
            .iter()
            .position(|w| *w == flag)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    if !rule.starts_with("-A GEARTOPO-OUTPUT") || !rule.contains("-j DNAT") {
        return None;
    }
    let ip = after("-d")?.trim_end_matches("/32").to_string();
    Some(ShowLink {
        listen: format!("{ip}:{}", after("--dport")?),
        protocol: after("-p")?,
        destination: after("--to-destination")?,
    })
}

/// A DNAT rule of geartopo's nft table (`ip daddr L tcp dport P dnat to D:DP`)
/// as a link in force.
fn nft_link_in_force(rule: &NftRule) -> Option<ShowLink> {
    let words: Vec<&str> = rule.statements.split_whitespace().collect();
    match words.as_slice() {
        ["ip", "daddr", ip, protocol @ ("tcp" | "udp"), "dport", port, "dnat", "to", to] => {
            Some(ShowLink {
                listen: format!("{ip}:{port}"),
                protocol: protocol.to_string(),
                destination: to.to_string(),
            })
        }
        _ => None,
    }
}

fn state_word(oc: &ObservedContainer) -> String {
    match &oc.state {
        RunState::Running => "running".into(),
        RunState::Created => "created (not started)".into(),
        RunState::Stopped(s) => s.clone(),
    }
}

/// `wanted`: the rules the file wants and their backend, when the container is
/// in the file. Links in force are read from both backends.
fn observed(
    oc: &ObservedContainer,
    node: &str,
    wanted: Option<(&Vec<String>, Firewall)>,
) -> ObservedStatus {
    let nft_output = oc
        .nft
        .iter()
        .filter_map(|t| t.chains.get(crate::nft::OUTPUT))
        .flat_map(|c| c.rules.iter().filter_map(nft_link_in_force));
    ObservedStatus {
        container: oc.container.clone(),
        health: None,
        links: oc
            .chains
            .iter()
            .flat_map(|c| c.rules.iter().filter_map(|r| link_in_force(r)))
            .chain(nft_output)
            .collect(),
        matches_file: match (wanted, &oc.chains) {
            (Some((w, Firewall::Iptables)), Some(c)) => {
                Some(c.intact() && &c.rules == w && oc.nft.is_none())
            }
            (Some((w, Firewall::Nftables)), Some(c)) => Some(
                c.is_empty()
                    && oc
                        .nft
                        .as_ref()
                        .is_some_and(|t| t.intact() && &crate::nft::table_lines(t) == w),
            ),
            _ => None,
        },
        node: node.to_string(),
        pid: oc.pid,
        published: oc
            .published
            .iter()
            .map(|p| ShowPublished {
                host_port: p.host_port,
                port: p.port,
                protocol: p.protocol.into(),
            })
            .collect(),
        runtime_name: oc.runtime_name.clone(),
        state: state_word(oc),
        in_file: wanted.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RunState;
    use crate::testing::{applied_state, empty_state};
    use crate::topology::Topology;

    fn redis_todo() -> Topology {
        crate::topology::parse(
            "redis-todo.toml",
            include_bytes!("../../examples/redis-todo.toml"),
        )
        .unwrap()
    }

    /// The status of redis-todo as applied, with app1's rules deleted by hand,
    /// redisdb stopped without a namespace, and a container no longer in the file.
    fn mixed() -> ShowDocument {
        let t = redis_todo();
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        let mut s = applied_state(&t, &p);
        let node1 = s.nodes.get_mut("node1").unwrap();
        let app1 = node1.containers.get_mut("app1").unwrap();
        app1.chains.as_mut().unwrap().rules.clear();
        let mut old = app1.clone();
        old.container = "old".into();
        old.runtime_name = "todo-old".into();
        node1.containers.insert("old".into(), old);
        let redis = s
            .nodes
            .get_mut("node4")
            .unwrap()
            .containers
            .get_mut("redisdb")
            .unwrap();
        redis.state = RunState::Stopped("exited".into());
        redis.pid = None;
        redis.chains = None;
        ShowDocument::new(&p, &s)
    }

    #[test]
    fn show_json_keeps_its_fields() {
        let t = redis_todo();
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        let applied = serde_json::to_value(ShowDocument::new(&p, &applied_state(&t, &p))).unwrap();
        assert_eq!(applied["format_version"], 1);
        assert_eq!(applied["topology"], "todo");
        let app1 = &applied["containers"][1];
        assert_eq!(
            app1,
            &serde_json::json!({
                "container": "app1",
                "node": "node1",
                "runtime_name": "todo-app1",
                "state": "running",
                "pid": 1001,
                "published": [],
                "links": [{"listen": "127.0.0.1:6379", "protocol": "tcp", "destination": "198.18.0.4:50000"}],
                "matches_file": true,
            })
        );
        let redis = &applied["containers"][0];
        assert_eq!(
            redis["published"],
            serde_json::json!([{"port": 6379, "protocol": "tcp", "host_port": 50000}])
        );
        let empty = serde_json::to_value(ShowDocument::new(&p, &empty_state(&t))).unwrap();
        assert_eq!(
            empty["containers"][0],
            serde_json::json!({"container": "redisdb", "node": "node4", "runtime_name": "todo-redisdb", "state": "absent"})
        );
        let mixed = serde_json::to_value(mixed()).unwrap();
        let c = mixed["containers"].as_array().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(
            (&c[0]["state"], &c[0]["pid"], &c[0]["matches_file"]),
            (
                &"exited".into(),
                &serde_json::Value::Null,
                &serde_json::Value::Null
            )
        );
        assert_eq!(
            (&c[1]["matches_file"], &c[1]["links"]),
            (&false.into(), &serde_json::json!([]))
        );
        assert_eq!(
            (&c[2]["container"], &c[2]["matches_file"]),
            (&"old".into(), &serde_json::Value::Null)
        );
    }

    /// On an nftables node the links in force come from geartopo's table, and
    /// the container matches the file only while the table is as applied.
    #[test]
    fn an_nftables_container_shows_the_links_of_its_table() {
        let mut t = redis_todo();
        t.nodes.get_mut("node1").unwrap().firewall = Firewall::Nftables;
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        let mut s = applied_state(&t, &p);
        let doc = serde_json::to_value(ShowDocument::new(&p, &s)).unwrap();
        let app1 = &doc["containers"][1];
        assert_eq!(
            (&app1["links"], &app1["matches_file"]),
            (
                &serde_json::json!([{"listen": "127.0.0.1:6379", "protocol": "tcp", "destination": "198.18.0.4:50000"}]),
                &true.into()
            )
        );
        let app = s
            .nodes
            .get_mut("node1")
            .unwrap()
            .containers
            .get_mut("app1")
            .unwrap();
        app.nft
            .as_mut()
            .unwrap()
            .chains
            .get_mut("output")
            .unwrap()
            .rules
            .clear();
        let doc = serde_json::to_value(ShowDocument::new(&p, &s)).unwrap();
        let app1 = &doc["containers"][1];
        assert_eq!(
            (&app1["links"], &app1["matches_file"]),
            (&serde_json::json!([]), &false.into())
        );
    }

    /// What `show --json` prints, in every shape, fits schema/show.schema.json.
    #[test]
    fn show_json_fits_its_committed_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/show.schema.json")).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let t = redis_todo();
        let p = crate::plan::plan(&t, &empty_state(&t), None).unwrap();
        for doc in [
            ShowDocument::new(&p, &empty_state(&t)),
            ShowDocument::new(&p, &applied_state(&t, &p)),
            mixed(),
        ] {
            let json = serde_json::to_value(&doc).unwrap();
            let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{json:#}\n{errors:?}");
        }
    }

    /// Printed as declared equals printed through `serde_json::Value` (sorted keys),
    /// as this document always was.
    #[test]
    fn show_json_keys_are_in_alphabetical_order() {
        let doc = mixed();
        let direct = serde_json::to_string_pretty(&doc).unwrap();
        let sorted = serde_json::to_string_pretty(&serde_json::to_value(&doc).unwrap()).unwrap();
        assert_eq!(direct, sorted);
    }
}
