//! Putting a finished bundle in place without ever leaving a half-written
//! one: the bundle is built in a temp folder beside the output (same
//! parent, so the same file system), then swapped in with
//! `renameat2(RENAME_EXCHANGE)` and the old folder removed; a plain
//! rename (refusing to replace) when the output does not exist yet.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{renameat_with, RenameFlags, CWD};

/// Check that `out` may be replaced by a bundle: absent, an empty folder,
/// or an OCI layout (a previous bundle). Anything else is refused, so a
/// typo never deletes someone's folder.
pub fn check_output(out: &Path) -> Result<()> {
    let parent = parent_of(out);
    if !parent.is_dir() {
        bail!(
            "the folder {} (where {} would go) does not exist; create it first",
            parent.display(),
            out.display()
        );
    }
    match fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking {}", out.display())),
        Ok(m) if !m.is_dir() => bail!(
            "{} exists and is not a folder; choose another output path",
            out.display()
        ),
        Ok(_) => {
            let empty = fs::read_dir(out)
                .with_context(|| format!("reading {}", out.display()))?
                .next()
                .is_none();
            if empty || out.join(airlift_oci::layout::OCI_LAYOUT_FILE).is_file() {
                Ok(())
            } else {
                bail!(
                    "{} exists and is neither empty nor an OCI layout; refusing to replace it",
                    out.display()
                )
            }
        }
    }
}

/// A temp folder beside `out`, removed when dropped.
pub fn staging_dir(out: &Path) -> Result<tempfile::TempDir> {
    let parent = parent_of(out);
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string());
    tempfile::Builder::new()
        .prefix(&format!(".{name}.airlift-"))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temp folder in {}", parent.display()))
}

/// Move `staged` to `out`: exchange atomically if `out` exists, then
/// remove the old content.
pub fn install(staged: tempfile::TempDir, out: &Path) -> Result<()> {
    let staged_path: PathBuf = staged.path().to_path_buf();
    let exists = fs::symlink_metadata(out).is_ok();
    let flags = if exists {
        RenameFlags::EXCHANGE
    } else {
        RenameFlags::NOREPLACE
    };
    renameat_with(CWD, &staged_path, CWD, out, flags).with_context(|| {
        format!(
            "moving the new bundle {} into place at {}",
            staged_path.display(),
            out.display()
        )
    })?;
    airlift_oci::atomic::sync_dir(&parent_of(out))?;
    if exists {
        // `staged` now holds the old bundle; dropping it removes it.
        staged.close().with_context(|| {
            format!(
                "removing the previous bundle (moved to {})",
                staged_path.display()
            )
        })?;
    } else {
        // Nothing is left at the staged path; don't try to remove it.
        let _ = staged.keep();
    }
    Ok(())
}

fn parent_of(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_new_and_exchanges_existing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("bundle");
        let s = staging_dir(&out).unwrap();
        fs::write(s.path().join("oci-layout"), "1").unwrap();
        install(s, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("oci-layout")).unwrap(), "1");

        check_output(&out).unwrap();
        let s = staging_dir(&out).unwrap();
        fs::write(s.path().join("oci-layout"), "2").unwrap();
        install(s, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("oci-layout")).unwrap(), "2");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the old bundle and temp folders are gone");
    }

    #[test]
    fn refuses_foreign_outputs() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = check_output(dir.path()).unwrap_err().to_string();
        assert!(e.contains("refusing"), "{e}");
        assert!(check_output(&dir.path().join("notes.txt")).is_err());
        assert!(check_output(&dir.path().join("no/such/out")).is_err());
        assert!(check_output(&dir.path().join("new")).is_ok());
    }
}
