//! The bundle's description kept on the data disk, so host0 can serve a
//! fully loaded bundle after a reboot without the media.
//!
//! Once the loader has copied every blob to the disk, [`save`] copies the
//! bundle's small files (`oci-layout`, `index.json`, `bundle.json`) to
//! `DATA/bundle/` and links `DATA/bundle/blobs` to the registry's blobs:
//! an OCI layout with the media's identity (the same `index.json`, hence
//! the same bundle id in the load progress) and the disk's content.
//! [`find`] returns it only when it is complete.

use std::path::{Path, PathBuf};

use airlift_oci::atomic;
use anyhow::{Context, Result};

/// The folder under host0's state folder.
pub const DIR: &str = "bundle";
const FILES: [&str; 3] = ["oci-layout", "index.json", "bundle.json"];

/// Save the bundle at `bundle_dir` (on the media) as `DATA/bundle`,
/// its blobs being those of `DATA/registry`.
pub fn save(bundle_dir: &Path, data: &Path) -> Result<()> {
    let dir = data.join(DIR);
    atomic::create_dir_all(&dir)?;
    for name in FILES {
        // bundle.json sits beside the layout or one folder up.
        let src = [bundle_dir.join(name)]
            .into_iter()
            .chain(bundle_dir.parent().map(|p| p.join(name)))
            .find(|p| p.is_file());
        let Some(src) = src else {
            continue;
        };
        let bytes = std::fs::read(&src).with_context(|| format!("reading {}", src.display()))?;
        atomic::write(&dir.join(name), &bytes)?;
    }
    let link = dir.join("blobs");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("../registry/blobs", &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    atomic::sync_dir(&dir)
}

/// `DATA/bundle` if a complete copy was saved there.
pub fn find(data: &Path) -> Option<PathBuf> {
    let dir = data.join(DIR);
    (dir.join("oci-layout").is_file()
        && dir.join("index.json").is_file()
        && dir.join("blobs").is_dir())
    .then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_the_small_files_and_links_the_blobs() {
        let t = tempfile::tempdir().unwrap();
        let media = t.path().join("media");
        let bundle = media.join("bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(
            bundle.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        std::fs::write(bundle.join("index.json"), "{}").unwrap();
        std::fs::write(media.join("bundle.json"), "{\"b\":1}").unwrap();
        let data = t.path().join("data");
        std::fs::create_dir_all(data.join("registry/blobs/sha256")).unwrap();
        assert_eq!(find(&data), None);
        save(&bundle, &data).unwrap();
        save(&bundle, &data).unwrap(); // again: no error, same result
        let stub = find(&data).unwrap();
        assert_eq!(
            std::fs::read_to_string(stub.join("index.json")).unwrap(),
            "{}"
        );
        assert_eq!(
            std::fs::read_to_string(stub.join("bundle.json")).unwrap(),
            "{\"b\":1}"
        );
        assert!(stub.join("blobs/sha256").is_dir());
        airlift_oci::Layout::open(&stub).unwrap();
        // Without the registry's blobs it is not usable.
        std::fs::remove_dir_all(data.join("registry")).unwrap();
        assert_eq!(find(&data), None);
    }
}
