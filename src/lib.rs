//! geartopo: link containers across hosts with iptables, declaratively.
//!
//! Pipeline: `topology` (file -> validated model) -> `graph` (start order) ->
//! `observe` (live state over a `transport`) -> `plan` (pure diff) -> `apply`.
//! `node` holds the operations on a node as values, and their one renderer.
//! Test-only code (`testing`, the fakes) is built only under `cfg(test)` or the
//! `testing` feature, never into the release binary.
//! `lab` makes local hosts to try it on; `import` reads geard descriptors.

pub mod apply;
pub mod cli;
pub mod fmt;
pub mod import;
pub mod lab;
pub mod linkcheck;
pub mod nft;
pub mod node;
pub mod observe;
pub mod output;
pub mod plan;
pub mod private_ports;
pub mod render;
pub mod rules;
pub mod state;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod text;
pub mod topology;
pub mod topology_graph;
/// The start-order graph of a validated topology (it lives in `topology`, whose
/// checks use it to report cycles).
pub use topology::graph;
pub mod transport;
