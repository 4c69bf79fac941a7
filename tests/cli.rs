//! The command line as a user meets it, through the real binary: exit codes of
//! usage errors, help and version (docs/exit-codes.md), the one form of error
//! messages, help texts on every argument, shell completions and man pages.

use std::path::PathBuf;
use std::process::Command;

use clap::CommandFactory;
use geartopo::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs geartopo with `args`; (exit code, stdout, stderr).
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_geartopo"))
        .current_dir(root())
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

// ---- exit codes -------------------------------------------------------------

#[test]
fn a_mistyped_flag_on_plan_detailed_exitcode_exits_1_not_2() {
    // 2 means "changes present" with --detailed-exitcode: a CI job must not read
    // a typo as that.
    let (code, stdout, stderr) = run(&["plan", "--detailed-exitcode", "--detailed-exitcod"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("error: unexpected argument '--detailed-exitcod' found"),
        "{stderr}"
    );
    assert!(stderr.contains("Usage: geartopo plan"), "{stderr}");
}

#[test]
fn a_missing_argument_exits_1() {
    // --node is required by import; the descriptor too.
    let (code, _, stderr) = run(&["import", "descriptor.json"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("error: the following required arguments were not provided"),
        "{stderr}"
    );
    assert!(stderr.contains("--node <NAME=ADDRESS>"), "{stderr}");
}

#[test]
fn a_missing_value_and_a_bad_value_exit_1() {
    let (code, _, stderr) = run(&["plan", "--parallelism"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("a value is required"), "{stderr}");
    let (code, _, stderr) = run(&["plan", "--parallelism", "0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("invalid value '0'"), "{stderr}");
    let (code, _, stderr) = run(&["graph", "--format", "svg"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("[possible values: dot, mermaid]"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_subcommand_and_no_subcommand_exit_1() {
    let (code, _, stderr) = run(&["aply"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("unrecognized subcommand 'aply'"),
        "{stderr}"
    );
    // Without a subcommand clap shows the help, on stderr, as a usage error.
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("Usage: geartopo"), "{stderr}");
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["plan", "--help"],
        &["help", "plan"],
        &["lab", "up", "--help"],
        &["completions", "--help"],
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(stdout.contains("Usage: geartopo"), "{args:?}: {stdout}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
    for args in [&["--version"][..], &["-V"], &["plan", "--version"]] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        // `plan --version` says `geartopo-plan 0.1.0` (clap's propagated version).
        assert!(
            stdout.starts_with("geartopo")
                && stdout.ends_with(&format!(" {}\n", env!("CARGO_PKG_VERSION"))),
            "{args:?}: {stdout}"
        );
    }
}

// ---- one form of error messages ------------------------------------------------

#[test]
fn an_unreadable_file_is_one_error_line_on_every_command() {
    // Offline commands and the ones that talk to nodes say the same thing, before
    // any node is contacted.
    for cmd in [
        "validate",
        "links",
        "graph",
        "plan",
        "apply",
        "destroy",
        "show",
        "lab status",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("/nonexistent/geartopo.toml");
        let (code, stdout, stderr) = run(&args);
        assert_eq!(code, Some(1), "{cmd}: {stderr}");
        assert!(stdout.is_empty(), "{cmd}: {stdout}");
        assert_eq!(
            stderr,
            "error: cannot read /nonexistent/geartopo.toml: No such file or directory (os error 2)\n",
            "{cmd}"
        );
    }
}

#[test]
fn an_invalid_file_keeps_its_report_with_places_and_ends_in_error() {
    let (code, _, stderr) = run(&["plan", "tests/validate/bad-image.toml"]);
    assert_eq!(code, Some(1), "{stderr}");
    // The diagnostic with its place, as validate prints it...
    assert!(
        stderr.contains("[bad-image.toml:11:9]") || stderr.contains("bad-image.toml:11:9"),
        "{stderr}"
    );
    // ...then one `error:` line, never `Error:`.
    assert!(
        stderr.ends_with(
            "error: tests/validate/bad-image.toml is not a valid topology; nothing was changed\n"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("Error:"), "{stderr}");
}

// ---- help texts -----------------------------------------------------------------

/// Arguments whose help text is owed by work in another file; each entry must
/// still lack one, so that this list only shrinks (empty now: keep it so).
const HELP_PENDING_ELSEWHERE: &[&str] = &[];

#[test]
fn every_argument_of_every_command_has_a_help_text() {
    fn walk(cmd: &clap::Command, path: String, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let has_help = arg
                .get_help()
                .or(arg.get_long_help())
                .is_some_and(|h| !h.to_string().trim().is_empty());
            if !has_help {
                let name = match arg.get_long() {
                    Some(l) => format!("--{l}"),
                    None => id.to_uppercase(),
                };
                missing.push(format!("{path} {name}"));
            }
        }
        for sub in cmd.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "{path} {} has no description",
                sub.get_name()
            );
            walk(sub, format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut cmd = Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "geartopo".into(), &mut missing);
    for pending in HELP_PENDING_ELSEWHERE {
        assert!(
            missing.iter().any(|m| m == pending),
            "{pending} has a help text now: remove it from HELP_PENDING_ELSEWHERE"
        );
    }
    missing.retain(|m| !HELP_PENDING_ELSEWHERE.contains(&m.as_str()));
    assert!(
        missing.is_empty(),
        "arguments without a help text:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_walk_above_sees_positional_arguments_and_flags_of_nested_commands() {
    // Guards the test above against walking nothing.
    let cmd = Cli::command();
    let lab = cmd.find_subcommand("lab").unwrap();
    let exec = lab.find_subcommand("exec").unwrap();
    let ids: Vec<&str> = exec.get_arguments().map(|a| a.get_id().as_str()).collect();
    assert!(ids.contains(&"file") && ids.contains(&"node") && ids.contains(&"command"));
}

// ---- completions and man pages --------------------------------------------------

const SUBCOMMANDS: &[&str] = &[
    "validate",
    "links",
    "graph",
    "plan",
    "apply",
    "destroy",
    "show",
    "import",
    "lab",
    "fmt",
    "completions",
    "man",
];

#[test]
fn completions_for_bash_zsh_and_fish_name_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = run(&["completions", shell]);
        assert_eq!(code, Some(0), "{shell}: {stderr}");
        assert!(stdout.len() > 1000, "{shell}: {stdout}");
        for sub in SUBCOMMANDS {
            assert!(stdout.contains(sub), "{shell}: no {sub}");
        }
        assert!(
            stdout.contains("detailed-exitcode"),
            "{shell}: no --detailed-exitcode"
        );
    }
    let (code, _, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, Some(1), "{stderr}");
}

#[test]
fn bash_completion_script_is_valid_bash_and_completes_subcommands() {
    let (_, script, _) = run(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("geartopo.bash");
    std::fs::write(&file, script).unwrap();
    // Source it and ask it to complete `geartopo pl`, as bash would on TAB.
    let probe = format!(
        "source {}; COMP_WORDS=(geartopo pl); COMP_CWORD=1; COMP_LINE='geartopo pl'; COMP_POINT=11; \
         _geartopo geartopo pl geartopo; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash").args(["-c", &probe]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "plan", "{stdout}");
}

#[test]
fn man_writes_a_page_for_geartopo_and_each_command() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let (code, stdout, stderr) = run(&["man", "--out", out_dir]);
    assert_eq!(code, Some(0), "{stderr}");
    let mut pages = vec!["geartopo.1".to_string()];
    pages.extend(SUBCOMMANDS.iter().map(|s| format!("geartopo-{s}.1")));
    pages.push("geartopo-lab-up.1".into());
    for page in &pages {
        let path = dir.path().join(page);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".SH NAME"), "{page}: {text}");
        assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    }
    let plan = std::fs::read_to_string(dir.path().join("geartopo-plan.1")).unwrap();
    assert!(plan.contains("detailed\\-exitcode"), "{plan}");
}

#[test]
fn man_pages_render_with_man_when_it_is_installed() {
    if Command::new("man").arg("--version").output().is_err() {
        eprintln!("skipped: man is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&["man", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    for page in ["geartopo.1", "geartopo-plan.1", "geartopo-lab-exec.1"] {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.path().join(page))
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{page}: {warnings}");
        assert!(warnings.trim().is_empty(), "{page}: {warnings}");
        assert!(text.contains("NAME"), "{page}: {text}");
    }
}

// ---- apply --json and destroy --json ---------------------------------------------

/// A topology whose one node refuses connections at once (127.0.0.1 port 1):
/// any command that talks to nodes fails fast, saying it cannot reach it.
fn unreachable_topology(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join("geartopo.toml");
    std::fs::write(
        &path,
        r#"name = "refused"

[nodes.n1]
address = "127.0.0.1"
port = 1

[containers.app]
node = "n1"
image = "localhost/geartopo-busybox:latest"
"#,
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn apply_and_destroy_json_without_auto_approve_exit_1_saying_why_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let file = unreachable_topology(&dir);
    for (command, needs) in [
        ("apply", "--auto-approve or a saved plan"),
        ("destroy", "--auto-approve"),
    ] {
        let (code, stdout, stderr) = run(&[command, &file, "--json"]);
        assert_eq!(code, Some(1), "{command}: {stderr}");
        assert!(
            stdout.is_empty(),
            "{command}: no document, no plan: {stdout}"
        );
        assert!(
            stderr.starts_with(&format!("error: {command} --json needs {needs}")),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("nothing was changed"), "{stderr}");
        // Stopped before connecting: the node's refusal is never met.
        assert!(!stderr.contains("cannot reach"), "{command}: {stderr}");
    }
}

#[test]
fn apply_json_with_an_unreachable_node_prints_one_error_document_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = unreachable_topology(&dir);
    for command in ["apply", "destroy"] {
        let (code, stdout, stderr) = run(&[command, &file, "--json", "--auto-approve"]);
        assert_eq!(code, Some(1), "{command}: {stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("{command}: stdout is not one JSON document ({e}): {stdout}")
        });
        assert_eq!(doc["format_version"], 1);
        assert_eq!(doc["command"], command);
        assert_eq!(doc["result"], "error");
        assert_eq!(doc["error"]["kind"], "unreachable");
        let message = doc["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot reach every node") && message.contains("n1"),
            "{message}"
        );
        assert_eq!(doc["plan"], serde_json::Value::Null, "no plan was made");
        assert_eq!(doc["steps"], serde_json::json!([]));
    }
}

#[test]
fn apply_json_reports_an_invalid_file_as_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\n[containers.a]\nnode = \"nowhere\"\nimage = \"i\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(&[
        "apply",
        &path.display().to_string(),
        "--json",
        "--auto-approve",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "input");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not a valid topology"));
    // The problems themselves go to stderr, as without --json.
    assert!(stderr.contains("nowhere"), "{stderr}");
}

/// `--target` and `--exclude` together are a usage error (terraform and OpenTofu
/// refuse the pair), said before any node is contacted: an unreachable node must
/// not hide the mistake.
#[test]
fn target_with_exclude_is_a_usage_error_before_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let file = unreachable_topology(&dir);
    for command in ["plan", "apply", "destroy"] {
        let (code, stdout, stderr) = run(&[command, &file, "--target", "app", "--exclude", "app"]);
        assert_eq!(code, Some(1), "{command}: {stderr}");
        assert!(stdout.is_empty(), "{command}: {stdout}");
        assert!(
            stderr.contains("cannot be used with"),
            "{command}: {stderr}"
        );
        assert!(!stderr.contains("cannot reach"), "{command}: {stderr}");
    }
}
