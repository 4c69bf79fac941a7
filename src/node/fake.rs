//! Fake nodes for unit tests of observe and apply: they record every round trip as
//! the operations it carried, and answer through a handler, which can simulate a
//! node, inject failures or panic. Built only for tests (`cfg(test)`, feature
//! `testing`); no I/O happens here.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Connections, NodeConnection, NodeOp};
use crate::topology::model::Topology;
use crate::transport::{Output, TransportError};

/// One round trip as a node received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub node: String,
    pub ops: Vec<NodeOp>,
}

type Handler = dyn FnMut(&str, &[NodeOp]) -> Result<Output, TransportError> + Send;
type SharedHandler = dyn Fn(&str, &[NodeOp]) -> Result<Output, TransportError> + Send + Sync;

/// How round trips reach the handler.
#[derive(Clone)]
enum Answer {
    /// One round trip at a time (the handler may keep mutable state).
    Exclusive(Arc<Mutex<Box<Handler>>>),
    /// Round trips of different nodes at once, as real nodes answer: one node's
    /// handler may block (a hang) without holding up the others.
    Concurrent(Arc<SharedHandler>),
}

/// Shared by every fake node of a test: the record and the handler.
#[derive(Clone)]
pub struct FakeNodes {
    log: Arc<Mutex<Vec<Recorded>>>,
    handler: Answer,
}

/// A test that makes a handler panic still reads the log and runs the unlocks.
fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeNodes {
    /// `handler(node, ops)` answers every round trip.
    pub fn new<F>(handler: F) -> Self
    where
        F: FnMut(&str, &[NodeOp]) -> Result<Output, TransportError> + Send + 'static,
    {
        FakeNodes {
            log: Arc::default(),
            handler: Answer::Exclusive(Arc::new(Mutex::new(Box::new(handler)))),
        }
    }

    /// As `new`, but round trips are not serialized: the handler runs for
    /// several nodes at once (it keeps its own state behind its own locks).
    /// For tests where one node's round trip blocks while others go on.
    pub fn concurrent<F>(handler: F) -> Self
    where
        F: Fn(&str, &[NodeOp]) -> Result<Output, TransportError> + Send + Sync + 'static,
    {
        FakeNodes {
            log: Arc::default(),
            handler: Answer::Concurrent(Arc::new(handler)),
        }
    }

    /// Every round trip succeeds with no output.
    pub fn succeeding() -> Self {
        FakeNodes::new(|_, _| Ok(Output::default()))
    }

    /// A connection to one node.
    pub fn connection(&self, node: &str) -> FakeNode {
        FakeNode {
            node: node.to_string(),
            world: self.clone(),
        }
    }

    /// One connection per node of `topology`, in node-name order, as `connect_all`.
    pub fn connections(&self, topology: &Topology) -> Connections {
        topology
            .nodes
            .keys()
            .map(|n| Box::new(self.connection(n)) as Box<dyn NodeConnection>)
            .collect()
    }

    /// Every round trip so far, in the order they happened.
    pub fn log(&self) -> Vec<Recorded> {
        lock(&self.log).clone()
    }

    /// Every operation so far, with its node, flattened.
    pub fn ops(&self) -> Vec<(String, NodeOp)> {
        self.log()
            .into_iter()
            .flat_map(|r| r.ops.into_iter().map(move |op| (r.node.clone(), op)))
            .collect()
    }
}

/// A fake connection to one node.
pub struct FakeNode {
    node: String,
    world: FakeNodes,
}

impl NodeConnection for FakeNode {
    fn node(&self) -> &str {
        &self.node
    }

    fn run(&mut self, ops: &[NodeOp]) -> Result<Output, TransportError> {
        lock(&self.world.log).push(Recorded {
            node: self.node.clone(),
            ops: ops.to_vec(),
        });
        match &self.world.handler {
            Answer::Exclusive(h) => {
                let mut handler = lock(h);
                handler(&self.node, ops)
            }
            Answer::Concurrent(h) => h(&self.node, ops),
        }
    }
}
