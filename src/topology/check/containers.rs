//! Checks of each `[containers]` entry on its own: placement and replicas, image,
//! command, env and publish. Links between containers are resolved in `links`, not
//! here; nothing here looks at views.

use std::collections::BTreeMap;
use std::ops::Range;

use serde_spanned::Spanned;

use super::{protocol, suggest, Checker, Declared, Named};
use crate::topology::diag::Problem;
use crate::topology::model::{EnvValue, Publish, RestartPolicy};
use crate::topology::names::{MAX_CONTAINERS, MAX_NAME};
use crate::topology::raw::{Document, Entry, RawContainer, RawEnvTable, RawEnvValue};
use crate::topology::secret_source;

/// Most replicas one container may have: enough for any cluster, small enough that
/// a typo (`replicas = 30000`) is caught instead of planned.
pub(crate) const MAX_REPLICAS: i64 = 256;

impl Checker<'_> {
    pub(super) fn containers<'d>(&mut self, doc: &'d Document) -> Vec<Declared<'d>> {
        let mut declared: Vec<Declared<'d>> = Vec::new();
        // Which declaration claimed a concrete name first, for "used twice" labels.
        let mut claimed: BTreeMap<String, Range<usize>> = BTreeMap::new();
        // Concrete containers so far, against MAX_CONTAINERS.
        let mut total = 0usize;
        let mut over_limit = false;
        // Checked once, whether or not a container inherits it.
        let default_restart = doc
            .defaults
            .restart
            .as_ref()
            .and_then(|r| self.restart(r))
            .unwrap_or_default();
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
            total += concrete.len();
            if total > MAX_CONTAINERS {
                if !over_limit {
                    self.push(
                        Problem::at(
                            format!(
                                "the topology has more than {MAX_CONTAINERS} containers (replicas counted)"
                            ),
                            key_span.clone(),
                            "the limit is passed here",
                        )
                        .help("a topology is limited to 10000 containers (docs/format.md, \"Limits\"): split it into several topologies"),
                    );
                    over_limit = true;
                }
                self.names.insert(name.clone(), Named::Broken);
                continue;
            }
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
            let private = raw
                .private_ports
                .as_ref()
                .or(doc.defaults.private_ports.as_ref())
                .is_some_and(|p| *p.get_ref());
            if let Some(p) = &raw.private_ports {
                if *p.get_ref() && raw.publish.as_ref().is_none_or(|v| v.is_empty()) {
                    self.push(
                        Problem::at(
                            format!("`private_ports` on `{name}`, which publishes no port"),
                            p.span(),
                            "nothing to make private",
                        )
                        .help("remove it, or add a `publish` entry"),
                    );
                }
            }
            let publish = self.publish(raw, private);
            let restart = match &raw.restart {
                Some(r) => self.restart(r).unwrap_or_default(),
                None => default_restart,
            };
            let health = raw.health.as_ref().and_then(|h| self.health(h));
            let max_unavailable = self.max_unavailable(raw.max_unavailable.as_ref());
            let volumes = self.volumes(raw);
            let options = self.options(raw);
            declared.push(Declared {
                name: name.clone(),
                key_span: key_span.clone(),
                raw,
                concrete,
                publish,
                env,
                command,
                image,
                restart,
                health,
                max_unavailable,
                volumes,
                options,
            });
        }
        declared
    }

    /// A restart policy, in the runtime's own spelling.
    fn restart(&mut self, r: &Spanned<String>) -> Option<RestartPolicy> {
        let parsed = RestartPolicy::parse(r.get_ref());
        if parsed.is_none() {
            self.push(Problem::at(
                format!("invalid restart policy {:?}", r.get_ref()),
                r.span(),
                "expected no, on-failure, on-failure:N, always or unless-stopped",
            ));
        }
        parsed
    }

    /// Where a declared container's concrete containers run.
    pub(super) fn placement(
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

    pub(super) fn node_ref(&mut self, node: &Spanned<String>) {
        let n = node.get_ref();
        if !self.node_names.contains(n) {
            let mut p = Problem::at(format!("unknown node `{n}`"), node.span(), "no such node");
            p = p.help(
                match suggest(
                    &mut self.suggestions,
                    n,
                    self.node_names.iter().map(String::as_str),
                ) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("declare it under [nodes.{n}]"),
                },
            );
            self.push(p);
        }
    }

    pub(super) fn image(&mut self, image: &Spanned<String>) -> String {
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

    pub(super) fn command(&mut self, raw: &RawContainer) -> Vec<String> {
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

    /// An env value in the table form: written (`value`), or read now from
    /// geartopo's environment or a file beside the topology (always secret).
    fn env_table(&mut self, key: &str, t: &RawEnvTable, span: Range<usize>) -> Option<EnvValue> {
        let given = [
            t.value.is_some(),
            t.from_env.is_some(),
            t.from_file.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            self.push(Problem::at(
                format!("env {key}: a table needs exactly one of `value`, `from_env`, `from_file`"),
                span,
                "the form is `{ value = \"...\", secret = true }`, `{ from_env = \"NAME\" }` or `{ from_file = \"PATH\" }`",
            ));
            return None;
        }
        if let Some(v) = &t.value {
            return Some(EnvValue {
                value: v.clone(),
                secret: t.secret,
            });
        }
        let read = match (&t.from_env, &t.from_file) {
            (Some(var), _) => secret_source::from_env(var),
            (_, Some(file)) => secret_source::from_file(self.base_dir.as_deref(), file),
            _ => unreachable!("exactly one is given"),
        };
        match read {
            Ok(value) => Some(EnvValue {
                value,
                secret: true,
            }),
            Err((label, help)) => {
                self.push(
                    Problem::at(
                        format!("env {key}: cannot read its secret value"),
                        span,
                        label,
                    )
                    .help(help),
                );
                None
            }
        }
    }

    pub(super) fn env(&mut self, raw: &RawContainer) -> BTreeMap<String, EnvValue> {
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
                RawEnvValue::Table(t) => match self.env_table(k, t, value.span()) {
                    Some(v) => v,
                    None => continue,
                },
            };
            if v.secret && v.value.contains('\n') && read_by_the_runtime_client(k) {
                // Such a value reaches the container through the environment of
                // `podman/docker create` (an env file holds one line), where a
                // name the client itself reads would change what the client does.
                self.push(
                    Problem::at(
                        format!("secret {k} spans several lines and has a name podman and docker read themselves"),
                        key.span(),
                        "a multi-line secret is passed in the create command's environment",
                    )
                    .help("rename the variable (the image can read it under another name), or keep the value on one line"),
                );
                continue;
            }
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

    /// `private`: the container's (or the defaults') `private_ports`, which a
    /// publish's own `private` overrides.
    pub(super) fn publish(
        &mut self,
        raw: &RawContainer,
        private: bool,
    ) -> Vec<(Publish, Range<usize>)> {
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
                    private: r.private.as_ref().map_or(private, |p| *p.get_ref()),
                },
                p.span(),
            ));
        }
        out
    }
}

/// Variables the container clients, their Go runtime or the shell read (a prefix
/// ends in `_`): a multi-line secret cannot have such a name.
fn read_by_the_runtime_client(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "PATH",
        "HOME",
        "TMPDIR",
        "SHELL",
        "IFS",
        "ENV",
        "USER",
        "LANG",
        "TZ",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "GODEBUG",
        "GOTRACEBACK",
        "GOGC",
        "GOMAXPROCS",
        "REGISTRY_AUTH_FILE",
        "STORAGE_DRIVER",
        "STORAGE_OPTS",
    ];
    const PREFIXES: &[&str] = &[
        "LD_",
        "LC_",
        "CONTAINERS_",
        "DOCKER_",
        "PODMAN_",
        "BUILDAH_",
        "XDG_",
        "SSL_",
    ];
    let upper = name.to_ascii_uppercase();
    NAMES.contains(&upper.as_str()) || PREFIXES.iter().any(|p| upper.starts_with(p))
}
