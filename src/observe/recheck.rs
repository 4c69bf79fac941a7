//! The lock's round trip: each node's lock taken and, in the same round trip,
//! what the plan depends on there read again: on a node read from podman's
//! listing, as a digest computed on the node (`NodeOp::Digest`: nothing but one
//! line comes back); elsewhere (docker), read in full and narrowed here. The
//! result is the plan's fingerprint as the nodes are now.

use std::collections::BTreeMap;

use super::{keep_relevant_ports, parallel_map, parse_node, resolve_names, ObserveError};
use crate::node::lock::LockHolder;
use crate::node::{Connections, NodeOp, LOCK_HELD};
use crate::plan::{combined_fingerprint, NodeCheck};
use crate::topology::model::Topology;

/// Locks every node of `conns` and computes the fingerprint of what `checks`
/// (`Plan::recheck`) names, to compare with the plan's. A node locked by
/// another is `ObserveError::Locked`.
pub fn lock_and_fingerprint(
    topology: &Topology,
    conns: &mut Connections,
    parallelism: usize,
    holder: &LockHolder,
    checks: &BTreeMap<String, NodeCheck>,
) -> Result<String, Vec<ObserveError>> {
    let none = NodeCheck::default();
    let subnets = crate::plan::private::needs_subnets(topology);
    let jobs: Vec<_> = conns.iter_mut().collect();
    let results = parallel_map(jobs, parallelism, |conn| {
        let node = conn.node().to_string();
        let check = checks.get(&node).unwrap_or(&none);
        let lock = NodeOp::Lock {
            holder: holder.clone(),
        };
        let read = match &check.digest {
            Some(scope) => NodeOp::Digest {
                topology: topology.name.clone(),
                scope: scope.clone(),
                subnets,
            },
            None => NodeOp::Observe {
                topology: topology.name.clone(),
                images: Vec::new(),
                subnets,
            },
        };
        let out = conn.run(&[lock, read])?;
        if out.status == LOCK_HELD {
            return Err(ObserveError::Locked {
                node,
                holder: out.stderr_str().trim().to_string(),
            });
        }
        if !out.success() {
            return Err(ObserveError::Failed {
                node,
                status: out.status,
                stderr: out.stderr_str().trim().to_string(),
            });
        }
        let stdout = out.stdout_str();
        let digest = match &check.digest {
            Some(_) => match super::digest::answer(&stdout) {
                Some(d) => format!("canon {d}"),
                None => {
                    return Err(ObserveError::Parse {
                        node,
                        reason: "no digest in the lock's answer".into(),
                    })
                }
            },
            None => {
                let mut ns = parse_node(&node, &topology.name, &stdout)?;
                let given: Vec<u16> = topology
                    .containers
                    .iter()
                    .filter(|c| c.node == node)
                    .flat_map(|c| c.publish.iter().filter_map(|p| p.host_port))
                    .collect();
                keep_relevant_ports(topology, &node, &given, &mut ns);
                format!("json {}", check.narrowed_digest(&node, &ns))
            }
        };
        Ok((node, digest))
    });
    let mut nodes = BTreeMap::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((node, d)) => {
                nodes.insert(node, d);
            }
            Err(e) => errors.push(e),
        }
    }
    let resolved = match resolve_names(topology) {
        Ok(r) => r,
        Err(e) => {
            errors.push(e);
            BTreeMap::new()
        }
    };
    if errors.is_empty() {
        Ok(combined_fingerprint(&nodes, &resolved))
    } else {
        Err(errors)
    }
}
