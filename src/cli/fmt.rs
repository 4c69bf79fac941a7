//! `geartopo fmt`: rewrites a topology file in the canonical layout (docs/fmt.md),
//! or with `--check` says whether it is in it. The layout itself is `crate::fmt`;
//! here are only the file, stdin and stdout, and the exit code.
//!
//! Never leaves a half-written file: the new text goes to a temporary file beside
//! the old one, which then replaces it in one rename, with the old file's mode and
//! owner. A file that is not TOML is reported and left alone.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

/// Exit code of `--check` when the file is not formatted: terraform's (`terraform
/// fmt -check` exits 3), distinct from 1 (an error: unreadable or not TOML) and
/// from 2 (plan's "changes present").
pub const EXIT_NOT_FORMATTED: i32 = 3;

#[derive(Debug, Args)]
#[command(after_help = "\
Exit status: 0 when the file is formatted (or was rewritten), 1 on an error (the \
file is unreadable or not valid TOML; nothing is written), and with --check 3 when \
the file is not formatted: the same code as `terraform fmt -check`, so that a CI job \
can tell a file that needs `geartopo fmt` from a broken one, and not 2, which `plan \
--detailed-exitcode` uses for \"changes present\".

The layout: `key = value` with consecutive lines aligned on `=`, trailing comments \
aligned, one blank line between tables, two-space indents in multi-line arrays with a \
comma after each element, inline tables as `{ a = 1 }`, bare keys where possible; \
comments, the order of keys and tables, numbers and escapes are kept.")]
pub struct FmtArgs {
    /// Change nothing: print the diff the formatting would make and exit 3 if there is one.
    #[arg(long)]
    pub check: bool,
    /// Topology file to format (default: ./geartopo.toml); `-` reads standard input
    /// and writes the formatted text to standard output.
    pub file: Option<PathBuf>,
}

pub fn run(args: FmtArgs) -> anyhow::Result<i32> {
    let path = super::topology_path(args.file);
    let stdin = path == Path::new("-");
    let name = if stdin {
        "<stdin>".to_owned()
    } else {
        path.display().to_string()
    };
    let old = if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        text
    } else {
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {name}"))?
    };
    let new = crate::fmt::format(&old).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let mut out = std::io::stdout().lock();

    if args.check {
        if new == old {
            return Ok(0);
        }
        let diff = similar::TextDiff::from_lines(&old, &new);
        let new_name = format!("{name} (formatted)");
        write!(out, "{}", diff.unified_diff().header(&name, &new_name))?;
        out.flush()?;
        return Ok(EXIT_NOT_FORMATTED);
    }
    if stdin {
        out.write_all(new.as_bytes())?;
        out.flush()?;
        return Ok(0);
    }
    if new != old {
        replace_file(&path, &new).with_context(|| format!("cannot rewrite {name}"))?;
        // As terraform does: the name of each file that was changed.
        writeln!(out, "{name}")?;
        out.flush()?;
    }
    Ok(0)
}

/// Replaces the file at `path` with `text` in one rename, keeping its mode and
/// owner; through a symbolic link, the file it points to.
fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

    let target = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&target)?;
    let dir = target.parent().context("the file has no directory")?;
    let file_name = target
        .file_name()
        .context("the path names no file")?
        .to_string_lossy();
    let temp = dir.join(format!(".{file_name}.fmt-{}.tmp", std::process::id()));
    let write = || -> anyhow::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        file.write_all(text.as_bytes())?;
        let written = file.metadata()?;
        if (written.uid(), written.gid()) != (meta.uid(), meta.gid()) {
            std::os::unix::fs::fchown(&file, Some(meta.uid()), Some(meta.gid()))
                .context("cannot give the new file the owner of the old one")?;
        }
        file.set_permissions(meta.permissions())?;
        file.sync_all()?;
        std::fs::rename(&temp, &target)?;
        Ok(())
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    if result.is_ok() {
        // The rename is durable once the directory is on disk too.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewrite_keeps_the_mode_and_follows_a_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "a=1\n").unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();

        replace_file(&link, "a = 1\n").unwrap();

        assert_eq!(std::fs::read_to_string(&real).unwrap(), "a = 1\n");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temporary file is left behind");
    }
}
