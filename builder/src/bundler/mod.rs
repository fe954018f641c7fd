//! Writing the bundle: every image of the config into ONE OCI image
//! layout, blobs shared by digest, `index.json` entries named by the full
//! upstream reference (`org.opencontainers.image.ref.name` =
//! `quay.io/org/app:1.2`), and `bundle.json` beside them.
//!
//! The output folder is never left half-written: the bundle is built in
//! a temp folder beside it and swapped in atomically ([`swap`]). Blobs of
//! the bundle already there are hard-linked instead of fetched again
//! ([`crate::store`]). Images are processed one after another; within an image
//! up to [`BundleOptions::concurrency`] blobs download at once.

pub mod swap;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use airlift_appliance::bundle_manifest::{BUNDLE_MANIFEST_FILE, BUNDLE_SCHEMA};
use airlift_appliance::{Attachment, BundleImage, BundleManifest, Totals, Verifier};
use airlift_oci::documents::{media, Descriptor, Document, REF_NAME};
use airlift_oci::{atomic, Digest, Index, Layout};
use anyhow::{bail, Context, Result};

use crate::attachments::{self, Carried};
use crate::progress::Progress;
use crate::sources::{self, ImageRequest, Ingested, SourceSpec};
use crate::store::Store;
pub use crate::store::{TransferStats, Unverified};

/// Options for [`write_bundle`].
#[derive(Debug, Clone)]
pub struct BundleOptions {
    /// Appliance name and version, recorded in `bundle.json`.
    pub name: String,
    pub version: String,
    /// Blob downloads at once per image (at least 1).
    pub concurrency: usize,
    /// Show progress bars when stderr is a terminal.
    pub progress: bool,
    /// What that refers to each image is carried (`attachments:`).
    pub attachments: crate::attachments::Filter,
    /// The keys images in their scopes must be signed by (`verify:`).
    pub trust: Option<airlift_appliance::TrustPolicy>,
}

impl Default for BundleOptions {
    fn default() -> Self {
        BundleOptions {
            name: "airlift".to_string(),
            version: "0".to_string(),
            concurrency: 4,
            progress: true,
            attachments: crate::attachments::Filter::default(),
            trust: None,
        }
    }
}

/// What [`write_bundle`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleReport {
    /// The `bundle.json` written.
    pub manifest: BundleManifest,
    /// Blobs fetched vs reused from the previous bundle.
    pub stats: TransferStats,
    /// Blobs of a local layout folder symlinked without being read (only
    /// from [`write_bundle_linked`]): digest -> the source and its file.
    /// The caller must verify them before trusting their bytes.
    pub unverified: BTreeMap<Digest, Unverified>,
}

/// Write every image of `requests` into the bundle at `out_dir`,
/// replacing what is there atomically; on failure `out_dir` is untouched
/// and no temp folder is left. Runs its own tokio runtime: call
/// [`write_bundle_async`] from async code.
pub fn write_bundle(
    requests: &[ImageRequest],
    out_dir: &Path,
    opts: &BundleOptions,
) -> Result<BundleReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(write_bundle_async(requests, out_dir, opts))
}

/// [`write_bundle`] for a bundle that only feeds the ISO writer (`airlift
/// build`): blobs of local OCI layout folders are symlinked into it,
/// not read (else copied and verified as usual). Those blobs are NOT
/// verified here: [`BundleReport::unverified`] lists them and the caller
/// must check each against its digest (the ISO writer does, as it copies
/// them from their source files). Never use it for a bundle that is
/// kept: it points at its sources.
pub fn write_bundle_linked(
    requests: &[ImageRequest],
    out_dir: &Path,
    opts: &BundleOptions,
) -> Result<BundleReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(write(requests, out_dir, opts, true))
}

/// [`write_bundle`] for callers already inside a tokio runtime.
pub async fn write_bundle_async(
    requests: &[ImageRequest],
    out_dir: &Path,
    opts: &BundleOptions,
) -> Result<BundleReport> {
    write(requests, out_dir, opts, false).await
}

