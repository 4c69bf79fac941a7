//! SSH transport over ssh2. (Stub.)
use super::{ConnectOptions, Output, Transport, TransportError};
use crate::topology::model::Node;

pub struct SshTransport {
    node: String,
}

impl SshTransport {
    pub fn connect(node: &Node, _options: &ConnectOptions) -> Result<Self, TransportError> {
        Ok(SshTransport {
            node: node.name.clone(),
        })
    }
}

impl Transport for SshTransport {
    fn node(&self) -> &str {
        &self.node
    }
    fn run(&mut self, _command: &str, _stdin: &[u8]) -> Result<Output, TransportError> {
        todo!()
    }
}
