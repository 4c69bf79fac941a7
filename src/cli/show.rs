//! `geartopo show`: live status from the same read as plan: each container with
//! its node, state, published ports, and the links in force in its namespace.
use std::path::PathBuf;

use anyhow::Result;

use super::session::{load, Session};
use crate::output::show::{ShowContainer, ShowDocument};

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Print the status as JSON on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

pub fn run(args: ShowArgs) -> Result<i32> {
    let path = super::topology_path(args.file);
    let (topology, graph, source) = load(&path)?;
    let mut session = Session::connect(topology, graph, source, &args.connect)?;
    let state = session.observe_probing()?;
    let plan = session.plan(&state, &[])?;
    // Containers of another topology with the same name and another id are not ours to show.
    let owned = crate::plan::owned_state(session.topology.id.as_deref(), &state);
    let status = ShowDocument::new(&plan, &owned);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        out!("{}", text(&status))?;
    }
    Ok(0)
}

/// The status as a person reads it: one block per container. Names, states and
/// links come from the nodes, and geartopo writes no control character of its
/// own here but newlines: the whole text is escaped (`crate::text`).
fn text(status: &ShowDocument) -> String {
    crate::text::escape_controls(&raw_text(status)).into_owned()
}

fn raw_text(status: &ShowDocument) -> String {
    let mut text = String::new();
    for c in &status.containers {
        let oc = match c {
            ShowContainer::Absent(a) => {
                text.push_str(&format!("{} on {}: not created\n", a.runtime_name, a.node));
                continue;
            }
            ShowContainer::Observed(oc) => oc,
        };
        if !oc.in_file {
            text.push_str("(not in the file) ");
        }
        let pid = oc.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
        let health = oc
            .health
            .as_ref()
            .map(|h| format!(", {h}"))
            .unwrap_or_default();
        text.push_str(&format!(
            "{} on {}: {}{pid}{health}\n",
            oc.runtime_name, oc.node, oc.state
        ));
        let published: Vec<String> = oc
            .published
            .iter()
            .map(|p| format!("{} -> {}/{}", p.host_port, p.port, p.protocol.as_str()))
            .collect();
        if !published.is_empty() {
            text.push_str(&format!("  published: {}\n", published.join(", ")));
        }
        for l in &oc.links {
            text.push_str(&format!(
                "  link {}/{} -> {}\n",
                l.listen, l.protocol, l.destination
            ));
        }
        match oc.matches_file {
            Some(true) => text.push_str("  links match the file\n"),
            Some(false) => text.push_str("  links differ from the file (see `geartopo plan`)\n"),
            None => {}
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::show::{Absent, AbsentContainer, ObservedStatus, ShowLink, ShowPublished};
    use crate::output::{FormatVersion, Protocol};

    fn observed(name: &str, in_file: bool) -> ObservedStatus {
        ObservedStatus {
            container: name.into(),
            health: None,
            links: vec![],
            matches_file: None,
            node: "node1".into(),
            pid: None,
            published: vec![],
            runtime_name: format!("todo-{name}"),
            state: "exited".into(),
            in_file,
        }
    }

    #[test]
    fn text_says_each_container_state_ports_links_and_match() {
        let mut app = observed("app1", true);
        app.state = "running".into();
        app.pid = Some(42);
        app.published = vec![ShowPublished {
            host_port: 50000,
            port: 6379,
            protocol: Protocol::Tcp,
        }];
        app.links = vec![ShowLink {
            destination: "198.18.0.4:50000".into(),
            listen: "127.0.0.1:6379".into(),
            protocol: "tcp".into(),
        }];
        app.matches_file = Some(false);
        let doc = ShowDocument {
            containers: vec![
                ShowContainer::Absent(AbsentContainer {
                    container: "redisdb".into(),
                    node: "node4".into(),
                    runtime_name: "todo-redisdb".into(),
                    state: Absent::Absent,
                }),
                ShowContainer::Observed(app),
                ShowContainer::Observed(observed("old", false)),
            ],
            format_version: FormatVersion,
            topology: "todo".into(),
        };
        assert_eq!(
            text(&doc),
            "todo-redisdb on node4: not created\n\
             todo-app1 on node1: running, pid 42\n  \
             published: 50000 -> 6379/tcp\n  \
             link 127.0.0.1:6379/tcp -> 198.18.0.4:50000\n  \
             links differ from the file (see `geartopo plan`)\n\
             (not in the file) todo-old on node1: exited\n"
        );
    }

    #[test]
    fn text_escapes_what_a_node_sent() {
        let mut app = observed("app1", true);
        app.state = "exited\x1b[2J".into();
        app.runtime_name = "todo-app1\x1b]0;title\x07".into();
        app.links = vec![ShowLink {
            destination: "198.18.0.4:50000\u{202e}".into(),
            listen: "127.0.0.1:6379".into(),
            protocol: "tcp\r".into(),
        }];
        let doc = ShowDocument {
            containers: vec![ShowContainer::Observed(app)],
            format_version: FormatVersion,
            topology: "todo".into(),
        };
        assert_eq!(
            text(&doc),
            "todo-app1\\x1b]0;title\\x07 on node1: exited\\x1b[2J\n  \
             link 127.0.0.1:6379/tcp\\x0d -> 198.18.0.4:50000\\u{202e}\n"
        );
    }
}
