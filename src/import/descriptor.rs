//! A geard deployment descriptor read from JSON, with the JSON pointer of every
//! value kept so that each problem can be reported where it is.
//! Keys are matched without regard to case, as Go's `encoding/json` matched them
//! for geard's `deployment.Deployment`. No placement or link logic here (that is
//! `deploy`), and nothing is dropped without a diagnostic.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::{Diagnostic, Diagnostics};

/// geard's `deployment.Deployment`, as read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Descriptor {
    pub containers: Vec<ContainerSpec>,
    pub instances: Vec<InstanceSpec>,
    pub id_prefix: String,
    pub id_prefix_ptr: String,
}

/// geard's `deployment.Container`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerSpec {
    pub ptr: String,
    pub name: String,
    pub name_ptr: String,
    pub image: String,
    pub public_ports: Vec<PortPair>,
    pub links: Vec<LinkSpec>,
    /// Go's zero value when absent: geard deploys no instance then.
    pub count: usize,
}

/// geard's `port.PortPair`; `external == 0` means "picked by the node".
#[derive(Debug, Clone, Default)]
pub(crate) struct PortPair {
    pub ptr: String,
    pub internal: u16,
    pub external: u16,
}

/// geard's `deployment.Link`.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkSpec {
    pub ptr: String,
    pub to: String,
    pub to_ptr: String,
    pub non_local: bool,
    pub match_port: bool,
    /// `Ports`: limits the linked target ports.
    pub ports: Vec<(u16, String)>,
    /// `AliasPorts`: `Internal` is the target port, `External` the port it is seen at.
    pub alias_ports: Vec<PortPair>,
}

/// geard's `deployment.Instance`: what an earlier `gear deploy` created.
#[derive(Debug, Clone, Default)]
pub(crate) struct InstanceSpec {
    pub ptr: String,
    pub id: String,
    pub id_ptr: String,
    pub image: String,
    pub from: String,
    /// geard's host locator (`host[:port]`); `None`: never placed.
    pub on: Option<String>,
    pub on_ptr: String,
    pub ports: Vec<PortMappingSpec>,
}

/// geard's `deployment.PortMapping`: a published port and, once a link needed it,
/// the address (`Target`) every linking container sees it at.
#[derive(Debug, Clone, Default)]
pub(crate) struct PortMappingSpec {
    pub ptr: String,
    pub internal: u16,
    pub external: u16,
    /// `None` when geard's `HostPort` is empty (port 0).
    pub target: Option<(String, u16)>,
}

/// Appends one JSON pointer token, escaped per RFC 6901.
pub(crate) fn join(ptr: &str, token: impl std::fmt::Display) -> String {
    let token = token.to_string().replace('~', "~0").replace('/', "~1");
    format!("{ptr}/{token}")
}

