//! geartopo: link containers across hosts with iptables, declaratively.
//!
//! Pipeline: `topology` (file -> validated model) -> `graph` (start order) ->
//! `observe` (live state over a `transport`) -> `plan` (pure diff) -> `apply`.
//! `lab` makes local hosts to try it on; `import` reads geard descriptors.

pub mod apply;
pub mod cli;
pub mod fmt;
pub mod graph;
pub mod import;
pub mod lab;
pub mod nft;
pub mod observe;
pub mod output;
pub mod plan;
pub mod render;
pub mod rules;
pub mod runtime;
pub mod state;
#[doc(hidden)]
pub mod testing;
pub mod topology;
pub mod topology_graph;
pub mod transport;
