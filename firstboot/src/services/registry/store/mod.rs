//! Storage: blobs found by digest in the writable data folder first,
//! then in the read-only layers; repository metadata in memory, backed
//! by small atomic files (see [`meta`]); uploads streaming into
//! `DATA/uploads/`. This struct is the storage boundary: handlers only
//! call its methods. With an S3 backend ([`remote`]), blobs and metadata
//! live in a bucket instead (same layout) and `DATA` holds upload files only.
//!
//! ```text
//! DATA/oci-layout, DATA/index.json   (an OCI layout, index unused)
//! DATA/blobs/<alg>/<hex>             blobs and manifests, content-addressed
//! DATA/repositories/…                see meta
//! DATA/uploads/<id>                  uploads in progress (cleared at start)
//! ```

pub mod index;
pub mod layers;
pub mod links;
pub mod meta;
pub mod remote;
pub mod snapshot;
pub mod upload_table;
pub mod uploads;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use airlift_oci::documents::Descriptor;
use airlift_oci::{atomic, Digest, Layout};
use anyhow::{Context, Result};
use bytes::Bytes;

use self::index::{ManifestInfo, RepoIndex, Repos};
use self::meta::Meta;
use self::remote::{Remote, RemoteConfig};
use self::upload_table::{Slot, UploadPolicy, UploadTable};
use self::uploads::Upload;
use super::error::{Code, RegistryError};
use super::route::ManifestRef;

/// Where a blob is and its size.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub at: BlobAt,
    pub size: u64,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAt {
    /// A local file (data folder or read-only layer).
    File(PathBuf),
    /// An object of the S3 backend (its key).
    S3(String),
}

/// A manifest to store.
pub struct NewManifest<'a> {
    pub repo: &'a str,
    /// Tags to point at this manifest (none for a push by digest).
    pub tags: &'a [&'a str],
    pub digest: &'a Digest,
    pub bytes: Bytes,
    pub media_type: &'a str,
    /// The subject and this manifest's descriptor for its referrers list.
    pub referrer: Option<(Digest, Descriptor)>,
}

/// What deleting a tag did.
#[derive(Debug, PartialEq, Eq)]
pub enum Removed {
    Yes,
    NotFound,
    /// Only a read-only layer has it.
    ReadOnly,
}

/// What deleting a blob through a repository did.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobRemoved {
    /// Bytes removed, absent, or in a read-only layer.
    Done(Removed),
    /// The bytes stay: manifests of these repositories reference them.
    Kept(Vec<String>),
}

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

/// The registry's storage.
pub struct Store {
    data: Layout,
    meta: Meta,
    uploads_dir: PathBuf,
    layers: Vec<Layout>,
    layer_repos: Repos,
    repos: RwLock<Repos>,
    manifests: RwLock<HashMap<Digest, Bytes>>,
    uploads: Arc<UploadTable>,
    /// Blobs pushed or mounted into each repository (see [`links`]).
    links: links::BlobLinks,
    /// Serialises metadata writes so disk and memory change in the same order.
    write: tokio::sync::Mutex<()>,
    /// The S3 backend, if blobs and metadata live in a bucket.
    remote: Option<Arc<Remote>>,
    /// Counts this process's metadata writes, so a refresh from S3 that
    /// raced one is not installed over it.
    writes: AtomicU64,
}

fn no_remote() -> RegistryError {
    RegistryError::internal(anyhow::anyhow!("an S3 blob without an S3 backend"))
}

fn lock_poisoned<T>(_: T) -> RegistryError {
    RegistryError::internal(anyhow::anyhow!("a registry lock was poisoned"))
}

impl Store {
    /// Open the data folder (created if needed) and index the read-only
    /// layers. Leftover uploads and partial blobs and metadata temp
    /// files of a previous run are removed. Fails naming the layer and digest if a layer is broken.
    pub fn open(data: &Path, layer_dirs: &[PathBuf]) -> Result<Store> {
        Store::open_with(data, layer_dirs, None)
    }