async fn write(
    requests: &[ImageRequest],
    out_dir: &Path,
    opts: &BundleOptions,
    link: bool,
) -> Result<BundleReport> {
    check_unique(requests)?;
    let verifier = opts
        .trust
        .as_ref()
        .map(Verifier::new)
        .transpose()
        .context("the verify: keys")?;
    swap::check_output(out_dir)?;
    let staging = swap::staging_dir(out_dir)?;
    let layout = Layout::create(staging.path())?;
    let previous = Layout::open(out_dir).ok();
    let progress = if opts.progress {
        Progress::auto(requests.len() as u64)
    } else {
        Progress::hidden()
    };
    let store = Arc::new(Store::new(layout, previous, progress.clone()));

    let result = build(requests, &store, opts, link).await;
    progress.finish();
    let images = result?;

    let manifest = finish(&store, &images, opts, verifier.as_ref())?;
    let stats = store.stats();
    let unverified = store.unverified();
    drop(store);
    swap::install(staging, out_dir)?;
    tracing::info!(
        "wrote {} images to {}: {} blobs fetched ({} bytes), {} reused from the previous bundle \
         ({} bytes), {} linked from local layouts for later verification ({} bytes); \
         {} unique bytes, {} saved by sharing",
        manifest.totals.images,
        out_dir.display(),
        stats.fetched_blobs,
        stats.fetched_bytes,
        stats.reused_blobs,
        stats.reused_bytes,
        stats.linked_blobs,
        stats.linked_bytes,
        manifest.totals.unique_bytes,
        manifest.totals.saved_bytes
    );
    Ok(BundleReport {
        manifest,
        stats,
        unverified,
    })
}

fn check_unique(requests: &[ImageRequest]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for r in requests {
        if !seen.insert(r.reference.to_string()) {
            bail!(
                "image {} is listed twice; each reference may appear once",
                r.reference
            );
        }
    }
    Ok(())
}

/// An image in the bundle: its request, what was stored, what refers to
/// it, and every blob it and they reach with its size.
struct Bundled {
    request: ImageRequest,
    ingested: Ingested,
    attachments: Vec<Carried>,
    blobs: BTreeMap<Digest, u64>,
}

async fn build(
    requests: &[ImageRequest],
    store: &Arc<Store>,
    opts: &BundleOptions,
    link: bool,
) -> Result<Vec<Bundled>> {
    let mut out = Vec::new();
    for req in requests {
        let describe = req.source.describe(&req.reference);
        store
            .progress()
            .image_started(&req.reference.to_string(), &describe);
        // Images go one at a time, so the link root is this image's.
        match &req.source {
            SourceSpec::OciLayout { path, .. } if link => store.set_link_root(Some(path)),
            _ => store.set_link_root(None),
        }
        let ingested = ingest(req, store, opts.concurrency).await;
        store.set_link_root(None);
        let ingested =
            ingested.with_context(|| format!("image {} from {describe}", req.reference))?;
        let mut blobs = image_blobs(store.layout(), &ingested.root)
            .with_context(|| format!("image {}", req.reference))?;
        let attachments = carry(req, &ingested, store, opts)
            .await
            .with_context(|| format!("attachments of image {} from {describe}", req.reference))?;
        for a in &attachments {
            blobs.extend(a.blobs.clone());
        }
        store.progress().image_done(
            &req.reference.to_string(),
            blobs.len(),
            blobs.values().sum(),
        );
        out.push(Bundled {
            request: req.clone(),
            ingested,
            attachments,
            blobs,
        });
    }
    Ok(out)
}

async fn ingest(req: &ImageRequest, store: &Arc<Store>, concurrency: usize) -> Result<Ingested> {
    match &req.source {
        SourceSpec::Registry {
            mirror,
            credentials,
            insecure,
        } => {
            sources::registry::ingest(
                &req.reference,
                mirror.as_deref(),
                credentials.as_deref(),
                *insecure,
                &req.platforms,
                store,
                concurrency,
            )
            .await
        }
        local => {
            let local = local.clone();
            let platforms = req.platforms.clone();
            let store = Arc::clone(store);
            tokio::task::spawn_blocking(move || local.ingest_local(&platforms, &store))
                .await
                .context("a bundling task panicked")?
        }
    }
}

/// Copy what refers to the image `ing` stored (see [`crate::attachments`]),
/// each attachment verified like the image; blobs are always copied,
/// never linked.
async fn carry(
    req: &ImageRequest,
    ing: &Ingested,
    store: &Arc<Store>,
    opts: &BundleOptions,
) -> Result<Vec<Carried>> {
    let filter = &opts.attachments;
    if !filter.carry {
        return Ok(Vec::new());
    }
    let subjects = attachments::subjects(store.layout(), &ing.root)?;
    match &req.source {
        SourceSpec::Registry {
            mirror,
            credentials,
            insecure,
        } => {
            let source = attachments::registry::Source {
                reference: &req.reference,
                mirror: mirror.as_deref(),
                credentials: credentials.as_deref(),
                insecure: *insecure,
            };
            attachments::registry::carry(&source, &subjects, filter, store, opts.concurrency).await
        }
        local => {
            let (local, filter, store) = (local.clone(), filter.clone(), Arc::clone(store));
            tokio::task::spawn_blocking(move || {
                attachments::local::carry(&local, &subjects, &filter, &store)
            })
            .await
            .context("a bundling task panicked")?
        }
    }
}

