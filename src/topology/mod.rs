//! The topology file: `raw` mirrors the TOML with spans (serde), `check` turns it
//! into the validated `model` (expanding replicas and views) or into diagnostics
//! (`diag`). Only `model` travels on; nothing after `load` sees raw input. `graph`
//! is the start order of a validated model (check uses it to report cycles).

use std::path::Path;

pub mod check;
pub mod diag;
pub mod extra_node;
pub mod graph;
pub mod id;
pub mod model;
pub(crate) mod names;
pub mod raw;
mod secret_mask;
pub(crate) mod secret_source;

pub use diag::{Invalid, Problem};
pub use model::Topology;

/// A validated topology with its start-order graph (built once, by the check
/// that rules out cycles) and the text it was read from: what every command
/// starts from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub topology: Topology,
    pub graph: graph::DepGraph,
    pub source: Vec<u8>,
}

/// The one way from a file to a validated model and its graph, for every command.
/// A file that cannot be read is an [`Invalid`] too, with one problem and no place.
pub fn load(path: &Path) -> Result<Loaded, Invalid> {
    let source = std::fs::read(path).map_err(|e| Invalid::unreadable(path, &e))?;
    load_source(&path.display().to_string(), source)
}

/// As [`load`], from text already read (a saved plan carries its topology);
/// `name` is used in diagnostics.
pub fn load_source(name: &str, source: Vec<u8>) -> Result<Loaded, Invalid> {
    let (topology, graph) = check::check(name, &source)?;
    Ok(Loaded {
        topology,
        graph,
        source,
    })
}

/// Parses and validates topology text into the model alone (tests, and callers
/// that never walk the graph).
pub fn parse(name: &str, source: &[u8]) -> Result<Topology, Invalid> {
    check::check(name, source).map(|(topology, _)| topology)
}

/// The JSON Schema of the topology file, generated from the raw serde types.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawTopology);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    /// The graph every command walks is the one the check built: a loaded
    /// topology always has it, and a cycle never gets that far.
    #[test]
    fn load_gives_the_model_and_its_graph_or_every_problem() {
        let ok = "name = \"t\"\n[nodes.n]\naddress = \"198.18.0.1\"\n[containers.a]\nnode = \"n\"\nimage = \"i\"\npublish = [{ port = 1 }]\n[containers.b]\nnode = \"n\"\nimage = \"i\"\nlinks = [{ to = \"a:1\" }]\n";
        let loaded = super::load_source("t.toml", ok.as_bytes().to_vec()).unwrap();
        assert_eq!(loaded.source, ok.as_bytes());
        let order: Vec<String> = loaded
            .graph
            .steps_in_order()
            .iter()
            .map(|s| format!("{s:?}"))
            .collect();
        let start = |n: &str| order.iter().position(|s| s == &format!("Start({n:?})"));
        assert!(start("a") < start("b"), "{order:?}");

        let cycle = ok
            .replace(
                "[containers.a]\n",
                "[containers.a]\nlinks = [{ to = \"b:2\" }]\n",
            )
            .replace(
                "links = [{ to = \"a:1\" }]",
                "links = [{ to = \"a:1\" }]\npublish = [{ port = 2 }]",
            );
        let invalid = super::load_source("t.toml", cycle.into_bytes()).unwrap_err();
        assert!(
            invalid
                .problems
                .iter()
                .any(|p| p.message.starts_with("start-order cycle")),
            "{invalid}"
        );
    }
}