    /// [`Store::open`], with blobs and metadata in S3 when `remote` is
    /// given (then `data` holds upload files only, and the index stays
    /// empty until [`Store::refresh`]).
    pub fn open_with(
        data: &Path,
        layer_dirs: &[PathBuf],
        remote: Option<RemoteConfig>,
    ) -> Result<Store> {
        let layout = Layout::create(data)
            .with_context(|| format!("preparing the data folder {}", data.display()))?;
        let uploads_dir = data.join("uploads");
        if uploads_dir.exists() {
            std::fs::remove_dir_all(&uploads_dir)
                .with_context(|| format!("clearing {}", uploads_dir.display()))?;
        }
        atomic::create_dir_all(&uploads_dir)?;
        atomic::remove_stale_temps(&data.join("blobs"))?;
        atomic::remove_stale_temps(&data.join("repositories"))?;
        let meta = Meta::new(&data.join("repositories"))?;

        let mut layer_repos = Repos::new();
        let mut cached = Vec::new();
        let mut layers = Vec::new();
        for dir in layer_dirs {
            let l = layers::index_layout(dir, &mut layer_repos, &mut cached)
                .with_context(|| format!("loading the read-only layer {}", dir.display()))?;
            layers.push(l);
        }
        let size_of = |d: &Digest| std::fs::metadata(layout.blob_path(d)).ok().map(|m| m.len());
        let remote = remote.as_ref().map(Remote::new).transpose()?.map(Arc::new);
        let repos = if remote.is_some() {
            Repos::new()
        } else {
            meta.load(&size_of)
                .with_context(|| format!("loading repositories from {}", data.display()))?
        };
        tracing::info!(
            layers = layers.len(),
            layer_repositories = layer_repos.len(),
            data_repositories = repos.len(),
            "storage ready in {}",
            data.display()
        );
        let uploads = Arc::new(UploadTable::default());
        uploads.spawn_sweeper();
        Ok(Store {
            data: layout,
            meta,
            uploads_dir,
            layers,
            layer_repos,
            repos: RwLock::new(repos),
            manifests: RwLock::new(cached.into_iter().collect()),
            uploads,
            links: links::BlobLinks::default(),
            write: tokio::sync::Mutex::new(()),
            remote,
            writes: AtomicU64::new(0),
        })
    }

    /// The S3 backend, if any.
    pub fn remote(&self) -> Option<&Remote> {
        self.remote.as_deref()
    }

