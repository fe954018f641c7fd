//! Source: a pull over the Docker registry v2 / OCI distribution API,
//! from the reference's own registry (`docker.io` is
//! `https://registry-1.docker.io`) or a `mirror` URL.
//!
//! - **Auth**: on `401` the `WWW-Authenticate` challenge is answered: a
//!   Bearer token from the realm (sending Basic credentials when the
//!   source has a credentials file), or Basic credentials directly.
//! - **Retries**: connect errors, 5xx and 429 are retried with
//!   exponential backoff, at most [`retry::MAX_TRIES`] times; a manifest
//!   or blob body cut off mid-stream, or idle past the read timeout
//!   ([`limits::idle_timeout`], 30 s), is fetched again.
//! - **Limits**: manifests are read to at most [`limits::MAX_MANIFEST`]
//!   (4 MiB) whatever their length header says; blobs to their
//!   descriptor's size.
//! - **Verification**: a manifest fetched by tag is hashed and checked
//!   against `Docker-Content-Digest` (and against the pinned digest, if
//!   the reference has one); blob bodies stream into the store's blob
//!   writer (never whole in memory) and are checked for size and digest
//!   before they are renamed into place.
//! - **Reuse**: the manifest tells every blob's digest before any is
//!   fetched, so blobs already in the previous bundle are hard-linked and
//!   never requested. A manifest fetched by tag is always requested (the
//!   tag may have moved); a digest-pinned one already in the bundle is not.
//! - **Concurrency**: up to `concurrency` blob downloads run at once.
//!
//! ## Multi-arch images and `platforms`
//!
//! With a platform filter, the **original index** is stored, with its
//! original bytes and digest, and only the children for the kept
//! platforms are fetched. Writing a filtered index instead would change
//! the digest, and nodes pulling by the upstream tag or digest would get
//! a different digest than upstream serves, breaking digest pins and
//! signatures. The bundle's registry serves the index as is; a client
//! asking for a dropped platform's child manifest gets a 404, which is
//! the honest answer. `bundle.json` records the platforms kept.

pub mod auth;
pub mod client;
pub mod limits;
pub mod retry;

use std::path::Path;

use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::Reference;
use anyhow::{bail, Context, Result};
use futures_util::{StreamExt, TryStreamExt};

use super::platform;
use super::Ingested;
use crate::store::Store;
use client::Client;

/// How many times a blob whose body broke off mid-stream is fetched.
const BODY_TRIES: u32 = 3;

