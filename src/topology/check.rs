//! Raw -> model: every rule of the topology format, each broken rule a [`Problem`]
//! with a span. Replicas and views are expanded here. No I/O except reading `$HOME`
//! for `~` expansion; nothing here may panic on any input.
//!
//! This file holds the entry point and the checker's shared state; each concern has
//! its own file: `nodes`, `containers`, `views`, `links`, and `whole_file` (checks
//! across the file, run last).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_spanned::Spanned;

pub use super::diag::Invalid;
use super::diag::{Problem, MAX_REPORTED};
use super::graph::DepGraph;
use super::model::{ContainerOptions, EnvValue, Protocol, Publish, RestartPolicy, Topology};
use super::names::{closest, name_problem, MAX_LINKS, MAX_SUGGESTIONS};
use super::raw::{self, Document, RawContainer, RawProtocol};
use views::Expanded;

mod containers;
mod health;
mod links;
mod mounts;
mod nodes;
mod views;
mod whole_file;

/// Parses and validates topology text. `name` is used in diagnostics.
pub fn check(name: &str, source: &[u8]) -> Result<(Topology, DepGraph), Invalid> {
    let mut problems = Vec::new();
    let text = match std::str::from_utf8(source) {
        Ok(s) => s.to_owned(),
        Err(e) => {
            let at = e.valid_up_to();
            problems.push(Problem::at(
                "this file is not UTF-8 text",
                at..at + 1,
                "invalid byte here",
            ));
            return Err(invalid(name, printable(source), problems));
        }
    };
    let mut masked = Vec::new();
    let topology = raw::read(&text, &mut problems).and_then(|doc| {
        masked = doc.masked.clone();
        let mut checker = Checker {
            base_dir: Some(
                std::path::Path::new(name)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default(),
            ),
            problems: &mut problems,
            node_names: BTreeSet::new(),
            names: BTreeMap::new(),
            suggestions: 0,
            allow_binds: BTreeMap::new(),
        };
        checker.topology(&doc)
    });
    // A file that is not TOML has no spans to go by: every `value = ...` the
    // text holds is masked as well (a secret's line may be the one shown).
    masked.extend(super::secret_mask::value_literals(&text));
    match topology {
        Some((t, Some(graph))) if problems.is_empty() => Ok((t, graph)),
        _ => Err(invalid(name, mask(text, &masked), problems)),
    }
}

fn invalid(name: &str, source: String, mut problems: Vec<Problem>) -> Invalid {
    // File order, so a reader can walk the file top to bottom.
    problems.sort_by_key(|p| p.labels.first().map(|l| l.span.start));
    problems.dedup();
    let omitted = problems.len().saturating_sub(MAX_REPORTED);
    problems.truncate(MAX_REPORTED);
    Invalid {
        name: name.to_owned(),
        source: printable(source.as_bytes()),
        problems,
        omitted,
    }
}

/// `text` with every byte inside `spans` but the quotes made `*`, same length.
fn mask(text: String, spans: &[Range<usize>]) -> String {
    let mut bytes = text.into_bytes();
    for span in spans {
        // A string keeps its quotes (one `*` per byte inside); anything else
        // (a number written where a secret goes) is masked whole.
        let quoted = matches!(bytes.get(span.start), Some(b'"' | b'\''));
        let inner = if quoted {
            span.start.saturating_add(1)..span.end.saturating_sub(1)
        } else {
            span.clone()
        };
        for b in bytes.get_mut(inner).into_iter().flatten() {
            *b = b'*';
        }
    }
    // Masking may cut a multi-byte character; `printable` turns any stray byte into `?`.
    printable(&bytes)
}

/// The file as text to show under a report: every byte that is not printable UTF-8
/// (invalid sequences, control characters) becomes `?`, one byte for one byte, so
/// spans still point at the same places and a terminal never receives raw junk.
fn printable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                // Keep the byte count: a multi-byte control char becomes as many `?`.
                out.extend(std::iter::repeat_n('?', c.len_utf8()));
            } else {
                out.push(c);
            }
        }
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
    out
}

/// What a name in `[containers]` stands for, after replica expansion.
#[derive(Debug, Clone)]
enum Named {
    /// A plain container, index into the declared list.
    Single(usize),
    /// The bare name of a replicated container (`db`): its replica names.
    Replicated(usize, Vec<String>),
    /// One replica (`db-2`) of declared container `usize`.
    Replica(usize),
    /// Declared but not readable (already reported): references to it are not checked.
    Broken,
}

/// A declared container after its own checks, before links are resolved.
struct Declared<'a> {
    name: String,
    #[allow(dead_code)]
    key_span: Range<usize>,
    raw: &'a RawContainer,
    /// Concrete (name, node, replica number) in order.
    concrete: Vec<(String, String, Option<u32>)>,
    publish: Vec<(Publish, Range<usize>)>,
    env: BTreeMap<String, EnvValue>,
    command: Vec<String>,
    image: String,
    restart: RestartPolicy,
    health: Option<super::model::Health>,
    max_unavailable: u32,
    volumes: Vec<mounts::CheckedMount>,
    options: ContainerOptions,
}

struct Checker<'p> {
    /// The topology file's folder: where `from_file` paths start.
    base_dir: Option<std::path::PathBuf>,
    problems: &'p mut Vec<Problem>,
    /// Node names declared, including those whose entry was broken.
    node_names: BTreeSet<String>,
    names: BTreeMap<String, Named>,
    /// "Did you mean" searches made so far, against MAX_SUGGESTIONS.
    suggestions: usize,
    /// Each node's `allow_binds` (with `[defaults]`'), by node name.
    allow_binds: BTreeMap<String, Vec<String>>,
}

