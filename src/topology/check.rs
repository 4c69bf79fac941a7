//! Raw -> model: every rule of the topology format, each broken rule a [`Problem`]
//! with a span. Replicas and views are expanded here. No I/O except reading `$HOME`
//! for `~` expansion; nothing here may panic on any input.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::PathBuf;

use serde_spanned::Spanned;

pub use super::diag::Invalid;
use super::diag::Problem;
use super::model::{
    Container, EnvValue, Link, LinkOrigin, LinkTarget, Node, NodeAddress, PortRange, Protocol,
    Publish, Runtime, Topology, View,
};
use super::names::{closest, host_problem, name_problem, view_env_name, MAX_NAME};
use super::raw::{
    self, Document, Entry, RawContainer, RawEnvValue, RawLink, RawProtocol, RawRuntime, RawView,
};

/// Most replicas one container may have: enough for any cluster, small enough that
/// a typo (`replicas = 30000`) is caught instead of planned.
pub(crate) const MAX_REPLICAS: i64 = 256;

/// Parses and validates topology text. `name` is used in diagnostics.
pub fn check(name: &str, source: &[u8]) -> Result<Topology, Invalid> {
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
            problems: &mut problems,
            node_names: BTreeSet::new(),
            names: BTreeMap::new(),
        };
        checker.topology(&doc)
    });
    match topology {
        Some(t) if problems.is_empty() => Ok(t),
        _ => Err(invalid(name, mask(text, &masked), problems)),
    }
}

fn invalid(name: &str, source: String, mut problems: Vec<Problem>) -> Invalid {
    // File order, so a reader can walk the file top to bottom.
    problems.sort_by_key(|p| p.labels.first().map(|l| l.span.start));
    problems.dedup();
    Invalid {
        name: name.to_owned(),
        source: printable(source.as_bytes()),
        problems,
    }
}

/// `text` with every byte inside `spans` but the quotes made `*`, same length.
fn mask(text: String, spans: &[Range<usize>]) -> String {
    let mut bytes = text.into_bytes();
    for span in spans {
        let inner = span.start.saturating_add(1)..span.end.saturating_sub(1);
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
}

struct Checker<'p> {
    problems: &'p mut Vec<Problem>,
    /// Node names declared, including those whose entry was broken.
    node_names: BTreeSet<String>,
    names: BTreeMap<String, Named>,
}

