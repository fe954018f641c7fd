//! The store's S3 backend: blobs and repository metadata as objects in
//! one bucket, laid out like the data folder so several registry
//! instances share one store:
//!
//! ```text
//! <prefix>blobs/<alg>/<hex>                                        blobs and manifests
//! <prefix>repositories/<name>/_manifests/<alg>/<hex>               the manifest's media type
//! <prefix>repositories/<name>/_tags/<tag>                          the tagged digest
//! <prefix>repositories/<name>/_referrers/<alg>-<hex>/<alg>-<hex>   descriptor JSON
//! ```
//!
//! A blob is verified locally (hashed into its upload file) before it
//! is sent: one PUT below the multipart threshold, else a multipart
//! upload whose parts are read from the file one at a time (so memory
//! holds one part per upload: the threshold, at least 5 MiB), aborted
//! on any error. S3 makes an object visible only once
//! its PUT or CompleteMultipartUpload succeeds, so no partial blob is
//! ever readable; the size is checked with a HEAD afterwards. A process
//! killed mid-upload leaves an unfinished multipart upload (invisible,
//! not a blob): give the bucket an `AbortIncompleteMultipartUpload`
//! lifecycle rule to reclaim its space.
//!
//! Other instances' writes are seen (1) at once for a tag or manifest
//! this instance does not know (looked up in S3 before answering 404),
//! and (2) within one refresh interval for everything else (a moved tag,
//! deletes, the catalogue and tag lists): the in-memory index is rebuilt
//! from a listing of `<prefix>repositories/` every `--s3-refresh-secs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use airlift_oci::documents::Descriptor;
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;

use super::backend::{BlobBackend, BlobStream, MetaBackend};
use super::bucket::{build, plan, Fact, Keys, Plan};
use super::error::{StoreError, StoreResult};
use super::index::{ManifestInfo, Repos};
use crate::services::registry::s3::{self, Client};

/// Requests in flight at once while loading metadata.
const PARALLEL: usize = 16;

/// The S3 backend of a [`super::Store`].
#[derive(Debug)]
pub struct Remote {
    pub client: Client,
    pub keys: Keys,
    /// Blobs of at least this many bytes are sent in parts.
    pub threshold: u64,
    /// How often the index is rebuilt from the bucket.
    pub refresh_every: Duration,
    /// Metadata objects by key: (ETag, content), so a refresh only
    /// fetches what changed.
    objects: Mutex<HashMap<String, (String, Bytes)>>,
    /// Sizes of manifest blobs seen (content-addressed, so they never change).
    sizes: Mutex<HashMap<Digest, u64>>,
}

/// The S3 options of `serve`, resolved.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub s3: s3::Config,
    pub prefix: String,
    pub threshold: u64,
    pub refresh_every: Duration,
}

impl Remote {
    /// A backend for `config` (no request is made).
    pub fn new(config: &RemoteConfig) -> Result<Remote> {
        Ok(Remote {
            client: Client::new(&config.s3)?,
            keys: Keys::new(&config.prefix),
            threshold: config.threshold,
            refresh_every: config.refresh_every,
            objects: Mutex::new(HashMap::new()),
            sizes: Mutex::new(HashMap::new()),
        })
    }

    /// The stored size of blob `d`, if it is stored.
    pub async fn blob_size(&self, d: &Digest) -> Result<Option<u64>> {
        self.client.head(&self.keys.blob(d)).await
    }

    async fn manifest_size(&self, d: &Digest) -> Result<Option<u64>> {
        if let Some(s) = self.sizes.lock().ok().and_then(|m| m.get(d).copied()) {
            return Ok(Some(s));
        }
        let size = self.blob_size(d).await?;
        if let (Some(s), Ok(mut m)) = (size, self.sizes.lock()) {
            m.insert(d.clone(), s);
        }
        Ok(size)
    }

