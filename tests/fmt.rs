//! `geartopo fmt`: golden cases (tests/fmt/NAME.in.toml formats to NAME.out.toml),
//! idempotence on every golden output, every example and generated documents, and
//! the command line (`--check`, in-place rewrite, stdin, errors).
//! `GEARTOPO_BLESS=1 cargo test --test fmt` rewrites tests/fmt/*.out.toml.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use geartopo::fmt::format;
use proptest::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no {dir}/*{suffix}");
    found
}

/// What a TOML text means, without its layout.
fn value(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}

fn assert_idempotent(name: &str, formatted: &str) {
    let again = format(formatted).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        again == formatted,
        "{name}: formatting the formatted text changes it:\n{}",
        similar::TextDiff::from_lines(formatted, &again).unified_diff()
    );
}

#[test]
fn every_golden_case_formats_to_its_output_file() {
    let bless = std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1");
    for input_path in files("tests/fmt", ".in.toml") {
        let name = input_path.display().to_string();
        let input = std::fs::read_to_string(&input_path).unwrap();
        let actual = format(&input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let output_path = PathBuf::from(name.replace(".in.toml", ".out.toml"));
        if bless {
            std::fs::write(&output_path, &actual).unwrap();
        }
        let want = std::fs::read_to_string(&output_path).unwrap_or_default();
        assert!(
            want == actual,
            "{} differs:\n{}",
            output_path.display(),
            similar::TextDiff::from_lines(want.as_str(), &actual).unified_diff()
        );
        assert_eq!(value(&input), value(&actual), "{name}: a value changed");
        assert_idempotent(&name, &actual);
    }
}

#[test]
fn formatted_output_has_no_trailing_whitespace_and_one_final_newline() {
    for input_path in files("tests/fmt", ".in.toml") {
        let name = input_path.display().to_string();
        let out = format(&std::fs::read_to_string(&input_path).unwrap()).unwrap();
        assert!(out.ends_with('\n') && !out.ends_with("\n\n"), "{name}");
        assert!(!out.contains("\n\n\n"), "{name}: two blank lines in a row");
        for (i, line) in out.lines().enumerate() {
            // strings.in.toml keeps the trailing spaces inside a multi-line string.
            if name.ends_with("strings.in.toml") && line == "line one   " {
                continue;
            }
            assert_eq!(
                line,
                line.trim_end(),
                "{name}:{}: trailing whitespace",
                i + 1
            );
            assert!(
                !line.contains('\t') || line.contains("\\t"),
                "{name}:{}: a tab",
                i + 1
            );
        }
    }
}

#[test]
fn every_example_is_formatted_and_formats_to_itself() {
    for example in files("examples", ".toml") {
        let name = example.display().to_string();
        let text = std::fs::read_to_string(&example).unwrap();
        let formatted = format(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_idempotent(&name, &formatted);
        let (code, stdout, stderr) = run(&["fmt", "--check", &name], None);
        assert_eq!(
            code,
            Some(0),
            "{name} is not formatted: run `geartopo fmt {name}`\n{stdout}{stderr}"
        );
        assert_eq!(stdout, "");
    }
}

// ---------------------------------------------------------------------------
// The command line.

fn run_in(dir: &Path, args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    (
        status.code(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn run(args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
    run_in(&root(), args, stdin)
}

const MESSY: &str = "name='demo'\n[nodes.n1]\naddress   =  \"198.18.0.1\"   # the first node\n";
const TIDY: &str = "name = \"demo\"\n\n[nodes.n1]\naddress = \"198.18.0.1\" # the first node\n";

#[test]
fn check_on_an_unformatted_file_exits_3_prints_the_diff_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topo.toml");
    std::fs::write(&file, MESSY).unwrap();

    let (code, stdout, stderr) = run_in(dir.path(), &["fmt", "--check", "topo.toml"], None);

    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stdout.starts_with("--- topo.toml\n+++ topo.toml (formatted)\n@@"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n-name='demo'\n+name = \"demo\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n-address   =  \"198.18.0.1\"   # the first node\n+address = \"198.18.0.1\" # the first node\n"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), MESSY);
}

#[test]
fn check_on_a_formatted_file_exits_0_and_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("topo.toml"), TIDY).unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &["fmt", "--check", "topo.toml"], None);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (Some(0), "", ""));
}

#[test]
fn fmt_rewrites_the_file_in_place_keeps_its_mode_and_prints_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topo.toml");
    std::fs::write(&file, MESSY).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();

    let (code, stdout, stderr) = run_in(dir.path(), &["fmt", "topo.toml"], None);

    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "topo.toml\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), TIDY);
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["topo.toml"], "no temporary file left beside it");
}

#[test]
fn fmt_of_a_formatted_file_prints_nothing_and_does_not_touch_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topo.toml");
    std::fs::write(&file, TIDY).unwrap();
    let inode = std::fs::metadata(&file).unwrap().ino();

    let (code, stdout, _) = run_in(dir.path(), &["fmt", "topo.toml"], None);

    assert_eq!((code, stdout.as_str()), (Some(0), ""));
    assert_eq!(
        std::fs::metadata(&file).unwrap().ino(),
        inode,
        "not replaced"
    );
}

#[test]
fn fmt_without_a_file_formats_geartopo_toml_in_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("geartopo.toml"), MESSY).unwrap();

    let (code, stdout, stderr) = run_in(dir.path(), &["fmt"], None);

    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "geartopo.toml\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("geartopo.toml")).unwrap(),
        TIDY
    );
}

#[test]
fn fmt_dash_reads_stdin_and_writes_stdout() {
    let (code, stdout, stderr) = run(&["fmt", "-"], Some(MESSY));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, TIDY);

    let (code, stdout, _) = run(&["fmt", "--check", "-"], Some(MESSY));
    assert_eq!(code, Some(3));
    assert!(
        stdout.starts_with("--- <stdin>\n+++ <stdin> (formatted)\n"),
        "{stdout}"
    );

    let (code, stdout, _) = run(&["fmt", "--check", "-"], Some(TIDY));
    assert_eq!((code, stdout.as_str()), (Some(0), ""));
}

#[test]
fn invalid_toml_is_an_error_with_line_and_column_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    let broken = "name = \"x\"\n[nodes.n1]\naddress = \n";
    std::fs::write(&file, broken).unwrap();

    for args in [
        &["fmt", "broken.toml"][..],
        &["fmt", "--check", "broken.toml"],
    ] {
        let (code, stdout, stderr) = run_in(dir.path(), args, None);
        assert_eq!(code, Some(1), "{args:?}");
        assert_eq!(stdout, "");
        assert!(
            stderr.contains("broken.toml: not valid TOML at line 3, column 11: "),
            "{stderr}"
        );
        assert!(stderr.contains("3 | address = \n"), "{stderr}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
    }
}

#[test]
fn fmt_needs_only_toml_not_a_valid_topology() {
    // Unknown keys and a missing node: validate refuses this, fmt formats it.
    let (code, stdout, stderr) = run(
        &["fmt", "-"],
        Some("whatever=1\n[containers.x]\nimage='a'\n"),
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "whatever = 1\n\n[containers.x]\nimage = \"a\"\n");
}

#[test]
fn a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(dir.path(), &["fmt", "nope.toml"], None);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot read nope.toml"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Generated documents: any layout of any TOML formats to the same values, and
// formatting again changes nothing.

/// Whitespace, newlines and comments allowed between array elements.
fn array_gap() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("\n    ".to_owned()),
        Just("\t".to_owned()),
        Just(" # between\n".to_owned()),
        Just("\n\n  # alone\n\n".to_owned()),
    ]
}

fn line_gap() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("   ".to_owned()),
        Just("\t".to_owned())
    ]
}

fn string_value() -> impl Strategy<Value = String> {
    let content = "[a-z #'\"\\\\]{0,8}";
    (content, 0..4u8).prop_map(|(s, form)| match form {
        0 => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        1 if !s.contains('\'') => format!("'{s}'"),
        2 => format!(
            "\"\"\"\n{}\"\"\"",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        ),
        3 if !s.contains('\'') => format!("'''{s}\nsecond line'''"),
        _ => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
    })
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|i| i.to_string()),
        Just("1_000".to_owned()),
        Just("0x1f".to_owned()),
        Just("-1.5e3".to_owned()),
        Just("inf".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1979-05-27T07:32:00Z".to_owned()),
        string_value(),
    ]
}

fn value_text() -> impl Strategy<Value = String> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec((array_gap(), inner.clone(), array_gap()), 0..4),
                array_gap(),
                any::<bool>()
            )
                .prop_map(|(items, end, trailing_comma)| {
                    let mut text = "[".to_owned();
                    let count = items.len();
                    for (i, (before, item, after)) in items.into_iter().enumerate() {
                        text += &format!("{before}{item}{after}");
                        if i + 1 < count || trailing_comma {
                            text.push(',');
                        }
                    }
                    text + &end + "]"
                }),
            prop::collection::vec((line_gap(), inner), 0..4).prop_map(|items| {
                let entries: Vec<String> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, (gap, v))| format!("{gap}k{i}{gap}={gap}{v}{gap}"))
                    .collect();
                format!("{{{}}}", entries.join(","))
            }),
        ]
    })
}

fn key_text(i: usize, form: u8) -> String {
    match form {
        0 => format!("key{i}"),
        1 => format!("\"key {i}\""),
        2 => format!("'key{i}'"),
        3 => format!("dotted{i} . part"),
        _ => format!("\"key{i}\""),
    }
}

/// Lines of key-values with comments and blank lines around them.
fn body() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            0..5u8,
            line_gap(),
            value_text(),
            prop_oneof![
                Just(""),
                Just(" # after"),
                Just("\n# above next\n"),
                Just("\n\n")
            ],
        ),
        0..5,
    )
    .prop_map(|lines| {
        lines
            .into_iter()
            .enumerate()
            .map(|(i, (form, gap, v, end))| {
                format!("{gap}{}{gap}={gap}{v}{end}\n", key_text(i, form))
            })
            .collect()
    })
}

fn document() -> impl Strategy<Value = String> {
    (
        body(),
        prop::collection::vec((0..4u8, line_gap(), body(), any::<bool>()), 0..4),
    )
        .prop_map(|(root, tables)| {
            let mut text = root;
            for (i, (form, gap, body, comment)) in tables.into_iter().enumerate() {
                if comment {
                    text += "# a table\n";
                }
                text += &match form {
                    0 => format!("[{gap}table{i}{gap}]\n"),
                    1 => format!("[table{i}.{gap}\"sub {i}\"]\n"),
                    2 => format!("[[array{i}]]{gap}# header\n"),
                    _ => format!("\n\n[{gap}'table{i}'.x]\n"),
                };
                text += &body;
            }
            text
        })
}

proptest! {
    #[test]
    fn formatting_keeps_the_values_and_is_idempotent(doc in document()) {
        // The generator only writes TOML; a case that is not would be a generator bug.
        let before: toml::Table = doc.parse().map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
        let once = format(&doc).map_err(|e| TestCaseError::fail(format!("{e}\n{doc}")))?;
        let twice = format(&once).map_err(|e| TestCaseError::fail(format!("{e}\n{once}")))?;
        prop_assert_eq!(&twice, &once, "input:\n{}", doc);
        prop_assert_eq!(value(&once), before);
    }
}

#[test]
fn the_style_example_in_the_docs_is_formatted() {
    let docs = std::fs::read_to_string(root().join("docs/fmt.md")).unwrap();
    let start = docs
        .find("```toml\n")
        .expect("a toml example in docs/fmt.md")
        + 8;
    let example = &docs[start..start + docs[start..].find("```").unwrap()];
    assert_eq!(format(example).unwrap(), example);
}
