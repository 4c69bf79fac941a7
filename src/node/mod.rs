//! What geartopo does to a node, as values: `NodeOp` (observe, lock, create,
//! rules, start, remove, ...) is what apply tasks carry, what the fake records and
//! what tests match on. `script` is the one place that turns operations into the
//! shell text a node runs, for the node's `NodeProfile`; `section` names the parts
//! of the observe output for its writer (the script) and its reader (`observe`).
//! A `NodeConnection` runs operations on one node in one round trip. No shell text
//! is built outside `script`, and nothing here parses what a node answered.

use crate::topology::model::{Node, Runtime};
use crate::transport::{Output, Transport, TransportError};

#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod lock;
pub mod script;
pub mod section;

/// The sysctls every container gets: forwarding, and DNAT to and from 127.0.0.0/8.
pub const SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.route_localnet", "1"),
];

/// Exit status of a round trip whose `Lock` found the lock held by another apply;
/// its stderr names the holder.
pub const LOCK_HELD: i32 = 75;

/// One thing to do on a node. Every string comes from the validated model or from
/// what `observe` found; `script` quotes each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOp {
    /// Reads the node: listening sockets, every container's published ports, this
    /// topology's containers and their namespaces. Changes nothing.
    Observe { topology: String },
    /// Takes the node's apply lock, recording its holder, or ends the round trip
    /// with `LOCK_HELD` and reports the lock (`lock::HeldLock`) on stderr.
    Lock { holder: lock::LockHolder },
    /// Releases the lock if `holder` holds it.
    Unlock { holder: lock::LockHolder },
    /// Reports the lock on stdout (`lock::HeldLock`), or nothing when none is held.
    ReadLock,
    /// Removes the lock whatever its holder, if its `holder` file still reads
    /// `line` (the lock shown to the operator); fails otherwise.
    ForceUnlock { line: String },
    /// Creates a container and prepares its namespace without starting its process
    /// (podman `init`; docker has none, so there `Rules` starts it).
    Create(CreateSpec),
    /// Prepares the namespace of an existing, stopped container (podman only).
    Init { container: String },
    /// Puts the owned chains in the container's namespace (nat: the links;
    /// filter: the route_localnet guard), makes each jump into them present once,
    /// sets the sysctls. Refuses when that namespace is the node's own.
    Rules {
        container: String,
        rules: OwnedRules,
    },
    /// Starts a prepared container.
    Start { container: String },
    /// Removes a container (and with it its namespace and owned chains).
    Remove { container: String },
    /// Makes sure `image` is on the node (pulls it if not), or fails naming it:
    /// run before the old side of a replace is removed, so that an image that
    /// cannot be had leaves the old container running.
    EnsureImage { image: String },
}

impl NodeOp {
    /// A short name of the kind of operation (`create`), for golden files and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeOp::Observe { .. } => "observe",
            NodeOp::Lock { .. } => "lock",
            NodeOp::Unlock { .. } => "unlock",
            NodeOp::ReadLock => "read-lock",
            NodeOp::ForceUnlock { .. } => "force-unlock",
            NodeOp::Create(_) => "create",
            NodeOp::Init { .. } => "init",
            NodeOp::Rules { .. } => "rules",
            NodeOp::Start { .. } => "start",
            NodeOp::Remove { .. } => "remove",
            NodeOp::EnsureImage { .. } => "image",
        }
    }
}

/// What `Create` needs. In `container` fields of other operations, a container is
/// its runtime name when just created, its observed id otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSpec {
    pub runtime_name: String,
    pub labels: Vec<(String, String)>,
    /// (protocol, container port, host port)
    pub publish: Vec<(&'static str, u16, u16)>,
    pub env: Vec<(String, String)>,
    /// Secret values without a line break: passed in a root-only file.
    pub secret_env: Vec<(String, String)>,
    pub image: String,
    pub command: Vec<String>,
}

