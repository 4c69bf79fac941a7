//! The committed JSON Schema (schema/geartopo.schema.json) is generated from the raw
//! serde types; this fails when it is out of date.
//! `GEARTOPO_BLESS=1 cargo test --test schema` regenerates it.

use std::path::PathBuf;

#[test]
fn committed_schema_matches_the_types() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/geartopo.schema.json");
    let actual = geartopo::topology::json_schema();
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == actual,
        "schema/geartopo.schema.json is out of date; run `GEARTOPO_BLESS=1 cargo test --test schema`:\n{}",
        similar::TextDiff::from_lines(committed.as_str(), actual.as_str()).unified_diff()
    );
}

#[test]
fn schema_describes_every_section_and_rejects_unknown_keys() {
    let schema: serde_json::Value =
        serde_json::from_str(&geartopo::topology::json_schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in ["name", "defaults", "nodes", "containers", "views"] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], serde_json::json!(["name"]));
    let container = &schema["$defs"]["RawContainer"];
    assert_eq!(container["additionalProperties"], false);
    assert_eq!(container["required"], serde_json::json!(["image"]));
    // A link is either geard's string form or a table.
    let link = &schema["$defs"]["RawLink"];
    assert_eq!(link["anyOf"][0]["type"], "string");
}

/// Every example also deserializes as a whole into the schema's root type, so
/// the schema and the reader agree on the file's shape.
#[test]
fn every_example_fits_the_schema_root_type() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed: Result<geartopo::topology::raw::RawTopology, _> = toml::from_str(&text);
            assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
        }
    }
}