/// One JSON object being read: finds keys without regard to case and remembers
/// which ones were used, so the rest can be reported.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    ptr: String,
    used: BTreeSet<&'a str>,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, ptr: &str, what: &str, d: &mut Diagnostics) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Obj {
                map,
                ptr: ptr.to_string(),
                used: BTreeSet::new(),
            }),
            other => {
                d.error(
                    ptr,
                    format!("{what} must be a JSON object, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// The value of `name` (any case) and its pointer. `null` counts as absent,
    /// as Go leaves the field at its zero value.
    fn get(&mut self, name: &str, d: &mut Diagnostics) -> Option<(&'a Value, String)> {
        let matches: Vec<(&'a String, &'a Value)> = self
            .map
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .collect();
        for (k, _) in &matches {
            self.used.insert(k.as_str());
        }
        match matches.as_slice() {
            [] => None,
            [(k, v)] => (!v.is_null()).then(|| (*v, join(&self.ptr, k))),
            [..] => {
                // Go would take the last one in the text; the order is not kept
                // here, and a silent pick is worse than asking.
                let keys: Vec<&str> = matches.iter().map(|(k, _)| k.as_str()).collect();
                d.error(
                    &self.ptr,
                    format!("keys {} all mean `{name}`; keep one", keys.join(", ")),
                );
                None
            }
        }
    }

    fn string(&mut self, name: &str, d: &mut Diagnostics) -> Option<(String, String)> {
        let (v, ptr) = self.get(name, d)?;
        match v {
            Value::String(s) => Some((s.clone(), ptr)),
            other => {
                d.error(
                    &ptr,
                    format!("`{name}` must be a string, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, name: &str, d: &mut Diagnostics) -> Option<(bool, String)> {
        let (v, ptr) = self.get(name, d)?;
        match v {
            Value::Bool(b) => Some((*b, ptr)),
            other => {
                d.error(
                    &ptr,
                    format!("`{name}` must be true or false, found {}", kind(other)),
                );
                None
            }
        }
    }

    fn array(&mut self, name: &str, d: &mut Diagnostics) -> Option<(&'a Vec<Value>, String)> {
        let (v, ptr) = self.get(name, d)?;
        match v {
            Value::Array(a) => Some((a, ptr)),
            other => {
                d.error(
                    &ptr,
                    format!("`{name}` must be a list, found {}", kind(other)),
                );
                None
            }
        }
    }

    /// Reports every key that was not read: geard's decoder ignored such keys
    /// without a word; we say so instead.
    fn finish(self, known_elsewhere: &[(&str, &str)], d: &mut Diagnostics) {
        for key in self.map.keys() {
            if self.used.contains(key.as_str()) {
                continue;
            }
            let ptr = join(&self.ptr, key);
            match known_elsewhere
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
            {
                Some((_, why)) => d.warning(&ptr, (*why).to_string()),
                None => d.warning(
                    &ptr,
                    "unknown key, ignored (geard ignored it too; check the spelling)".to_string(),
                ),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A port number: `allow_zero` for geard's "pick one" value.
fn port(v: &Value, ptr: &str, allow_zero: bool, d: &mut Diagnostics) -> Option<u16> {
    match v.as_u64() {
        Some(0) if allow_zero => Some(0),
        Some(p @ 1..=65535) => Some(p as u16),
        _ => {
            let range = if allow_zero {
                "0 to 65535"
            } else {
                "1 to 65535"
            };
            d.error(
                ptr,
                format!("a port must be a whole number from {range}, found {v}"),
            );
            None
        }
    }
}

fn port_field(o: &mut Obj, name: &str, allow_zero: bool, d: &mut Diagnostics) -> Option<u16> {
    let (v, ptr) = o.get(name, d)?;
    port(v, &ptr, allow_zero, d)
}

/// Keys some geard versions or hand-written descriptors carry that geartopo
/// cannot express; reported as warnings with the reason.
const CONTAINER_EXTRAS: &[(&str, &str)] = &[
    ("Environment", "environment files are not carried over: geartopo's `env` takes values, not files; copy the variables into `env = { ... }`"),
    ("EnvironmentFile", "environment files are not carried over: geartopo's `env` takes values, not files; copy the variables into `env = { ... }`"),
    ("EnvFile", "environment files are not carried over: geartopo's `env` takes values, not files; copy the variables into `env = { ... }`"),
    ("Env", "environment files are not carried over: geartopo's `env` takes values, not files; copy the variables into `env = { ... }`"),
];
const LINK_EXTRAS: &[(&str, &str)] = &[
    (
        "UsePrimary",
        "`UsePrimary` is not carried over: geard's deploy never acted on it",
    ),
    (
        "Combine",
        "`Combine` is not carried over: geard's deploy never acted on it",
    ),
];
const INSTANCE_EXTRAS: &[(&str, &str)] = &[
    ("Links", "the instance's recorded links are not read: they are worked out again from the container's `Links` and the ports' `Target`, as geard did"),
    ("Notify", "`Notify` (systemd notify) is not carried over: geartopo does not run containers under systemd"),
];

/// Parses a descriptor; every problem goes to `d`.
pub(crate) fn parse(source: &[u8], d: &mut Diagnostics) -> Option<Descriptor> {
    let value: Value = match serde_json::from_slice(source) {
        Ok(v) => v,
        Err(e) => {
            d.push(Diagnostic::error(
                format!("line {} column {}", e.line(), e.column()),
                format!("not valid JSON: {e}"),
            ));
            return None;
        }
    };
    let mut top = Obj::new(&value, "", "a deployment descriptor", d)?;
    let mut out = Descriptor::default();

    if let Some((list, ptr)) = top.array("Containers", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(c) = container(v, &join(&ptr, i), d) {
                out.containers.push(c);
            }
        }
    } else {
        d.warning(
            "",
            "the descriptor has no `Containers`: nothing to deploy".to_string(),
        );
    }
    if let Some((list, ptr)) = top.array("Instances", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(inst) = instance(v, &join(&ptr, i), d) {
                out.instances.push(inst);
            }
        }
    }
    if let Some((prefix, ptr)) = top.string("IdPrefix", d) {
        out.id_prefix = prefix;
        out.id_prefix_ptr = ptr;
    }
    if let Some((true, ptr)) = top.boolean("RandomizeIds", d) {
        d.warning(
            &ptr,
            "`RandomizeIds` is not carried over: geartopo names containers \
             <name>-<n> so that a plan can find them again; the names below are geard's \
             non-random ones"
                .to_string(),
        );
    }
    top.finish(&[], d);
    Some(out)
}

fn container(v: &Value, ptr: &str, d: &mut Diagnostics) -> Option<ContainerSpec> {
    let mut o = Obj::new(v, ptr, "a container", d)?;
    let mut c = ContainerSpec {
        ptr: ptr.to_string(),
        ..Default::default()
    };
    match o.string("Name", d) {
        Some((name, p)) if !name.is_empty() => {
            c.name = name;
            c.name_ptr = p;
        }
        Some((_, p)) => d.error(&p, "a container needs a non-empty `Name`".to_string()),
        None => d.error(ptr, "a container needs a `Name`".to_string()),
    }
    match o.string("Image", d) {
        Some((image, _)) if !image.is_empty() => c.image = image,
        Some((_, p)) => d.error(&p, "a container needs a non-empty `Image`".to_string()),
        None => d.error(ptr, "a container needs an `Image`".to_string()),
    }
    if let Some((list, lptr)) = o.array("PublicPorts", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(pair) = port_pair(v, &join(&lptr, i), d) {
                c.public_ports.push(pair);
            }
        }
    }
    if let Some((list, lptr)) = o.array("Links", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(link) = link(v, &join(&lptr, i), d) {
                c.links.push(link);
            }
        }
    }
    // Absent is Go's zero: reported below, once the name is known.
    if let Some((v, p)) = o.get("Count", d) {
        match v.as_u64() {
            Some(n) if n <= 10_000 => c.count = n as usize,
            _ => d.error(
                &p,
                format!("`Count` must be a whole number from 0 to 10000, found {v}"),
            ),
        }
    }
    if c.count == 0 && !c.name.is_empty() {
        d.warning(
            ptr,
            format!(
                "container `{}` has no `Count` (or 0): geard deploys no instance of it, \
                 so it is not in the topology",
                c.name
            ),
        );
    }
    if let Some((affinity, p)) = o.string("Affinity", d) {
        if !affinity.is_empty() {
            d.warning(
                &p,
                format!(
                    "`Affinity` \"{affinity}\" is not carried over: geard's simple placement \
                     ignored it too; the placement below is geard's round-robin"
                ),
            );
        }
    }
    if let Some((true, p)) = o.boolean("Notify", d) {
        d.warning(
            &p,
            "`Notify` (systemd notify) is not carried over: geartopo does not run \
             containers under systemd"
                .to_string(),
        );
    }
    o.finish(CONTAINER_EXTRAS, d);
    Some(c)
}

fn port_pair(v: &Value, ptr: &str, d: &mut Diagnostics) -> Option<PortPair> {
    let mut o = Obj::new(v, ptr, "a port pair", d)?;
    let internal = match o.get("Internal", d) {
        Some((v, p)) => port(v, &p, false, d),
        None => {
            d.error(ptr, "a port pair needs an `Internal` port".to_string());
            None
        }
    };
    let external = port_field(&mut o, "External", true, d).unwrap_or(0);
    o.finish(&[], d);
    Some(PortPair {
        ptr: ptr.to_string(),
        internal: internal?,
        external,
    })
}

fn link(v: &Value, ptr: &str, d: &mut Diagnostics) -> Option<LinkSpec> {
    let mut o = Obj::new(v, ptr, "a link", d)?;
    let mut l = LinkSpec {
        ptr: ptr.to_string(),
        ..Default::default()
    };
    match o.string("To", d) {
        Some((to, p)) => {
            l.to = to;
            l.to_ptr = p;
        }
        None => d.error(
            ptr,
            "a link needs `To`, the container it links to".to_string(),
        ),
    }
    l.non_local = o.boolean("NonLocal", d).is_some_and(|(b, _)| b);
    l.match_port = o.boolean("MatchPort", d).is_some_and(|(b, _)| b);
    if let Some((list, lptr)) = o.array("Ports", d) {
        for (i, v) in list.iter().enumerate() {
            let p = join(&lptr, i);
            if let Some(n) = port(v, &p, false, d) {
                l.ports.push((n, p));
            }
        }
    }
    if let Some((list, lptr)) = o.array("AliasPorts", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(pair) = port_pair(v, &join(&lptr, i), d) {
                l.alias_ports.push(pair);
            }
        }
    }
    o.finish(LINK_EXTRAS, d);
    Some(l)
}

fn instance(v: &Value, ptr: &str, d: &mut Diagnostics) -> Option<InstanceSpec> {
    let mut o = Obj::new(v, ptr, "an instance", d)?;
    let mut inst = InstanceSpec {
        ptr: ptr.to_string(),
        ..Default::default()
    };
    match o.string("Id", d) {
        Some((id, p)) if !id.is_empty() => {
            inst.id = id;
            inst.id_ptr = p;
        }
        _ => d.error(ptr, "an instance needs a non-empty `Id`".to_string()),
    }
    if let Some((image, _)) = o.string("Image", d) {
        inst.image = image;
    }
    if let Some((from, _)) = o.string("From", d) {
        inst.from = from;
    }
    if let Some((on, p)) = o.string("On", d) {
        inst.on = Some(on);
        inst.on_ptr = p;
    }
    if let Some((list, lptr)) = o.array("Ports", d) {
        for (i, v) in list.iter().enumerate() {
            if let Some(m) = port_mapping(v, &join(&lptr, i), d) {
                inst.ports.push(m);
            }
        }
    }
    o.finish(INSTANCE_EXTRAS, d);
    Some(inst)
}

fn port_mapping(v: &Value, ptr: &str, d: &mut Diagnostics) -> Option<PortMappingSpec> {
    let mut o = Obj::new(v, ptr, "a port mapping", d)?;
    let internal = match o.get("Internal", d) {
        Some((v, p)) => port(v, &p, false, d),
        None => {
            d.error(ptr, "a port mapping needs an `Internal` port".to_string());
            None
        }
    };
    let external = port_field(&mut o, "External", true, d).unwrap_or(0);
    let mut target = None;
    if let Some((tv, tptr)) = o.get("Target", d) {
        if let Some(mut t) = Obj::new(tv, &tptr, "a link target", d) {
            let host = t.string("Host", d).map(|(h, _)| h).unwrap_or_default();
            let tport = port_field(&mut t, "Port", true, d).unwrap_or(0);
            t.finish(&[], d);
            // geard's HostPort.Empty(): port 0 means no address was reserved yet.
            if tport != 0 {
                target = Some((host, tport));
            }
        }
    }
    o.finish(&[], d);
    Some(PortMappingSpec {
        ptr: ptr.to_string(),
        internal: internal?,
        external,
        target,
    })
}
