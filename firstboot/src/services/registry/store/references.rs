//! Which repositories reference a blob: a repository serves a blob it
//! was pushed or mounted into, or one its manifests reference (config,
//! layer, index child, subject); a blob's bytes are deleted only when no
//! repository's manifest references them.

use airlift_oci::Digest;

use super::backend::Blob;
use super::error::{lock_poisoned, StoreResult};
use super::{BlobRemoved, Removed, Store};
use crate::services::registry::route::ManifestRef;

/// Does the manifest document `bytes` reference `d`?
fn references(bytes: &[u8], d: &Digest) -> bool {
    let Ok(doc) = airlift_oci::documents::Document::parse(bytes, None) else {
        return false;
    };
    if doc.children().iter().any(|c| &c.digest == d) {
        return true;
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("subject")?
                .get("digest")?
                .as_str()
                .map(str::to_string)
        })
        .is_some_and(|s| s == d.to_string())
}

impl Store {
    /// Blob `d` as served through `repo`: only if it was pushed or
    /// mounted into `repo`, is one of its manifests, or one of its
    /// manifests references it (config, layer, index child, subject).
    pub async fn blob_in(&self, repo: &str, d: &Digest) -> Option<Blob> {
        if !self.links.has(repo, d) && !self.repo_references(repo, d).await {
            return None;
        }
        self.blob(d).await
    }

    /// Does a member manifest of `repo` (data or layers) reference `d`,
    /// or is `d` one? A hit is remembered as a link.
    async fn repo_references(&self, repo: &str, d: &Digest) -> bool {
        if self
            .resolve(repo, &ManifestRef::Digest(d.clone()))
            .is_some()
        {
            return true;
        }
        let members: Vec<Digest> = {
            let Ok(data) = self.repos.read() else {
                return false;
            };
            let layers = self.layer_set();
            data.get(repo)
                .into_iter()
                .chain(layers.repos.get(repo))
                .flat_map(|ri| ri.manifests.keys().cloned())
                .collect()
        };
        for m in members {
            match self.manifest_bytes(&m).await {
                Ok(bytes) if references(&bytes, d) => {
                    self.links.remember(repo, d);
                    return true;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(repository = %repo, manifest = %m, "reading a manifest: {e}")
                }
            }
        }
        false
    }

    /// Record that `d` was pushed or mounted into `repo`.
    pub fn link_blob(&self, repo: &str, d: &Digest) {
        self.links.link(repo, d);
    }

    /// The repositories whose manifests reference `d` (as a member
    /// manifest, a config, layer, index child or subject), sorted.
    /// Manifests that cannot be read are logged and skipped.
    pub async fn referencing_repos(&self, d: &Digest) -> StoreResult<Vec<String>> {
        let members: Vec<(String, Vec<Digest>)> = {
            let data = self.repos.read().map_err(lock_poisoned)?;
            let layers = self.layer_set();
            data.iter()
                .chain(layers.repos.iter())
                .map(|(name, ri)| (name.clone(), ri.manifests.keys().cloned().collect()))
                .collect()
        };
        let mut found = std::collections::BTreeSet::new();
        for (name, manifests) in members {
            for m in manifests {
                if found.contains(&name) {
                    break;
                }
                if &m == d {
                    found.insert(name.clone());
                    continue;
                }
                let bytes = match self.manifest_bytes(&m).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(repository = %name, manifest = %m, "reading a manifest to check blob references: {e}");
                        continue;
                    }
                };
                if references(&bytes, d) {
                    found.insert(name.clone());
                }
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Delete blob `d` through `repo`: its bytes go only when no
    /// repository's manifest references it; otherwise they stay for
    /// those repositories and the answer is `Kept` naming them.
    pub async fn delete_blob_in(&self, repo: &str, d: &Digest) -> StoreResult<BlobRemoved> {
        let users = self.referencing_repos(d).await?;
        if !users.is_empty() {
            if self.blobs.stat(d).await?.is_none() {
                return Ok(BlobRemoved::Done(self.not_writable(d).await));
            }
            tracing::info!(repository = %repo, digest = %d, referenced_by = ?users,
                "blob delete: bytes kept, other manifests reference them");
            return Ok(BlobRemoved::Kept(users));
        }
        Ok(BlobRemoved::Done(self.delete_blob(d).await?))
    }

    /// Why a blob the writable backend lacks cannot be removed.
    async fn not_writable(&self, d: &Digest) -> Removed {
        if self.blob(d).await.is_some() {
            Removed::ReadOnly
        } else {
            Removed::NotFound
        }
    }

    /// Remove a blob from the writable backend.
    pub async fn delete_blob(&self, d: &Digest) -> StoreResult<Removed> {
        if !self.blobs.delete(d).await? {
            return Ok(self.not_writable(d).await);
        }
        self.manifests.write().map_err(lock_poisoned)?.remove(d);
        Ok(Removed::Yes)
    }
}
