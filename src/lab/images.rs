//! `lab load`: puts an image or root filesystem tarball into every node's podman
//! store, and into a docker node's dockerd too. Reads only the tarball's listing and podman's output; changes nothing but
//! the nodes' stores.

use std::io::Write;
use std::path::Path;

use super::preflight;
use super::sys::Cmd;
use super::{io_err, layout_for, say, state, LabError, LabSpec, Layout, StateNode};

/// What a tarball holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TarballKind {
    /// A root filesystem: `podman import`.
    Rootfs,
    /// A docker-archive or OCI archive (`podman save`): `podman load`.
    ImageArchive,
}

/// An image archive has its manifest at the top; a root filesystem does not.
pub fn tarball_kind(entries: &str) -> TarballKind {
    let archive = entries
        .lines()
        .map(|l| l.trim_start_matches("./"))
        .any(|e| e == "manifest.json" || e == "oci-layout" || e == "index.json");
    if archive {
        TarballKind::ImageArchive
    } else {
        TarballKind::Rootfs
    }
}

/// The image names `podman load` reports ("Loaded image: a" or "Loaded image(s): a,b").
pub(super) fn loaded_names(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Loaded image"))
        .filter_map(|rest| rest.split_once(": ").map(|(_, names)| names))
        .flat_map(|names| names.split(',').map(|n| n.trim().to_string()))
        .filter(|n| !n.is_empty())
        .collect()
}

/// Loads a rootfs or image tarball into every node's store as `image`.
pub fn load(
    spec: &LabSpec,
    tarball: &Path,
    image: &str,
    out: &mut dyn Write,
) -> Result<(), LabError> {
    let layout = layout_for(&spec.name);
    let state = state(spec, &layout)?;
    preflight::check(state.nodes.iter().any(|n| n.docker))?;
    let tarball = std::fs::canonicalize(tarball).map_err(io_err(tarball))?;
    let listing = Cmd::new("tar").arg("-tf").arg(&tarball).run()?;
    let kind = tarball_kind(&listing.stdout);
    let results: Vec<(String, Result<String, LabError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = state
            .nodes
            .iter()
            .map(|n| {
                let (layout, tarball) = (&layout, &tarball);
                s.spawn(move || (n.name.clone(), load_into(layout, n, tarball, kind, image)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a load thread panicked"))
            .collect()
    });
    let mut failed = Vec::new();
    for (node, result) in results {
        match result {
            Ok(how) => say(out, format!("  {node}: {image} ({how})")),
            Err(e) => failed.push(format!("{node}: {e}")),
        }
    }
    if failed.is_empty() {
        say(
            out,
            format!("loaded {image} into {} node(s)", state.nodes.len()),
        );
        Ok(())
    } else {
        Err(LabError::Node {
            node: "load".into(),
            reason: failed.join("; "),
        })
    }
}

pub(super) fn load_into(
    layout: &Layout,
    node: &StateNode,
    tarball: &Path,
    kind: TarballKind,
    image: &str,
) -> Result<String, LabError> {
    let mut how = load_with("podman", layout, node, tarball, kind, image)?;
    if node.docker {
        how = format!(
            "{how}; docker: {}",
            load_with("docker", layout, node, tarball, kind, image)?
        );
    }
    Ok(how)
}

/// Loads into the node's podman store or its dockerd (`runtime`: either binary;
/// both take `import`, `load --input` and `tag` and report the same "Loaded image"
/// lines).
fn load_with(
    runtime: &str,
    layout: &Layout,
    node: &StateNode,
    tarball: &Path,
    kind: TarballKind,
    image: &str,
) -> Result<String, LabError> {
    let env = node.env(layout);
    let run = |args: &[&str]| {
        Cmd::new(runtime)
            .args(args)
            .envs(&env)
            .in_netns(&node.namespace)
            .run()
    };
    let path = tarball.display().to_string();
    match kind {
        TarballKind::Rootfs => {
            // docker's import has no --quiet (it prints the image id).
            let quiet: &[&str] = if runtime == "podman" {
                &["--quiet"]
            } else {
                &[]
            };
            let mut args = vec!["import"];
            args.extend(quiet);
            args.extend([path.as_str(), image]);
            run(&args)?;
            Ok("imported root filesystem".into())
        }
        TarballKind::ImageArchive => {
            let loaded = run(&["load", "--input", &path])?;
            let names = loaded_names(&loaded.stdout);
            let first = names.first().ok_or_else(|| LabError::Node {
                node: node.name.clone(),
                reason: format!("{runtime} load named no image: {}", loaded.stdout.trim()),
            })?;
            if first != image {
                run(&["tag", first, image])?;
            }
            Ok(format!("loaded image archive, {first}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_archives_are_told_from_root_filesystems() {
        assert_eq!(
            tarball_kind("manifest.json\nabc/layer.tar\n"),
            TarballKind::ImageArchive
        );
        assert_eq!(
            tarball_kind("./\n./oci-layout\n./index.json\n./blobs/\n"),
            TarballKind::ImageArchive
        );
        assert_eq!(
            tarball_kind("./\n./bin/\n./bin/busybox\n./etc/manifest.json\n"),
            TarballKind::Rootfs
        );
    }

    #[test]
    fn podman_load_output_gives_the_loaded_names() {
        assert_eq!(
            loaded_names("Getting image source signatures\nLoaded image: localhost/a:latest\n"),
            ["localhost/a:latest"]
        );
        assert_eq!(
            loaded_names("Loaded image(s): localhost/a:1,localhost/b:2\n"),
            ["localhost/a:1", "localhost/b:2"]
        );
        assert!(loaded_names("nothing\n").is_empty());
    }
}
