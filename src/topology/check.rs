//! Raw -> model, with every problem reported as a diagnostic. (Stub.)
use std::path::Path;

use super::model::Topology;

/// A topology that failed to load: every diagnostic, renderable with miette.
#[derive(Debug)]
pub struct Invalid {
    pub message: String,
}

impl Invalid {
    pub fn unreadable(path: &Path, e: &std::io::Error) -> Self {
        Invalid {
            message: format!("cannot read {}: {e}", path.display()),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub fn check(_name: &str, _source: &[u8]) -> Result<Topology, Invalid> {
    todo!("topology::check")
}
