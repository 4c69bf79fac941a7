//! A fake transport: it records every command line with its stdin and answers
//! through a handler. For tests of what reaches a transport (`node::ScriptedNode`);
//! tests of observe and apply use `node::fake`, which records operations. Built
//! only for tests (`cfg(test)`, feature `testing`); no I/O happens here.

use std::sync::{Arc, Mutex};

use super::{Output, Transport, TransportError};

/// One command as a node received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub node: String,
    pub command: String,
    pub stdin: String,
}

type Handler = dyn FnMut(&str, &str, &str) -> Result<Output, TransportError> + Send;

/// Shared by every fake node of a test: the record and the handler.
#[derive(Clone)]
pub struct FakeWorld {
    log: Arc<Mutex<Vec<Recorded>>>,
    handler: Arc<Mutex<Box<Handler>>>,
}

impl FakeWorld {
    /// `handler(node, command, stdin)` answers every command.
    pub fn new<F>(handler: F) -> Self
    where
        F: FnMut(&str, &str, &str) -> Result<Output, TransportError> + Send + 'static,
    {
        FakeWorld {
            log: Arc::default(),
            handler: Arc::new(Mutex::new(Box::new(handler))),
        }
    }

    /// Every command succeeds with no output.
    pub fn succeeding() -> Self {
        FakeWorld::new(|_, _, _| Ok(Output::default()))
    }

    /// A transport for one node of this world.
    pub fn transport(&self, node: &str) -> FakeTransport {
        FakeTransport {
            node: node.to_string(),
            world: self.clone(),
        }
    }

    /// What every node received, in order.
    pub fn log(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// A fake node connection.
pub struct FakeTransport {
    node: String,
    world: FakeWorld,
}

impl Transport for FakeTransport {
    fn node(&self) -> &str {
        &self.node
    }

    fn run(&mut self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let stdin = String::from_utf8_lossy(stdin).into_owned();
        self.world.log.lock().unwrap().push(Recorded {
            node: self.node.clone(),
            command: command.to_string(),
            stdin: stdin.clone(),
        });
        let mut handler = self.world.handler.lock().unwrap();
        handler(&self.node, command, &stdin)
    }
}
