//! Read-only OCI layouts (the bundle on the boot media, or host0's
//! releases), indexed from their `index.json`: each entry's full
//! reference (`quay.io/org/app:1.2`) names the repository and tag, and
//! every manifest reachable from it becomes a member of that repository.
//! A [`LayerSet`] is all of them as one value, so the store can swap
//! them at run time in one step ([`super::Store::set_layers`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlift_oci::documents::media;
use airlift_oci::{Layout, Reference};
use anyhow::{bail, Context, Result};
use bytes::Bytes;

use super::backend::BlobBackend;
use super::folder::FolderBlobs;
use super::index::{ManifestInfo, Repos};
use crate::services::registry::manifest::inspect;
use airlift_oci::Digest;

/// One read-only layout to serve, and whether its tags are served (the
/// current release's are; other kept releases pull by digest only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    pub dir: PathBuf,
    pub tags: bool,
}

impl LayerSpec {
    /// A layout served with its tags.
    pub fn tagged(dir: impl Into<PathBuf>) -> LayerSpec {
        LayerSpec {
            dir: dir.into(),
            tags: true,
        }
    }
}

/// The read-only layers as one value: their blobs in order, the
/// repositories they make, and their manifests' bytes.
#[derive(Default)]
pub struct LayerSet {
    pub specs: Vec<LayerSpec>,
    pub backends: Vec<Arc<dyn BlobBackend>>,
    pub repos: Repos,
    pub manifests: HashMap<Digest, Bytes>,
}

impl LayerSet {
    /// Index every layout (reads index.json and manifests only). Fails
    /// naming the layer and digest if a layer is broken.
    pub fn index(specs: &[LayerSpec]) -> Result<LayerSet> {
        let mut set = LayerSet {
            specs: specs.to_vec(),
            ..LayerSet::default()
        };
        let mut cached = Vec::new();
        for spec in specs {
            let l = index_layout(&spec.dir, spec.tags, &mut set.repos, &mut cached)
                .with_context(|| format!("loading the read-only layer {}", spec.dir.display()))?;
            set.backends.push(Arc::new(FolderBlobs(l)));
        }
        set.manifests = cached.into_iter().collect();
        Ok(set)
    }
}

/// Index one layout into `repos` (its tags too when `tags`); manifest
/// bytes go to `manifests`.
pub fn index_layout(
    root: &Path,
    tags: bool,
    repos: &mut Repos,
    manifests: &mut Vec<(Digest, Bytes)>,
) -> Result<Layout> {
    let layout = Layout::open(root)?;
    let index = layout.read_index()?;
    for entry in &index.manifests {
        let Some(ref_name) = entry.ref_name() else {
            bail!(
                "{}: index.json entry {} has no org.opencontainers.image.ref.name annotation; \
                 a bundle must name every image with its full reference",
                root.display(),
                entry.digest
            );
        };
        let reference: Reference = ref_name
            .parse()
            .with_context(|| format!("{}: index.json entry {}", root.display(), entry.digest))?;
        if !layout.has_blob(&entry.digest) {
            bail!(
                "{}: manifest {} of {ref_name} is missing (expected {})",
                root.display(),
                entry.digest,
                layout.blob_path(&entry.digest).display()
            );
        }
        let reachable = layout
            .reachable(entry)
            .with_context(|| format!("{}: image {ref_name}", root.display()))?;
        let repo = repos.entry(reference.name()).or_default();
        for desc in reachable {
            if !(media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type)) {
                continue;
            }
            let bytes = layout.read_blob(&desc.digest)?;
            let inspected = inspect(&bytes, Some(&desc.media_type)).map_err(|e| {
                anyhow::anyhow!(
                    "{}: manifest {} of {ref_name}: {}",
                    root.display(),
                    desc.digest,
                    e.message
                )
            })?;
            if let Some(subject) = &inspected.subject {
                repo.referrers
                    .entry(subject.digest.clone())
                    .or_default()
                    .insert(
                        desc.digest.clone(),
                        inspected.referrer_descriptor(&desc.digest, bytes.len() as u64),
                    );
            }
            repo.manifests.insert(
                desc.digest.clone(),
                ManifestInfo {
                    media_type: inspected.media_type.clone(),
                    size: bytes.len() as u64,
                },
            );
            manifests.push((desc.digest.clone(), Bytes::from(bytes)));
        }
        if let Some(tag) = reference.tag().filter(|_| tags) {
            repo.tags.insert(tag.to_string(), entry.digest.clone());
        }
        tracing::debug!(image = %ref_name, digest = %entry.digest, "indexed from layer {}", root.display());
    }
    Ok(layout)
}
