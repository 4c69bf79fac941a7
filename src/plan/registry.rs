//! Plan-time warnings for images a node would have to pull (docs/fleets.md,
//! "Private registries"): an image of the file that the node's runtime does not
//! have, from a registry its auth files have no login for, may fail to pull at
//! apply. Only a warning: whether a registry needs credentials cannot be known
//! from here. No credential is read: observe reports the auth files' host names.

use crate::state::ObservedState;

use super::Desired;

/// The registry host an image reference pulls from (`docker.io` for short names).
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            normal_host(first)
        }
        _ => "docker.io".into(),
    }
}

/// An auth file's key (`https://index.docker.io/v1/`, `quay.io/team`) as a host.
fn login_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    normal_host(key.split('/').next().unwrap_or(key))
}

fn normal_host(host: &str) -> String {
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        h => h.to_ascii_lowercase(),
    }
}

/// One warning per node and image the node lacks and cannot be known to pull.
pub(super) fn warn_missing_images(
    desired: &[Desired],
    state: &ObservedState,
    warnings: &mut Vec<String>,
) {
    let mut done = std::collections::BTreeSet::new();
    for d in desired {
        let Some(ns) = state.nodes.get(&d.node) else {
            continue;
        };
        if !ns.images.missing.contains(&d.image) || !done.insert((&d.node, &d.image)) {
            continue;
        }
        let registry = registry_of(&d.image);
        let node = &d.node;
        let image = &d.image;
        if registry == "localhost" {
            warnings.push(format!(
                "image {image} (container {}) is not on node {node}, and a localhost/ image cannot be pulled: load it there before apply (podman load / docker load)",
                d.container
            ));
            continue;
        }
        let logged_in = ns
            .images
            .logins
            .iter()
            .any(|k| k == "*" || login_host(k) == registry);
        if !logged_in {
            warnings.push(format!(
                "image {image} (container {}) is not on node {node}, whose runtime has no login for {registry}: apply pulls it as root there; if {registry} needs credentials, log in on the node first (sudo podman login {registry} / sudo docker login {registry}; docs/fleets.md, \"Private registries\")",
                d.container
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{ImageState, NodeState};

    #[test]
    fn registries_of_image_references() {
        assert_eq!(registry_of("redis:7"), "docker.io");
        assert_eq!(registry_of("library/redis"), "docker.io");
        assert_eq!(
            registry_of("registry.example.com/team/app:1"),
            "registry.example.com"
        );
        assert_eq!(registry_of("reg:5000/app"), "reg:5000");
        assert_eq!(registry_of("localhost/app"), "localhost");
        assert_eq!(login_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_host("quay.io/team"), "quay.io");
    }

    fn node_state(missing: &[&str], logins: &[&str]) -> NodeState {
        NodeState {
            images: ImageState {
                missing: missing.iter().map(|s| s.to_string()).collect(),
                logins: logins.iter().map(|s| s.to_string()).collect(),
            },
            ..Default::default()
        }
    }

    fn warnings_for(ns: NodeState, images: &[&str]) -> Vec<String> {
        let text = images
            .iter()
            .enumerate()
            .map(|(i, image)| format!("[containers.c{i}]\nnode = \"n1\"\nimage = \"{image}\"\n"))
            .collect::<String>();
        let topology = crate::topology::parse(
            "t.toml",
            format!("name = \"t\"\n[nodes.n1]\naddress = \"198.18.0.1\"\n{text}").as_bytes(),
        )
        .unwrap();
        let mut state = ObservedState::default();
        state.nodes.insert("n1".into(), ns);
        let plan = crate::plan::plan(&topology, &state, None).unwrap();
        plan.warnings
    }

    #[test]
    fn a_missing_image_without_a_login_for_its_registry_is_a_warning_and_nothing_more() {
        let w = warnings_for(
            node_state(&["registry.example.com/team/app:1"], &["auths", "quay.io"]),
            &["registry.example.com/team/app:1", "quay.io/x/present:1"],
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("image registry.example.com/team/app:1 (container c0) is not on node n1")
                && w[0].contains("no login for registry.example.com")
                && w[0].contains("sudo podman login registry.example.com"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn a_login_for_the_registry_or_a_credential_helper_silences_it() {
        let img = "registry.example.com/team/app:1";
        let with_login = node_state(&[img], &["auths", "https://registry.example.com/v2/"]);
        assert!(warnings_for(with_login, &[img]).is_empty());
        let helper = node_state(&[img], &["*"]);
        assert!(warnings_for(helper, &[img]).is_empty());
        let other = node_state(&[img], &["registry.example.org"]);
        assert_eq!(warnings_for(other, &[img]).len(), 1);
    }

    #[test]
    fn a_missing_localhost_image_cannot_be_pulled() {
        let w = warnings_for(node_state(&["localhost/app:1"], &[]), &["localhost/app:1"]);
        assert!(w[0].contains("cannot be pulled: load it there"), "{w:?}");
        // Present everywhere: no warning.
        assert!(warnings_for(node_state(&[], &[]), &["localhost/app:1"]).is_empty());
    }
}
