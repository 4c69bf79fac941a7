//! Runs commands on this machine (node address `local`). (Stub.)
use std::time::Duration;

use super::{Output, Transport, TransportError};

pub struct LocalTransport {
    node: String,
    #[allow(dead_code)]
    timeout: Duration,
}

impl LocalTransport {
    pub fn new(node: &str, timeout: Duration) -> Self {
        LocalTransport {
            node: node.to_string(),
            timeout,
        }
    }
}

impl Transport for LocalTransport {
    fn node(&self) -> &str {
        &self.node
    }
    fn run(&mut self, _command: &str, _stdin: &[u8]) -> Result<Output, TransportError> {
        todo!()
    }
}
