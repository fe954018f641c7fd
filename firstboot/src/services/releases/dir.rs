//! One release on the data disk: `DATA/releases/<hex>/`, a small OCI
//! layout (`oci-layout`, `index.json`, `bundle.json`, `update.json` when
//! it came from an update) whose `blobs` is a symlink to the registry's
//! blobs. Written file by file (each atomic) before the release is named
//! in `state.json`, so a half-written dir is never served; what the
//! store serves is built from the state here too ([`layer_specs`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use airlift_oci::{atomic, Digest, Layout};
use anyhow::{bail, Context, Result};

use super::state::{release_dir, ReleasesState};
use crate::services::registry::store::LayerSpec;

/// The small files of a release, as read from its medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallFiles {
    pub oci_layout: Vec<u8>,
    pub index: Vec<u8>,
    /// `bundle.json`, when the medium has one.
    pub bundle: Option<Vec<u8>>,
    /// `update.json`, on an update medium.
    pub update: Option<Vec<u8>>,
}

/// `oci-layout` when a medium lacks one.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// The registry's blobs, as seen from `DATA/releases/<hex>/`.
const BLOBS_LINK: &str = "../../registry/blobs";

/// Write the release dir for `bundle` (idempotent: files are replaced
/// atomically, the link is made once). Returns the dir.
pub fn write(data: &Path, bundle: &Digest, files: &SmallFiles) -> Result<PathBuf> {
    let dir = release_dir(data, bundle);
    atomic::create_dir_all(&dir)?;
    let named: [(&str, Option<&[u8]>); 4] = [
        ("oci-layout", Some(&files.oci_layout)),
        ("index.json", Some(&files.index)),
        ("bundle.json", files.bundle.as_deref()),
        (
            airlift_appliance::release::UPDATE_FILE,
            files.update.as_deref(),
        ),
    ];
    for (name, bytes) in named {
        if let Some(bytes) = bytes {
            atomic::write(&dir.join(name), bytes)?;
        }
    }
    let link = dir.join("blobs");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(BLOBS_LINK, &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    atomic::sync_dir(&dir)?;
    Ok(dir)
}

/// Distinct blobs a release's index reaches and their bytes, checking
/// each is in the registry (by its size): the last check before a
/// release is recorded. Fails naming the first missing blob.
pub fn verify(dir: &Path) -> Result<(u64, u64, u64)> {
    let layout = Layout::open(dir)?;
    let index = layout.read_index()?;
    let mut seen = HashSet::new();
    let (mut blobs, mut bytes) = (0u64, 0u64);
    for entry in &index.manifests {
        let name = entry.ref_name().unwrap_or("(unnamed)").to_string();
        for d in layout
            .reachable(entry)
            .with_context(|| format!("release in {}: image {name}", dir.display()))?
        {
            if !seen.insert(d.digest.clone()) {
                continue;
            }
            let path = layout.blob_path(&d.digest);
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            if size != Some(d.size) {
                bail!(
                    "blob {} of {name} is not in the registry with its {} bytes ({})",
                    d.digest,
                    d.size,
                    path.display()
                );
            }
            blobs += 1;
            bytes += d.size;
        }
    }
    Ok((index.manifests.len() as u64, blobs, bytes))
}

/// What the store serves for this state: the current release with its
/// tags, then every other held release (newest load first) without
/// tags, so their manifests still pull by digest until collected.
/// Releases whose dir is missing are left out (and logged).
pub fn layer_specs(data: &Path, state: &ReleasesState) -> Vec<LayerSpec> {
    let current = state.current.as_ref();
    let order = current.into_iter().chain(
        state
            .releases
            .iter()
            .rev()
            .map(|r| &r.id.bundle)
            .filter(|b| Some(*b) != current),
    );
    order
        .filter_map(|b| {
            let dir = release_dir(data, b);
            let ok = dir.join("index.json").is_file();
            if !ok {
                tracing::warn!("release {b} has no dir at {}; not served", dir.display());
            }
            ok.then(|| LayerSpec {
                dir,
                tags: Some(b) == current,
            })
        })
        .collect()
}

/// The current release's dir, when state.json names one that is written.
pub fn current_dir(data: &Path) -> Option<PathBuf> {
    let state = ReleasesState::load(data).ok()?;
    let dir = release_dir(data, state.current.as_ref()?);
    (dir.join("index.json").is_file() && dir.join("blobs").is_dir()).then_some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::releases::state::{Release, Source};
    use airlift_appliance::ReleaseId;

    fn files(index: &str) -> SmallFiles {
        SmallFiles {
            oci_layout: OCI_LAYOUT.to_vec(),
            index: index.as_bytes().to_vec(),
            bundle: Some(b"{}".to_vec()),
            update: None,
        }
    }

    fn rel(index: &str) -> Release {
        Release {
            id: ReleaseId {
                name: "demo".into(),
                version: index.into(),
                bundle: airlift_appliance::release::bundle_id(index.as_bytes()),
            },
            images: 0,
            blobs: 0,
            bytes: 0,
            loaded_at: String::new(),
            source: Source::Media,
            base: None,
        }
    }

    #[test]
    fn writes_a_layout_whose_blobs_are_the_registrys() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path();
        std::fs::create_dir_all(data.join("registry/blobs/sha256")).unwrap();
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        let r = rel(index);
        assert_eq!(current_dir(data), None);
        let dir = write(data, &r.id.bundle, &files(index)).unwrap();
        write(data, &r.id.bundle, &files(index)).unwrap(); // idempotent
        assert!(dir.join("blobs/sha256").is_dir());
        assert!(!dir.join("update.json").exists());
        assert_eq!(verify(&dir).unwrap(), (0, 0, 0));
        let mut s = ReleasesState::default();
        s.add(r.clone());
        s.set_current(&r.id.bundle).unwrap();
        s.save(data).unwrap();
        assert_eq!(current_dir(data), Some(dir));
    }

    #[test]
    fn verify_names_a_missing_blob() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path();
        std::fs::create_dir_all(data.join("registry/blobs/sha256")).unwrap();
        let m = Digest::sha256_of(b"gone");
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{m}","size":4}}]}}"#
        );
        let dir = write(data, &rel(&index).id.bundle, &files(&index)).unwrap();
        let e = format!("{:#}", verify(&dir).unwrap_err());
        assert!(e.contains(&m.to_string()), "{e}");
        std::fs::write(data.join("registry/blobs/sha256").join(m.hex()), b"gone").unwrap();
        assert_eq!(verify(&dir).unwrap(), (1, 1, 4));
    }

    #[test]
    fn the_current_release_is_tagged_and_the_others_follow_untagged() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path();
        let (a, b, c) = (rel("a"), rel("b"), rel("c"));
        let mut s = ReleasesState::default();
        for r in [&a, &b, &c] {
            s.add(r.clone());
            if r.id.version != "c" {
                write(data, &r.id.bundle, &files(&r.id.version)).unwrap();
            }
        }
        s.set_current(&a.id.bundle).unwrap();
        let specs = layer_specs(data, &s);
        assert_eq!(
            specs,
            vec![
                LayerSpec {
                    dir: release_dir(data, &a.id.bundle),
                    tags: true
                },
                LayerSpec {
                    dir: release_dir(data, &b.id.bundle),
                    tags: false
                },
            ],
            "c has no dir"
        );
    }
}
