//! Durable links (docs/durable.md): what geartopo keeps on a node so that a
//! container's owned rules and sysctls are back before its process runs at every
//! start, with no geartopo process involved. One hook program per node (the same
//! for every topology and geartopo version that writes format 1), an OCI hook file
//! that makes podman run it for containers carrying the annotation, and one rules
//! file per container. Pure text here; `script` writes the files, `observe` reads
//! them back, `plan` compares.

use sha2::{Digest, Sha256};

use super::{NodeProfile, OwnedRules, SYSCTLS};
use crate::state::hex;

/// The hook program, POSIX sh (its first lines name the format it reads).
pub const HOOK: &str = include_str!("hook.sh");

/// The docker runtime wrapper, POSIX sh, `$STATE_DIR/runtime` beside the hook:
/// registered with dockerd as the runtime `DOCKER_RUNTIME` by `geartopo node
/// prepare`, it adds the hook to a labelled container's bundle, then execs runc.
pub const RUNTIME: &str = include_str!("runtime.sh");
/// The name the wrapper is registered under in dockerd's `runtimes`.
pub const DOCKER_RUNTIME: &str = "geartopo";
/// The wrapper's file name in the state directory.
pub const RUNTIME_FILE: &str = "runtime";
/// Where dockerd reads its configuration, and its pid file (the lab gives each
/// docker node its own, as it does the state directory).
pub const DOCKER_CONFIG: &str = r#"${GEARTOPO_DOCKER_CONFIG:-/etc/docker/daemon.json}"#;
pub const DOCKER_PIDFILE: &str = r#"${GEARTOPO_DOCKER_PIDFILE:-/var/run/docker.pid}"#;

/// The annotation (podman) that makes the hook run, and the label (both
/// runtimes) that marks a container as durable; their value is the name of its
/// rules file, which is its runtime name.
pub const ANNOTATION: &str = "io.geartopo.rules";
pub const LABEL: &str = "geartopo.rules";

/// Where the hook program and the rules files live on a node: persistent (a
/// reboot clears /run). The lab gives each node its own.
pub const STATE_DIR: &str = r#"${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"#;
/// The OCI hooks directory podman reads by default on a real node.
pub const HOOKS_DIR: &str = r#"${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"#;
/// geartopo's hook file in `HOOKS_DIR`.
pub const HOOK_FILE: &str = "geartopo.json";

/// File modes: nothing of it is world-writable; the rules only root reads.
pub const HOOK_MODE: &str = "755";
pub const HOOK_FILE_MODE: &str = "644";
pub const RULES_MODE: &str = "600";

/// The hook file for a state directory (an absolute path of `[A-Za-z0-9_./-]`,
/// which the scripts check before writing it, so it needs no JSON escaping).
pub fn hook_file(state_dir: &str) -> String {
    format!(
        r#"{{
  "version": "1.0.0",
  "hook": {{ "path": "{state_dir}/hook", "args": ["geartopo-hook", "{state_dir}"] }},
  "when": {{ "annotations": {{ "^io\\.geartopo\\.rules$": ".+" }} }},
  "stages": ["createRuntime"]
}}
"#
    )
}

/// A container's rules file: a header naming the format and the firewall
/// backend, its sysctls (as /proc/sys paths), then after `payload` exactly the
/// document the rules step restores.
pub fn rules_file(_profile: &NodeProfile, rules: &OwnedRules) -> String {
    rules_file_of(
        rules.firewall,
        &rules.topology,
        &rules.container,
        &rules.rules,
    )
}

/// `rules_file` of these rules, without an `OwnedRules` to hold a copy of them
/// (every plan checks every durable container's file against this text).
pub fn rules_file_of(
    firewall: crate::node::Firewall,
    topology: &str,
    container: &str,
    rules: &[String],
) -> String {
    let mut s = format!("geartopo-rules 1 {}\n", firewall.as_str());
    for (k, v) in SYSCTLS {
        s.push_str(&format!("sysctl {} {v}\n", k.replace('.', "/")));
    }
    s.push_str("payload\n");
    // As `OwnedRules::payload`.
    s.push_str(&match firewall {
        crate::node::Firewall::Iptables => crate::rules::render_restore(topology, container, rules),
        crate::node::Firewall::Nftables => crate::nft::document_from_lines(rules),
    });
    s
}

/// The sha256 of a file's text, as `sha256sum` prints it.
pub fn sha256(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::CHAINS;

    #[test]
    fn the_hook_names_its_format_and_knows_every_owned_chain() {
        assert_eq!(HOOK.lines().nth(1), Some("# geartopo-hook 1"));
        for (t, b, o) in CHAINS {
            assert!(HOOK.contains(&format!("{t}:{b}:{o}")), "{t}:{b}:{o}");
        }
    }

    #[test]
    fn the_runtime_wrapper_names_its_format_and_execs_runc() {
        assert_eq!(RUNTIME.lines().nth(1), Some("# geartopo-runtime 1"));
        assert_eq!(RUNTIME.lines().last(), Some("exec runc \"$@\""));
    }

    #[test]
    fn a_hook_file_is_json_that_matches_the_annotation_at_create_runtime() {
        let v: serde_json::Value = serde_json::from_str(&hook_file("/var/lib/geartopo")).unwrap();
        assert_eq!(v["version"], "1.0.0");
        assert_eq!(v["hook"]["path"], "/var/lib/geartopo/hook");
        assert_eq!(v["stages"][0], "createRuntime");
        assert_eq!(v["when"]["annotations"]["^io\\.geartopo\\.rules$"], ".+");
    }
}
