//! Output to a closed pipe (`geartopo links F | head -1`): every printing command
//! ends quietly with status 141 (docs/exit-codes.md), never a panic (101).

use std::io::pipe;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs geartopo with `args` and a stdout (or stderr) whose reader is gone
/// before it starts; (exit code, stderr or stdout: whichever stayed open).
fn closed(args: &[&str], close_stderr: bool) -> (Option<i32>, String) {
    let (reader, writer) = pipe().unwrap();
    drop(reader);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_geartopo"));
    cmd.current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null());
    if close_stderr {
        cmd.stderr(writer).stdout(Stdio::piped());
    } else {
        cmd.stdout(writer).stderr(Stdio::piped());
    }
    let out = cmd.output().unwrap();
    let open = if close_stderr { out.stdout } else { out.stderr };
    (
        out.status.code(),
        String::from_utf8_lossy(&open).into_owned(),
    )
}

fn assert_quiet(args: &[&str]) {
    let (code, stderr) = closed(args, false);
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(code, Some(141), "{args:?}: {stderr}");
    assert_eq!(stderr, "", "{args:?}: nothing to say about a closed pipe");
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_stdout() {
    let example = "examples/redis-todo.toml";
    assert_quiet(&["validate", example]);
    assert_quiet(&["validate", "--json", example]);
    assert_quiet(&["links", example]);
    assert_quiet(&["links", "--json", example]);
    assert_quiet(&["graph", example]);
    assert_quiet(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    assert_quiet(&["man", "--out", dir.path().to_str().unwrap()]);
}

#[test]
fn fmt_check_with_a_diff_ends_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.toml");
    std::fs::copy(root().join("tests/fmt/alignment.in.toml"), &file).unwrap();
    assert_quiet(&["fmt", "--check", file.to_str().unwrap()]);
}

#[test]
fn an_error_with_stderr_closed_is_still_a_failure_without_a_panic() {
    let (code, stdout) = closed(&["validate", "no-such-file.toml"], true);
    assert_eq!(code, Some(1), "{stdout}");
    let (code, _) = closed(&["plan", "no-such-file.toml"], true);
    assert_eq!(code, Some(1));
}

#[test]
fn links_piped_into_head_as_a_shell_does() {
    let out = Command::new("bash")
        .current_dir(root())
        .arg("-c")
        .arg(format!(
            "set -o pipefail; {} links examples/redis-todo.toml | head -c1 >/dev/null",
            env!("CARGO_BIN_EXE_geartopo")
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Either geartopo was done before head left (0) or it saw the closed pipe.
    assert!(
        matches!(out.status.code(), Some(0) | Some(141)),
        "{:?}: {stderr}",
        out.status
    );
}
