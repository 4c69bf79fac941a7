//! The committed JSON Schemas are generated from the types: schema/geartopo.schema.json
//! (the topology file) from the raw serde types, schema/{plan,show,links,validate,apply}.schema.json
//! (the `--json` documents) from `geartopo::output`; this fails when one is out of date.
//! `GEARTOPO_BLESS=1 cargo test --test schema` regenerates them.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Compares (or, blessing, writes) one committed schema.
fn check_committed(file: &str, actual: &str) -> Result<(), String> {
    let path = root().join("schema").join(file);
    if std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == actual {
        return Ok(());
    }
    Err(format!(
        "schema/{file} is out of date; run `GEARTOPO_BLESS=1 cargo test --test schema`:\n{}",
        similar::TextDiff::from_lines(committed.as_str(), actual).unified_diff()
    ))
}

#[test]
fn committed_schema_matches_the_types() {
    if let Err(e) = check_committed("geartopo.schema.json", &geartopo::topology::json_schema()) {
        panic!("{e}");
    }
}

#[test]
fn committed_output_schemas_match_the_types() {
    let stale: Vec<String> = geartopo::output::schemas()
        .iter()
        .filter_map(|(file, actual)| check_committed(file, actual).err())
        .collect();
    assert!(stale.is_empty(), "{}", stale.join("\n"));
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
    let dir = root().join("examples");
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed: Result<geartopo::topology::raw::RawTopology, _> = toml::from_str(&text);
            assert!(parsed.is_ok(), "{}: {:?}", path.display(), parsed.err());
        }
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(file: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&read_json(&root().join("schema").join(file))).unwrap()
}

/// The `.json` files of a golden directory (at least one, or the test proves nothing).
fn goldens(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no JSON goldens in {dir}");
    files
}

fn assert_valid(v: &jsonschema::Validator, path: &Path) {
    let doc = read_json(path);
    let errors: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("  {} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{} does not fit its schema:\n{}",
        path.display(),
        errors.join("\n")
    );
}

/// The golden outputs (what `plan --json`, `links --json` and `validate --json` print) fit the
/// committed schemas.
#[test]
fn golden_outputs_fit_their_schemas() {
    let plan = validator("plan.schema.json");
    for path in goldens("tests/golden/plan") {
        assert_valid(&plan, &path);
    }
    let links = validator("links.schema.json");
    for path in goldens("tests/links") {
        assert_valid(&links, &path);
    }
    let validate = validator("validate.schema.json");
    for path in goldens("tests/validate") {
        assert_valid(&validate, &path);
    }
    // Written by the apply session's unit tests (src/apply/session/tests.rs)
    // from documents of runs against simulated nodes.
    let apply = validator("apply.schema.json");
    for path in goldens("tests/golden/apply") {
        assert_valid(&apply, &path);
    }
}

/// The apply document's schema holds a consumer to what it may rely on: a step's
/// outcome is one of three words, a result one of four, and the error is written
/// (`null` when there is none).
#[test]
fn apply_schema_pins_outcomes_results_and_the_error_field() {
    let apply = validator("apply.schema.json");
    let failed = read_json(&root().join("tests/golden/apply/failed-half-way.json"));
    assert!(apply.is_valid(&failed));
    let outcomes: Vec<&str> = failed["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    for o in ["done", "failed", "not_started"] {
        assert!(outcomes.contains(&o), "the golden shows {o}: {outcomes:?}");
    }
    let mut skipped = failed.clone();
    skipped["steps"][0]["outcome"] = "skipped".into();
    assert!(!apply.is_valid(&skipped));
    let mut partial = failed.clone();
    partial["result"] = "partial".into();
    assert!(!apply.is_valid(&partial));
    let mut no_error = failed.clone();
    no_error.as_object_mut().unwrap().remove("error");
    assert!(!apply.is_valid(&no_error));
    let locked = read_json(&root().join("tests/golden/apply/lock-held.json"));
    assert!(apply.is_valid(&locked));
    let mut unknown_kind = locked.clone();
    unknown_kind["error"]["kind"] = "oops".into();
    assert!(!apply.is_valid(&unknown_kind));
}

/// The schemas pin what a consumer relies on: the format version, and the
/// fields always written (`null` included).
#[test]
fn schemas_reject_another_version_and_a_missing_field() {
    let plan = validator("plan.schema.json");
    let good = read_json(&root().join("tests/golden/plan/link-added.json"));
    assert!(plan.is_valid(&good));
    let mut other_version = good.clone();
    other_version["format_version"] = 2.into();
    assert!(!plan.is_valid(&other_version));
    let mut no_rules_before = good.clone();
    no_rules_before["changes"][0]
        .as_object_mut()
        .unwrap()
        .remove("rules_before");
    assert!(!plan.is_valid(&no_rules_before));

    let links = validator("links.schema.json");
    let mut unversioned = read_json(&root().join("tests/links/redis-todo.json"));
    assert!(links.is_valid(&unversioned));
    unversioned
        .as_object_mut()
        .unwrap()
        .remove("format_version");
    assert!(!links.is_valid(&unversioned));
}
