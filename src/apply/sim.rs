//! Simulated nodes for apply tests: behind `node::fake`, each node keeps
//! containers, their namespaces and owned chains, and its apply lock, and acts on
//! the operations geartopo sends (observe, lock, create, init, rules, start,
//! remove, image) as podman or docker would. It answers `Observe` in the observe output's
//! own format, written with the same `Section` names the parser reads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::node::fake::FakeNodes;
use crate::node::lock::{HeldLock, LockHolder};
use crate::node::section::Section;
use crate::node::{CreateSpec, NodeOp, LOCK_HELD};
use crate::topology::model::{Firewall, Runtime, Topology};
use crate::transport::{Output, TransportError};

#[derive(Debug, Clone)]
pub(crate) struct SimContainer {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    /// (host port, container port, protocol)
    pub publish: Vec<(String, String, String)>,
    pub status: String,
    pub pid: u32,
    pub rules: Vec<String>,
    pub jumps: usize,
    /// geartopo's nft table, as its lines in nft syntax; `None`: no table.
    pub nft: Option<Vec<String>>,
    /// Docker's `HostConfig.Runtime` (`runc`, or `--runtime` at create).
    pub oci_runtime: String,
}

#[derive(Default)]
pub(crate) struct Sim {
    pub nodes: BTreeMap<String, Vec<SimContainer>>,
    pub runtimes: BTreeMap<String, Runtime>,
    next: u32,
    /// (node, operation kind) that fails with an error message.
    pub fail: Vec<(String, String)>,
    /// What a failing operation writes on stderr; `simulated failure at KIND`
    /// when `None`.
    pub fail_stderr: Option<String>,
    /// (node, operation kind) whose handling panics (a bug in geartopo).
    pub panic_on: Vec<(String, String)>,
    /// Nodes that drop the connection.
    pub gone: Vec<String>,
    /// Apply locks by node: the holder.
    pub locks: BTreeMap<String, LockHolder>,
    /// Images no node has and no registry serves.
    pub missing_images: Vec<String>,
    /// (node, image) for every `EnsureImage`, in order.
    pub ensured: Vec<(String, String)>,
    /// Each node's own filter table: FORWARD's rules (foreign ones included,
    /// which `PrivatePorts` must leave as they are), and the `GEARTOPO-PP-*`
    /// chains with their rules.
    pub forward: BTreeMap<String, Vec<String>>,
    pub node_chains: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    /// Every operation but observe and the locks, in the order the nodes ran
    /// them: (node, kind, the container it names).
    pub log: Vec<(String, String, String)>,
    /// Runtime names of containers that never pass their health check.
    pub unhealthy: Vec<String>,
    /// Files geartopo keeps on each node for durable links: path -> (mode, text).
    pub files: BTreeMap<String, BTreeMap<String, (String, String)>>,
    /// Docker nodes whose dockerd has the runtime wrapper registered: its path.
    pub docker_runtime: BTreeMap<String, String>,
    /// Volumes on each node: name -> labels.
    pub volumes: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// What each container (node, runtime name) was created to mount (`--volume`).
    pub mounts: BTreeMap<(String, String), Vec<String>>,
}

/// Where the sim's nodes keep geartopo's files (the defaults of a real node).
use crate::testing::{DEFAULT_HOOKS_DIR as HOOKS, DEFAULT_STATE_DIR as STATE};

fn failure(status: i32, stderr: String) -> Output {
    Output {
        status,
        stdout: vec![],
        stderr: stderr.into_bytes(),
    }
}

impl Sim {
    fn runtime(&self, node: &str) -> Runtime {
        self.runtimes.get(node).copied().unwrap_or(Runtime::Podman)
    }