/// The owned rules of one container, in the form of the backend they are for:
/// iptables-save lines (`rules::render_rules`) for `Iptables`, the lines of
/// `table ip geartopo` in nft syntax (`nft::table_lines`) for `Nftables`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRules {
    pub topology: String,
    /// The container's name in the topology (the marker rule names it).
    pub container: String,
    pub rules: Vec<String>,
    /// The backend `rules` are for, and so the program that applies them.
    pub firewall: Firewall,
    /// Also remove what the other backend holds of geartopo's in the namespace
    /// (a node switched backends): after the new rules are in place.
    pub clear_other: bool,
}

impl OwnedRules {
    /// The document that puts these rules in place, self-contained and
    /// idempotent: what is piped to `iptables-restore --noflush`
    /// (`firewall_program`) or `nft -f -`. The same text every time for the same
    /// rules, so that a hook may replay it after a restart.
    pub fn payload(&self) -> String {
        match self.firewall {
            Firewall::Iptables => {
                crate::rules::render_restore(&self.topology, &self.container, &self.rules)
            }
            Firewall::Nftables => crate::nft::document_from_lines(&self.rules),
        }
    }
}

/// The program (and arguments) that reads `OwnedRules::payload` on stdin.
pub fn firewall_program(firewall: Firewall) -> &'static str {
    match firewall {
        Firewall::Iptables => "iptables-restore --noflush",
        Firewall::Nftables => "nft -f -",
    }
}

/// How a node's firewall is driven (the model's type: a node of the topology
/// chooses it). Each backend renders its own document in `script`; `observe`
/// reads both, so that a node switched from one to the other is seen with what
/// the other left.
pub use crate::topology::model::Firewall;

/// Everything about a node that changes the text of its scripts (the container
/// runtime, the firewall backend; later e.g. how root is obtained).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeProfile {
    pub runtime: Runtime,
    pub firewall: Firewall,
}

impl NodeProfile {
    /// The profile of a node of the topology.
    pub fn of(node: &Node) -> NodeProfile {
        NodeProfile {
            runtime: node.runtime,
            firewall: node.firewall,
        }
    }

    /// A node with `runtime` and the default of everything else.
    pub fn for_runtime(runtime: Runtime) -> NodeProfile {
        NodeProfile {
            runtime,
            firewall: Firewall::Iptables,
        }
    }
}

/// Runs operations on one node. One value holds one connection for its lifetime.
pub trait NodeConnection: Send {
    /// The node's name in the topology.
    fn node(&self) -> &str;
    /// Runs `ops` in order in one round trip and returns what it left behind.
    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError>;
}

/// Open connections, one per node, in node-name order.
pub type Connections = Vec<Box<dyn NodeConnection>>;

/// The real thing: renders the operations for the node's profile and runs the
/// script through a transport (`sh -s`, the script on stdin).
pub struct ScriptedNode {
    transport: Box<dyn Transport>,
    profile: NodeProfile,
}

impl ScriptedNode {
    pub fn new(transport: Box<dyn Transport>, profile: NodeProfile) -> Self {
        ScriptedNode { transport, profile }
    }
}

impl NodeConnection for ScriptedNode {
    fn node(&self) -> &str {
        self.transport.node()
    }

    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError> {
        let text = script::render(&self.profile, ops);
        self.transport.run(script::SHELL, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::fake::FakeWorld;

    #[test]
    fn a_round_trip_is_one_script_on_stdin_of_the_same_command_line() {
        let world = FakeWorld::succeeding();
        let profile = NodeProfile::for_runtime(Runtime::Docker);
        let mut node = ScriptedNode::new(Box::new(world.transport("node1")), profile);
        let ops = [
            NodeOp::Lock {
                holder: lock::LockHolder::this_process("todo"),
            },
            NodeOp::Observe {
                topology: "todo".into(),
            },
        ];
        node.run(&ops).unwrap();
        let log = world.log();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].node, "node1");
        assert_eq!(log[0].command, "sh -s");
        assert_eq!(log[0].stdin, script::render(&profile, &ops));
    }
}
