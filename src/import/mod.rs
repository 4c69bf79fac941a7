//! `geartopo import`: a geard deployment descriptor (the JSON `gear deploy` read
//! and wrote) turned into a topology file that means the same thing.
//!
//! `descriptor` reads the JSON (keys in any case, as geard's Go decoder did),
//! `deploy` replays geard's `Deployment.Describe` (instances, round-robin
//! placement, link address reservation), `render` writes the TOML, which is then
//! validated like any topology file. Pure: no file or network I/O here; the
//! command line (`cli::import`) reads and writes files.

use std::fmt;

mod deploy;
mod descriptor;
mod render;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something was not carried over; the topology is still written.
    Warning,
    /// The descriptor cannot be imported; nothing is written.
    Error,
}

/// One problem, at its place in the descriptor (a JSON pointer such as
/// `/Containers/0/Links/1/To`, or another short location such as `--node`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A JSON pointer into the descriptor (`""` is the whole document), or
    /// `--node` / `--name` for a command-line problem.
    pub at: String,
    /// What is wrong and, where there is one, what to do about it.
    pub message: String,
}

impl Diagnostic {
    pub(crate) fn error(at: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            at: at.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        // The root pointer is empty; say "/" so the line still has a place.
        let at = if self.at.is_empty() { "/" } else { &self.at };
        write!(f, "{word}: {at}: {}", self.message)
    }
}

/// Collects diagnostics in the order they are found.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }
    pub(crate) fn error(&mut self, at: &str, message: String) {
        self.push(Diagnostic {
            severity: Severity::Error,
            at: at.to_string(),
            message,
        });
    }
    pub(crate) fn warning(&mut self, at: &str, message: String) {
        self.push(Diagnostic {
            severity: Severity::Warning,
            at: at.to_string(),
            message,
        });
    }
    pub(crate) fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }
}

/// A node given on the command line as `--node NAME=ADDRESS`, in geard's host order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArg {
    /// The node's name in the topology (`[nodes.NAME]`).
    pub name: String,
    /// An IP, a DNS name, or `local`; also what an instance's `On` is matched against.
    pub address: String,
}

impl std::str::FromStr for NodeArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, address) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=ADDRESS"))?;
        if name.is_empty() || !name.chars().all(render::name_char) {
            return Err(format!(
                "node name `{name}` must be made of A-Z a-z 0-9 _ . -"
            ));
        }
        if address.is_empty() || address.chars().any(|c| c.is_whitespace() || c == '"') {
            return Err(format!(
                "node `{name}` needs an address (an IP, a DNS name, or `local`)"
            ));
        }
        Ok(NodeArg {
            name: name.to_string(),
            address: address.to_string(),
        })
    }
}

/// What the importer needs besides the descriptor.
#[derive(Debug, Clone)]
pub struct Options {
    /// The descriptor's file name, for the topology name and the header comment.
    pub file_name: String,
    /// `--name`; derived from `file_name` when `None`.
    pub name: Option<String>,
    /// The nodes, in geard's host order (the order of `gear deploy FILE HOST...`).
    pub nodes: Vec<NodeArg>,
}

/// A successful import: the topology text and what was not carried over.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The topology file.
    pub toml: String,
    /// Everything not carried over, in the order found.
    pub warnings: Vec<Diagnostic>,
}

/// An import that failed: every diagnostic, errors and warnings, in order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the descriptor cannot be imported ({} error(s))", .diagnostics.iter().filter(|d| d.severity == Severity::Error).count())]
pub struct Failed {
    /// At least one error; warnings found on the way too.
    pub diagnostics: Vec<Diagnostic>,
}

