//! `geartopo validate`: parse and check a topology, report every problem; no network.
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::output::validate::{missing_id_text, ValidateDocument};
use crate::topology::{self, Invalid};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "With --json, stdout carries only the JSON document and stderr stays empty; \
    exit codes are unchanged (0 valid, 1 invalid or unreadable). Lines and columns are 1-based, \
    columns counted in characters; byte offsets are 0-based. The document has format_version, valid, \
    error_count, warning_count, diagnostics (severity, summary, detail, range, snippet, labels, help) \
    and topology, like `terraform validate -json`; `geartopo man` has the same text."
)]
pub struct ValidateArgs {
    /// Topology file (default ./geartopo.toml).
    pub file: Option<PathBuf>,
    /// Print one JSON document on stdout, like `terraform validate -json`: every problem with its
    /// file, line, column and byte ranges, labels and help (instead of the summary or the report).
    #[arg(long)]
    pub json: bool,
}

/// Exit 0 with a one-line summary on stdout, or 1 with the full report on stderr;
/// with `--json`, the same exit codes and one document on stdout.
pub fn run(args: ValidateArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    if args.json {
        return run_json(&path);
    }
    match super::load_or_report(&path) {
        Some(t) => {
            outln!("{}", summary(&path.display().to_string(), &t.topology))?;
            if t.topology.id.is_none() {
                let (headline, help) = missing_id_text(&t.topology.name, &fresh_id());
                errln!("warning: {}: {headline}\n  help: {help}", path.display())?;
            }
            Ok(0)
        }
        None => Ok(1),
    }
}

/// `validate --json`. The file is read here and handed to `topology::load_source`
/// (the one load path) because the document's columns are counted in the
/// original bytes, which the `Invalid` report no longer has (its source is masked).
fn run_json(path: &Path) -> anyhow::Result<i32> {
    let (doc, code) = match std::fs::read(path) {
        Err(e) => (
            ValidateDocument::invalid(&Invalid::unreadable(path, &e), b""),
            1,
        ),
        Ok(bytes) => match topology::load_source(&path.display().to_string(), bytes.clone()) {
            Ok(loaded) => (ValidateDocument::valid(&loaded.topology, &fresh_id()), 0),
            Err(invalid) => (ValidateDocument::invalid(&invalid, &bytes), 1),
        },
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &doc)?;
    writeln!(out)?;
    out.flush()?;
    Ok(code)
}

/// A fresh topology id: 16 random bytes as 32 hex digits, from the kernel's
/// randomness; if that cannot be read, a hash of the clock and the process id
/// (unique enough for telling two topologies apart, which is all an id is for).
pub(crate) fn fresh_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if random.is_err() {
        use sha2::{Digest, Sha256};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let digest = Sha256::new()
            .chain_update(now.as_nanos().to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .finalize();
        bytes.copy_from_slice(&digest[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `todo.toml: topology "todo" is valid: 2 nodes, 2 containers, 0 views, 3 links`.
pub(crate) fn summary(file: &str, t: &topology::Topology) -> String {
    let links: usize = t.containers.iter().map(|c| c.links.len()).sum();
    format!(
        "{file}: topology \"{}\" is valid: {}, {}, {}, {}",
        t.name,
        count(t.nodes.len(), "node"),
        count(t.containers.len(), "container"),
        count(t.views.len(), "view"),
        count(links, "link"),
    )
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_fresh_id_is_a_valid_id_and_another_each_time() {
        let (a, b) = (super::fresh_id(), super::fresh_id());
        assert_eq!(crate::topology::id::topology_id(&a), Some(a.clone()));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