impl Checker<'_> {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn topology(&mut self, doc: &Document) -> Option<Topology> {
        let name = self.topology_name(doc.name.as_ref());
        let nodes = self.nodes(doc);
        let declared = self.containers(doc);
        let views = self.views(doc, &declared);
        let mut containers = self.links(&name, &declared, &views, &nodes);
        self.host_port_conflicts(&declared);
        for c in &mut containers {
            c.env.insert("GEARTOPO_TOPOLOGY".into(), plain(&name));
        }
        let topology = Topology {
            name,
            nodes,
            containers,
            views: views.into_iter().map(|v| v.view).collect(),
        };
        self.start_cycles(&topology, &declared);
        Some(topology)
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
        }
        n.clone()
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

    // ----- nodes -----

    fn nodes(&mut self, doc: &Document) -> BTreeMap<String, Node> {
        let d = &doc.defaults;
        let default_user = self.user(d.user.as_ref()).unwrap_or_else(|| "root".into());
        let default_port = self.port_value(d.port.as_ref()).unwrap_or(22);
        let default_identity = self.path(d.identity.as_ref());
        let default_known = self
            .path(d.known_hosts.as_ref())
            .unwrap_or_else(|| expand_tilde("~/.ssh/known_hosts"));
        let default_runtime = d
            .runtime
            .as_ref()
            .map(|r| runtime(*r.get_ref()))
            .unwrap_or(Runtime::Podman);
        let default_range = self.host_ports(d.host_ports.as_ref()).unwrap_or(PortRange {
            first: 4000,
            last: 60000,
        });

        let mut nodes = BTreeMap::new();
        for Entry {
            name,
            key_span,
            value,
        } in &doc.nodes
        {
            self.node_names.insert(name.clone());
            let good_name = self.entity_name("node", name, key_span.clone());
            let Some(raw) = value else { continue };
            let address = self.address(&raw.address);
            let node = Node {
                name: name.clone(),
                address: address.unwrap_or(NodeAddress::Local),
                user: self
                    .user(raw.user.as_ref())
                    .unwrap_or_else(|| default_user.clone()),
                port: self.port_value(raw.port.as_ref()).unwrap_or(default_port),
                identity: self
                    .path(raw.identity.as_ref())
                    .or_else(|| default_identity.clone()),
                known_hosts: self
                    .path(raw.known_hosts.as_ref())
                    .unwrap_or_else(|| default_known.clone()),
                runtime: raw
                    .runtime
                    .as_ref()
                    .map(|r| runtime(*r.get_ref()))
                    .unwrap_or(default_runtime),
                host_ports: self
                    .host_ports(raw.host_ports.as_ref())
                    .unwrap_or(default_range),
            };
            if good_name {
                nodes.insert(name.clone(), node);
            }
        }
        nodes
    }

    fn address(&mut self, a: &Spanned<String>) -> Option<NodeAddress> {
        let s = a.get_ref();
        if s == "local" {
            return Some(NodeAddress::Local);
        }
        if let Some(why) = host_problem(s) {
            self.push(
                Problem::at(format!("invalid node address {s:?}"), a.span(), why).help(
                    "an address is an IPv4 address, a DNS name, or \"local\" for this machine",
                ),
            );
            return None;
        }
        Some(NodeAddress::Remote(s.clone()))
    }

    fn user(&mut self, u: Option<&Spanned<String>>) -> Option<String> {
        let u = u?;
        let s = u.get_ref();
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            && !s.starts_with('-');
        if !ok {
            self.push(Problem::at(
                format!("invalid user name {s:?}"),
                u.span(),
                "must be 1 to 32 characters of A-Z a-z 0-9 _ . - (not starting with -)",
            ));
            return None;
        }
        Some(s.clone())
    }

    fn port_value(&mut self, p: Option<&Spanned<u16>>) -> Option<u16> {
        let p = p?;
        if *p.get_ref() == 0 {
            self.push(Problem::at(
                "port 0 is not a port",
                p.span(),
                "expected 1 to 65535",
            ));
            return None;
        }
        Some(*p.get_ref())
    }

    fn path(&mut self, p: Option<&Spanned<String>>) -> Option<PathBuf> {
        let p = p?;
        let s = p.get_ref();
        if s.is_empty() || s.contains('\0') {
            self.push(Problem::at(
                "invalid path",
                p.span(),
                "must be non-empty, without NUL",
            ));
            return None;
        }
        Some(expand_tilde(s))
    }

    fn host_ports(&mut self, r: Option<&Spanned<String>>) -> Option<PortRange> {
        let r = r?;
        let parsed = r.get_ref().split_once('-').and_then(|(a, b)| {
            let first: u16 = a.trim().parse().ok()?;
            let last: u16 = b.trim().parse().ok()?;
            (first >= 1 && first <= last).then_some(PortRange { first, last })
        });
        if parsed.is_none() {
            self.push(Problem::at(
                format!("invalid host port range {:?}", r.get_ref()),
                r.span(),
                "expected \"FIRST-LAST\" with 1 <= FIRST <= LAST <= 65535",
            ));
        }
        parsed
    }

    // ----- containers -----

    fn containers<'d>(&mut self, doc: &'d Document) -> Vec<Declared<'d>> {
        let mut declared: Vec<Declared<'d>> = Vec::new();
        // Which declaration claimed a concrete name first, for "used twice" labels.
        let mut claimed: BTreeMap<String, Range<usize>> = BTreeMap::new();
        for Entry {
            name,
            key_span,
            value,
        } in &doc.containers
        {
            let good_name = self.entity_name("container", name, key_span.clone());
            let Some(raw) = value else {
                self.names.insert(name.clone(), Named::Broken);
                continue;
            };
            let index = declared.len();
            let concrete = self.placement(name, key_span, raw);
            let mut all_names = vec![name.clone()];
            if raw.replicas.is_some() {
                all_names.extend(concrete.iter().map(|c| c.0.clone()));
            }
            for (i, n) in all_names.iter().enumerate() {
                if let Some(first) = claimed.get(n) {
                    let what = if i == 0 {
                        format!("container name `{n}` is used twice")
                    } else {
                        format!("replica `{n}` of `{name}` has the name of another container")
                    };
                    self.push(
                        Problem::at(what, key_span.clone(), "this one")
                            .label(first.clone(), "the other one"),
                    );
                } else {
                    claimed.insert(n.clone(), key_span.clone());
                }
            }
            if good_name && raw.replicas.is_some() {
                for (n, _, _) in &concrete {
                    if n.len() > MAX_NAME {
                        self.push(Problem::at(
                            format!("replica name `{n}` is longer than {MAX_NAME} characters"),
                            key_span.clone(),
                            "shorten this name",
                        ));
                    }
                }
            }
            if raw.replicas.is_some() {
                let replicas = concrete.iter().map(|c| c.0.clone()).collect();
                self.names
                    .entry(name.clone())
                    .or_insert(Named::Replicated(index, replicas));
                for (n, _, _) in &concrete {
                    self.names.entry(n.clone()).or_insert(Named::Replica(index));
                }
            } else {
                self.names
                    .entry(name.clone())
                    .or_insert(Named::Single(index));
            }
            let image = self.image(&raw.image);
            let command = self.command(raw);
            let env = self.env(raw);
            let publish = self.publish(raw);
            declared.push(Declared {
                name: name.clone(),
                key_span: key_span.clone(),
                raw,
                concrete,
                publish,
                env,
                command,
                image,
            });
        }
        declared
    }

    /// Where a declared container's concrete containers run.
    fn placement(
        &mut self,
        name: &str,
        key_span: &Range<usize>,
        raw: &RawContainer,
    ) -> Vec<(String, String, Option<u32>)> {
        let Some(replicas) = &raw.replicas else {
            if let Some(nodes) = &raw.nodes {
                self.push(
                    Problem::at(
                        "`nodes` is only for replicated containers",
                        nodes.span(),
                        "needs `replicas`",
                    )
                    .help("add `replicas = N`, or use `node = \"...\"` for one container"),
                );
            }
            return match &raw.node {
                Some(node) => {
                    self.node_ref(node);
                    vec![(name.to_owned(), node.get_ref().clone(), None)]
                }
                None => {
                    if raw.nodes.is_none() {
                        self.push(
                            Problem::at(
                                format!("container `{name}` has no `node`"),
                                key_span.clone(),
                                "where does it run?",
                            )
                            .help("add `node = \"NODE\"`"),
                        );
                    }
                    Vec::new()
                }
            };
        };
        let n = *replicas.get_ref();
        if !(1..=MAX_REPLICAS).contains(&n) {
            self.push(Problem::at(
                format!("invalid replica count {n}"),
                replicas.span(),
                format!("expected 1 to {MAX_REPLICAS}"),
            ));
            return Vec::new();
        }
        let places: Vec<&Spanned<String>> = match (&raw.node, &raw.nodes) {
            (Some(node), None) => vec![node],
            (None, Some(nodes)) if !nodes.get_ref().is_empty() => nodes.get_ref().iter().collect(),
            (None, Some(nodes)) => {
                self.push(Problem::at(
                    "`nodes` is empty",
                    nodes.span(),
                    "list at least one node",
                ));
                return Vec::new();
            }
            (Some(node), Some(nodes)) => {
                self.push(
                    Problem::at("both `node` and `nodes` are given", node.span(), "this one")
                        .label(nodes.span(), "and this one")
                        .help("a replicated container uses `nodes` (round-robin) or `node` (all on one)"),
                );
                return Vec::new();
            }
            (None, None) => {
                self.push(
                    Problem::at(
                        format!("replicated container `{name}` has no `nodes`"),
                        key_span.clone(),
                        "where do the replicas run?",
                    )
                    .help("add `nodes = [\"node1\", \"node2\"]`: replicas are placed round-robin"),
                );
                return Vec::new();
            }
        };
        for p in &places {
            self.node_ref(p);
        }
        (1..=n as u32)
            .map(|i| {
                let node = places[(i as usize - 1) % places.len()].get_ref().clone();
                (format!("{name}-{i}"), node, Some(i))
            })
            .collect()
    }

    fn node_ref(&mut self, node: &Spanned<String>) {
        let n = node.get_ref();
        if !self.node_names.contains(n) {
            let mut p = Problem::at(format!("unknown node `{n}`"), node.span(), "no such node");
            p = p.help(
                match closest(n, self.node_names.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("declare it under [nodes.{n}]"),
                },
            );
            self.push(p);
        }
    }

    fn image(&mut self, image: &Spanned<String>) -> String {
        let s = image.get_ref();
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._/:@-".contains(&b))
            && !s.starts_with('-');
        if !ok {
            self.push(Problem::at(
                format!("invalid image reference {s:?}"),
                image.span(),
                "expected something like registry.example/name:tag (A-Z a-z 0-9 . _ / : @ -)",
            ));
        }
        s.clone()
    }

    fn command(&mut self, raw: &RawContainer) -> Vec<String> {
        let Some(cmd) = &raw.command else {
            return Vec::new();
        };
        for arg in cmd.get_ref() {
            if arg.get_ref().contains('\0') {
                self.push(Problem::at(
                    "NUL in a command argument",
                    arg.span(),
                    "not allowed",
                ));
            }
        }
        cmd.get_ref().iter().map(|a| a.get_ref().clone()).collect()
    }

    fn env(&mut self, raw: &RawContainer) -> BTreeMap<String, EnvValue> {
        let mut out = BTreeMap::new();
        let Some(env) = &raw.env else { return out };
        for (key, value) in env.get_ref() {
            let k = key.get_ref();
            let valid = k
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid {
                self.push(Problem::at(
                    format!("invalid environment variable name {k:?}"),
                    key.span(),
                    "expected [A-Za-z_][A-Za-z0-9_]*",
                ));
                continue;
            }
            if k.starts_with("GEARTOPO_") {
                self.push(
                    Problem::at(
                        format!("`{k}` is reserved"),
                        key.span(),
                        "GEARTOPO_* variables are set by geartopo",
                    )
                    .help("every container gets GEARTOPO_TOPOLOGY, GEARTOPO_CONTAINER, GEARTOPO_REPLICA and GEARTOPO_VIEW_*; pick another name"),
                );
                continue;
            }
            let v = match value.get_ref() {
                RawEnvValue::Plain(s) => EnvValue {
                    value: s.clone(),
                    secret: false,
                },
                RawEnvValue::Table(t) => EnvValue {
                    value: t.value.clone(),
                    secret: t.secret,
                },
            };
            if v.value.contains('\0') {
                // The span is of the whole value: a secret's text is never shown, only where it is.
                self.push(Problem::at(
                    "NUL in an environment value",
                    value.span(),
                    "not allowed",
                ));
                continue;
            }
            out.insert(k.clone(), v);
        }
        out
    }

    fn publish(&mut self, raw: &RawContainer) -> Vec<(Publish, Range<usize>)> {
        let mut out: Vec<(Publish, Range<usize>)> = Vec::new();
        for p in raw.publish.iter().flatten() {
            let r = p.get_ref();
            let Some(port) = self.port_value(Some(&r.port)) else {
                continue;
            };
            let host_port = match &r.host_port {
                Some(h) => match self.port_value(Some(h)) {
                    Some(h) => Some(h),
                    None => continue,
                },
                None => None,
            };
            let protocol = protocol(r.protocol.as_ref());
            if let Some((_, first)) = out
                .iter()
                .find(|(q, _)| q.port == port && q.protocol == protocol)
            {
                self.push(
                    Problem::at(
                        format!("port {port}/{} is published twice", protocol.as_str()),
                        p.span(),
                        "again here",
                    )
                    .label(first.clone(), "first here"),
                );
                continue;
            }
            out.push((
                Publish {
                    port,
                    host_port,
                    protocol,
                },
                p.span(),
            ));
        }
        out
    }

    // ----- views -----

    fn views<'d>(&mut self, doc: &'d Document, declared: &[Declared<'_>]) -> Vec<Expanded<'d>> {
        let mut out: Vec<Expanded<'d>> = Vec::new();
        let mut env_names: BTreeMap<String, (String, Range<usize>)> = BTreeMap::new();
        for Entry {
            name,
            key_span,
            value,
        } in &doc.views
        {
            let good = self.entity_name("view", name, key_span.clone());
            let Some(raw) = value else { continue };
            let env_name = view_env_name(name);
            if good {
                if let Some((other, span)) = env_names.get(&env_name) {
                    self.push(
                        Problem::at(
                            format!("views `{other}` and `{name}` both set GEARTOPO_VIEW_{env_name}"),
                            key_span.clone(),
                            "this view",
                        )
                        .label(span.clone(), "clashes with this one")
                        .help("view names are upper-cased with other characters made `_` in the environment; rename one"),
                    );
                } else {
                    env_names.insert(env_name.clone(), (name.clone(), key_span.clone()));
                }
            }
            if let Some(v) = self.view(name, key_span, raw, declared, env_name) {
                out.push(v);
            }
        }
        out
    }

    /// Resolves a member or observer reference to concrete containers.
    fn participants(&mut self, r: &Spanned<String>, role: &str) -> Option<Vec<String>> {
        let n = r.get_ref();
        match self.names.get(n) {
            Some(Named::Single(_)) | Some(Named::Replica(_)) => Some(vec![n.clone()]),
            Some(Named::Replicated(_, replicas)) => Some(replicas.clone()),
            Some(Named::Broken) => None,
            None => {
                let mut p = Problem::at(
                    format!("unknown container `{n}`"),
                    r.span(),
                    format!("no such container ({role})"),
                );
                if let Some(s) = closest(n, self.names.keys().map(String::as_str)) {
                    p = p.help(format!("did you mean `{s}`?"));
                }
                self.push(p);
                None
            }
        }
    }

    fn view<'d>(
        &mut self,
        name: &str,
        key_span: &Range<usize>,
        raw: &'d RawView,
        declared: &[Declared<'_>],
        env_name: String,
    ) -> Option<Expanded<'d>> {
        let mut ok = true;
        // Members, expanded, each with the span that named it.
        let mut members: Vec<(String, Range<usize>)> = Vec::new();
        if raw.members.get_ref().is_empty() {
            self.push(Problem::at(
                format!("view `{name}` has no members"),
                raw.members.span(),
                "list at least one container",
            ));
            ok = false;
        }
        for m in raw.members.get_ref() {
            match self.participants(m, "member") {
                Some(list) => {
                    for c in list {
                        if let Some((_, first)) = members.iter().find(|(x, _)| *x == c) {
                            self.push(
                                Problem::at(
                                    format!("`{c}` is a member of view `{name}` twice"),
                                    m.span(),
                                    "again here",
                                )
                                .label(first.clone(), "first here"),
                            );
                            ok = false;
                        } else {
                            members.push((c, m.span()));
                        }
                    }
                }
                None => ok = false,
            }
        }
        let mut observers: Vec<(String, Range<usize>)> = Vec::new();
        for o in raw.observers.iter().flat_map(|o| o.get_ref()) {
            match self.participants(o, "observer") {
                Some(list) => {
                    for c in list {
                        if let Some((_, first)) =
                            members.iter().chain(&observers).find(|(x, _)| *x == c)
                        {
                            self.push(
                                Problem::at(
                                    format!("`{c}` is already in view `{name}`"),
                                    o.span(),
                                    "observer here",
                                )
                                .label(first.clone(), "already listed here"),
                            );
                            ok = false;
                        } else {
                            observers.push((c, o.span()));
                        }
                    }
                }
                None => ok = false,
            }
        }
        let subnet = self.subnet(&raw.subnet);
        let mut ports: Vec<u16> = Vec::new();
        if raw.ports.get_ref().is_empty() {
            self.push(Problem::at(
                format!("view `{name}` has no ports"),
                raw.ports.span(),
                "list at least one port",
            ));
            ok = false;
        }
        for p in raw.ports.get_ref() {
            let Some(port) = self.port_value(Some(p)) else {
                ok = false;
                continue;
            };
            if ports.contains(&port) {
                self.push(Problem::at(
                    format!("port {port} is listed twice"),
                    p.span(),
                    "again here",
                ));
                ok = false;
                continue;
            }
            ports.push(port);
            // Every member must publish every view port: that is what others reach.
            let mut reported = BTreeSet::new();
            for (m, m_span) in &members {
                let Some(d) = declared_of(&self.names, declared, m) else {
                    continue;
                };
                let publishes = d
                    .publish
                    .iter()
                    .any(|(q, _)| q.port == port && q.protocol == Protocol::Tcp);
                if !publishes && reported.insert(d.name.clone()) {
                    self.push(
                        Problem::at(
                            format!(
                                "`{}` does not publish port {port}/tcp, which view `{name}` needs",
                                d.name
                            ),
                            p.span(),
                            "view port",
                        )
                        .label(m_span.clone(), "member here")
                        .help(format!(
                            "add `publish = [{{ port = {port} }}]` to [containers.{}]",
                            d.name
                        )),
                    );
                    ok = false;
                }
            }
        }
        let (net, prefix_len) = subnet?;
        let hosts: u64 = if prefix_len <= 30 {
            (1u64 << (32 - prefix_len)) - 2
        } else {
            0
        };
        if (members.len() as u64) > hosts {
            self.push(
                Problem::at(
                    format!("view `{name}`: subnet too small"),
                    raw.subnet.span(),
                    format!(
                        "{} host address{} for {} member{}",
                        hosts,
                        if hosts == 1 { "" } else { "es" },
                        members.len(),
                        if members.len() == 1 { "" } else { "s" }
                    ),
                )
                .help("use a larger subnet (a shorter prefix)"),
            );
            return None;
        }
        if !ok {
            return None;
        }
        Some(Expanded {
            key_span: key_span.clone(),
            env_name,
            view: View {
                name: name.to_owned(),
                members: members.into_iter().map(|m| m.0).collect(),
                observers: observers.into_iter().map(|o| o.0).collect(),
                subnet: net,
                prefix_len,
                ports,
            },
            _raw: raw,
        })
    }

    fn subnet(&mut self, s: &Spanned<String>) -> Option<(Ipv4Addr, u8)> {
        let text = s.get_ref();
        let parsed = text.split_once('/').and_then(|(a, p)| {
            let ip: Ipv4Addr = a.parse().ok()?;
            let len: u8 = p.parse().ok().filter(|l| *l <= 32)?;
            Some((ip, len))
        });
        let Some((ip, len)) = parsed else {
            self.push(Problem::at(
                format!("invalid subnet {text:?}"),
                s.span(),
                "expected an IPv4 network like 192.168.1.0/24",
            ));
            return None;
        };
        let mask: u32 = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let net = Ipv4Addr::from(u32::from(ip) & mask);
        if net != ip {
            self.push(
                Problem::at(
                    format!("subnet {text:?} has host bits set"),
                    s.span(),
                    "not a network address",
                )
                .help(format!("did you mean \"{net}/{len}\"?")),
            );
            return None;
        }
        if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.octets()[0] >= 240 {
            self.push(Problem::at(
                format!("subnet {text:?} cannot hold view addresses"),
                s.span(),
                "0.0.0.0/8, 127.0.0.0/8, multicast and reserved ranges are not allowed",
            ));
            return None;
        }
        Some((net, len))
    }

    // ----- links -----

    /// Builds the concrete containers: declared links, then view links, with identity env.
    fn links(
        &mut self,
        topology: &str,
        declared: &[Declared<'_>],
        views: &[Expanded<'_>],
        nodes: &BTreeMap<String, Node>,
    ) -> Vec<Container> {
        let _ = (topology, nodes);
        let mut containers = Vec::new();
        for d in declared {
            // Links are resolved once per declaration; every replica gets the same list.
            let resolved = self.declared_links(d, declared);
            // Replicas share their declaration: report a clash once, not once per replica.
            let mut reported = BTreeSet::new();
            for (cname, node, replica) in &d.concrete {
                let mut env = d.env.clone();
                env.insert("GEARTOPO_CONTAINER".into(), plain(cname));
                if let Some(i) = replica {
                    env.insert("GEARTOPO_REPLICA".into(), plain(&i.to_string()));
                }
                // (link, span, label) in order; for duplicate-listen reports.
                let mut links: Vec<(Link, Range<usize>, String)> = Vec::new();
                for (link, span) in &resolved {
                    let mut link = link.clone();
                    if let LinkTarget::Container { container, port } = &link.target {
                        if container == cname {
                            if replica.is_none() {
                                self.push(
                                    Problem::at(
                                        format!("`{cname}` links to itself"),
                                        span.clone(),
                                        "this link",
                                    )
                                    .help("a container reaches itself at 127.0.0.1; inside a view, its own view address works too"),
                                );
                                continue;
                            }
                            // Replicas share one list of links to every replica (geard's
                            // self-link); the one to itself leads back inside it.
                            link.target = LinkTarget::Loopback { port: *port };
                        }
                    }
                    links.push((link, span.clone(), "this link listens there".into()));
                }
                for x in views {
                    let v = &x.view;
                    let member = v.members.iter().position(|m| m == cname);
                    let observer = v.observers.iter().any(|o| o == cname);
                    if member.is_none() && !observer {
                        continue;
                    }
                    let addresses: Vec<String> = (1..=v.members.len() as u32)
                        .map(|i| v.address(i).to_string())
                        .collect();
                    if let Some(i) = member {
                        env.insert(
                            format!("GEARTOPO_VIEW_{}", x.env_name),
                            plain(&addresses[i]),
                        );
                    }
                    env.insert(
                        format!("GEARTOPO_VIEW_{}_MEMBERS", x.env_name),
                        plain(&addresses.join(",")),
                    );
                    for (i, m) in v.members.iter().enumerate() {
                        for &port in &v.ports {
                            let target = if m == cname {
                                LinkTarget::Loopback { port }
                            } else {
                                LinkTarget::Container {
                                    container: m.clone(),
                                    port,
                                }
                            };
                            links.push((
                                Link {
                                    listen_ip: v.address(i as u32 + 1),
                                    listen_port: port,
                                    protocol: Protocol::Tcp,
                                    target,
                                    origin: LinkOrigin::View {
                                        view: v.name.clone(),
                                    },
                                },
                                x.key_span.clone(),
                                format!("view `{}` listens there", v.name),
                            ));
                        }
                    }
                }
                self.duplicate_listens(d, cname, &links, &mut reported);
                // A loopback link at 127.0.0.1 on its own port is already where it
                // leads: no rule. It stays in the duplicate check above, since another
                // link there would hide the container from itself.
                links.retain(|(l, _, _)| !is_identity(l));
                containers.push(Container {
                    name: cname.clone(),
                    declared: d.name.clone(),
                    replica: *replica,
                    node: node.clone(),
                    image: d.image.clone(),
                    command: d.command.clone(),
                    env,
                    publish: d.publish.iter().map(|(p, _)| *p).collect(),
                    links: links.into_iter().map(|(l, _, _)| l).collect(),
                });
            }
        }
        containers
    }

    fn duplicate_listens(
        &mut self,
        d: &Declared<'_>,
        cname: &str,
        links: &[(Link, Range<usize>, String)],
        reported: &mut BTreeSet<(Ipv4Addr, u16, Protocol)>,
    ) {
        let mut seen: BTreeMap<(Ipv4Addr, u16, Protocol), (&Range<usize>, &str)> = BTreeMap::new();
        for (l, span, label) in links {
            let key = (l.listen_ip, l.listen_port, l.protocol);
            let Some((first, first_label)) = seen.get(&key).copied() else {
                seen.insert(key, (span, label));
                continue;
            };
            if !reported.insert(key) {
                continue;
            }
            let who = if d.raw.replicas.is_some() {
                format!("replica `{cname}` of `{}`", d.name)
            } else {
                format!("`{cname}`")
            };
            let mut p = Problem::at(
                format!(
                    "{who} has two links listening on {}:{}/{}",
                    l.listen_ip,
                    l.listen_port,
                    l.protocol.as_str()
                ),
                span.clone(),
                label.clone(),
            );
            if first != span {
                p = p.label(first.clone(), first_label);
            }
            self.push(p.help("give one of them another `listen` address or port"));
        }
    }

    fn declared_links(
        &mut self,
        d: &Declared<'_>,
        declared: &[Declared<'_>],
    ) -> Vec<(Link, Range<usize>)> {
        let mut out = Vec::new();
        for (index, l) in d.raw.links.iter().flatten().enumerate() {
            if let Some(link) = self.link(l, index, declared) {
                out.push((link, l.span()));
            }
        }
        out
    }

    fn link(
        &mut self,
        l: &Spanned<RawLink>,
        index: usize,
        declared: &[Declared<'_>],
    ) -> Option<Link> {
        // Each form yields: target text + its span, listen (ip, port?) + span, protocol.
        let (to, to_span, listen, listen_span, proto) = match l.get_ref() {
            RawLink::Geard(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                let (ip, lport, host, rport) = match parts.as_slice() {
                    [lp, h, rp] => ("127.0.0.1", *lp, *h, *rp),
                    [ip, lp, h, rp] => (*ip, *lp, *h, *rp),
                    _ => {
                        self.push(
                            Problem::at(format!("invalid link {s:?}"), l.span(), "not geard's link form")
                                .help("write \"[LOCAL_IP:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT\", or a table { to = \"CONTAINER:PORT\" }"),
                        );
                        return None;
                    }
                };
                (
                    format!("{host}:{rport}"),
                    l.span(),
                    Some(format!("{ip}:{lport}")),
                    l.span(),
                    Protocol::Tcp,
                )
            }
            RawLink::Table(t) => (
                t.to.get_ref().clone(),
                t.to.span(),
                t.listen.as_ref().map(|s| s.get_ref().clone()),
                t.listen
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or_else(|| l.span()),
                protocol(t.protocol.as_ref()),
            ),
        };
        let target = self.target(&to, to_span.clone(), proto, declared);
        let listen = match listen {
            None => None,
            Some(text) => Some(self.listen(&text, listen_span)?),
        };
        let target = target?;
        let target_port = match &target {
            LinkTarget::Container { port, .. }
            | LinkTarget::Raw { port, .. }
            | LinkTarget::Loopback { port } => *port,
        };
        let (listen_ip, listen_port) = match listen {
            Some((ip, port)) => (ip, port.unwrap_or(target_port)),
            None => (Ipv4Addr::LOCALHOST, target_port),
        };
        Some(Link {
            listen_ip,
            listen_port,
            protocol: proto,
            target,
            origin: LinkOrigin::Declared { index },
        })
    }

    /// `IP:PORT` or `IP`: where the container sees a link.
    fn listen(&mut self, text: &str, span: Range<usize>) -> Option<(Ipv4Addr, Option<u16>)> {
        let (ip_text, port_text) = match text.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let Ok(ip) = ip_text.parse::<Ipv4Addr>() else {
            self.push(Problem::at(
                format!("invalid listen address {text:?}"),
                span,
                "expected IPv4:PORT, e.g. 127.0.0.2:7000",
            ));
            return None;
        };
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            self.push(
                Problem::at(
                    format!("cannot listen on {ip}"),
                    span,
                    "not an address a connection can be made to",
                )
                .help("use an address in 127.0.0.0/8, or any unicast IPv4 address"),
            );
            return None;
        }
        let port = match port_text {
            None => None,
            Some(p) => match parse_port(p) {
                Some(p) => Some(p),
                None => {
                    self.push(Problem::at(
                        format!("invalid listen port {p:?}"),
                        span,
                        "expected 1 to 65535",
                    ));
                    return None;
                }
            },
        };
        Some((ip, port))
    }

    /// `CONTAINER:PORT` or `HOST:PORT`.
    fn target(
        &mut self,
        to: &str,
        span: Range<usize>,
        proto: Protocol,
        declared: &[Declared<'_>],
    ) -> Option<LinkTarget> {
        let Some((host, port_text)) = to.rsplit_once(':') else {
            self.push(Problem::at(
                format!("invalid link target {to:?}"),
                span,
                "expected CONTAINER:PORT or HOST:PORT",
            ));
            return None;
        };
        let Some(port) = parse_port(port_text) else {
            self.push(Problem::at(
                format!("invalid port {port_text:?} in link target"),
                span,
                "expected 1 to 65535",
            ));
            return None;
        };
        match self.names.get(host).cloned() {
            Some(Named::Broken) => return None,
            Some(Named::Replicated(_, replicas)) => {
                let first = replicas
                    .first()
                    .cloned()
                    .unwrap_or_else(|| format!("{host}-1"));
                self.push(
                    Problem::at(
                        format!("`{host}` is a replicated container: link to one replica"),
                        span,
                        "which replica?",
                    )
                    .help(format!(
                        "link to a replica such as `{first}:{port}`, or put the containers in a view to see every replica"
                    )),
                );
                return None;
            }
            Some(Named::Single(_)) | Some(Named::Replica(_)) => {
                let d = declared_of(&self.names, declared, host)?;
                let published = d
                    .publish
                    .iter()
                    .any(|(p, _)| p.port == port && p.protocol == proto);
                if !published {
                    let list: Vec<String> = d
                        .publish
                        .iter()
                        .map(|(p, _)| format!("{}/{}", p.port, p.protocol.as_str()))
                        .collect();
                    self.push(
                        Problem::at(
                            format!("`{host}` does not publish port {port}/{}", proto.as_str()),
                            span,
                            "not published by the target",
                        )
                        .help(if list.is_empty() {
                            format!("`{host}` publishes no ports; add `publish = [{{ port = {port} }}]` to [containers.{}]", d.name)
                        } else {
                            format!("`{host}` publishes {}", list.join(", "))
                        }),
                    );
                    return None;
                }
                return Some(LinkTarget::Container {
                    container: host.to_owned(),
                    port,
                });
            }
            None => {}
        }
        if let Some(why) = host_problem(host) {
            self.push(Problem::at(
                format!("invalid link target host {host:?}"),
                span,
                why,
            ));
            return None;
        }
        if host.parse::<Ipv4Addr>().is_err() && !host.contains('.') {
            // A single DNS label is far more likely a misspelt container than a host.
            let mut p = Problem::at(
                format!("unknown container `{host}`"),
                span,
                "no container of this name",
            );
            p = p.help(match closest(host, self.names.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "a raw target needs an IPv4 address or a fully qualified DNS name".into(),
            });
            self.push(p);
            return None;
        }
        if host == "0.0.0.0" {
            self.push(Problem::at(
                "cannot link to 0.0.0.0",
                span,
                "not a destination",
            ));
            return None;
        }
        Some(LinkTarget::Raw {
            host: host.to_owned(),
            port,
        })
    }

    // ----- whole-topology checks -----

    fn host_port_conflicts(&mut self, declared: &[Declared<'_>]) {
        // (node, host port, protocol) -> (container, span of its publish entry)
        let mut seen: BTreeMap<(String, u16, Protocol), (String, Range<usize>)> = BTreeMap::new();
        for d in declared {
            for (cname, node, _) in &d.concrete {
                for (p, span) in &d.publish {
                    let Some(h) = p.host_port else { continue };
                    let key = (node.clone(), h, p.protocol);
                    if let Some((other, first)) = seen.get(&key) {
                        let by = if other == cname {
                            format!("by `{cname}`")
                        } else {
                            format!("by `{other}` and by `{cname}`")
                        };
                        let mut problem = Problem::at(
                            format!(
                                "host port {h}/{} is published twice on node `{node}`: {by}",
                                p.protocol.as_str()
                            ),
                            span.clone(),
                            format!("`{cname}` publishes it here"),
                        );
                        if first != span {
                            problem = problem
                                .label(first.clone(), format!("`{other}` publishes it here"));
                        } else {
                            problem = problem.help("replicas on one node cannot share a host port: omit `host_port` or spread the replicas over more nodes");
                        }
                        self.push(problem);
                    } else {
                        seen.insert(key, (cname.clone(), span.clone()));
                    }
                }
            }
        }
    }

    fn start_cycles(&mut self, t: &Topology, declared: &[Declared<'_>]) {
        let Err(cycle) = super::graph::DepGraph::build(t) else {
            return;
        };
        let path = cycle.path.join(" -> ");
        let mut p = Problem::new(format!("start-order cycle: {path}"));
        for pair in cycle.path.windows(2) {
            let (from, to) = (&pair[0], &pair[1]);
            let Some(c) = t.container(from) else { continue };
            let Some(d) = declared.iter().find(|d| d.name == c.declared) else {
                continue;
            };
            let index = c.links.iter().find_map(|l| match (&l.target, &l.origin) {
                (LinkTarget::Container { container, .. }, LinkOrigin::Declared { index })
                    if container == to =>
                {
                    Some(*index)
                }
                _ => None,
            });
            if let Some(link) = index.and_then(|i| d.raw.links.as_ref()?.get(i)) {
                p = p.label(
                    link.span(),
                    format!("`{from}` links to `{to}`, so `{to}` starts first"),
                );
            }
        }
        self.push(p.help(
            "links between containers set their start order; to link containers both ways, put them in a view",
        ));
    }
}

/// A view after checks, with what links and env need.
struct Expanded<'d> {
    #[allow(dead_code)]
    key_span: Range<usize>,
    env_name: String,
    view: View,
    _raw: &'d RawView,
}

/// A link from `127.0.0.1:PORT` to the container itself on `PORT`.
fn is_identity(l: &Link) -> bool {
    l.target
        == LinkTarget::Loopback {
            port: l.listen_port,
        }
        && l.listen_ip == Ipv4Addr::LOCALHOST
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

fn runtime(r: RawRuntime) -> Runtime {
    match r {
        RawRuntime::Podman => Runtime::Podman,
        RawRuntime::Docker => Runtime::Docker,
    }
}

fn protocol(p: Option<&Spanned<RawProtocol>>) -> Protocol {
    match p.map(|p| *p.get_ref()) {
        Some(RawProtocol::Udp) => Protocol::Udp,
        Some(RawProtocol::Tcp) | None => Protocol::Tcp,
    }
}

fn parse_port(s: &str) -> Option<u16> {
    // `u16::from_str` accepts a leading `+`; a port is digits only.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

/// `~` and `~/...` from `$HOME`; anything else as written.
fn expand_tilde(p: &str) -> PathBuf {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    match (p, home) {
        ("~", Some(h)) => PathBuf::from(h),
        (p, Some(h)) if p.starts_with("~/") => PathBuf::from(h).join(&p[2..]),
        (p, _) => PathBuf::from(p),
    }
}
