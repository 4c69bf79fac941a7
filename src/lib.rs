//! geartopo: link containers across hosts with iptables, declaratively.
//!
//! Pipeline: `topology` (file -> validated model) -> `graph` (start order) ->
//! `observe` (live state over a `transport`) -> `plan` (pure diff) -> `apply`.
//! `lab` makes local hosts to try it on; `import` reads geard descriptors.

pub mod apply;
pub mod cli;
pub mod import;
pub mod lab;
pub mod observe;
pub mod plan;
pub mod render;
pub mod rules;
pub mod runtime;
pub mod state;
#[doc(hidden)]
pub mod testing;
pub mod topology;
/// The start-order graph of a validated topology (it lives in `topology`, whose
/// checks use it to report cycles).
pub use topology::graph;
pub mod transport;
