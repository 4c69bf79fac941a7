//! The topology file: `raw` mirrors the TOML with spans (serde), `check` turns it
//! into the validated `model` (expanding replicas and views) or into diagnostics
//! (`diag`). Only `model` travels on; nothing after `load` sees raw input. `graph`
//! is the start order of a validated model (check uses it to report cycles).

use std::path::Path;

pub mod check;
pub mod diag;
pub mod diag_json;
pub mod graph;
pub mod model;
pub(crate) mod names;
pub mod raw;

pub use diag::{Invalid, Problem};
pub use model::Topology;

/// Reads, parses and validates a topology file.
pub fn load(path: &Path) -> Result<Topology, Invalid> {
    let source = std::fs::read(path).map_err(|e| Invalid::unreadable(path, &e))?;
    parse(&path.display().to_string(), &source)
}

/// Parses and validates topology text; `name` is used in diagnostics.
pub fn parse(name: &str, source: &[u8]) -> Result<Topology, Invalid> {
    check::check(name, source)
}

/// The JSON Schema of the topology file, generated from the raw serde types.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawTopology);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
