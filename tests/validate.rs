//! Golden tests of `geartopo validate`: every `tests/validate/<case>.toml` is a bad
//! file whose exact report (NO_COLOR, fixed width) is in `<case>.stderr` next to it.
//! `GEARTOPO_BLESS=1 cargo test --test validate` rewrites the .stderr files.

use std::path::{Path, PathBuf};
use std::process::Command;

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
