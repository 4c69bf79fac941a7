//! The README's scripts as a user who is not root runs them: each stops before
//! doing anything, with exit 1 and the command that runs it as root, with sudo and
//! with su (a machine where you are root may have no sudo). As root, the check
//! passes without calling sudo.
//!
//! Needs root to switch to an unprivileged user (setpriv): skipped, saying so,
//! when not root. CI runs as root, so it runs there.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The scripts that need root, as the README names them, with where each sources
/// the shared check from.
const SCRIPTS: &[&str] = &[
    "scripts/demo.sh",
    "scripts/test.sh",
    "scripts/install-deps.sh",
    ".ci/run",
    "bench/run.sh",
];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A copy of the scripts in a directory any user can read (the checkout may sit
/// under a home only root can enter), laid out as in the repository.
fn readable_copy() -> tempfile::TempDir {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<&str> = SCRIPTS.to_vec();
    files.push("scripts/common.sh");
    for f in files {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo.join(f), &to).unwrap();
    }
    for d in [".", "scripts", ".ci", "bench"] {
        let p = dir.path().join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Runs `bash SCRIPT ARGS` in `dir` as nobody (uid and gid 65534, no groups).
fn as_nobody(dir: &Path, script: &str, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            script,
        ])
        .args(args)
        .current_dir(dir)
        .env("HOME", "/nonexistent")
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn a_user_who_is_not_root_is_told_how_to_run_each_script_as_root() {
    if !is_root() {
        eprintln!("skipped: needs root to run the scripts as another user");
        return;
    }
    let dir = readable_copy();
    for script in SCRIPTS {
        let o = as_nobody(dir.path(), script, &[]);
        assert_eq!(o.status.code(), Some(1), "{script}: {}", text(&o.stderr));
        assert!(
            o.stdout.is_empty(),
            "{script} did something before the check:\n{}",
            text(&o.stdout)
        );
        let why = if *script == "scripts/install-deps.sh" {
            "it installs packages with apt-get"
        } else {
            "network namespaces, sshd, podman"
        };
        assert_eq!(
            text(&o.stderr),
            format!(
                "{script} needs root ({why}).\nRun it as root: `sudo bash {script}`, \
                 or `su -c 'bash {script}'` where sudo is missing.\n"
            ),
        );
    }
}

#[test]
fn the_command_shown_repeats_the_scripts_arguments() {
    if !is_root() {
        eprintln!("skipped: needs root to run the scripts as another user");
        return;
    }
    let dir = readable_copy();
    let o = as_nobody(
        dir.path(),
        "scripts/test.sh",
        &["--test", "e2e", "--", "redis"],
    );
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains(
            "`sudo bash scripts/test.sh --test e2e -- redis`, \
             or `su -c 'bash scripts/test.sh --test e2e -- redis'`"
        ),
        "{stderr}"
    );
}

#[test]
fn as_root_the_check_passes_without_sudo() {
    if !is_root() {
        eprintln!("skipped: not root");
        return;
    }
    // A `sudo` first on PATH that fails loudly: the check must not call it.
    let dir = readable_copy();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let sudo = bin.join("sudo");
    std::fs::write(&sudo, "#!/bin/sh\necho sudo was called >&2\nexit 99\n").unwrap();
    std::fs::set_permissions(&sudo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let o = Command::new("bash")
        .args([
            "-c",
            "set -euo pipefail; source scripts/common.sh; require_root; echo passed",
        ])
        .current_dir(dir.path())
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "passed\n");
    assert!(o.stderr.is_empty(), "{}", text(&o.stderr));
}
