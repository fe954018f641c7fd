//! Reading what a collection decides from, on disk: the blob files
//! under `DATA/registry/blobs`, the folders under `DATA/releases`, what
//! each release's `index.json` reaches, and the pushed manifests the
//! registry's metadata files list (for `gc --offline`, with host0
//! stopped; a running host0 asks its store instead, see `live`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use airlift_oci::documents::Index;
use airlift_oci::Digest;
use anyhow::{Context, Result};

use super::plan::{BlobFile, ReleaseReach};
use super::reach::Reach;
use crate::services::registry::store::meta::Meta;
use crate::services::releases::state::{release_dir, DIR};
use crate::services::releases::Release;

/// The registry's data folder in host0's state folder.
pub fn registry_dir(data: &Path) -> PathBuf {
    data.join("registry")
}

/// Where blob `d` is kept in the registry's data folder.
pub fn blob_path(registry: &Path, d: &Digest) -> PathBuf {
    registry
        .join("blobs")
        .join(d.algorithm().as_str())
        .join(d.hex())
}

/// A blob's bytes, None when it is not stored.
pub fn read_blob(registry: &Path, d: &Digest) -> Result<Option<Vec<u8>>> {
    let path = blob_path(registry, d);
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("listing {}", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("listing {}", dir.display())),
    }
}

/// Every blob file (`blobs/<alg>/<hex>`, temp files skipped).
pub fn blob_files(registry: &Path) -> Result<Vec<BlobFile>> {
    let mut out = Vec::new();
    for alg in entries(&registry.join("blobs"))? {
        for f in entries(&alg.path())? {
            let name = format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            let Ok(digest) = name.parse::<Digest>() else {
                continue;
            };
            let meta = match f.metadata() {
                Ok(m) => m,
                // Gone since the listing: nothing to collect.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("{}", f.path().display())),
            };
            if !meta.is_file() {
                continue;
            }
            out.push(BlobFile {
                digest,
                size: meta.len(),
                modified: meta
                    .modified()
                    .with_context(|| format!("{}", f.path().display()))?,
            });
        }
    }
    Ok(out)
}

/// The folder names under `DATA/releases`.
pub fn release_dirs(data: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries(&data.join(DIR))? {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}

/// What release `r`'s layout reaches (its blobs being the registry's).
/// A kept release whose `index.json` cannot be read is an error: its
/// blobs are unknown, so nothing may be collected; a dropped one's only
/// names the releases blobs came from, so it reaches nothing then.
pub fn release_reach(data: &Path, r: &Release, kept: bool) -> Result<ReleaseReach> {
    let path = release_dir(data, &r.id.bundle).join("index.json");
    let read = || -> Result<BTreeSet<Digest>> {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let index: Index = airlift_oci::quiet_json::parse(&bytes, &path.display().to_string())?;
        let mut reach = Reach::default();
        for m in &index.manifests {
            reach.add(&m.digest, &m.media_type);
        }
        let registry = registry_dir(data);
        reach.run(|d| read_blob(&registry, d))?;
        Ok(reach.seen)
    };
    let blobs = match read() {
        Ok(b) => b,
        Err(e) if kept => {
            return Err(e.context(format!(
                "release {} is kept but its layout cannot be read; nothing was collected \
                 (load its medium again: airlift-firstboot update PATH)",
                r.id
            )))
        }
        Err(e) => {
            tracing::warn!("dropped release {}: {e:#}", r.id);
            BTreeSet::new()
        }
    };
    Ok(ReleaseReach {
        id: r.id.clone(),
        kept,
        blobs,
    })
}

/// Every manifest the registry's metadata files list (pushed content)
/// and what they reach.
pub fn pushed_reach(registry: &Path) -> Result<Reach> {
    let mut reach = Reach::default();
    let root = registry.join("repositories");
    if !root.is_dir() {
        return Ok(reach);
    }
    let repos = Meta::new(&root)?.load(&|d| {
        std::fs::metadata(blob_path(registry, d))
            .ok()
            .map(|m| m.len())
    })?;
    for ri in repos.values() {
        for (d, info) in &ri.manifests {
            reach.add(d, &info.media_type);
        }
    }
    reach.run(|d| read_blob(registry, d))?;
    Ok(reach)
}
