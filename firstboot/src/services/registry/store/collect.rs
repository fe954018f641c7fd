//! What garbage collection needs from the running store: the manifests
//! it serves (pushed ones from the data metadata, the layers'), the
//! blobs pushed or mounted lately, and the metadata write lock, held while
//! blob files are deleted. A manifest push checks its blobs under the
//! same lock ([`Store::put_manifest_present`]), so no manifest is
//! accepted that names a blob being deleted.

use std::collections::BTreeSet;
use std::path::Path;

use airlift_oci::Digest;

use super::error::{lock_poisoned, StoreError, StoreResult};
use super::{NewManifest, Store};

impl Store {
    /// The data folder holding blob files (`blobs/<alg>/<hex>`); None
    /// when blobs are kept in a bucket (not collected by this airlift).
    pub fn data_folder(&self) -> Option<&Path> {
        if self.blobs.remote() {
            return None;
        }
        self.uploads_dir.parent()
    }

    /// Every manifest of the data metadata (pushed content, referrers
    /// included), with its media type.
    pub fn pushed_manifests(&self) -> StoreResult<Vec<(Digest, String)>> {
        let repos = self.repos.read().map_err(lock_poisoned)?;
        Ok(repos
            .values()
            .flat_map(|ri| ri.manifests.iter())
            .map(|(d, i)| (d.clone(), i.media_type.clone()))
            .collect())
    }

    /// Blobs pushed or mounted into any repository less than `within` ago.
    pub fn linked_blobs(&self, within: std::time::Duration) -> BTreeSet<Digest> {
        self.links.pushed_within(within)
    }

    /// Hold the metadata write lock (no manifest is stored meanwhile).
    pub async fn collection_lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write.lock().await
    }

    /// Drop collected manifests from the in-memory cache of manifest bytes.
    pub fn forget_manifest_bytes(&self, gone: &[Digest]) {
        if let Ok(mut m) = self.manifests.write() {
            for d in gone {
                m.remove(d);
            }
        }
    }

    /// Store a pushed manifest once each of `blobs` is still present,
    /// checked under the write lock: a blob a collection deleted
    /// meanwhile is [`StoreError::ManifestMissing`] (the client pushes
    /// it again).
    pub async fn put_manifest_present(
        &self,
        m: NewManifest<'_>,
        blobs: &[Digest],
    ) -> StoreResult<()> {
        let _guard = self.write.lock().await;
        for d in blobs {
            if self.blob(d).await.is_none() {
                return Err(StoreError::ManifestMissing(format!(
                    "the manifest references {d}, which is not stored (it was just \
                     garbage-collected): push it again"
                )));
            }
        }
        self.put_manifest_locked(m).await
    }
}
