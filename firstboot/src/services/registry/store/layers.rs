//! Read-only OCI layouts (the bundle on the boot media), indexed at
//! start from their `index.json`: each entry's full reference
//! (`quay.io/org/app:1.2`) names the repository and tag, and every
//! manifest reachable from it becomes a member of that repository.

use std::path::Path;

use airlift_oci::documents::media;
use airlift_oci::{Layout, Reference};
use anyhow::{bail, Context, Result};
use bytes::Bytes;

use super::index::{ManifestInfo, Repos};
use crate::services::registry::manifest::inspect;
use airlift_oci::Digest;

/// Index one layout into `repos`; manifest bytes go to `manifests`.
pub fn index_layout(
    root: &Path,
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
        if let Some(tag) = reference.tag() {
            repo.tags.insert(tag.to_string(), entry.digest.clone());
        }
        tracing::debug!(image = %ref_name, digest = %entry.digest, "indexed from layer {}", root.display());
    }
    Ok(layout)
}
