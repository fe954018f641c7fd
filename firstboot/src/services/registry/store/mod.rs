//! Storage: blobs found by digest in the writable backend (the data
//! folder, or an S3 bucket) and the read-only layers; repository
//! metadata in memory, made durable by a metadata backend (small atomic
//! files, see [`meta`], or bucket objects, see [`remote`]); uploads
//! streaming into `DATA/uploads/`. This struct is the storage boundary:
//! handlers only call its methods, which answer with [`StoreError`]
//! and know no HTTP. Both backends sit behind the traits of [`backend`],
//! so every operation has one code path.
//!
//! ```text
//! DATA/oci-layout, DATA/index.json   (an OCI layout, index unused)
//! DATA/blobs/<alg>/<hex>             blobs and manifests, content-addressed
//! DATA/repositories/…                see meta
//! DATA/uploads/<id>                  uploads in progress (cleared at start)
//! ```

pub mod backend;
pub mod bucket;
pub mod changes;
mod collect;
pub mod error;
pub mod file_read;
pub mod folder;
pub mod index;
pub mod layers;
pub mod links;
pub mod meta;
mod references;
pub mod remote;
pub mod snapshot;
pub mod upload_table;
pub mod uploads;
mod writes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use airlift_oci::documents::Descriptor;
use airlift_oci::{atomic, Digest, Layout};
use anyhow::{Context, Result};
use bytes::Bytes;

pub use self::backend::{Blob, BlobBackend, BlobStream, MetaBackend};
pub use self::changes::Changes;
use self::error::lock_poisoned;
pub use self::error::{StoreError, StoreResult};
use self::folder::{FolderBlobs, FolderMeta};
use self::index::{ManifestInfo, RepoIndex, Repos};
pub use self::layers::{LayerSet, LayerSpec};
use self::meta::Meta;
use self::remote::{Remote, RemoteConfig};
use self::upload_table::{Slot, UploadPolicy, UploadTable};
use self::uploads::Upload;
use super::route::ManifestRef;

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

/// The registry's storage.
pub struct Store {
    /// Where pushed blobs go (the data folder or the bucket).
    blobs: Arc<dyn BlobBackend>,
    /// Where metadata changes are made durable.
    meta: Arc<dyn MetaBackend>,
    /// The read-only layers (blobs, index, manifests), swapped as one.
    layers: RwLock<Arc<LayerSet>>,
    uploads_dir: PathBuf,
    repos: RwLock<Repos>,
    manifests: RwLock<HashMap<Digest, Bytes>>,
    uploads: Arc<UploadTable>,
    /// Blobs pushed or mounted into each repository (see [`links`]).
    links: links::BlobLinks,
    /// Serialises metadata writes so storage and memory change in the same order.
    write: tokio::sync::Mutex<()>,
    /// Counts this process's metadata writes, so a refresh from shared
    /// storage that raced one is not installed over it.
    writes: AtomicU64,
    /// Bumped after every durable metadata change.
    changes: Changes,
}

impl Store {
    /// Open the data folder (created if needed) and index the read-only
    /// layers. Leftover uploads and partial blobs and metadata temp
    /// files of a previous run are removed. Fails naming the layer and digest if a layer is broken.
    pub fn open(data: &Path, layer_dirs: &[PathBuf]) -> Result<Store> {
        let specs: Vec<LayerSpec> = layer_dirs.iter().map(LayerSpec::tagged).collect();
        Store::open_with(data, &specs, None, Changes::new())
    }

    /// [`Store::open`], with blobs and metadata in S3 when `remote` is
    /// given (then `data` holds upload files only, and the index stays
    /// empty until [`Store::refresh`]), bumping `changes`.
    pub fn open_with(
        data: &Path,
        layer_specs: &[LayerSpec],
        remote: Option<RemoteConfig>,
        changes: Changes,
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

        let layers = LayerSet::index(layer_specs)?;
        let (blobs, meta, repos): (Arc<dyn BlobBackend>, Arc<dyn MetaBackend>, Repos) = match remote
        {
            Some(config) => {
                let r = Arc::new(Remote::new(&config)?);
                (r.clone(), r, Repos::new())
            }
            None => {
                let folder = FolderMeta {
                    meta: Meta::new(&data.join("repositories"))?,
                    data: layout.clone(),
                };
                let repos = folder
                    .load_now()
                    .with_context(|| format!("loading repositories from {}", data.display()))?;
                (Arc::new(FolderBlobs(layout)), Arc::new(folder), repos)
            }
        };
        tracing::info!(
            layers = layers.backends.len(),
            layer_repositories = layers.repos.len(),
            data_repositories = repos.len(),
            "storage ready in {}",
            data.display()
        );
        let uploads = Arc::new(UploadTable::default());
        uploads.spawn_sweeper();
        Ok(Store {
            blobs,
            meta,
            layers: RwLock::new(Arc::new(layers)),
            uploads_dir,
            repos: RwLock::new(repos),
            manifests: RwLock::new(HashMap::new()),
            uploads,
            links: links::BlobLinks::default(),
            write: tokio::sync::Mutex::new(()),
            writes: AtomicU64::new(0),
            changes,
        })
    }

