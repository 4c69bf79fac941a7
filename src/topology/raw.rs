//! Serde types that mirror the TOML, with spans. (Stub: owned by the topology work.)