    /// Send the verified file `path` as blob `d` (skipped if a blob of
    /// the same size is there already), then check its size.
    pub async fn put_blob_file(&self, path: &Path, d: &Digest) -> Result<()> {
        let key = self.keys.blob(d);
        let size = tokio::fs::metadata(path)
            .await
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len();
        if self.client.head(&key).await? == Some(size) {
            return Ok(());
        }
        match plan(size, self.threshold) {
            Plan::Single => self.client.put_file(&key, path, size).await?,
            Plan::Multipart { part_size, parts } => {
                let id = self.client.create_multipart(&key).await?;
                tracing::debug!(digest = %d, size, parts, "S3 multipart upload of {key} started");
                let sent = self
                    .send_parts(&key, &id, path, size, part_size, parts)
                    .await;
                if let Err(e) = sent {
                    if let Err(a) = self.client.abort_multipart(&key, &id).await {
                        tracing::warn!("aborting the multipart upload of {key}: {a:#}");
                    }
                    return Err(e);
                }
            }
        }
        match self.client.head(&key).await? {
            Some(s) if s == size => Ok(()),
            found => {
                self.client.delete(&key).await.ok();
                bail!(
                    "{} holds {found:?} bytes after the upload, not {size}; it was removed",
                    self.client.describe_key(&key)
                )
            }
        }
    }

    async fn send_parts(
        &self,
        key: &str,
        id: &str,
        path: &Path,
        size: u64,
        part_size: u64,
        parts: u64,
    ) -> Result<()> {
        let mut sent = Vec::new();
        for n in 0..parts {
            let offset = n * part_size;
            let len = part_size.min(size - offset);
            let number = usize::try_from(n + 1).context("too many parts")?;
            let part = self
                .client
                .upload_part(key, id, number, path, offset, len)
                .await?;
            tracing::debug!("S3 multipart upload of {key}: sent part {}/{parts}", n + 1);
            sent.push(part);
        }
        self.client.complete_multipart(key, id, sent).await
    }

    /// Store manifest bytes as blob `d` unless it is there.
    pub async fn put_blob_bytes(&self, d: &Digest, bytes: Bytes) -> Result<()> {
        let key = self.keys.blob(d);
        if self.client.head(&key).await?.is_none() {
            self.client.put_bytes(&key, bytes).await?;
        }
        Ok(())
    }

    /// Write a metadata object.
    pub async fn put_object(&self, key: &str, content: impl Into<Bytes>) -> Result<()> {
        self.client.put_bytes(key, content.into()).await
    }

    /// Remove a metadata or blob object.
    pub async fn delete_object(&self, key: &str) -> Result<()> {
        self.client.delete(key).await
    }

    /// Encode a referrer descriptor.
    pub fn referrer_json(desc: &Descriptor) -> Result<Vec<u8>> {
        serde_json::to_vec(desc).context("encoding a referrer descriptor")
    }

    /// A member manifest of `repo` as stored in the bucket.
    pub async fn member(&self, repo: &str, d: &Digest) -> Result<Option<ManifestInfo>> {
        let Some(mt) = self.client.get(&self.keys.marker(repo, d)).await? else {
            return Ok(None);
        };
        let Some(size) = self.manifest_size(d).await? else {
            return Ok(None);
        };
        Ok(Some(ManifestInfo {
            media_type: String::from_utf8_lossy(&mt).into_owned(),
            size,
        }))
    }

    /// The digest a tag names in the bucket.
    pub async fn tag(&self, repo: &str, tag: &str) -> Result<Option<Digest>> {
        let key = self.keys.tag(repo, tag);
        let Some(b) = self.client.get(&key).await? else {
            return Ok(None);
        };
        let d = String::from_utf8_lossy(&b)
            .trim()
            .parse()
            .with_context(|| {
                format!("{} does not hold a digest", self.client.describe_key(&key))
            })?;
        Ok(Some(d))
    }

