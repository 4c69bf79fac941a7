//! Before the lab touches anything: are we root, and is every program it runs
//! installed? One error that names each missing program and the package to install.

use std::path::PathBuf;

use super::sys::find_program;
use super::LabError;

/// Programs the lab runs, with the Debian/Ubuntu package that provides each.
pub const REQUIRED: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("sshd", "openssh-server"),
    ("ssh-keygen", "openssh-client"),
    ("ssh", "openssh-client"),
    ("podman", "podman"),
    ("runc", "runc"),
    ("iptables", "iptables"),
    ("iptables-save", "iptables"),
    ("tar", "tar"),
];

/// Paths of the programs the lab needs by absolute path.
#[derive(Debug, Clone)]
pub struct Tools {
    /// sshd re-executes itself and so must be started by absolute path.
    pub sshd: PathBuf,
}

/// Checks root and every program at once.
pub fn check() -> Result<Tools, LabError> {
    super::require_root()?;
    let missing: Vec<(&str, &str)> = REQUIRED
        .iter()
        .copied()
        .filter(|(p, _)| find_program(p).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(LabError::Missing(missing_message(&missing)));
    }
    Ok(Tools {
        sshd: find_program("sshd").expect("checked above"),
    })
}

fn missing_message(missing: &[(&str, &str)]) -> String {
    let programs: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, pkg)| *pkg).collect();
    packages.dedup();
    format!(
        "the lab needs {} (not found in PATH or the sbin directories); install with \
         `apt-get install -y {}` or run `scripts/install-deps.sh`, which installs everything \
         the lab and the tests use",
        programs.join(", "),
        packages.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_program_and_its_package_once() {
        let m = missing_message(&[
            ("sshd", "openssh-server"),
            ("iptables", "iptables"),
            ("iptables-save", "iptables"),
        ]);
        assert!(m.contains("sshd, iptables, iptables-save"), "{m}");
        assert!(
            m.contains("apt-get install -y openssh-server iptables`"),
            "{m}"
        );
    }
}
