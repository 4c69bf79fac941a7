//! What the lab needs from a topology: its name and each node's IPv4 address and
//! SSH port, checked for what a lab can host. The file is read and validated by
//! `topology::load`, as for every other command; no other I/O here.

use std::net::Ipv4Addr;

use crate::topology::model::{NodeAddress, Runtime, Topology};

use super::LabError;

/// One node of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabNode {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// Podman nodes run podman on their own store; docker nodes also get their
    /// own dockerd (data root, exec root and socket in the node's directory).
    pub runtime: Runtime,
    /// The SSH user the topology logs in as; the lab creates it when not root.
    pub user: String,
    /// Whether that user gets passwordless sudo (the topology's `sudo = true`).
    pub sudo: bool,
    /// The topology's `ssh_jump`: the lab lets SSH in from that node only.
    pub jump: Option<LabJump>,
}

/// The bastion a lab node is reachable through (and only through) over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabJump {
    pub name: String,
    pub address: Ipv4Addr,
    pub port: u16,
}

/// The topology as the lab sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSpec {
    pub name: String,
    /// In name order.
    pub nodes: Vec<LabNode>,
}

/// Podman's default bridge network, which exists inside every lab node.
const PODMAN_DEFAULT_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 88, 0, 0), 16);

impl LabSpec {
    /// The lab's view of a validated topology.
    pub fn from_topology(topology: &Topology) -> Result<LabSpec, LabError> {
        let nodes = topology
            .nodes
            .values()
            .map(|n| {
                let address = match &n.address {
                    NodeAddress::Local => "local".to_string(),
                    NodeAddress::Remote(a) => a.clone(),
                };
                (n.name.clone(), address, n.port, n.runtime)
            })
            .collect();
        let mut spec = Self::checked(topology.name.clone(), nodes).map_err(LabError::Spec)?;
        for lab_node in &mut spec.nodes {
            let node = &topology.nodes[&lab_node.name];
            lab_node.user = node.user.clone();
            lab_node.sudo = node.sudo;
        }
        let jumps: Vec<(usize, LabJump)> = spec
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                let via = topology.nodes[&n.name].openssh.as_ref()?.jump.as_ref()?;
                let b = spec.node(&via.name)?;
                Some((
                    i,
                    LabJump {
                        name: b.name.clone(),
                        address: b.address,
                        port: b.port,
                    },
                ))
            })
            .collect();
        for (i, jump) in jumps {
            spec.nodes[i].jump = Some(jump);
        }
        Ok(spec)
    }

    /// The non-root users the lab creates, each once, with whether it gets sudo.
    pub fn users(&self) -> Vec<(String, bool)> {
        let mut users: Vec<(String, bool)> = Vec::new();
        for n in self.nodes.iter().filter(|n| n.user != "root") {
            match users.iter_mut().find(|(u, _)| *u == n.user) {
                Some((_, sudo)) => *sudo |= n.sudo,
                None => users.push((n.user.clone(), n.sudo)),
            }
        }
        users
    }

    fn checked(
        name: String,
        nodes: Vec<(String, String, u16, Runtime)>,
    ) -> Result<LabSpec, String> {
        check_name("topology name", &name)?;
        if nodes.is_empty() {
            return Err("no [nodes.*]: a lab needs at least one node".into());
        }
        let mut out: Vec<LabNode> = Vec::new();
        for (node, address, port, runtime) in nodes {
            check_name("node name", &node)?;
            let address: Ipv4Addr = address.parse().map_err(|_| {
                format!(
                    "node {node}: address `{address}` is not an IPv4 address; a lab node takes \
                     the address its topology names, so it must be an IPv4 literal \
                     (198.18.0.0/15 is reserved for such tests)"
                )
            })?;
            if address.is_loopback()
                || address.is_unspecified()
                || address.is_multicast()
                || address.is_broadcast()
            {
                return Err(format!(
                    "node {node}: {address} cannot be a lab host address"
                ));
            }
            if in_subnet(address, PODMAN_DEFAULT_NET.0, PODMAN_DEFAULT_NET.1) {
                return Err(format!(
                    "node {node}: {address} is inside 10.88.0.0/16, podman's default network, \
                     which exists inside every lab node; pick another address (198.18.0.0/15)"
                ));
            }
            if let Some(other) = out.iter().find(|n| n.address == address) {
                return Err(format!(
                    "nodes {} and {node} both have address {address}",
                    other.name
                ));
            }
            if port == 0 {
                return Err(format!("node {node}: port 0"));
            }
            out.push(LabNode {
                name: node,
                address,
                port,
                runtime,
                user: "root".into(),
                sudo: false,
                jump: None,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(LabSpec { name, nodes: out })
    }

    /// Whether any node runs docker (and so the lab needs dockerd).
    pub fn has_docker(&self) -> bool {
        self.nodes.iter().any(|n| n.runtime == Runtime::Docker)
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The control namespace's address: the highest free host address of the
    /// first node's /24, so it sits beside the nodes (198.18.0.254 for 198.18.0.x).
    pub fn control_address(&self) -> Ipv4Addr {
        let base = u32::from(self.nodes[0].address) & 0xffff_ff00;
        (1..=254u32)
            .rev()
            .map(|host| Ipv4Addr::from(base | host))
            .find(|a| self.nodes.iter().all(|n| n.address != *a))
            .expect("a /24 has 254 host addresses and a lab fewer nodes")
    }
}

/// Names reach file paths, namespace names and shells: same rule as the topology.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} `{name}` must be 1-64 characters of [A-Za-z0-9_.-], not starting with `.`"
        ))
    }
}