    /// Rebuild the whole index from the bucket.
    pub async fn load_index(&self) -> Result<Repos> {
        let listed = self.client.list(&self.keys.repositories()).await?;
        let mut wanted = Vec::new();
        let mut facts = Vec::new();
        {
            let cache = self
                .objects
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for o in &listed {
                let Some(fact) = self.keys.parse(&o.key) else {
                    continue;
                };
                if cache.get(&o.key).is_none_or(|(etag, _)| *etag != o.etag) {
                    wanted.push(o.clone());
                }
                facts.push((o.key.clone(), fact));
            }
        }
        let fetched: Vec<Result<(s3::ObjectInfo, Option<Bytes>)>> =
            futures_util::stream::iter(wanted)
                .map(|o| async move {
                    let b = self.client.get(&o.key).await?;
                    Ok((o, b))
                })
                .buffer_unordered(PARALLEL)
                .collect()
                .await;
        let mut contents = HashMap::new();
        {
            let mut cache = self
                .objects
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?;
            for f in fetched {
                if let (o, Some(b)) = f? {
                    cache.insert(o.key, (o.etag, b));
                }
            }
            let live: std::collections::HashSet<&str> =
                listed.iter().map(|o| o.key.as_str()).collect();
            cache.retain(|k, _| live.contains(k.as_str()));
            for (key, _) in &facts {
                if let Some((_, b)) = cache.get(key) {
                    contents.insert(key.clone(), b.clone());
                }
            }
        }
        let digests: Vec<Digest> = facts
            .iter()
            .filter_map(|(_, f)| match f {
                Fact::Manifest { digest, .. } => Some(digest.clone()),
                _ => None,
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let sizes: Vec<Result<(Digest, Option<u64>)>> = futures_util::stream::iter(digests)
            .map(|d| async move {
                let s = self.manifest_size(&d).await?;
                Ok((d, s))
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        let mut size_of = HashMap::new();
        for s in sizes {
            let (d, s) = s?;
            if let Some(s) = s {
                size_of.insert(d, s);
            }
        }
        Ok(build(facts, &contents, &size_of))
    }
}

#[async_trait]
impl BlobBackend for Remote {
    async fn stat(&self, d: &Digest) -> StoreResult<Option<u64>> {
        Ok(self.blob_size(d).await?)
    }

    async fn read(&self, d: &Digest, start: u64, len: u64) -> StoreResult<BlobStream> {
        if len == 0 {
            return Ok(BlobStream::Whole(Bytes::new()));
        }
        let key = self.keys.blob(d);
        let stream = self
            .client
            .get_range(&key, start, len)
            .await?
            .ok_or_else(|| StoreError::BlobGone(format!("{key} is gone from the bucket")))?;
        Ok(BlobStream::Chunks(stream.boxed()))
    }

    async fn put_file(&self, file: PathBuf, d: &Digest) -> StoreResult<()> {
        let sent = self.put_blob_file(&file, d).await;
        if let Err(e) = tokio::fs::remove_file(&file).await {
            tracing::warn!("removing upload file {}: {e}", file.display());
        }
        Ok(sent.with_context(|| format!("storing blob {d} in S3"))?)
    }

    async fn put_bytes(&self, d: &Digest, bytes: Bytes) -> StoreResult<()> {
        Ok(self.put_blob_bytes(d, bytes).await?)
    }

    async fn delete(&self, d: &Digest) -> StoreResult<bool> {
        if self.blob_size(d).await?.is_none() {
            return Ok(false);
        }
        self.client.delete(&self.keys.blob(d)).await?;
        Ok(true)
    }

    fn remote(&self) -> bool {
        true
    }

    fn describe(&self, d: &Digest) -> String {
        self.client.describe_key(&self.keys.blob(d))
    }
}

#[async_trait]
impl MetaBackend for Remote {
    async fn load(&self) -> StoreResult<Repos> {
        Ok(self.load_index().await?)
    }

    async fn put_manifest(&self, repo: &str, d: &Digest, media_type: &str) -> StoreResult<()> {
        Ok(self
            .put_object(&self.keys.marker(repo, d), media_type.to_string())
            .await?)
    }

    async fn put_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        desc: &Descriptor,
    ) -> StoreResult<()> {
        let key = self.keys.referrer(repo, subject, &desc.digest);
        Ok(self.put_object(&key, Remote::referrer_json(desc)?).await?)
    }

    async fn put_tag(&self, repo: &str, tag: &str, d: &Digest) -> StoreResult<()> {
        Ok(self
            .put_object(&self.keys.tag(repo, tag), d.to_string())
            .await?)
    }

    async fn remove_manifest(&self, repo: &str, d: &Digest) -> StoreResult<()> {
        Ok(self.delete_object(&self.keys.marker(repo, d)).await?)
    }

    async fn remove_tag(&self, repo: &str, tag: &str) -> StoreResult<()> {
        Ok(self.delete_object(&self.keys.tag(repo, tag)).await?)
    }

    async fn remove_referrer(&self, repo: &str, subject: &Digest, d: &Digest) -> StoreResult<()> {
        Ok(self
            .delete_object(&self.keys.referrer(repo, subject, d))
            .await?)
    }

    async fn find_tag(&self, repo: &str, tag: &str) -> StoreResult<Option<Digest>> {
        Ok(self.tag(repo, tag).await?)
    }

    async fn find_member(&self, repo: &str, d: &Digest) -> StoreResult<Option<ManifestInfo>> {
        Ok(self.member(repo, d).await?)
    }

    fn refresh_every(&self) -> Option<Duration> {
        Some(self.refresh_every)
    }

    fn describe(&self) -> String {
        self.client.describe_key(&self.keys.repositories())
    }
}
