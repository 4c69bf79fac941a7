//! Secret env values kept out of the topology file: `from_env` reads a variable
//! of geartopo's own environment, `from_file` a file beside the topology that
//! group and others cannot read. The only I/O of validation; errors say where
//! to look and never carry the value.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A problem's label and help.
pub(crate) type SourceError = (String, String);

/// The value of `var` in geartopo's environment.
pub(crate) fn from_env(var: &str) -> Result<String, SourceError> {
    match std::env::var(var) {
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => Err((
            format!("${var} is not set"),
            format!("set {var} in the environment geartopo runs in (it is read by validate, plan and apply alike)"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err((
            format!("${var} is not UTF-8 text"),
            "an env value is text".into(),
        )),
    }
}

/// The content of `file` (relative to `base`), without one trailing newline.
/// Refused when group or others have any access to it.
pub(crate) fn from_file(base: Option<&Path>, file: &str) -> Result<String, SourceError> {
    let path = match base {
        Some(b) if Path::new(file).is_relative() => b.join(file),
        _ => Path::new(file).to_path_buf(),
    };
    let shown = path.display().to_string();
    let meta = std::fs::metadata(&path).map_err(|e| {
        (
            format!("cannot read {shown}: {e}"),
            "from_file is relative to the topology file's folder".to_string(),
        )
    })?;
    if !meta.is_file() {
        return Err((
            format!("{shown} is not a file"),
            "name a regular file".into(),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err((
            format!("{shown} is mode {mode:04o}: group or others may read it"),
            format!("a file holding a secret must be private to its owner: chmod 600 {shown}"),
        ));
    }
    let bytes =
        std::fs::read(&path).map_err(|e| (format!("cannot read {shown}: {e}"), String::new()))?;
    let mut text = String::from_utf8(bytes).map_err(|_| {
        (
            format!("{shown} is not UTF-8 text"),
            "an env value is text".to_string(),
        )
    })?;
    if text.ends_with('\n') {
        text.pop();
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_readable_by_others_is_refused_and_a_private_one_read() {
        let dir = std::env::temp_dir().join(format!("geartopo-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "line1\nline2\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (label, help) = from_file(Some(&dir), "pw").unwrap_err();
        assert!(
            label.ends_with("is mode 0644: group or others may read it"),
            "{label}"
        );
        assert!(help.contains("chmod 600"), "{help}");
        assert!(!label.contains("line1"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(from_file(Some(&dir), "pw").unwrap(), "line1\nline2");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unset_variable_is_named() {
        let (label, _) = from_env("GEARTOPO_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert_eq!(label, "$GEARTOPO_TEST_SURELY_UNSET_VARIABLE is not set");
    }
}