impl Checker<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    /// Refuses a topology whose containers would have more than MAX_LINKS links
    /// in all, before any is made: declared links times replicas, plus what each
    /// view implies (every participant sees every member on every port).
    fn link_count_within_limit(
        &mut self,
        declared: &[Declared<'_>],
        views: &[Expanded<'_>],
    ) -> bool {
        let mut total = 0usize;
        // The biggest contributor, to point at.
        let mut worst: Option<(usize, Range<usize>, String)> = None;
        let mut count = |n: usize, span: Range<usize>, what: String| {
            total = total.saturating_add(n);
            if worst.as_ref().is_none_or(|(w, _, _)| n > *w) {
                worst = Some((n, span, what));
            }
        };
        for d in declared {
            let links = d.raw.links.as_ref().map_or(0, Vec::len);
            count(
                links.saturating_mul(d.concrete.len()),
                d.key_span.clone(),
                format!("container `{}`", d.name),
            );
        }
        for x in views {
            let v = &x.view;
            let participants = v.members.len() + v.observers.len();
            count(
                participants
                    .saturating_mul(v.members.len())
                    .saturating_mul(v.ports.len()),
                x.key_span.clone(),
                format!("view `{}`", v.name),
            );
        }
        if total <= MAX_LINKS {
            return true;
        }
        let (n, span, what) = worst.unwrap_or((total, 0..0, String::new()));
        self.push(
            Problem::at(
                format!("the topology has {total} links after replicas and views, more than {MAX_LINKS}"),
                span,
                format!("{what} makes {n} of them"),
            )
            .help("a topology is limited to 100000 links (docs/format.md, \"Limits\"): fewer replicas, members, observers or ports, or several topologies"),
        );
        false
    }

    fn topology(&mut self, doc: &Document) -> Option<(Topology, Option<DepGraph>)> {
        let name = self.topology_name(doc.name.as_ref());
        let id = doc.id.as_ref().and_then(|id| self.topology_id(id));
        let nodes = self.nodes(doc);
        let declared = self.containers(doc);
        let views = self.views(doc, &declared);
        if !self.link_count_within_limit(&declared, &views) {
            return None;
        }
        let mut containers = self.links(&name, &declared, &views, &nodes);
        self.host_port_conflicts(&declared);
        let mut reported = BTreeSet::new();
        for d in &declared {
            for (_, node, _) in &d.concrete {
                self.bind_allowed(node, &d.volumes, &mut reported);
            }
        }
        for c in &mut containers {
            c.env.insert("GEARTOPO_TOPOLOGY".into(), plain(&name));
        }
        let topology = Topology {
            name,
            id,
            nodes,
            containers,
            views: views.into_iter().map(|v| v.view).collect(),
        };
        let graph = self.start_cycles(&topology, &declared);
        Some((topology, graph))
    }

    fn topology_name(&mut self, name: Option<&Spanned<String>>) -> String {
        let Some(name) = name else {
            return String::new();
        };
        let n = name.get_ref();
        let ok = !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            self.push(
                Problem::at(
                    format!("invalid topology name {n:?}"),
                    name.span(),
                    "must be 1 to 32 characters of a-z, 0-9 and -",
                )
                .help("it prefixes every container's name on the nodes, so it is kept simple"),
            );
        } else if n.starts_with('-') {
            // It reaches command lines as a label value and a name prefix, where
            // a leading `-` reads as an option.
            self.push(
                Problem::at(
                    format!("invalid topology name {n:?}"),
                    name.span(),
                    "must not start with -",
                )
                .help("it reaches the nodes' command lines, where a leading - reads as an option"),
            );
        }
        n.clone()
    }

    /// The topology's id, lowercased; reports a malformed one.
    fn topology_id(&mut self, id: &Spanned<String>) -> Option<String> {
        let ok = super::id::topology_id(id.get_ref());
        if ok.is_none() {
            self.push(
                Problem::at(
                    format!("invalid topology id {:?}", id.get_ref()),
                    id.span(),
                    "expected 16 to 64 hex digits, or a UUID",
                )
                .help("it tells this topology's containers from those of another topology of the same name; `geartopo validate` on a file without `id` prints a fresh one"),
            );
        }
        ok
    }

    /// Checks a node, container or view name; reports and returns false when bad.
    fn entity_name(&mut self, kind: &str, name: &str, span: Range<usize>) -> bool {
        match name_problem(name) {
            None => true,
            Some(why) => {
                self.push(
                    Problem::at(format!("invalid {kind} name {name:?}"), span, why).help(
                        "names reach remote shells and are never escaped: use A-Z a-z 0-9 _ . -",
                    ),
                );
                false
            }
        }
    }
}

/// The closest of `candidates` to a misspelt `word`, for the first
/// MAX_SUGGESTIONS misspellings of a file (each search scans every name);
/// `made` is the checker's count of searches so far.
fn suggest<'a>(
    made: &mut usize,
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    if *made >= MAX_SUGGESTIONS {
        return None;
    }
    *made += 1;
    closest(word, candidates)
}

fn declared_of<'a, 'b>(
    names: &BTreeMap<String, Named>,
    declared: &'a [Declared<'b>],
    concrete: &str,
) -> Option<&'a Declared<'b>> {
    match names.get(concrete)? {
        Named::Single(i) | Named::Replica(i) | Named::Replicated(i, _) => declared.get(*i),
        Named::Broken => None,
    }
}

fn plain(s: &str) -> EnvValue {
    EnvValue {
        value: s.to_owned(),
        secret: false,
    }
}

fn protocol(p: Option<&Spanned<RawProtocol>>) -> Protocol {
    match p.map(|p| *p.get_ref()) {
        Some(RawProtocol::Udp) => Protocol::Udp,
        Some(RawProtocol::Tcp) | None => Protocol::Tcp,
    }
}