    /// The read-only layers as of now (one consistent set).
    pub(crate) fn layer_set(&self) -> Arc<LayerSet> {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The read-only layers served now, in order.
    pub fn layers(&self) -> Vec<LayerSpec> {
        self.layer_set().specs.clone()
    }

    /// Serve these read-only layers from now on, in place of the
    /// current ones, in one step (index first, then one swap under the
    /// lock), then bump the change feed so replicas and nodes see the
    /// new tags at once. Reads the layouts' index.json and manifests:
    /// call it off the async runtime. On error nothing changes.
    pub fn set_layers(&self, specs: &[LayerSpec]) -> Result<()> {
        let set = Arc::new(LayerSet::index(specs)?);
        tracing::info!(
            layers = set.backends.len(),
            layer_repositories = set.repos.len(),
            "read-only layers swapped"
        );
        *self.layers.write().unwrap_or_else(|p| p.into_inner()) = set;
        self.changes.bump();
        Ok(())
    }

    /// This store's change feed.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Where the index is shared with other instances and must be
    /// loaded and kept in sync (S3), named for messages; None when this
    /// process is the only writer.
    pub fn shared_index(&self) -> Option<String> {
        self.meta.refresh_every().map(|_| self.meta.describe())
    }

    /// Find a blob: data first, then each layer (with a remote data
    /// backend the local layers first). Metadata only; a backend failure
    /// is logged and the blob reported unknown.
    pub async fn blob(&self, d: &Digest) -> Option<Blob> {
        let data = std::iter::once(&self.blobs);
        let layers = self.layer_set();
        let order: Vec<&Arc<dyn BlobBackend>> = if self.blobs.remote() {
            layers.backends.iter().chain(data).collect()
        } else {
            data.chain(layers.backends.iter()).collect()
        };
        for backend in order {
            match backend.stat(d).await {
                Ok(Some(size)) => return Some(Blob::new(d, size, Arc::clone(backend))),
                Ok(None) => {}
                Err(e) => tracing::warn!("looking up blob {d}: {e}"),
            }
        }
        None
    }

    /// A whole blob's bytes (for manifests and image configs: small).
    pub async fn read_blob(&self, b: &Blob) -> StoreResult<Bytes> {
        b.bytes().await
    }

    /// Resolve like [`Store::resolve`]; with shared storage, a tag or
    /// manifest this instance does not know is looked up there (another
    /// instance may have just pushed it) and remembered.
    pub async fn find(
        &self,
        repo: &str,
        r: &ManifestRef,
    ) -> StoreResult<Option<(Digest, ManifestInfo)>> {
        if let Some(found) = self.resolve(repo, r) {
            return Ok(Some(found));
        }
        let (digest, tag) = match r {
            ManifestRef::Digest(d) => (d.clone(), None),
            ManifestRef::Tag(t) => match self.meta.find_tag(repo, t).await? {
                Some(d) => (d, Some(t.clone())),
                None => return Ok(None),
            },
        };
        let Some(info) = self.meta.find_member(repo, &digest).await? else {
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

    /// With shared storage, rebuild the index from it (no-op otherwise).
    /// Not installed if this process wrote metadata meanwhile (the next
    /// refresh will include that write).
    pub async fn refresh(&self) -> StoreResult<()> {
        if self.meta.refresh_every().is_none() {
            return Ok(());
        }
        let before = self.writes.load(Ordering::SeqCst);
        let repos = self.meta.load().await?;
        let _guard = self.write.lock().await;
        if self.writes.load(Ordering::SeqCst) != before {
            tracing::debug!("a write raced the S3 refresh; keeping the index until the next one");
            return Ok(());
        }
        let mut current = self.repos.write().map_err(lock_poisoned)?;
        if *current != repos {
            *current = repos;
            drop(current);
            self.changes.bump();
        }
        Ok(())
    }

    /// With shared storage, refresh the index every `--s3-refresh-secs`
    /// forever (returns at once otherwise). Failures are logged and retried.
    pub async fn keep_in_sync(&self) {
        let Some(every) = self.meta.refresh_every() else {
            return;
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!("refreshing the index from S3: {e}");
            }
        }
    }

    /// Does the repository exist (data or layers)?
    pub fn repo_exists(&self, repo: &str) -> bool {
        self.layer_set().repos.contains_key(repo)
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
            .or_else(|| self.layer_set().repos.get(repo).and_then(&f))
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

    /// A manifest's bytes (cached in memory after the first read; read
    /// back over a network, they are re-hashed first).
    pub async fn manifest_bytes(&self, d: &Digest) -> StoreResult<Bytes> {
        if let Some(b) = self.manifests.read().map_err(lock_poisoned)?.get(d) {
            return Ok(b.clone());
        }
        if let Some(b) = self.layer_set().manifests.get(d) {
            return Ok(b.clone());
        }
        let blob = self
            .blob(d)
            .await
            .ok_or_else(|| StoreError::ManifestGone(format!("manifest {d} is gone")))?;
        let bytes = blob.bytes().await?;
        if blob.remote() {
            let (actual, _) = airlift_oci::digest::hash_reader(d.algorithm(), &bytes[..])?;
            if &actual != d {
                return Err(StoreError::internal(format!(
                    "manifest {d} read from {} has digest {actual}; the bucket's copy is damaged",
                    blob.describe()
                )));
            }
        }
        self.manifests
            .write()
            .map_err(lock_poisoned)?
            .insert(d.clone(), bytes.clone());
        Ok(bytes)
    }

    /// A repository's tags, sorted; None if the repository is unknown.
    pub fn tags(&self, repo: &str) -> Option<Vec<String>> {
        let data = self.repos.read().ok()?;
        let layers = self.layer_set();
        let (a, b) = (data.get(repo), layers.repos.get(repo));
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
        let mut names: Vec<String> = self.layer_set().repos.keys().cloned().collect();
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
            .layer_set()
            .repos
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

    /// The member manifests of `repo` (data and layers) that are
    /// indexes, by digest.
    pub fn member_indexes(&self, repo: &str) -> Vec<Digest> {
        self.members_where(repo, |_, info| {
            airlift_oci::documents::media::is_index(&info.media_type)
        })
    }

    /// The tags of `repo` (data and layers) pointing at `d`, sorted.
    pub fn tags_at(&self, repo: &str, d: &Digest) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        let mut add = |ri: &RepoIndex| {
            tags.extend(
                ri.tags
                    .iter()
                    .filter(|(_, v)| *v == d)
                    .map(|(t, _)| t.clone()),
            )
        };
        if let Ok(data) = self.repos.read() {
            data.get(repo).into_iter().for_each(&mut add);
        }
        self.layer_set().repos.get(repo).into_iter().for_each(add);
        tags.sort();
        tags.dedup();
        tags
    }

    fn members_where(
        &self,
        repo: &str,
        keep: impl Fn(&Digest, &ManifestInfo) -> bool,
    ) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        let mut add = |ri: &RepoIndex| {
            out.extend(
                ri.manifests
                    .iter()
                    .filter(|(d, i)| keep(d, i))
                    .map(|(d, _)| d.clone()),
            )
        };
        if let Ok(data) = self.repos.read() {
            data.get(repo).into_iter().for_each(&mut add);
        }
        self.layer_set().repos.get(repo).into_iter().for_each(add);
        out.sort();
        out.dedup();
        out
    }

    /// Start an upload in `repo` for `client`; returns its id. Idle
    /// uploads are expired first; a full table is [`StoreError::Busy`].
    pub async fn start_upload(
        &self,
        repo: &str,
        client: Option<std::net::IpAddr>,
    ) -> StoreResult<String> {
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

    /// An upload session of `repo`, or [`StoreError::UploadUnknown`]. The slot
    /// is None once the upload has been finished or cancelled.
    pub fn upload(&self, repo: &str, id: &str) -> StoreResult<Slot> {
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

    /// Make a verified upload file the blob `d` (renamed into place,
    /// or sent to the bucket and removed).
    pub async fn commit_blob(&self, file: PathBuf, d: &Digest) -> StoreResult<()> {
        self.blobs.put_file(file, d).await
    }
}