    pub fn observe(&self, node: &str) -> String {
        let line = |s: Section| s.header() + "\n";
        let mut out = line(Section::Tcp) + &line(Section::Udp);
        let cs = self.nodes.get(node).cloned().unwrap_or_default();
        // What the observe script prints for this node's runtime: podman's one
        // JSON listing, or docker's listing and one inspect of ours.
        match self.runtime(node) {
            Runtime::Podman => {
                let list: Vec<serde_json::Value> = cs
                    .iter()
                    .map(|c| {
                        let ports: Vec<serde_json::Value> = c
                            .publish
                            .iter()
                            .map(|(h, p, pr)| {
                                serde_json::json!({"host_ip": "", "container_port": p.parse::<u16>().unwrap_or(0),
                                    "host_port": h.parse::<u16>().unwrap_or(0), "range": 1, "protocol": pr})
                            })
                            .collect();
                        serde_json::json!({"Id": c.id, "Names": [c.name], "State": c.status, "Pid": c.pid,
                            "Image": c.image, "Labels": c.labels, "Ports": ports})
                    })
                    .collect();
                out.push_str(&line(Section::List));
                out.push_str(&serde_json::to_string_pretty(&list).expect("json"));
                out.push('\n');
            }
            Runtime::Docker => {
                out.push_str(&line(Section::Ports));
                for c in &cs {
                    let ports: Vec<String> = c
                        .publish
                        .iter()
                        .map(|(h, p, pr)| format!("0.0.0.0:{h}->{p}/{pr}"))
                        .collect();
                    let topology = c
                        .labels
                        .get("geartopo.topology")
                        .cloned()
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "{}|{}|{}|{topology}\n",
                        c.name,
                        ports.join(", "),
                        c.id
                    ));
                }
                out.push_str(&line(Section::Inspect));
                for c in &cs {
                    let mut bindings = serde_json::Map::new();
                    for (h, p, pr) in &c.publish {
                        bindings.insert(
                            format!("{p}/{pr}"),
                            serde_json::json!([{"HostIp": "", "HostPort": h}]),
                        );
                    }
                    let v = serde_json::json!({"Id": c.id, "Name": format!("/{}", c.name), "State": {"Status": c.status, "Pid": c.pid},
                        "Config": {"Image": c.image, "Labels": c.labels}, "HostConfig": {"PortBindings": bindings, "Runtime": c.oci_runtime}});
                    out.push_str(&format!("{} {} {v}\n", c.id, c.pid));
                }
            }
        }
        for c in &cs {
            out.push_str(&format!(
                "{} {} {}\n",
                Section::Namespace.header(),
                c.id,
                c.pid
            ));
            if c.pid > 0 {
                out.push_str(&format!("{} 1 1\n", Section::Sysctl.header()));
                // As the observe script reads them: the nat table, then filter.
                for table in ["nat", "filter"] {
                    out.push_str(&format!("*{table}\n"));
                    let chains = crate::rules::CHAINS.iter().filter(|(t, _, _)| *t == table);
                    if !c.rules.is_empty() || c.jumps > 0 {
                        for (_, _, o) in chains.clone() {
                            out.push_str(&format!(":{o} - [0:0]\n"));
                        }
                    }
                    for (_, b, o) in chains.clone() {
                        for _ in 0..c.jumps {
                            out.push_str(&format!("-A {b} -j {o}\n"));
                        }
                    }
                    for r in &c.rules {
                        let chain = r.split_whitespace().nth(1).unwrap_or("");
                        if crate::rules::table_of(chain) == table {
                            out.push_str(r);
                            out.push('\n');
                        }
                    }
                    out.push_str("COMMIT\n");
                }
                // As a node with nft answers: the listing, or nothing.
                out.push_str(&line(Section::Nft));
                if let Some(lines) = &c.nft {
                    out.push_str(&crate::nft::listing::listing_json(lines));
                    out.push('\n');
                }
            }
        }
        out.push_str(&line(Section::NodeFilter));
        // As the node script greps them out of iptables-save.
        let chains = self.node_chains.get(node).cloned().unwrap_or_default();
        for name in chains.keys() {
            out.push_str(&format!(":{name} - [0:0]\n"));
        }
        for r in self.forward.get(node).into_iter().flatten() {
            if r.starts_with("-A FORWARD -j GEARTOPO-PP-") {
                out.push_str(&format!("{r}\n"));
            }
        }
        for rules in chains.values() {
            for r in rules {
                out.push_str(&format!("{r}\n"));
            }
        }
        let subnet = match self.runtime(node) {
            Runtime::Podman => "10.88.0.0/16",
            Runtime::Docker => "172.17.0.0/16",
        };
        out.push_str(&format!("{} {subnet}\n", Section::Subnets.header()));
        out.push_str(&format!(
            "{} {STATE} {HOOKS} none\n",
            Section::Durable.header()
        ));
        for (path, (mode, text)) in self.files.get(node).into_iter().flatten() {
            out.push_str(&format!(
                "mode {mode} {path}\nsha {}  {path}\n",
                crate::node::durable::sha256(text)
            ));
        }
        if self.runtime(node) == Runtime::Docker {
            let path = self.docker_runtime.get(node).cloned().unwrap_or_default();
            out.push_str(&format!("dockerruntime {path}\n"));
        }
        out.push_str(&line(Section::End));
        out
    }

    /// `PrivatePorts` as the node script does it: the chain replaced, its jump
    /// first in FORWARD once; or both gone.
    fn private_ports(&mut self, node: &str, chain: &str, rules: &[String]) {
        let jump = format!("-A FORWARD -j {chain}");
        let forward = self.forward.entry(node.to_string()).or_default();
        forward.retain(|r| r != &jump);
        let chains = self.node_chains.entry(node.to_string()).or_default();
        if rules.is_empty() {
            chains.remove(chain);
        } else {
            chains.insert(chain.to_string(), rules.to_vec());
            forward.insert(0, jump);
        }
    }

    /// What the create and rules steps write: the hook, its file, the rules file.
    fn write_durable(&mut self, node: &str, rules: &crate::node::OwnedRules) {
        use crate::node::durable;
        let Some(file) = &rules.file else { return };
        let profile = crate::node::NodeProfile::for_runtime(self.runtime(node));
        let files = self.files.entry(node.into()).or_default();
        files.insert(
            format!("{STATE}/hook"),
            (durable::HOOK_MODE.into(), durable::HOOK.into()),
        );
        if profile.runtime == Runtime::Docker {
            files.insert(
                format!("{STATE}/{}", durable::RUNTIME_FILE),
                (durable::HOOK_MODE.into(), durable::RUNTIME.into()),
            );
        }
        if profile.runtime == Runtime::Podman {
            files.insert(
                format!("{HOOKS}/{}", durable::HOOK_FILE),
                (durable::HOOK_FILE_MODE.into(), durable::hook_file(STATE)),
            );
        }
        files.insert(
            format!("{STATE}/rules/{file}"),
            (
                durable::RULES_MODE.into(),
                durable::rules_file(&profile, rules),
            ),
        );
    }

    fn find(&mut self, node: &str, name_or_id: &str) -> Option<&mut SimContainer> {
        self.nodes
            .get_mut(node)?
            .iter_mut()
            .find(|c| c.name == name_or_id || c.id == name_or_id)
    }

    /// `podman init` of what is not initialized or running already (the script
    /// checks first, as podman refuses a second init).
    fn init(&mut self, node: &str, name: &str) {
        self.next += 1;
        let pid = 100 + self.next;
        let c = self
            .find(node, name)
            .expect("init of an existing container");
        if c.status != "initialized" && c.status != "running" {
            c.status = "initialized".into();
            c.pid = pid;
        }
    }

    fn start(&mut self, node: &str, name: &str) {
        self.next += 1;
        let pid = 100 + self.next;
        let c = self
            .find(node, name)
            .expect("start of an existing container");
        if c.pid == 0 {
            // Only docker starts a container that has no namespace yet.
            c.pid = pid;
        }
        c.status = "running".into();
    }

    fn create(&mut self, node: &str, spec: &CreateSpec) -> Output {
        // Volumes first, as the create script makes them; one with another
        // topology's label fails the step before the container is made.
        for (name, labels) in &spec.volumes {
            let on_node = self.volumes.entry(node.into()).or_default();
            let topology = labels.iter().find(|(k, _)| k == "geartopo.topology");
            match on_node.get(name) {
                Some(have) if have.get("geartopo.topology") != topology.map(|(_, v)| v) => {
                    return failure(
                        1,
                        format!("volume {name} exists on this node and is not topology's"),
                    );
                }
                Some(_) => {}
                None => {
                    on_node.insert(name.clone(), labels.iter().cloned().collect());
                }
            }
        }
        self.mounts.insert(
            (node.to_string(), spec.runtime_name.clone()),
            spec.mounts.clone(),
        );
        let mut labels: BTreeMap<String, String> = spec.labels.iter().cloned().collect();
        if let Some(file) = spec.durable.as_ref().and_then(|r| r.file.clone()) {
            labels.insert(crate::node::durable::LABEL.into(), file);
        }
        let c = SimContainer {
            id: format!("{node}-{}", self.next),
            name: spec.runtime_name.clone(),
            labels,
            image: spec.image.clone(),
            publish: spec
                .publish
                .iter()
                .map(|(pr, p, h)| (h.to_string(), p.to_string(), pr.to_string()))
                .collect(),
            status: "created".into(),
            pid: 0,
            rules: vec![],
            jumps: 0,
            nft: None,
            oci_runtime: spec.oci_runtime.clone().unwrap_or_else(|| "runc".into()),
        };
        self.next += 1;
        // As the runtimes: names are unique on a node, and a host port another
        // container publishes cannot be published again.
        let others = self.nodes.entry(node.into()).or_default();
        if others.iter().any(|o| o.name == c.name) {
            return failure(
                125,
                format!("the container name {} is already in use", c.name),
            );
        }
        if let Some(p) = c.publish.iter().find(|p| {
            others
                .iter()
                .any(|o| o.publish.iter().any(|q| q.0 == p.0 && q.2 == p.2))
        }) {
            return failure(126, format!("port {} is already allocated", p.0));
        }
        others.push(c);
        if let Some(rules) = &spec.durable {
            self.write_durable(node, rules);
        }
        if self.runtime(node) == Runtime::Podman {
            self.init(node, &spec.runtime_name);
        }
        Output::default()
    }

    /// One round trip: the operations in order, stopping at the first failure.
    pub fn run(&mut self, node: &str, ops: &[NodeOp]) -> Result<Output, TransportError> {
        if self.gone.iter().any(|n| n == node) {
            return Err(TransportError::Io {
                node: node.into(),
                reason: "connection reset".into(),
            });
        }
        let mut stdout = String::new();
        for op in ops {
            let kind = op.kind().to_string();
            let here = (node.to_string(), kind.clone());
            if self.panic_on.contains(&here) {
                panic!("simulated bug at {kind} on {node}");
            }
            if self.fail.contains(&here) {
                let stderr = (self.fail_stderr.clone())
                    .unwrap_or_else(|| format!("simulated failure at {kind}"));
                return Ok(failure(125, stderr));
            }
            let named = match op {
                NodeOp::Create(spec) => Some(spec.runtime_name.clone()),
                NodeOp::Init { container }
                | NodeOp::Rules { container, .. }
                | NodeOp::Start { container }
                | NodeOp::Remove { container } => Some(
                    self.find(node, container)
                        .map_or(container.clone(), |c| c.name.clone()),
                ),
                NodeOp::Health { name, .. } => Some(name.clone()),
                NodeOp::EnsureImage { image } => Some(image.clone()),
                _ => None,
            };
            if let Some(named) = named {
                self.log.push((node.into(), kind.clone(), named));
            }
            match op {
                NodeOp::Health {
                    container, name, ..
                } => {
                    let running = self
                        .find(node, container)
                        .is_some_and(|c| c.status == "running");
                    if !running || self.unhealthy.contains(name) {
                        return Ok(failure(1, format!("{name} is not healthy after 30 tries")));
                    }
                }
                NodeOp::ProbeHealth { checks } => {
                    for (name, _) in checks {
                        let running = self.find(node, name).is_some_and(|c| c.status == "running");
                        let word = if running && !self.unhealthy.contains(name) {
                            "healthy"
                        } else {
                            "unhealthy"
                        };
                        stdout.push_str(&format!("health {name} {word}\n"));
                    }
                }
                NodeOp::Observe { .. } => stdout.push_str(&self.observe(node)),
                NodeOp::Volumes => {
                    stdout.push_str(&(Section::Volumes.header() + "\n"));
                    for (name, labels) in self.volumes.get(node).into_iter().flatten() {
                        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
                        stdout.push_str(&format!(
                            "{name} {} {}\n",
                            get("geartopo.topology"),
                            get("geartopo.id")
                        ));
                    }
                }
                NodeOp::CheckLinks { probes, .. } => {
                    // A running container's links answer; the rest are not running.
                    for (i, p) in probes.iter().enumerate() {
                        let running = self
                            .find(node, &p.runtime_name)
                            .is_some_and(|c| c.status == "running" && c.pid > 0);
                        let r = if running { "ok" } else { "not-running" };
                        stdout.push_str(&format!("{} {i} {r}\n", crate::node::probe::MARK));
                    }
                }
                NodeOp::RemoveVolumes { names } => {
                    let on_node = self.volumes.entry(node.into()).or_default();
                    for n in names {
                        if on_node.remove(n).is_none() {
                            return Ok(failure(1, format!("no such volume {n}")));
                        }
                    }
                }
                NodeOp::Digest {
                    topology, scope, ..
                } => {
                    // What the node's script answers: the same lines, from
                    // the same read (the script's awk is checked against
                    // this port in observe::digest's tests).
                    let lines = crate::observe::digest::canonical(&self.observe(node), topology);
                    stdout.push_str(&format!(
                        "{} {}\n",
                        crate::node::script::digest::ANSWER,
                        crate::observe::digest::digest(&lines, scope)
                    ));
                }
                NodeOp::PrivatePorts { chain, rules } => self.private_ports(node, chain, rules),
                NodeOp::Lock { holder } => match self.locks.get(node) {
                    Some(other) => {
                        let held = HeldLock::report(other, "/run/geartopo/apply.lock");
                        return Ok(failure(LOCK_HELD, held));
                    }
                    None => {
                        self.locks.insert(node.into(), holder.clone());
                    }
                },
                NodeOp::Unlock { holder } => {
                    if self.locks.get(node) == Some(holder) {
                        self.locks.remove(node);
                    }
                }
                // Reached only when every operation before it succeeded.
                NodeOp::Release { holder } => {
                    if self.locks.get(node) == Some(holder) {
                        self.locks.remove(node);
                    }
                    stdout.push_str(crate::node::RELEASED);
                    stdout.push('\n');
                }
                NodeOp::ReadLock => {
                    if let Some(h) = self.locks.get(node) {
                        stdout.push_str(&HeldLock::report(h, "/run/geartopo/apply.lock"));
                    }
                }
                NodeOp::ForceUnlock { line } => match self.locks.get(node) {
                    Some(h) if h.to_string() == *line => {
                        self.locks.remove(node);
                    }
                    Some(_) => return Ok(failure(1, "the lock changed".into())),
                    None => {}
                },
                NodeOp::Create(spec) => {
                    let out = self.create(node, spec);
                    if !out.success() {
                        return Ok(out);
                    }
                }
                NodeOp::Init { container } => {
                    // The init runs the hook, which fails without the rules file.
                    let file = self
                        .find(node, container)
                        .and_then(|c| c.labels.get(crate::node::durable::LABEL).cloned());
                    if let Some(file) = file {
                        let path = format!("{STATE}/rules/{file}");
                        if !self.files.get(node).is_some_and(|f| f.contains_key(&path)) {
                            return Ok(failure(
                                126,
                                format!("geartopo hook: {file}: its rules file {path} is missing"),
                            ));
                        }
                    }
                    self.init(node, container)
                }
                NodeOp::Rules { container, rules } => {
                    if self.runtime(node) == Runtime::Docker {
                        self.start(node, container);
                    }
                    let c = self
                        .find(node, container)
                        .expect("rules for an existing container");
                    assert!(
                        c.pid > 0,
                        "rules restored into a container without a namespace"
                    );
                    match rules.firewall {
                        Firewall::Iptables => {
                            // What iptables-save shows after the restore: its rules.
                            c.rules = rules
                                .payload()
                                .lines()
                                .filter(|l| l.starts_with("-A "))
                                .map(str::to_string)
                                .collect();
                            c.jumps = 1;
                            if rules.clear_other {
                                c.nft = None;
                            }
                        }
                        Firewall::Nftables => {
                            c.nft = Some(rules.rules.clone());
                            if rules.clear_other {
                                c.rules.clear();
                                c.jumps = 0;
                            }
                        }
                    }
                    self.write_durable(node, rules);
                }
                NodeOp::WriteRules { rules } => self.write_durable(node, rules),
                // `node prepare` is tested on a real dockerd (e2e), not here.
                NodeOp::PrepareRead | NodeOp::Prepare { .. } => {
                    return Ok(failure(1, "not simulated".into()))
                }
                NodeOp::Start { container } => {
                    let c = self
                        .find(node, container)
                        .expect("start of an existing container");
                    assert!(c.pid > 0, "started without init");
                    self.start(node, container);
                }
                NodeOp::EnsureImage { image } => {
                    self.ensured.push((node.into(), image.clone()));
                    if self.missing_images.contains(image) {
                        return Ok(failure(
                            1,
                            format!("image '{image}' is not on this node and could not be pulled"),
                        ));
                    }
                }
                NodeOp::Remove { container } => {
                    let cs = self.nodes.entry(node.into()).or_default();
                    let file = cs
                        .iter()
                        .find(|c| c.id == *container || c.name == *container)
                        .and_then(|c| c.labels.get(crate::node::durable::LABEL).cloned());
                    cs.retain(|c| c.id != *container && c.name != *container);
                    // The rules file named by its label; the hook once none is left.
                    if let (Some(file), Some(files)) = (file, self.files.get_mut(node)) {
                        files.remove(&format!("{STATE}/rules/{file}"));
                        let prefix = format!("{STATE}/rules/");
                        if !files.keys().any(|k| k.starts_with(&prefix)) {
                            files.clear();
                        }
                    }
                }
            }
        }
        Ok(Output {
            status: 0,
            stdout: stdout.into_bytes(),
            stderr: vec![],
        })
    }
}

/// Simulated nodes with the runtimes `topology` gives them, behind fake
/// connections; `failures` are (node, operation kind) that fail.
pub(crate) fn simulated(
    topology: &Topology,
    failures: &[(&str, &str)],
) -> (Arc<Mutex<Sim>>, FakeNodes) {
    let sim = Sim {
        fail: failures
            .iter()
            .map(|(n, what)| (n.to_string(), what.to_string()))
            .collect(),
        runtimes: topology
            .nodes
            .iter()
            .map(|(name, n)| (name.clone(), n.runtime))
            .collect(),
        ..Sim::default()
    };
    let sim = Arc::new(Mutex::new(sim));
    let shared = sim.clone();
    // A simulated panic poisons the lock; the unlocks that follow still run.
    let nodes = FakeNodes::new(move |node, ops| {
        shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run(node, ops)
    });
    (sim, nodes)
}
