//! The topology file: `raw` mirrors the TOML with spans (serde), `check` turns it
//! into the validated `model` (expanding replicas and views) or into diagnostics.
//! Only `model` travels on; nothing after `load` sees raw input.

use std::path::Path;

pub mod check;
pub mod model;
pub mod raw;

pub use check::Invalid;
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
