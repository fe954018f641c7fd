//! The local backends: blobs in an OCI layout (the writable data folder,
//! or a read-only layer of the bundle, which the store never writes)
//! and metadata as small atomic files ([`super::meta`]). File work runs
//! on tokio's blocking pool.

use std::path::PathBuf;

use airlift_oci::documents::Descriptor;
use airlift_oci::{atomic, Digest, Layout};
use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;

use super::backend::{BlobBackend, BlobStream, MetaBackend};
use super::error::StoreResult;
use super::file_read::read_file;
use super::index::Repos;
use super::meta::Meta;

/// Blobs of one OCI layout.
pub struct FolderBlobs(pub Layout);

#[async_trait]
impl BlobBackend for FolderBlobs {
    async fn stat(&self, d: &Digest) -> StoreResult<Option<u64>> {
        match tokio::fs::metadata(self.0.blob_path(d)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            _ => Ok(None),
        }
    }

    async fn read(&self, d: &Digest, start: u64, len: u64) -> StoreResult<BlobStream> {
        Ok(read_file(&self.0.blob_path(d), start, len).await?)
    }

    async fn put_file(&self, file: PathBuf, d: &Digest) -> StoreResult<()> {
        let dest = self.0.blob_path(d);
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let dir = dest
                .parent()
                .with_context(|| format!("blob path {} has no folder", dest.display()))?;
            atomic::create_dir_all(dir)?;
            if dest.is_file() {
                std::fs::remove_file(&file).ok();
                return Ok(());
            }
            std::fs::rename(&file, &dest)
                .with_context(|| format!("renaming {} to {}", file.display(), dest.display()))?;
            atomic::sync_dir(dir)
        })
        .await??;
        Ok(())
    }

    async fn put_bytes(&self, d: &Digest, bytes: Bytes) -> StoreResult<()> {
        let (data, d) = (self.0.clone(), d.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            if !data.has_blob(&d) {
                data.put_blob(&bytes, Some(&d))?;
            }
            Ok(())
        })
        .await??;
        Ok(())
    }

    async fn delete(&self, d: &Digest) -> StoreResult<bool> {
        match tokio::fs::remove_file(self.0.blob_path(d)).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn describe(&self, d: &Digest) -> String {
        self.0.blob_path(d).display().to_string()
    }
}

/// Metadata files of the data folder; manifests' sizes come from its blobs.
pub struct FolderMeta {
    pub meta: Meta,
    pub data: Layout,
}

impl FolderMeta {
    /// The index as the files say (blocking: used at open).
    pub fn load_now(&self) -> anyhow::Result<Repos> {
        let size_of = |d: &Digest| {
            std::fs::metadata(self.data.blob_path(d))
                .ok()
                .map(|m| m.len())
        };
        self.meta.load(&size_of)
    }

    /// Run `f` on the metadata files on the blocking pool.
    async fn with(
        &self,
        f: impl FnOnce(&Meta) -> anyhow::Result<()> + Send + 'static,
    ) -> StoreResult<()> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || f(&meta)).await??;
        Ok(())
    }
}

#[async_trait]
impl MetaBackend for FolderMeta {
    async fn load(&self) -> StoreResult<Repos> {
        let (meta, data) = (self.meta.clone(), self.data.clone());
        let again = FolderMeta { meta, data };
        Ok(tokio::task::spawn_blocking(move || again.load_now()).await??)
    }

    async fn put_manifest(&self, repo: &str, d: &Digest, media_type: &str) -> StoreResult<()> {
        let (repo, d, mt) = (repo.to_string(), d.clone(), media_type.to_string());
        self.with(move |m| m.put_manifest(&repo, &d, &mt)).await
    }

    async fn put_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        desc: &Descriptor,
    ) -> StoreResult<()> {
        let (repo, s, desc) = (repo.to_string(), subject.clone(), desc.clone());
        self.with(move |m| m.put_referrer(&repo, &s, &desc)).await
    }

    async fn put_tag(&self, repo: &str, tag: &str, d: &Digest) -> StoreResult<()> {
        let (repo, tag, d) = (repo.to_string(), tag.to_string(), d.clone());
        self.with(move |m| m.put_tag(&repo, &tag, &d)).await
    }

    async fn remove_manifest(&self, repo: &str, d: &Digest) -> StoreResult<()> {
        let (repo, d) = (repo.to_string(), d.clone());
        self.with(move |m| m.remove_manifest(&repo, &d)).await
    }

    async fn remove_tag(&self, repo: &str, tag: &str) -> StoreResult<()> {
        let (repo, tag) = (repo.to_string(), tag.to_string());
        self.with(move |m| m.remove_tag(&repo, &tag)).await
    }

    async fn remove_referrer(&self, repo: &str, subject: &Digest, d: &Digest) -> StoreResult<()> {
        let (repo, s, d) = (repo.to_string(), subject.clone(), d.clone());
        self.with(move |m| m.remove_referrer(&repo, &s, &d)).await
    }
}
