//! `geartopo show`: live status from the same read as plan: each container with
//! its node, state, published ports, and the links in force in its namespace.
use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use super::session::{load, Session};
use crate::state::{ObservedContainer, RunState};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

/// A DNAT rule of an owned chain as `listen -> destination`.
fn link_in_force(rule: &str) -> Option<(String, String, String)> {
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
    Some((
        format!("{ip}:{}", after("--dport")?),
        after("-p")?,
        after("--to-destination")?,
    ))
}

fn state_word(oc: &ObservedContainer) -> String {
    match &oc.state {
        RunState::Running => "running".into(),
        RunState::Created => "created (not started)".into(),
        RunState::Stopped(s) => s.clone(),
    }
}

pub fn run(args: ShowArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe()?;
    let plan = session.plan(&state, &[])?;
    let mut items = Vec::new();
    let mut text = String::new();
    for d in &plan.desired {
        let oc = state
            .nodes
            .get(&d.node)
            .and_then(|n| n.containers.get(&d.container));
        let Some(oc) = oc else {
            text.push_str(&format!("{} on {}: not created\n", d.runtime_name, d.node));
            items.push(json!({"container": d.container, "node": d.node, "runtime_name": d.runtime_name, "state": "absent"}));
            continue;
        };
        items.push(container_status(oc, &d.node, Some(&d.rules), &mut text));
    }
    for (node, ns) in &state.nodes {
        for oc in ns.containers.values() {
            if !plan
                .desired
                .iter()
                .any(|d| d.container == oc.container && &d.node == node)
            {
                text.push_str("(not in the file) ");
                items.push(container_status(oc, node, None, &mut text));
            }
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"format_version": 1, "topology": session.topology.name, "containers": items})
            )?
        );
    } else {
        print!("{text}");
    }
    Ok(0)
}

fn container_status(
    oc: &ObservedContainer,
    node: &str,
    wanted: Option<&Vec<String>>,
    text: &mut String,
) -> serde_json::Value {
    let pid = oc.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    text.push_str(&format!(
        "{} on {node}: {}{pid}\n",
        oc.runtime_name,
        state_word(oc)
    ));
    let published: Vec<String> = oc
        .published
        .iter()
        .map(|p| format!("{} -> {}/{:?}", p.host_port, p.port, p.protocol).to_lowercase())
        .collect();
    if !published.is_empty() {
        text.push_str(&format!("  published: {}\n", published.join(", ")));
    }
    let links: Vec<(String, String, String)> = oc
        .chains
        .iter()
        .flat_map(|c| c.rules.iter().filter_map(|r| link_in_force(r)))
        .collect();
    for (listen, proto, dest) in &links {
        text.push_str(&format!("  link {listen}/{proto} -> {dest}\n"));
    }
    let matches = match (wanted, &oc.chains) {
        (Some(w), Some(c)) => Some(c.intact() && &c.rules == w),
        _ => None,
    };
    match matches {
        Some(true) => text.push_str("  links match the file\n"),
        Some(false) => text.push_str("  links differ from the file (see `geartopo plan`)\n"),
        None => {}
    }
    json!({
        "container": oc.container,
        "node": node,
        "runtime_name": oc.runtime_name,
        "state": state_word(oc),
        "pid": oc.pid,
        "published": oc.published.iter().map(|p| json!({"port": p.port, "protocol": p.protocol, "host_port": p.host_port})).collect::<Vec<_>>(),
        "links": links.iter().map(|(l, p, d)| json!({"listen": l, "protocol": p, "destination": d})).collect::<Vec<_>>(),
        "matches_file": matches,
    })
}