/// Imports a geard deployment descriptor (JSON bytes) as topology TOML.
pub fn import(source: &[u8], options: &Options) -> Result<Imported, Failed> {
    let mut d = Diagnostics::default();
    let name = topology_name(options, &mut d);
    check_nodes(&options.nodes, &mut d);
    let descriptor = descriptor::parse(source, &mut d);
    let result = match descriptor {
        Some(desc) if !d.has_errors() => deploy::describe(&desc, &options.nodes, &mut d)
            .and_then(|deployed| render::render(&desc, &deployed, &name, options, &mut d)),
        _ => None,
    };
    if let Some(toml) = result.as_ref().filter(|_| !d.has_errors()) {
        // The file is only as good as `validate` finds it: never hand over one it
        // refuses. Anything caught here is an importer bug, not the user's.
        if let Err(invalid) = crate::topology::parse("the imported topology", toml.as_bytes()) {
            for line in invalid.lines() {
                d.error(
                    "/",
                    format!("{line} (geartopo import wrote a topology validate refuses: please report it)"),
                );
            }
        }
    }
    match result {
        Some(toml) if !d.has_errors() => Ok(Imported {
            toml,
            warnings: d.list,
        }),
        _ => Failed::ensure_error(d.list),
    }
}

impl Failed {
    fn ensure_error(mut diagnostics: Vec<Diagnostic>) -> Result<Imported, Failed> {
        if !diagnostics.iter().any(|d| d.severity == Severity::Error) {
            // Unreachable by construction; never turn a failure into silence.
            diagnostics.push(Diagnostic::error(
                "/",
                "the descriptor could not be imported",
            ));
        }
        Err(Failed { diagnostics })
    }
}

fn check_nodes(nodes: &[NodeArg], d: &mut Diagnostics) {
    if nodes.is_empty() {
        d.error(
            "--node",
            "give at least one --node NAME=ADDRESS".to_string(),
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        if nodes[..i].iter().any(|m| m.name == n.name) {
            d.error("--node", format!("node `{}` is given twice", n.name));
        }
    }
}

/// `--name`, or the descriptor's file name made into `[a-z0-9-]`, at most 32.
fn topology_name(options: &Options, d: &mut Diagnostics) -> String {
    if let Some(name) = &options.name {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !ok {
            d.error(
                "--name",
                format!("`{name}` must be 1 to 32 of a-z 0-9 - (not at either end)"),
            );
        }
        return name.clone();
    }
    let derived = derive_name(&options.file_name);
    if derived.is_empty() {
        d.error(
            "--name",
            format!(
                "no topology name can be made from `{}`; give --name",
                options.file_name
            ),
        );
    }
    derived
}

/// `redis_martini_deploy.json.20140502-101010` -> `redis-martini-deploy`: geard's
/// deploy wrote its result as `<file>.<YYYYMMDD-HHMMSS>`, so that suffix goes too.
pub(crate) fn derive_name(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let mut stem = base;
    if let Some((head, tail)) = stem.rsplit_once('.') {
        let ts = tail.len() == 15
            && tail.as_bytes()[8] == b'-'
            && tail
                .chars()
                .enumerate()
                .all(|(i, c)| i == 8 || c.is_ascii_digit());
        if ts {
            stem = head;
        }
    }
    if let Some(head) = stem.strip_suffix(".json") {
        stem = head;
    }
    let mut out = String::new();
    for c in stem.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(32);
    out.trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_file_without_geards_timestamp() {
        assert_eq!(
            derive_name("fixtures/redis_martini_deploy.json"),
            "redis-martini-deploy"
        );
        assert_eq!(
            derive_name("mongo_deploy.json.20140502-101010"),
            "mongo-deploy"
        );
        assert_eq!(derive_name("My Stack!.json"), "my-stack");
        assert_eq!(derive_name(&format!("{}.json", "a".repeat(40))).len(), 32);
    }

    #[test]
    fn node_args_need_a_name_and_an_address() {
        let n: NodeArg = "n1=198.18.0.1".parse().unwrap();
        assert_eq!(
            n,
            NodeArg {
                name: "n1".into(),
                address: "198.18.0.1".into()
            }
        );
        assert!("n1".parse::<NodeArg>().is_err());
        assert!("n 1=x".parse::<NodeArg>().is_err());
        assert!("n1=".parse::<NodeArg>().is_err());
    }
}
