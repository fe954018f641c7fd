//! Atomic file writes: a temp file in the destination's folder, written,
//! fsynced, renamed over the destination, and the folder fsynced. A crash
//! at any moment leaves either the old file or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

/// The name prefix of [`write()`]'s and [`write_with_mode`]'s temp files.
pub const TEMP_PREFIX: &str = ".tmp-";
/// The name prefix of a blob being written ([`crate::layout::BlobWriter`]).
pub const PARTIAL_PREFIX: &str = ".partial-";

/// Write `data` to `path` atomically; the file gets the temp file's mode
/// (0600).
pub fn write(path: &Path, data: &[u8]) -> Result<()> {
    write_inner(path, data, None)
}

/// Write `data` to `path` atomically with permissions `mode` (creating
/// the folder and its parents first): the temp file is written, given
/// `mode`, fsynced, then renamed, so the file never exists at `path` with
/// other permissions or partial content (a key is never readable by
/// others, not even for a moment).
pub fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    create_dir_all(parent(path))?;
    write_inner(path, data, Some(mode))
}

/// The one atomic write: temp file in `path`'s folder, write, chmod (if
/// asked), fsync, rename, fsync the folder.
fn write_inner(path: &Path, data: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = parent(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    if let Some(mode) = mode {
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    sync_dir(dir)
}

/// Remove the temp files that a killed writer left anywhere under `root`
/// ([`TEMP_PREFIX`] and [`PARTIAL_PREFIX`] files; links are not
/// followed). Call it at start-up, before anything writes under `root`.
/// A missing `root` is fine. Returns how many files were removed.
pub fn remove_stale_temps(root: &Path) -> Result<usize> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading folder {}", root.display())),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading folder {}", root.display()))?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            removed += remove_stale_temps(&path)?;
        } else if kind.is_file() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(TEMP_PREFIX) || name.starts_with(PARTIAL_PREFIX) {
                fs::remove_file(&path)
                    .with_context(|| format!("removing stale temp file {}", path.display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// fsync a folder so a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing folder {}", dir.display()))
}

/// Create `dir` and its parents, then sync the parent.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating folder {}", dir.display()))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_stale_temps_at_any_depth() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        fs::create_dir_all(&deep).unwrap();
        for f in [
            ".tmp-x1",
            "a/.partial-y",
            "a/b/.tmp-z",
            "keep",
            "a/.hidden",
            "a/b/data",
        ] {
            fs::write(dir.path().join(f), b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 3);
        for f in ["keep", "a/.hidden", "a/b/data"] {
            assert!(dir.path().join(f).is_file(), "{f} was removed");
        }
        assert_eq!(remove_stale_temps(&dir.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write(&p, b"old old old").unwrap();
        write(&p, b"new").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["f"]);
    }

    #[test]
    fn atomic_write_sets_mode_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/f");
        write_with_mode(&p, b"one", 0o644).unwrap();
        write_with_mode(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        write_with_mode(&p, b"three", 0o644).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
