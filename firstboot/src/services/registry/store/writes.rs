//! Metadata changes: a manifest stored or adopted, a manifest or tag
//! removed. Each is made durable through the backends first, then the
//! in-memory index follows and the change feed is bumped, all under the
//! store's write lock so storage and memory change in the same order.

use std::sync::atomic::Ordering;

use airlift_oci::Digest;

use super::error::{lock_poisoned, StoreError, StoreResult};
use super::index::ManifestInfo;
use super::{NewManifest, Removed, Store};
use crate::services::registry::route::ManifestRef;

impl Store {
    /// Store a manifest: blob, membership marker, referrer, then tag,
    /// each durable before the next.
    pub async fn put_manifest(&self, m: NewManifest<'_>) -> StoreResult<()> {
        let _guard = self.write.lock().await;
        self.put_manifest_locked(m).await
    }

    /// [`Store::put_manifest`], the write lock being held.
    pub(super) async fn put_manifest_locked(&self, m: NewManifest<'_>) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.blobs.put_bytes(m.digest, m.bytes.clone()).await?;
        self.meta
            .put_manifest(m.repo, m.digest, m.media_type)
            .await?;
        if let Some((subject, desc)) = &m.referrer {
            self.meta.put_referrer(m.repo, subject, desc).await?;
        }
        for tag in m.tags {
            self.meta.put_tag(m.repo, tag, m.digest).await?;
        }

        let mut repos = self.repos.write().map_err(lock_poisoned)?;
        let ri = repos.entry(m.repo.to_string()).or_default();
        ri.manifests.insert(
            m.digest.clone(),
            ManifestInfo {
                media_type: m.media_type.to_string(),
                size: m.bytes.len() as u64,
            },
        );
        if let Some((subject, desc)) = m.referrer {
            ri.referrers
                .entry(subject)
                .or_default()
                .insert(m.digest.clone(), desc);
        }
        for tag in m.tags {
            ri.tags.insert(tag.to_string(), m.digest.clone());
        }
        drop(repos);
        self.manifests
            .write()
            .map_err(lock_poisoned)?
            .insert(m.digest.clone(), m.bytes);
        self.changes.bump_repo(m.repo);
        Ok(())
    }

    /// Make a manifest already stored as a blob a member of `repo` (an
    /// index's child pushed into another repository). No-op if it is one.
    pub async fn adopt_manifest(
        &self,
        repo: &str,
        d: &Digest,
        media_type: &str,
    ) -> StoreResult<()> {
        if self
            .resolve(repo, &ManifestRef::Digest(d.clone()))
            .is_some()
        {
            return Ok(());
        }
        // Looked up under the write lock, which garbage collection holds
        // while it deletes: a manifest it removed is not adopted.
        let _guard = self.write.lock().await;
        let blob = self
            .blob(d)
            .await
            .ok_or_else(|| StoreError::ManifestMissing(format!("manifest {d} is not stored")))?;
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.meta.put_manifest(repo, d, media_type).await?;
        self.repos
            .write()
            .map_err(lock_poisoned)?
            .entry(repo.to_string())
            .or_default()
            .manifests
            .insert(
                d.clone(),
                ManifestInfo {
                    media_type: media_type.to_string(),
                    size: blob.size,
                },
            );
        self.changes.bump_repo(repo);
        Ok(())
    }

    /// Remove a manifest from a repository (its tags and referrer entry
    /// too). The blob stays: other repositories may share it.
    pub async fn delete_manifest(&self, repo: &str, d: &Digest) -> StoreResult<Removed> {
        self.find(repo, &ManifestRef::Digest(d.clone())).await?;
        let _guard = self.write.lock().await;
        let (tags, subjects) = {
            let repos = self.repos.read().map_err(lock_poisoned)?;
            let Some(ri) = repos.get(repo).filter(|ri| ri.manifests.contains_key(d)) else {
                let in_layer = self
                    .layer_set()
                    .repos
                    .get(repo)
                    .is_some_and(|ri| ri.manifests.contains_key(d));
                return Ok(if in_layer {
                    Removed::ReadOnly
                } else {
                    Removed::NotFound
                });
            };
            let tags: Vec<String> = ri
                .tags
                .iter()
                .filter(|(_, v)| *v == d)
                .map(|(k, _)| k.clone())
                .collect();
            let subjects: Vec<Digest> = ri
                .referrers
                .iter()
                .filter(|(_, m)| m.contains_key(d))
                .map(|(s, _)| s.clone())
                .collect();
            (tags, subjects)
        };
        self.writes.fetch_add(1, Ordering::SeqCst);
        for t in &tags {
            self.meta.remove_tag(repo, t).await?;
        }
        for s in &subjects {
            self.meta.remove_referrer(repo, s, d).await?;
        }
        self.meta.remove_manifest(repo, d).await?;
        let mut repos = self.repos.write().map_err(lock_poisoned)?;
        if let Some(ri) = repos.get_mut(repo) {
            for t in &tags {
                ri.tags.remove(t);
            }
            for s in &subjects {
                if let Some(m) = ri.referrers.get_mut(s) {
                    m.remove(d);
                    if m.is_empty() {
                        ri.referrers.remove(s);
                    }
                }
            }
            ri.manifests.remove(d);
            if ri.is_empty() {
                repos.remove(repo);
            }
        }
        drop(repos);
        self.changes.bump_repo(repo);
        Ok(Removed::Yes)
    }

    /// Remove a tag.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> StoreResult<Removed> {
        self.find(repo, &ManifestRef::Tag(tag.to_string())).await?;
        let _guard = self.write.lock().await;
        let present = self
            .repos
            .read()
            .map_err(lock_poisoned)?
            .get(repo)
            .is_some_and(|ri| ri.tags.contains_key(tag));
        if !present {
            let in_layer = self
                .layer_set()
                .repos
                .get(repo)
                .is_some_and(|ri| ri.tags.contains_key(tag));
            return Ok(if in_layer {
                Removed::ReadOnly
            } else {
                Removed::NotFound
            });
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.meta.remove_tag(repo, tag).await?;
        if let Some(ri) = self.repos.write().map_err(lock_poisoned)?.get_mut(repo) {
            ri.tags.remove(tag);
        }
        self.changes.bump_repo(repo);
        Ok(Removed::Yes)
    }
}
