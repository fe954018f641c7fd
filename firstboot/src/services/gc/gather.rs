//! The facts a collection decides from ([`Inputs`]), read either from
//! the files alone (`gc --offline`, the disk guardrail's estimate) or
//! with the running store's view of pushed content, layers and links.
//! Roots are read before the blob files are listed, so a blob stored
//! meanwhile is young (the grace period keeps it); a manifest stored
//! meanwhile is caught under the store's lock when deleting (`run`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use airlift_oci::Digest;
use anyhow::{anyhow, Result};

use super::plan::{Inputs, ReleaseReach};
use super::reach::Reach;
use super::scan;
use crate::services::registry::store::{Store, StoreError};
use crate::services::releases::ReleasesState;

/// The facts and what they were read from.
pub struct Gathered {
    pub inputs: Inputs,
    /// `state.json` as read (None without releases: a replica).
    pub state: Option<ReleasesState>,
    /// The pushed manifests counted as roots.
    pub pushed: BTreeSet<Digest>,
}

/// `state.json`, each release's reach (kept ones with `keep`) and the
/// folders under `DATA/releases`.
fn releases(
    data: Option<&Path>,
    keep: u32,
) -> Result<(Option<ReleasesState>, Vec<ReleaseReach>, Vec<String>)> {
    let Some(data) = data else {
        return Ok((None, Vec::new(), Vec::new()));
    };
    let state = ReleasesState::load(data)?;
    let kept: BTreeSet<Digest> = state
        .kept(keep)
        .iter()
        .map(|r| r.id.bundle.clone())
        .collect();
    let reach = state
        .releases
        .iter()
        .map(|r| scan::release_reach(data, r, kept.contains(&r.id.bundle)))
        .collect::<Result<Vec<_>>>()?;
    Ok((Some(state), reach, scan::release_dirs(data)?))
}

/// From the files of host0's state folder `data` (host0 stopped).
pub fn offline(data: &Path, keep: u32, grace: Duration) -> Result<Gathered> {
    let (state, releases, release_dirs) = releases(Some(data), keep)?;
    let registry = scan::registry_dir(data);
    let pushed = scan::pushed_reach(&registry)?;
    let files = scan::blob_files(&registry)?;
    Ok(Gathered {
        inputs: Inputs {
            files,
            releases,
            roots: pushed.seen.clone(),
            release_dirs,
            grace,
            now: SystemTime::now(),
        },
        state,
        pushed: pushed.seen,
    })
}

/// Walk `reach` reading manifests through the store (data or layers).
pub async fn walk_store(store: &Store, reach: &mut Reach) -> Result<()> {
    while let Some((d, mt)) = reach.next_manifest() {
        match store.manifest_bytes(&d).await {
            Ok(bytes) => reach.found(&d, &mt, &bytes)?,
            Err(StoreError::ManifestGone(_)) => {}
            Err(e) => return Err(anyhow!("reading manifest {d}: {e}")),
        }
    }
    Ok(())
}

/// With the running store: its pushed and layer manifests and links
/// are roots; releases come from `data` (host0) or are none (a replica).
pub async fn live(
    store: &Store,
    data: Option<&Path>,
    keep: u32,
    grace: Duration,
) -> Result<Gathered> {
    let registry = store
        .data_folder()
        .ok_or_else(|| anyhow!("blobs are kept in a bucket; gc collects a data folder only"))?
        .to_path_buf();
    let (state, releases, release_dirs) = releases(data, keep)?;
    let mut reach = Reach::default();
    for (d, mt) in store.pushed_manifests()? {
        reach.add(&d, &mt);
    }
    let pushed: BTreeSet<Digest> = reach.seen.clone();
    // Layers other than held releases (the boot media while it loads)
    // are roots; a release's layer counts only if the release is kept
    // (`releases` above), or no release could ever be collected.
    let release_dirs_root = data.map(|d| d.join(crate::services::releases::state::DIR));
    for spec in store.layers() {
        if release_dirs_root
            .as_ref()
            .is_some_and(|r| spec.dir.starts_with(r))
        {
            continue;
        }
        let index = airlift_oci::Layout::open(&spec.dir)
            .and_then(|l| l.read_index())
            .map_err(|e| anyhow!("reading the layer {}: {e:#}", spec.dir.display()))?;
        for e in &index.manifests {
            reach.add(&e.digest, &e.media_type);
        }
    }
    walk_store(store, &mut reach).await?;
    let mut roots = reach.seen;
    roots.extend(store.linked_blobs(grace));
    let files = tokio::task::spawn_blocking(move || scan::blob_files(&registry)).await??;
    Ok(Gathered {
        inputs: Inputs {
            files,
            releases,
            roots,
            release_dirs,
            grace,
            now: SystemTime::now(),
        },
        state,
        pushed,
    })
}