/// Pull `reference` into `store`.
pub async fn ingest(
    reference: &Reference,
    mirror: Option<&str>,
    credentials: Option<&Path>,
    insecure: bool,
    platforms: &[String],
    store: &Store,
    concurrency: usize,
) -> Result<Ingested> {
    let filters = platform::parse_filters(platforms)?;
    let client = Client::new(reference, mirror, credentials, insecure)?;
    let image = reference.to_string();
    let wanted = reference.manifest_reference();
    let url = client.manifest_url(&wanted);
    // A digest-pinned manifest the bundle already has needs no request.
    let pinned_bytes = match reference.digest() {
        Some(d) => store.lookup(d)?,
        None => None,
    };
    let fetched = match pinned_bytes {
        Some(bytes) => client::FetchedManifest {
            bytes,
            content_type: None,
            header_digest: None,
        },
        None => client.manifest(&wanted).await?,
    };
    let digest = fetched.checked_digest(&url)?;
    if let Some(pinned) = reference.digest() {
        if pinned != &digest {
            bail!("{url}: the manifest hashes to {digest}, not the pinned {pinned}");
        }
    }
    let doc = Document::parse(
        &fetched.bytes,
        fetched
            .content_type
            .as_deref()
            .filter(|c| client::is_manifest_type(c)),
    )
    .with_context(|| format!("manifest {digest} from {url}"))?;
    let media_type = fetched
        .content_type
        .clone()
        .filter(|c| client::is_manifest_type(c))
        .unwrap_or_else(|| doc.media_type().to_string());
    let root = Descriptor::new(&media_type, digest, fetched.bytes.len() as u64);
    store.put_bytes(&root, &fetched.bytes, &format!("{url} (image {image})"))?;

    let mut blobs: Vec<Descriptor> = Vec::new();
    let kept_platforms = match doc {
        Document::Index(index) => {
            let children = platform::select_children(&index, &filters)
                .with_context(|| format!("index {} of {image}", root.digest))?;
            for child in &children {
                let child_doc = child_manifest(&client, child, store, &image).await?;
                blobs.extend(child_doc.children().into_iter().cloned());
            }
            platform::specs(&children)
        }
        Document::Manifest(m) => {
            // The config first: it says the platform, to check the filter.
            fetch_blobs(&client, std::slice::from_ref(&m.config), store, &image, 1).await?;
            let config = store.layout().read_blob(&m.config.digest)?;
            let p = platform::of_config(&config);
            platform::check_single(p.as_ref(), &filters)
                .with_context(|| format!("image {image}"))?;
            blobs.extend(m.layers.iter().cloned());
            p.map(|p| vec![p.spec()]).unwrap_or_default()
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    blobs.retain(|d| seen.insert(d.digest.clone()));
    fetch_blobs(&client, &blobs, store, &image, concurrency).await?;
    Ok(Ingested {
        root,
        platforms: kept_platforms,
    })
}

/// A child of an index: from the store if present (or reusable), else
/// fetched by digest and verified.
pub(crate) async fn child_manifest(
    client: &Client,
    child: &Descriptor,
    store: &Store,
    image: &str,
) -> Result<Document> {
    let bytes = if store.try_existing(child)? {
        store.layout().read_blob(&child.digest)?
    } else {
        let url = client.manifest_url(&child.digest.to_string());
        let fetched = client.manifest(&child.digest.to_string()).await?;
        store.put_bytes(child, &fetched.bytes, &format!("{url} (image {image})"))?;
        fetched.bytes
    };
    if !media::is_manifest(&child.media_type) && !media::is_index(&child.media_type) {
        bail!(
            "index of {image} lists {} with media type {:?}, not a manifest",
            child.digest,
            child.media_type
        );
    }
    Document::parse(&bytes, Some(&child.media_type))
        .with_context(|| format!("manifest {} of {image}", child.digest))
}

/// Fetch blobs not already stored, `concurrency` at a time.
pub(crate) async fn fetch_blobs(
    client: &Client,
    blobs: &[Descriptor],
    store: &Store,
    image: &str,
    concurrency: usize,
) -> Result<()> {
    futures_util::stream::iter(blobs.iter().map(Ok))
        .try_for_each_concurrent(concurrency.max(1), |desc| async move {
            if store.try_existing(desc)? {
                return Ok(());
            }
            fetch_blob(client, desc, store, image).await
        })
        .await
}

async fn fetch_blob(client: &Client, desc: &Descriptor, store: &Store, image: &str) -> Result<()> {
    use std::io::Write;
    let url = client.blob_url(&desc.digest);
    let source = format!("{url} (image {image})");
    let mut tries = 0;
    loop {
        tries += 1;
        let resp = client.blob(&desc.digest).await?;
        let mut writer = store.writer(desc)?;
        let mut body = resp.bytes_stream();
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(c) => {
                    if writer.size() + c.len() as u64 > desc.size {
                        bail!(
                            "blob {} from {source} is larger than the {} bytes its descriptor says",
                            desc.digest,
                            desc.size
                        );
                    }
                    writer
                        .write_all(&c)
                        .with_context(|| format!("writing blob {}", desc.digest))?;
                    store.progress().bytes(c.len() as u64);
                }
                Err(e) => {
                    broken = Some(e);
                    break;
                }
            }
        }
        match broken {
            None => return store.commit(writer, desc, &source),
            Some(e) if tries < BODY_TRIES => {
                tracing::warn!(
                    "blob {} from {url} broke off ({}); fetching it again",
                    desc.digest,
                    limits::describe(&e, client.idle())
                );
            }
            Some(e) => bail!(
                "downloading blob {} from {source} failed after {tries} tries: {}",
                desc.digest,
                limits::describe(&e, client.idle())
            ),
        }
    }
}
