//! Carry out a [`Plan`] against the replica's own store: manifests are
//! fetched and checked against their digests, their blobs streamed
//! through the registry's own upload path (hashed while written,
//! verified, then renamed into place), and only then the manifest, its
//! tags and removals are recorded. After removals, blobs no manifest
//! of the replica references any more are collected.

use airlift_oci::Digest;
use anyhow::{anyhow, bail, Context, Result};
use axum::body::Body;

use super::plan::{Fetch, Plan};
use super::source::{self, Source};
use crate::services::gc;
use crate::services::registry::body::chunks;
use crate::services::registry::manifest::inspect;
use crate::services::registry::store::NewManifest;
use crate::services::registry::Registry;

/// What applying did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    pub manifests: usize,
    pub blobs: usize,
    pub bytes: u64,
    pub tags: usize,
    pub removed: usize,
    /// Blobs collected after removals, and their bytes.
    pub collected: usize,
    pub collected_bytes: u64,
}

fn reg_err(e: crate::services::registry::error::RegistryError) -> anyhow::Error {
    anyhow!("{}", e.message)
}

/// Apply `plan`, fetching from `src`.
pub async fn apply(plan: &Plan, reg: &Registry, src: &Source) -> Result<Applied> {
    let mut done = Applied::default();
    for f in &plan.manifests {
        manifest(f, reg, src, &mut done)
            .await
            .with_context(|| format!("replicating {}@{}", f.repo, f.digest))?;
    }
    for (repo, tag, d) in &plan.tags {
        let bytes = reg.store.manifest_bytes(d).await?;
        let media_type = reg
            .store
            .resolve(
                repo,
                &crate::services::registry::route::ManifestRef::Digest(d.clone()),
            )
            .map(|(_, i)| i.media_type)
            .with_context(|| format!("tag {repo}:{tag} points at {d}, which did not arrive"))?;
        reg.store
            .put_manifest(NewManifest {
                repo,
                tags: &[tag],
                digest: d,
                bytes,
                media_type: &media_type,
                referrer: None,
            })
            .await
            .with_context(|| format!("tagging {repo}:{tag}"))?;
        done.tags += 1;
    }
    for (repo, tag) in &plan.untag {
        reg.store.delete_tag(repo, tag).await?;
        done.removed += 1;
    }
    for (repo, d) in &plan.remove {
        reg.store.delete_manifest(repo, d).await?;
        done.removed += 1;
    }
    if !plan.remove.is_empty() {
        collect(reg, &mut done).await;
    }
    Ok(done)
}

/// Collect blobs no manifest of the replica references (roots: its data
/// metadata, layers and links). No grace period: this task is the
/// replica's only writer (pushes are refused), and it is done writing.
/// A failure is logged; the next removal tries again.
async fn collect(reg: &Registry, done: &mut Applied) {
    if reg.store.data_folder().is_none() {
        return;
    }
    let req = gc::Request {
        keep: 1,
        dry_run: false,
        grace: std::time::Duration::ZERO,
    };
    match gc::collect_live(&reg.store, None, &req, None).await {
        Ok(r) => {
            done.collected = r.blob_count;
            done.collected_bytes = r.bytes;
            crate::sys::console::milestone(&r.milestone());
        }
        Err(e) => tracing::warn!("collecting blobs after removals: {e:#}"),
    }
}

async fn manifest(f: &Fetch, reg: &Registry, src: &Source, done: &mut Applied) -> Result<()> {
    let bytes = match reg.store.blob(&f.digest).await {
        Some(_) => {
            let b = reg.store.manifest_bytes(&f.digest).await?;
            source::check(&f.digest, &b)?;
            b
        }
        None => src.manifest(&f.repo, &f.digest, &f.media_type).await?,
    };
    let inspected = inspect(&bytes, Some(&f.media_type)).map_err(reg_err)?;
    if !inspected.is_index {
        for child in &inspected.children {
            if reg.store.blob(&child.digest).await.is_none() {
                let n = blob(&f.repo, &child.digest, reg, src).await?;
                if n != child.size {
                    bail!(
                        "blob {} is {n} bytes, but the manifest says {}",
                        child.digest,
                        child.size
                    );
                }
                done.blobs += 1;
                done.bytes += n;
            }
        }
    }
    let referrer = inspected.subject.as_ref().map(|s| {
        (
            s.digest.clone(),
            inspected.referrer_descriptor(&f.digest, bytes.len() as u64),
        )
    });
    reg.store
        .put_manifest(NewManifest {
            repo: &f.repo,
            tags: &[],
            digest: &f.digest,
            bytes,
            media_type: &inspected.media_type,
            referrer,
        })
        .await?;
    done.manifests += 1;
    Ok(())
}

/// Stream one blob from the source into the store; returns its size.
async fn blob(repo: &str, d: &Digest, reg: &Registry, src: &Source) -> Result<u64> {
    let res = src.blob(repo, d).await?;
    let id = reg.store.start_upload(repo, None).await?;
    let result = async {
        let slot = reg.store.upload(repo, &id)?;
        let mut upload = slot
            .lock()
            .await
            .take()
            .context("the replica's upload slot vanished")?;
        let body = chunks(Body::from_stream(res.bytes_stream()), reg.limits.body_stall);
        if let Err(e) = upload.append(body, reg.limits.max_blob_bytes, None).await {
            upload.discard().await;
            return Err(e).with_context(|| format!("receiving blob {d}"));
        }
        let (file, size) = upload
            .finish(d)
            .await
            .with_context(|| format!("checking blob {d}"))?;
        reg.store.commit_blob(file, d).await?;
        Ok(size)
    }
    .await;
    reg.store.forget_upload(&id);
    result
}