    /// Find a blob: data folder first, then each layer. Metadata only.
    /// With S3, the layers are looked at first (local), then the bucket;
    /// an S3 failure is logged and the blob reported unknown.
    pub async fn blob(&self, d: &Digest) -> Option<BlobFile> {
        let data = self
            .remote
            .is_none()
            .then(|| self.data.blob_path(d))
            .into_iter();
        let candidates = data.chain(self.layers.iter().map(|l| l.blob_path(d)));
        for path in candidates {
            if let Ok(m) = tokio::fs::metadata(&path).await {
                if m.is_file() {
                    return Some(BlobFile {
                        at: BlobAt::File(path),
                        size: m.len(),
                    });
                }
            }
        }
        let remote = self.remote.as_ref()?;
        match remote.blob_size(d).await {
            Ok(Some(size)) => Some(BlobFile {
                at: BlobAt::S3(remote.keys.blob(d)),
                size,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("looking up blob {d}: {e:#}");
                None
            }
        }
    }

    /// A whole blob's bytes (for manifests and image configs: small).
    pub async fn read_blob(&self, b: &BlobFile) -> Result<Bytes, RegistryError> {
        match &b.at {
            BlobAt::File(path) => Ok(Bytes::from(tokio::fs::read(path).await?)),
            BlobAt::S3(key) => {
                let remote = self.remote.as_ref().ok_or_else(no_remote)?;
                remote.client.get(key).await?.ok_or_else(|| {
                    RegistryError::new(Code::BlobUnknown, format!("{key} is gone from the bucket"))
                })
            }
        }
    }

    /// `len` bytes from `start` of an S3 blob, streamed from the bucket.
    pub async fn remote_body(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<axum::body::Body, RegistryError> {
        if len == 0 {
            return Ok(axum::body::Body::empty());
        }
        let remote = self.remote.as_ref().ok_or_else(no_remote)?;
        let stream = remote
            .client
            .get_range(key, start, len)
            .await?
            .ok_or_else(|| {
                RegistryError::new(Code::BlobUnknown, format!("{key} is gone from the bucket"))
            })?;
        Ok(axum::body::Body::from_stream(stream))
    }

    /// Resolve like [`Store::resolve`]; with S3, a tag or manifest this
    /// instance does not know is looked up in the bucket (another
    /// instance may have just pushed it) and remembered.
    pub async fn find(
        &self,
        repo: &str,
        r: &ManifestRef,
    ) -> Result<Option<(Digest, ManifestInfo)>, RegistryError> {
        if let Some(found) = self.resolve(repo, r) {
            return Ok(Some(found));
        }
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let (digest, tag) = match r {
            ManifestRef::Digest(d) => (d.clone(), None),
            ManifestRef::Tag(t) => match remote.tag(repo, t).await? {
                Some(d) => (d, Some(t.clone())),
                None => return Ok(None),
            },
        };
        let Some(info) = remote.member(repo, &digest).await? else {
            return Ok(None);
        };
        let mut repos = self.repos.write().map_err(lock_poisoned)?;
        let ri = repos.entry(repo.to_string()).or_default();
        ri.manifests.insert(digest.clone(), info.clone());
        if let Some(t) = tag {
            ri.tags.insert(t, digest.clone());
        }
        Ok(Some((digest, info)))
    }

    /// With S3, rebuild the index from the bucket (no-op otherwise). Not
    /// installed if this process wrote metadata meanwhile (the next
    /// refresh will include that write).
    pub async fn refresh(&self) -> Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let before = self.writes.load(Ordering::SeqCst);
        let repos = remote.load().await?;
        let _guard = self.write.lock().await;
        if self.writes.load(Ordering::SeqCst) != before {
            tracing::debug!("a write raced the S3 refresh; keeping the index until the next one");
            return Ok(());
        }
        let mut current = self
            .repos
            .write()
            .map_err(|_| anyhow::anyhow!("a registry lock was poisoned"))?;
        if *current != repos {
            *current = repos;
            drop(current);
            super::changes::bump();
        }
        Ok(())
    }

    /// With S3, refresh the index every `--s3-refresh-secs` forever
    /// (returns at once otherwise). Failures are logged and retried.
    pub async fn keep_in_sync(&self) {
        let Some(remote) = &self.remote else {
            return;
        };
        let mut tick = tokio::time::interval(remote.refresh_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!("refreshing the index from S3: {e:#}");
            }
        }
    }

    /// Does the repository exist (data or layers)?
    pub fn repo_exists(&self, repo: &str) -> bool {
        self.layer_repos.contains_key(repo)
            || self
                .repos
                .read()
                .map(|r| r.contains_key(repo))
                .unwrap_or(false)
    }

    fn with_repo<T>(&self, repo: &str, f: impl Fn(&RepoIndex) -> Option<T>) -> Option<T> {
        let data = self.repos.read().ok()?;
        data.get(repo)
            .and_then(&f)
            .or_else(|| self.layer_repos.get(repo).and_then(&f))
    }

    /// Resolve a tag or digest to a member manifest of `repo`.
    pub fn resolve(&self, repo: &str, r: &ManifestRef) -> Option<(Digest, ManifestInfo)> {
        let digest = match r {
            ManifestRef::Digest(d) => d.clone(),
            ManifestRef::Tag(t) => self.with_repo(repo, |ri| ri.tags.get(t).cloned())?,
        };
        let info = self.with_repo(repo, |ri| ri.manifests.get(&digest).cloned())?;
        Some((digest, info))
    }