/// Check the images' signatures against `verifier` (the config's
/// `verify:`), then write `index.json` and `bundle.json` into the staging
/// layout: one entry per image, then one per attachment (named as
/// `airlift_appliance::bundle_manifest` says; an attachment two images
/// share is listed once). A refused image fails here, before either is
/// written: the staging folder is dropped and the output left as it was.
fn finish(
    store: &Store,
    images: &[Bundled],
    opts: &BundleOptions,
    verifier: Option<&Verifier>,
) -> Result<BundleManifest> {
    let layout = store.layout();
    let mut index = Index::empty();
    let mut entries = Vec::new();
    let mut unique: BTreeMap<Digest, u64> = BTreeMap::new();
    let mut attachment_entries = Vec::new();
    let mut named = std::collections::BTreeSet::new();
    for b in images {
        let (req, ing) = (&b.request, &b.ingested);
        unique.extend(b.blobs.clone());
        let mut desc = ing.root.clone();
        desc.annotations.clear();
        desc.annotations
            .insert(REF_NAME.to_string(), req.reference.to_string());
        index.manifests.push(desc);
        for a in &b.attachments {
            let entry = attachments::index_entry(&req.reference, a);
            if named.insert(entry.ref_name().unwrap_or_default().to_string()) {
                attachment_entries.push(entry);
            }
        }
        let mut carried: Vec<Attachment> = b.attachments.iter().map(|a| a.record.clone()).collect();
        carried.sort_by(|x, y| (&x.subject, &x.digest).cmp(&(&y.subject, &y.digest)));
        entries.push(BundleImage {
            reference: req.reference.to_string(),
            digest: ing.root.digest.clone(),
            media_type: ing.root.media_type.clone(),
            platforms: ing.platforms.clone(),
            size: b.blobs.values().sum(),
            attachments: carried,
            signatures: Vec::new(),
        });
    }
    crate::attachments::verify::check(layout, &mut entries, verifier)?;
    index.manifests.extend(attachment_entries);
    layout.write_index(&index)?;
    let unique_bytes: u64 = unique.values().sum();
    let referenced_bytes: u64 = entries.iter().map(|e| e.size).sum();
    let manifest = BundleManifest {
        schema: BUNDLE_SCHEMA.to_string(),
        name: opts.name.clone(),
        version: opts.version.clone(),
        images: entries,
        totals: Totals {
            images: images.len() as u64,
            blobs: unique.len() as u64,
            unique_bytes,
            referenced_bytes,
            saved_bytes: referenced_bytes - unique_bytes,
        },
        base: None,
    };
    write_manifest(layout.root(), &manifest)?;
    Ok(manifest)
}

/// Writes `manifest` as the `bundle.json` of the bundle at `dir`
/// (atomically). `airlift build` rewrites it this way to record its base
/// image ([`BundleManifest::base`]).
pub fn write_manifest(dir: &Path, manifest: &BundleManifest) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(manifest).context("encoding bundle.json")?;
    bytes.push(b'\n');
    atomic::write(&dir.join(BUNDLE_MANIFEST_FILE), &bytes)
}

/// Every blob an image stored in the layout reaches, with its size.
/// Children an index lists but the platform filter dropped are absent
/// and skipped; anything else missing is an error.
pub fn image_blobs(layout: &Layout, root: &Descriptor) -> Result<BTreeMap<Digest, u64>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((desc, optional)) = stack.pop() {
        if out.contains_key(&desc.digest) {
            continue;
        }
        if !layout.has_blob(&desc.digest) {
            if optional {
                continue;
            }
            bail!("blob {} is missing from the bundle", desc.digest);
        }
        if media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type) {
            let doc = Document::parse(&layout.read_blob(&desc.digest)?, Some(&desc.media_type))?;
            let is_index = matches!(doc, Document::Index(_));
            for c in doc.children() {
                stack.push((c.clone(), is_index));
            }
        }
        out.insert(desc.digest.clone(), desc.size);
    }
    Ok(out)
}
