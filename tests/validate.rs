//! Golden tests of `geartopo validate`: every `tests/validate/<case>.toml` is a bad
//! file whose exact report (NO_COLOR, fixed width) is in `<case>.stderr` next to it.
//! The same cases with `--json` are compared with `<case>.json` (docs/validate-json.md).
//! `GEARTOPO_BLESS=1 cargo test --test validate` rewrites the .stderr and .json files.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn geartopo() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_geartopo"));
    c.env("NO_COLOR", "1").env("HOME", "/home/test");
    c
}

fn bless() -> bool {
    std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1")
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/validate exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_bad_file_reports_exactly_its_golden_diagnostics() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let file_name = case.file_name().unwrap().to_str().unwrap();
        // Run from the case's directory so the report names the file as `<case>.toml`.
        let out = geartopo()
            .current_dir(case.parent().unwrap())
            .args(["validate", file_name])
            .output()
            .expect("geartopo runs");
        let stderr = String::from_utf8(out.stderr).expect("reports are UTF-8");
        let golden = case.with_extension("stderr");
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{file_name}: exit {:?}, expected 1",
                out.status.code()
            ));
        }
        if !out.stdout.is_empty() {
            failures.push(format!("{file_name}: printed on stdout"));
        }
        if stderr.contains("panicked") {
            failures.push(format!("{file_name}: panicked"));
        }
        if bless() {
            std::fs::write(&golden, &stderr).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if stderr != want {
            let diff = similar::TextDiff::from_lines(&want, &stderr)
                .unified_diff()
                .header(&golden.display().to_string(), "actual")
                .to_string();
            failures.push(format!("{file_name}: report differs\n{diff}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_bad_file_gives_exactly_its_golden_json_and_nothing_on_stderr() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let file_name = case.file_name().unwrap().to_str().unwrap();
        let out = geartopo()
            .current_dir(case.parent().unwrap())
            .args(["validate", "--json", file_name])
            .output()
            .expect("geartopo runs");
        if out.status.code() != Some(1) {
            failures.push(format!(
                "{file_name}: exit {:?}, expected 1",
                out.status.code()
            ));
        }
        if !out.stderr.is_empty() {
            failures.push(format!(
                "{file_name}: printed on stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let stdout = String::from_utf8(out.stdout).expect("JSON is UTF-8");
        // The whole of stdout is one document.
        match serde_json::from_str::<Value>(&stdout) {
            Ok(doc) => {
                let n = doc["diagnostics"].as_array().map_or(0, Vec::len);
                if doc["valid"] != false || doc["error_count"] != n || n == 0 {
                    failures.push(format!("{file_name}: valid/error_count wrong"));
                }
            }
            Err(e) => failures.push(format!("{file_name}: stdout is not one JSON document: {e}")),
        }
        // The JSON points where the text report points: its `,-[file:line:column]`.
        let text_places: Vec<String> = std::fs::read_to_string(case.with_extension("stderr"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix(",-[")?.strip_suffix(']'))
            .map(|place| place.split(':').skip(1).collect::<Vec<_>>().join(":"))
            .collect();
        let json_places: Vec<String> = serde_json::from_str::<Value>(&stdout)
            .ok()
            .and_then(|doc| doc["diagnostics"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|d| d.get("range").is_some())
            .map(|d| {
                format!(
                    "{}:{}",
                    d["range"]["start"]["line"], d["range"]["start"]["column"]
                )
            })
            .collect();
        if text_places != json_places {
            failures.push(format!(
                "{file_name}: text report at {text_places:?}, JSON at {json_places:?}"
            ));
        }
        let golden = case.with_extension("json");
        if bless() {
            std::fs::write(&golden, &stdout).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if stdout != want {
            let diff = similar::TextDiff::from_lines(&want, &stdout)
                .unified_diff()
                .header(&golden.display().to_string(), "actual")
                .to_string();
            failures.push(format!("{file_name}: JSON differs\n{diff}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Runs `validate --json` on `text` written to `t.toml`; exit code and document.
fn validate_json(text: &[u8]) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.toml"), text).unwrap();
    let out = geartopo()
        .current_dir(dir.path())
        .args(["validate", "--json", "t.toml"])
        .output()
        .unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

/// The text a range covers, found twice: by its byte offsets in the file, and by
/// its line and column counted in characters.
fn covered(text: &str, range: &Value) -> (String, String) {
    let (start, end) = (&range["start"], &range["end"]);
    let by_bytes = text
        [start["byte"].as_u64().unwrap() as usize..end["byte"].as_u64().unwrap() as usize]
        .to_owned();
    assert_eq!(start["line"], end["line"], "one-line range expected");
    let line = text
        .lines()
        .nth(start["line"].as_u64().unwrap() as usize - 1)
        .unwrap();
    let (c0, c1) = (
        start["column"].as_u64().unwrap() as usize,
        end["column"].as_u64().unwrap() as usize,
    );
    let by_columns: String = line.chars().skip(c0 - 1).take(c1 - c0).collect();
    (by_bytes, by_columns)
}

const ONE_NODE: &str = "name = \"t\"\n\n[nodes.node1]\naddress = \"198.18.0.1\"\n\n";

#[test]
fn json_line_and_column_count_characters_after_a_multibyte_one() {
    const PREFIX: &str = "a = { node = \"node1\", image = \"busybox\", env = { G = \"hé☕\" }, ";
    let text = format!("{ONE_NODE}[containers]\n# café ☕ first\n{PREFIX}imge = \"x\" }}\n");
    let (code, doc) = validate_json(text.as_bytes());
    assert_eq!(code, Some(1));
    let d = &doc["diagnostics"][0];
    assert_eq!(d["summary"], "unknown key `imge`");
    let range = &d["range"];
    assert_eq!(range["start"]["line"], 8);
    // PREFIX is 62 characters but 65 bytes: the column counts characters.
    assert_eq!((PREFIX.chars().count(), PREFIX.len()), (62, 65));
    assert_eq!(range["start"]["column"], 63);
    assert_eq!(range["start"]["byte"], text.find("imge").unwrap());
    assert_eq!(covered(&text, range), ("imge".into(), "imge".into()));
    let snippet = &d["snippet"];
    let code: String = snippet["code"]
        .as_str()
        .unwrap()
        .chars()
        .skip(snippet["highlight_start_offset"].as_u64().unwrap() as usize)
        .take(4)
        .collect();
    assert_eq!(code, "imge");
}

#[test]
fn json_never_shows_a_secret_value_and_counts_columns_in_the_real_file() {
    let text = format!(
        "{ONE_NODE}[containers.a]\nnode = \"node1\"\nimage = \"busybox\"\nenv = {{ PASSWORD = {{ value = \"sécrét-☕\", secrte = true }} }}\n"
    );
    let (code, doc) = validate_json(text.as_bytes());
    assert_eq!(code, Some(1));
    let json = doc.to_string();
    for piece in ["sécrét", "☕"] {
        assert!(!json.contains(piece), "{piece} leaked: {json}");
    }
    let d = &doc["diagnostics"][0];
    assert_eq!(
        covered(&text, &d["range"]),
        ("secrte".into(), "secrte".into())
    );
    assert!(d["snippet"]["code"]
        .as_str()
        .unwrap()
        .contains("value = \"*"));
}

#[test]
fn json_of_a_valid_file_has_no_diagnostics_and_the_summary_counts() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/redis-todo.toml");
    let out = geartopo()
        .args(["validate", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "format_version": 1,
            "valid": true,
            "error_count": 0,
            "warning_count": 0,
            "diagnostics": [],
            "topology": {"name": "todo", "nodes": 2, "containers": 2, "views": 0, "links": 1},
        })
    );
}

#[test]
fn json_of_an_unreadable_file_is_one_diagnostic_without_a_range() {
    let out = geartopo()
        .args(["validate", "--json", "/nonexistent/geartopo.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.is_empty());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["error_count"], 1);
    let diags = doc["diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1);
    assert!(diags[0]["summary"]
        .as_str()
        .unwrap()
        .starts_with("cannot read /nonexistent/geartopo.toml"));
    assert!(diags[0]["range"].is_null(), "{}", diags[0]);
    assert_eq!(diags[0]["labels"], serde_json::json!([]));
}

#[test]
fn json_keeps_every_label_of_a_problem() {
    // A host port taken twice on one node: the text report points at both.
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate/host-port-conflict.toml");
    let text = std::fs::read_to_string(&case).unwrap();
    let (code, doc) = validate_json(text.as_bytes());
    assert_eq!(code, Some(1));
    let d = &doc["diagnostics"][0];
    let labels = d["labels"].as_array().unwrap();
    assert!(labels.len() >= 2, "{d}");
    assert_eq!(labels[0]["range"], d["range"]);
    assert_eq!(labels[0]["text"], d["detail"]);
}

#[test]
fn the_json_schema_describes_the_document() {
    let schema: Value = serde_json::from_str(&geartopo::output::validate::json_schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for key in [
        "format_version",
        "valid",
        "error_count",
        "warning_count",
        "diagnostics",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
}

#[test]
fn every_example_validates_with_a_one_line_summary() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "toml") {
            continue;
        }
        n += 1;
        let out = geartopo().arg("validate").arg(&path).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains("is valid"), "{stdout}");
        // Every example carries an `id`, so none warns.
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(n >= 3);
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let out = geartopo()
        .args(["validate", "/nonexistent/geartopo.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot read /nonexistent/geartopo.toml"),
        "{stderr}"
    );
}

#[test]
fn the_default_file_is_geartopo_toml_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/redis-todo.toml"),
        dir.path().join("geartopo.toml"),
    )
    .unwrap();
    let out = geartopo()
        .current_dir(dir.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("geartopo.toml: topology \"todo\" is valid"));
}

/// The table forms of an env value that mean something are read as the value
/// they name, in every TOML spelling (inline, dotted, `[containers.x.env.K]`).
#[test]
fn env_table_forms_are_read_as_values() {
    let text = r#"name = "t"

[nodes.node1]
address = "198.18.0.1"

[containers.a]
node = "node1"
image = "busybox"
env.INLINE = { value = "one", secret = true }
env.DOTTED.value = "two"
env.PLAIN = "three"

[containers.a.env.HEADER]
value = "four"
secret = true

[containers.a.env.NOT_SECRET]
value = "five"
"#;
    let t = match geartopo::topology::parse("test.toml", text.as_bytes()) {
        Ok(t) => t,
        Err(e) => panic!("{}", e.render_with(true)),
    };
    let env = &t.container("a").unwrap().env;
    let got: Vec<(&str, &str, bool)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("GEARTOPO_"))
        .map(|(k, v)| (k.as_str(), v.value.as_str(), v.secret))
        .collect();
    assert_eq!(
        got,
        [
            ("DOTTED", "two", false),
            ("HEADER", "four", true),
            ("INLINE", "one", true),
            ("NOT_SECRET", "five", false),
            ("PLAIN", "three", false),
        ]
    );
}

/// Every 32-hex-digit run (a fresh id, different on each run) as `<fresh id>`.
fn mask_fresh_ids(text: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in text.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() == 32 {
            out.push_str("<fresh id>");
        } else {
            out.push_str(&run);
        }
        run.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// `tests/validate/warnings/<case>.toml` are valid files with a warning: exit 0,
/// the summary on stdout, the warning in `<case>.stderr`; with `--json`, the
/// document in `<case>.json`. A fresh id in them is masked.
#[test]
fn a_valid_file_with_a_warning_passes_and_says_it_on_stderr_or_in_the_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate/warnings");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in &cases {
        let file_name = case.file_name().unwrap().to_str().unwrap();
        let run = |json: bool| {
            let mut c = geartopo();
            c.current_dir(&dir).arg("validate");
            if json {
                c.arg("--json");
            }
            let out = c.arg(file_name).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{file_name}");
            (
                mask_fresh_ids(&String::from_utf8(out.stdout).unwrap()),
                mask_fresh_ids(&String::from_utf8(out.stderr).unwrap()),
            )
        };
        let (stdout, stderr) = run(false);
        assert!(stdout.contains("is valid"), "{stdout}");
        let (json, json_stderr) = run(true);
        assert_eq!(json_stderr, "");
        let doc: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["valid"], true);
        assert_eq!(doc["warning_count"], 1);
        assert_eq!(doc["diagnostics"][0]["severity"], "warning");
        for (ext, got) in [("stderr", stderr), ("json", json)] {
            let golden = case.with_extension(ext);
            if bless() {
                std::fs::write(&golden, &got).unwrap();
            }
            assert_eq!(
                got,
                std::fs::read_to_string(&golden).unwrap_or_default(),
                "{}",
                golden.display()
            );
        }
    }
}

#[test]
fn the_fresh_id_a_warning_offers_is_one_the_file_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate/warnings/missing-id.toml"),
    )
    .unwrap();
    std::fs::write(&file, &text).unwrap();
    let out = geartopo().arg("validate").arg(&file).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .split("and keep it: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no id line offered: {stderr}"));
    std::fs::write(&file, text.replacen('\n', &format!("\n{line}\n"), 1)).unwrap();
    let out = geartopo().arg("validate").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Regression: a secret beside a duplicate key (a file toml cannot parse) was
/// shown in clear on the line the report quotes, and a secret written as a number
/// was echoed in the type error; every report, text and JSON, hides both.
#[test]
fn secrets_stay_hidden_in_reports_of_broken_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validate");
    for (case, secret) in [
        ("secret-beside-a-duplicate-key.toml", "918273"),
        ("secret-inline-beside-a-duplicate-key.toml", "hunter2"),
        ("secret-of-the-wrong-type.toml", "918273"),
    ] {
        let text = std::fs::read_to_string(dir.join(case)).unwrap();
        assert!(text.contains(secret), "{case} no longer holds its secret");
        for json in [false, true] {
            let mut cmd = geartopo();
            cmd.current_dir(&dir).arg("validate");
            if json {
                cmd.arg("--json");
            }
            let out = cmd.arg(case).output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{case}");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !all.contains(secret),
                "{case} (json: {json}) shows it:\n{all}"
            );
            // The text report quotes the lines around the problem, the secret's too.
            assert!(
                json || all.contains("***"),
                "{case}: nothing masked:\n{all}"
            );
        }
    }
}
