//! The lab's own login users: a node whose topology logs in as a user other than
//! root gets that user on this machine (lab nodes share its accounts), and with
//! `sudo = true` a sudoers file that lets it become root without a password. `up`
//! records each user before creating it; `down` removes only users that carry
//! this lab's mark (their comment field) and the sudoers files it wrote, never an
//! account it did not create.

use std::path::{Path, PathBuf};

use super::sys::Cmd;
use super::{io_err, write_file, LabError, Layout};

/// Where sudoers files live; sudo reads every file there whose name has no `.`.
const SUDOERS_D: &str = "/etc/sudoers.d";

/// The comment field of a user this lab created.
pub fn mark(layout: &Layout) -> String {
    format!("geartopo lab {}", layout.name)
}

/// This lab's sudoers file for `user` (`.` is replaced: sudo skips names with one).
pub fn sudoers_file(layout: &Layout, user: &str) -> PathBuf {
    Path::new(SUDOERS_D).join(format!(
        "geartopo-lab-{}-{}",
        layout.id,
        user.replace('.', "_")
    ))
}

/// The file `up` lists its users in, one a line, before it creates them.
fn users_file(layout: &Layout) -> PathBuf {
    layout.dir.join("users")
}

/// The sudoers file of a lab user: root without a password, for anything; and
/// the `PATH` a lab node's commands run with (sudo replaces the session's with
/// its `secure_path`, which would find a newer docker client in /usr/local/bin
/// before the one that speaks the node's dockerd).
pub fn sudoers_line(user: &str) -> String {
    format!(
        "Defaults:{user} secure_path=\"{}\"\n{user} ALL=(root) NOPASSWD: ALL\n",
        super::layout::DOCKER_NODE_PATH
    )
}

/// The comment field of `user`, or `None` when there is no such user.
fn comment_of(user: &str) -> Option<String> {
    let out = Cmd::new("getent").args(["passwd", user]).run().ok()?;
    out.stdout
        .lines()
        .next()?
        .split(':')
        .nth(4)
        .map(str::to_string)
}

/// Creates `users` (name, with sudo) for the lab; an existing account that is not
/// this lab's is refused, never changed.
pub fn create(layout: &Layout, users: &[(String, bool)]) -> Result<(), LabError> {
    if users.is_empty() {
        return Ok(());
    }
    let list: String = users.iter().map(|(u, _)| format!("{u}\n")).collect();
    write_file(&users_file(layout), &list, 0o600)?;
    let mark = mark(layout);
    for (user, sudo) in users {
        match comment_of(user) {
            Some(c) if c == mark => {}
            Some(_) => {
                return Err(LabError::Spec(format!(
                    "user {user} already exists on this machine and is not this lab's; a lab \
                     only logs in as users it creates and removes: pick another `user`"
                )))
            }
            None => {
                // `*`: no password, yet not locked (`!`), which sshd without PAM
                // would refuse even for key authentication.
                Cmd::new("useradd")
                    .args(["--system", "--no-create-home", "--home-dir", "/"])
                    .args(["--password", "*"])
                    .args(["--shell", "/bin/sh", "--comment", &mark, user])
                    .run()?;
            }
        }
        if *sudo {
            let file = sudoers_file(layout, user);
            // Written under a name with a `.` (which sudo skips), checked, then
            // moved in place: a bad file in sudoers.d would break sudo for everyone.
            let draft = file.with_extension("new");
            write_file(&draft, &sudoers_line(user), 0o440)?;
            Cmd::new("visudo").arg("-cqf").arg(&draft).run()?;
            std::fs::rename(&draft, &file).map_err(io_err(&file))?;
        }
    }
    Ok(())
}

/// The users `up` listed for this lab.
pub(super) fn listed(layout: &Layout) -> Vec<String> {
    std::fs::read_to_string(users_file(layout))
        .map(|t| {
            t.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Removes what `create` made for this lab: its sudoers files and the users that
/// carry its mark. Returns what it could not remove.
pub fn remove(layout: &Layout) -> Vec<String> {
    let mut problems = Vec::new();
    let Ok(list) = std::fs::read_to_string(users_file(layout)) else {
        return problems;
    };
    let mark = mark(layout);
    for user in list.lines().filter(|l| !l.is_empty()) {
        let file = sudoers_file(layout, user);
        for f in [file.with_extension("new"), file] {
            if f.exists() {
                if let Err(e) = std::fs::remove_file(&f) {
                    problems.push(format!("{}: {e}", f.display()));
                }
            }
        }
        if comment_of(user).as_deref() == Some(mark.as_str()) {
            if let Err(e) = Cmd::new("userdel").arg(user).run() {
                problems.push(format!("user {user}: {e}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sudoers_names_are_per_lab_and_never_skipped_by_sudo() {
        let a = Layout::new(Path::new("/x"), "todo");
        let b = Layout::new(Path::new("/x"), "todo2");
        let fa = sudoers_file(&a, "de.ploy");
        assert_ne!(fa, sudoers_file(&b, "de.ploy"));
        let name = fa.file_name().unwrap().to_str().unwrap();
        assert!(
            !name.contains('.') && name.starts_with("geartopo-lab-"),
            "{name}"
        );
        assert!(sudoers_line("deploy").ends_with("\ndeploy ALL=(root) NOPASSWD: ALL\n"));
    }
}