fn in_subnet(address: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX << (32 - prefix);
    u32::from(address) & mask == u32::from(net) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<LabSpec, String> {
        let topology =
            crate::topology::parse("t.toml", text.as_bytes()).map_err(|e| e.to_string())?;
        LabSpec::from_topology(&topology).map_err(|e| e.to_string())
    }

    const FOUR: &str = r#"
name = "e2e"
[defaults]
user = "root"
[nodes.node2]
address = "198.18.0.2"
[nodes.node1]
address = "198.18.0.1"
port = 2222
[containers.x]
node = "node1"
image = "i"
"#;

    #[test]
    fn reads_name_nodes_and_ports_in_name_order() {
        let spec = spec(FOUR).unwrap();
        assert_eq!(spec.name, "e2e");
        let nodes: Vec<_> = spec
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.address.to_string(), n.port))
            .collect();
        assert_eq!(
            nodes,
            [
                ("node1", "198.18.0.1".to_string(), 2222),
                ("node2", "198.18.0.2".to_string(), 22)
            ]
        );
    }

    #[test]
    fn each_node_keeps_its_runtime() {
        let spec = spec(
            "name='a'\n[nodes.p]\naddress='198.18.0.1'\n\
             [nodes.d]\naddress='198.18.0.2'\nruntime='docker'\n",
        )
        .unwrap();
        let runtimes: Vec<_> = spec
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.runtime))
            .collect();
        assert_eq!(runtimes, [("d", Runtime::Docker), ("p", Runtime::Podman)]);
        assert!(spec.has_docker());
        assert!(!self::spec(FOUR).unwrap().has_docker());
    }

    #[test]
    fn a_node_behind_a_jump_host_knows_its_bastion() {
        let spec = spec(
            "name='a'\n[defaults]\ntransport='openssh'\n[nodes.b]\naddress='198.18.0.1'\n\
             [nodes.h]\naddress='198.18.0.2'\nssh_jump='b'\n",
        )
        .unwrap();
        let jump = spec.node("h").unwrap().jump.clone().unwrap();
        assert_eq!(
            (jump.name.as_str(), jump.address, jump.port),
            ("b", Ipv4Addr::new(198, 18, 0, 1), 22)
        );
        assert_eq!(spec.node("b").unwrap().jump, None);
    }

    #[test]
    fn a_file_with_nodes_only_is_a_lab() {
        let spec = spec("name = \"e2e\"\n[nodes.n]\naddress = \"198.18.0.9\"\n").unwrap();
        assert_eq!(spec.nodes.len(), 1);
    }

    #[test]
    fn default_port_applies_to_nodes_without_one() {
        let spec =
            spec("name='a'\n[defaults]\nport=2200\n[nodes.n]\naddress='198.18.0.9'\n").unwrap();
        assert_eq!(spec.nodes[0].port, 2200);
    }

    #[test]
    fn control_address_sits_beside_the_nodes_and_avoids_them() {
        let spec4 = spec(FOUR).unwrap();
        assert_eq!(spec4.control_address(), Ipv4Addr::new(198, 18, 0, 254));
        let taken = spec("name='a'\n[nodes.n]\naddress='198.18.0.254'\n").unwrap();
        assert_eq!(taken.control_address(), Ipv4Addr::new(198, 18, 0, 253));
    }

    #[test]
    fn refuses_what_a_lab_cannot_host() {
        let err = |t: &str| spec(t).unwrap_err();
        assert!(err("name='a'\n[nodes.n]\naddress='local'\n").contains("not an IPv4 address"));
        assert!(
            err("name='a'\n[nodes.n]\naddress='db.example.com'\n").contains("not an IPv4 address")
        );
        assert!(
            err("name='a'\n[nodes.n]\naddress='10.88.0.5'\n").contains("podman's default network")
        );
        assert!(err("name='a'\n[nodes.n]\naddress='127.0.0.1'\n").contains("cannot be a lab host"));
        assert!(err(
            "name='a'\n[nodes.n]\naddress='198.18.0.1'\n[nodes.m]\naddress='198.18.0.1'\n"
        )
        .contains("both have address"));
    }

    #[test]
    fn names_that_could_climb_out_of_the_lab_directory_are_refused() {
        assert!(check_name("topology name", "../etc").is_err());
        assert!(check_name("topology name", "a/b").is_err());
        assert!(check_name("topology name", "..").is_err());
        assert!(check_name("topology name", "").is_err());
        assert!(check_name("topology name", "e2e-123").is_ok());
    }
}
