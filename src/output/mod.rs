//! The JSON documents geartopo prints (`plan --json`, `show --json`,
//! `links --json`, `apply --json` and `destroy --json`), as typed structs. Each document carries a `format_version`;
//! within one version fields are only added, a removal or change bumps it
//! (docs/json.md). Their JSON Schemas, generated from these same types, are
//! committed under `schema/` (`schemas()`, checked by `tests/schema.rs`).
//! Conversions from the plan, the observed state and the topology are pure.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};

pub mod apply;
pub mod links;
pub mod plan;
pub mod show;
pub mod validate;

/// A document's format version: serialized as the number `N`, and described in
/// the schema as that constant, so a consumer can tell which shape it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatVersion<const N: u32>;

impl<const N: u32> Serialize for FormatVersion<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(N)
    }
}

impl<const N: u32> JsonSchema for FormatVersion<N> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        format!("FormatVersion{N}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "The version of this document's format; fields are only added within a version.",
            "type": "integer",
            "const": N,
        })
    }
}

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl From<crate::topology::model::Protocol> for Protocol {
    fn from(p: crate::topology::model::Protocol) -> Self {
        match p {
            crate::topology::model::Protocol::Tcp => Protocol::Tcp,
            crate::topology::model::Protocol::Udp => Protocol::Udp,
        }
    }
}

impl From<crate::state::ProtocolName> for Protocol {
    fn from(p: crate::state::ProtocolName) -> Self {
        match p {
            crate::state::ProtocolName::Tcp => Protocol::Tcp,
            crate::state::ProtocolName::Udp => Protocol::Udp,
        }
    }
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// Pretty JSON of a generated schema, ending in a newline (as committed). The
/// schema describes what geartopo writes (schemars' serialize contract), so
/// every field it always writes, `null` or not, is required.
fn schema_text<T: JsonSchema>() -> String {
    let schema = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<T>();
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}

/// Every output schema with its file under `schema/`.
pub fn schemas() -> Vec<(&'static str, String)> {
    vec![
        ("plan.schema.json", schema_text::<plan::PlanDocument>()),
        ("show.schema.json", schema_text::<show::ShowDocument>()),
        ("links.schema.json", schema_text::<links::LinksDocument>()),
        ("apply.schema.json", schema_text::<apply::ApplyDocument>()),
        (
            "validate.schema.json",
            schema_text::<validate::ValidateDocument>(),
        ),
    ]
}