    /// A manifest's bytes (cached in memory after the first read).
    pub async fn manifest_bytes(&self, d: &Digest) -> Result<Bytes, RegistryError> {
        if let Some(b) = self.manifests.read().map_err(lock_poisoned)?.get(d) {
            return Ok(b.clone());
        }
        let blob = self.blob(d).await.ok_or_else(|| {
            RegistryError::new(Code::ManifestUnknown, format!("manifest {d} is gone"))
        })?;
        let bytes = self.read_blob(&blob).await?;
        if let BlobAt::S3(key) = &blob.at {
            let (actual, _) = airlift_oci::digest::hash_reader(d.algorithm(), &bytes[..])?;
            if &actual != d {
                return Err(RegistryError::internal(anyhow::anyhow!(
                    "manifest {d} read from S3 object {key} has digest {actual}; the bucket's copy is damaged"
                )));
            }
        }
        self.manifests
            .write()
            .map_err(lock_poisoned)?
            .insert(d.clone(), bytes.clone());
        Ok(bytes)
    }

    /// Store a manifest: blob, membership marker, referrer, then tag,
    /// each durable before the next.
    pub async fn put_manifest(&self, m: NewManifest<'_>) -> Result<(), RegistryError> {
        let _guard = self.write.lock().await;
        let (data, meta) = (self.data.clone(), self.meta.clone());
        let (repo, tags, digest, media_type) = (
            m.repo.to_string(),
            m.tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            m.digest.clone(),
            m.media_type.to_string(),
        );
        let (bytes, referrer) = (m.bytes.clone(), m.referrer.clone());
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(remote) = &self.remote {
            let k = &remote.keys;
            remote.put_blob_bytes(&digest, bytes).await?;
            remote
                .put(&k.marker(&repo, &digest), media_type.into_bytes())
                .await?;
            if let Some((subject, desc)) = &referrer {
                remote
                    .put(
                        &k.referrer(&repo, subject, &desc.digest),
                        Remote::referrer_json(desc)?,
                    )
                    .await?;
            }
            for tag in &tags {
                remote
                    .put(&k.tag(&repo, tag), digest.to_string().into_bytes())
                    .await?;
            }
        } else {
            tokio::task::spawn_blocking(move || -> Result<()> {
                if !data.has_blob(&digest) {
                    data.put_blob(&bytes, Some(&digest))?;
                }
                meta.put_manifest(&repo, &digest, &media_type)?;
                if let Some((subject, desc)) = &referrer {
                    meta.put_referrer(&repo, subject, desc)?;
                }
                for tag in &tags {
                    meta.put_tag(&repo, tag, &digest)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| RegistryError::internal(e.into()))??;
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
        super::changes::bump();
        Ok(())
    }

    /// Make a manifest already stored as a blob a member of `repo` (an
    /// index's child pushed into another repository). No-op if it is one.
    pub async fn adopt_manifest(
        &self,
        repo: &str,
        d: &Digest,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        if self
            .resolve(repo, &ManifestRef::Digest(d.clone()))
            .is_some()
        {
            return Ok(());
        }
        let blob = self.blob(d).await.ok_or_else(|| {
            RegistryError::new(
                Code::ManifestBlobUnknown,
                format!("manifest {d} is not stored"),
            )
        })?;
        let _guard = self.write.lock().await;
        let (meta, name, digest, mt) = (
            self.meta.clone(),
            repo.to_string(),
            d.clone(),
            media_type.to_string(),
        );
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(remote) = &self.remote {
            remote
                .put(&remote.keys.marker(&name, &digest), mt.into_bytes())
                .await?;
        } else {
            tokio::task::spawn_blocking(move || meta.put_manifest(&name, &digest, &mt))
                .await
                .map_err(|e| RegistryError::internal(e.into()))??;
        }
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
        super::changes::bump();
        Ok(())
    }

    /// Remove a manifest from a repository (its tags and referrer entry
    /// too). The blob stays: other repositories may share it.
    pub async fn delete_manifest(&self, repo: &str, d: &Digest) -> Result<Removed, RegistryError> {
        self.find(repo, &ManifestRef::Digest(d.clone())).await?;
        let _guard = self.write.lock().await;
        let (tags, subjects) = {
            let repos = self.repos.read().map_err(lock_poisoned)?;
            let Some(ri) = repos.get(repo).filter(|ri| ri.manifests.contains_key(d)) else {
                let in_layer = self
                    .layer_repos
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
        let (meta, name, digest) = (self.meta.clone(), repo.to_string(), d.clone());
        let (t2, s2) = (tags.clone(), subjects.clone());
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(remote) = &self.remote {
            let k = &remote.keys;
            for t in &t2 {
                remote.delete(&k.tag(&name, t)).await?;
            }
            for s in &s2 {
                remote.delete(&k.referrer(&name, s, &digest)).await?;
            }
            remote.delete(&k.marker(&name, &digest)).await?;
        } else {
            tokio::task::spawn_blocking(move || -> Result<()> {
                for t in &t2 {
                    meta.remove_tag(&name, t)?;
                }
                for s in &s2 {
                    meta.remove_referrer(&name, s, &digest)?;
                }
                meta.remove_manifest(&name, &digest)
            })
            .await
            .map_err(|e| RegistryError::internal(e.into()))??;
        }
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
        super::changes::bump();
        Ok(Removed::Yes)
    }

    /// Remove a tag.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<Removed, RegistryError> {
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
                .layer_repos
                .get(repo)
                .is_some_and(|ri| ri.tags.contains_key(tag));
            return Ok(if in_layer {
                Removed::ReadOnly
            } else {
                Removed::NotFound
            });
        }
        let (meta, name, t) = (self.meta.clone(), repo.to_string(), tag.to_string());
        self.writes.fetch_add(1, Ordering::SeqCst);
        if let Some(remote) = &self.remote {
            remote.delete(&remote.keys.tag(&name, &t)).await?;
        } else {
            tokio::task::spawn_blocking(move || meta.remove_tag(&name, &t))
                .await
                .map_err(|e| RegistryError::internal(e.into()))??;
        }
        if let Some(ri) = self.repos.write().map_err(lock_poisoned)?.get_mut(repo) {
            ri.tags.remove(tag);
        }
        super::changes::bump();
        Ok(Removed::Yes)
    }

    /// Blob `d` as served through `repo`: only if it was pushed or
    /// mounted into `repo`, is one of its manifests, or one of its
    /// manifests references it (config, layer, index child, subject).
    pub async fn blob_in(&self, repo: &str, d: &Digest) -> Option<BlobFile> {
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
            data.get(repo)
                .into_iter()
                .chain(self.layer_repos.get(repo))
                .flat_map(|ri| ri.manifests.keys().cloned())
                .collect()
        };
        for m in members {
            match self.manifest_bytes(&m).await {
                Ok(bytes) if references(&bytes, d) => {
                    self.links.link(repo, d);
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
    pub async fn referencing_repos(&self, d: &Digest) -> Result<Vec<String>, RegistryError> {
        let members: Vec<(String, Vec<Digest>)> = {
            let data = self.repos.read().map_err(lock_poisoned)?;
            data.iter()
                .chain(self.layer_repos.iter())
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
    pub async fn delete_blob_in(
        &self,
        repo: &str,
        d: &Digest,
    ) -> Result<BlobRemoved, RegistryError> {
        let users = self.referencing_repos(d).await?;
        if !users.is_empty() {
            let writable = match &self.remote {
                Some(remote) => remote.blob_size(d).await?.is_some(),
                None => tokio::fs::metadata(self.data.blob_path(d)).await.is_ok(),
            };
            if !writable {
                return Ok(BlobRemoved::Done(if self.blob(d).await.is_some() {
                    Removed::ReadOnly
                } else {
                    Removed::NotFound
                }));
            }
            tracing::info!(repository = %repo, digest = %d, referenced_by = ?users,
                "blob delete: bytes kept, other manifests reference them");
            return Ok(BlobRemoved::Kept(users));
        }
        Ok(BlobRemoved::Done(self.delete_blob(d).await?))
    }

    /// Remove a blob from the data folder.
    pub async fn delete_blob(&self, d: &Digest) -> Result<Removed, RegistryError> {
        if let Some(remote) = &self.remote {
            if remote.blob_size(d).await?.is_some() {
                remote.delete(&remote.keys.blob(d)).await?;
                self.manifests.write().map_err(lock_poisoned)?.remove(d);
                return Ok(Removed::Yes);
            }
            return Ok(if self.blob(d).await.is_some() {
                Removed::ReadOnly
            } else {
                Removed::NotFound
            });
        }
        let path = self.data.blob_path(d);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.manifests.write().map_err(lock_poisoned)?.remove(d);
                Ok(Removed::Yes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(if self.blob(d).await.is_some() {
                    Removed::ReadOnly
                } else {
                    Removed::NotFound
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A repository's tags, sorted; None if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        let data = self.repos.read().ok()?;
        let (a, b) = (data.get(repo), self.layer_repos.get(repo));
        if a.is_none() && b.is_none() {
            return None;
        }
        let mut tags: Vec<String> = a
            .into_iter()
            .chain(b)
            .flat_map(|ri| ri.tags.keys().cloned())
            .collect();
        tags.sort();
        tags.dedup();
        Some(tags)
    }

    /// Every stored repository name, sorted.
    pub fn catalog(&self) -> Vec<String> {
        let mut names: Vec<String> = self.layer_repos.keys().cloned().collect();
        if let Ok(data) = self.repos.read() {
            names.extend(data.keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// The referrers of `subject` in `repo`, by digest.
    pub fn referrers(&self, repo: &str, subject: &Digest) -> Vec<Descriptor> {
        let mut all = std::collections::BTreeMap::new();
        if let Some(m) = self
            .layer_repos
            .get(repo)
            .and_then(|ri| ri.referrers.get(subject))
        {
            all.extend(m.clone());
        }
        if let Ok(data) = self.repos.read() {
            if let Some(m) = data.get(repo).and_then(|ri| ri.referrers.get(subject)) {
                all.extend(m.clone());
            }
        }
        all.into_values().collect()
    }

    /// Start an upload in `repo` for `client`; returns its id. Idle
    /// uploads are expired first; a full table answers 429.
    pub async fn start_upload(
        &self,
        repo: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<String, RegistryError> {
        self.uploads.expire().await;
        let id = uuid::Uuid::new_v4().to_string();
        let upload = Upload::create(&self.uploads_dir, &id, repo).await?;
        if let Err(refused) = self.uploads.insert(&id, repo, client, upload) {
            let (e, upload) = *refused;
            upload.discard().await;
            return Err(e);
        }
        Ok(id)
    }

    /// An upload session of `repo`, or `BLOB_UPLOAD_UNKNOWN`. The slot
    /// is None once the upload has been finished or cancelled.
    pub fn upload(&self, repo: &str, id: &str) -> Result<Slot, RegistryError> {
        self.uploads.get(repo, id)
    }

    /// Forget an upload (after finish or cancel).
    pub fn forget_upload(&self, id: &str) {
        self.uploads.remove(id);
    }

    /// The uploads in progress (caps and expiry).
    pub fn uploads(&self) -> &UploadTable {
        &self.uploads
    }

    /// Set the caps and idle time of uploads.
    pub fn set_upload_policy(&self, policy: UploadPolicy) {
        self.uploads.set_policy(policy);
    }

    /// Make a verified upload file the blob `d` (renamed into place).
    /// With S3, the file is sent to the bucket (see [`remote`]) and removed.
    pub async fn commit_blob(&self, file: PathBuf, d: &Digest) -> Result<(), RegistryError> {
        if let Some(remote) = &self.remote {
            let sent = remote.put_blob_file(&file, d).await;
            if let Err(e) = tokio::fs::remove_file(&file).await {
                tracing::warn!("removing upload file {}: {e}", file.display());
            }
            return Ok(sent.with_context(|| format!("storing blob {d} in S3"))?);
        }
        let dest = self.data.blob_path(d);
        tokio::task::spawn_blocking(move || -> Result<()> {
            let dir = dest.parent().expect("blob paths have a folder");
            atomic::create_dir_all(dir)?;
            if dest.is_file() {
                std::fs::remove_file(&file).ok();
                return Ok(());
            }
            std::fs::rename(&file, &dest)
                .with_context(|| format!("renaming {} to {}", file.display(), dest.display()))?;
            atomic::sync_dir(dir)
        })
        .await
        .map_err(|e| RegistryError::internal(e.into()))??;
        Ok(())
    }
}
