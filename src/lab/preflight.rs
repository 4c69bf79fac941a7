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

/// What a docker node needs besides: dockerd and its containerd (both started by
/// the lab), and a client of dockerd's version at the place docker.io puts it,
/// which docker nodes find first on their `PATH` (`layout::DOCKER_NODE_PATH`).
pub const REQUIRED_FOR_DOCKER: &[(&str, &str)] = &[
    ("dockerd", "docker.io"),
    ("containerd", "containerd"),
    ("/usr/bin/docker", "docker.io"),
];

/// Paths of the programs the lab needs by absolute path.
#[derive(Debug, Clone)]
pub struct Tools {
    /// sshd re-executes itself and so must be started by absolute path.
    pub sshd: PathBuf,
    /// dockerd, when the lab has docker nodes.
    pub dockerd: Option<PathBuf>,
}

/// Checks root and every program at once (with `docker`, those of docker nodes too).
pub fn check(docker: bool) -> Result<Tools, LabError> {
    super::require_root()?;
    let for_docker = if docker { REQUIRED_FOR_DOCKER } else { &[] };
    let missing: Vec<(&str, &str)> = REQUIRED
        .iter()
        .chain(for_docker)
        .copied()
        .filter(|(p, _)| {
            if p.starts_with('/') {
                !std::path::Path::new(p).is_file()
            } else {
                find_program(p).is_none()
            }
        })
        .collect();
    if !missing.is_empty() {
        return Err(LabError::Missing(missing_message(&missing)));
    }
    Ok(Tools {
        sshd: find_program("sshd").expect("checked above"),
        dockerd: if docker {
            find_program("dockerd")
        } else {
            None
        },
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
