//! Carrying out a plan, in the order that survives a kill -9 at any
//! point: 1) `state.json` without the dropped releases (one atomic
//! rename), then the serving layers follow; 2) each blob unlinked (a
//! reader with the file open finishes; an unlink is whole or not done),
//! the folders fsynced; 3) the dropped and orphaned release folders
//! removed. Until 1 the old state stands; after it every kept release
//! is whole, since only blobs no kept release reaches are unlinked; a
//! rerun plans again from what is left and finishes the job. With a
//! running store, step 2 holds its metadata write lock and first spares
//! whatever was pushed or linked since the plan.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use airlift_oci::{atomic, Digest};
use anyhow::{Context, Result};

use super::gather::{walk_store, Gathered};
use super::plan::{Doomed, Plan};
use super::reach::Reach;
use super::scan;
use crate::services::registry::store::Store;
use crate::services::releases::state::DIR;
use crate::services::releases::ReleasesState;

/// Called with the new state once dropped releases are saved, so the
/// running store stops serving them (`Store::set_layers`).
pub type OnReleases = dyn Fn(&ReleasesState) -> Result<()> + Send + Sync;

/// A test-only pause between steps and between unlinks (milliseconds),
/// so the kill -9 tests can stop `gc --offline` anywhere.
pub const PAUSE_ENV: &str = "AIRLIFT_GC_TEST_PAUSE_MS";

async fn pause() {
    let ms = std::env::var(PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(ms) = ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Step 1: forget the dropped releases.
pub fn drop_releases(
    data: &Path,
    state: Option<ReleasesState>,
    plan: &Plan,
    on_releases: Option<&OnReleases>,
) -> Result<()> {
    let (Some(mut state), false) = (state, plan.dropped.is_empty()) else {
        return Ok(());
    };
    for r in &plan.dropped {
        state.remove(&r.bundle)?;
    }
    state.save(data)?;
    if let Some(f) = on_releases {
        f(&state).context("serving the kept releases only")?;
    }
    Ok(())
}

/// What is linked or pushed since the plan (under the write lock).
async fn spared_now(
    store: &Store,
    seen: &BTreeSet<Digest>,
    grace: Duration,
) -> Result<BTreeSet<Digest>> {
    let mut reach = Reach::default();
    for (d, mt) in store.pushed_manifests()? {
        if !seen.contains(&d) {
            reach.add(&d, &mt);
        }
    }
    walk_store(store, &mut reach).await?;
    let mut spared = reach.seen;
    spared.extend(store.linked_blobs(grace));
    Ok(spared)
}

/// Step 2: unlink the doomed blobs; returns those actually removed.
pub async fn unlink(
    registry: &Path,
    store: Option<&Store>,
    doomed: &[Doomed],
    seen: &BTreeSet<Digest>,
    grace: Duration,
) -> Result<Vec<Doomed>> {
    let _guard = match store {
        Some(s) => Some(s.collection_lock().await),
        None => None,
    };
    let spared = match store {
        Some(s) => spared_now(s, seen, grace).await?,
        None => BTreeSet::new(),
    };
    let mut removed = Vec::new();
    let mut dirs = BTreeSet::new();
    for b in doomed.iter().filter(|b| !spared.contains(&b.digest)) {
        let path = scan::blob_path(registry, &b.digest);
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(b.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        }
        if let Some(dir) = path.parent() {
            dirs.insert(dir.to_path_buf());
        }
        pause().await;
    }
    for dir in &dirs {
        atomic::sync_dir(dir)?;
    }
    if let Some(s) = store {
        let gone: Vec<Digest> = removed.iter().map(|b| b.digest.clone()).collect();
        s.forget_manifest_bytes(&gone);
    }
    Ok(removed)
}

/// Step 3: remove dropped and orphaned release folders. The `blobs`
/// symlink inside is removed, never followed.
pub fn remove_dirs(data: &Path, dirs: &[String]) -> Result<()> {
    let root = data.join(DIR);
    for name in dirs {
        let dir = root.join(name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    }
    if !dirs.is_empty() {
        atomic::sync_dir(&root)?;
    }
    Ok(())
}

/// Steps 1 to 3 for `plan`, made from `g`; returns the blobs removed.
pub async fn execute(
    data: Option<&Path>,
    registry: &Path,
    store: Option<&Store>,
    g: Gathered,
    plan: &Plan,
    on_releases: Option<&OnReleases>,
) -> Result<Vec<Doomed>> {
    if let Some(data) = data {
        drop_releases(data, g.state, plan, on_releases)?;
        pause().await;
    }
    let removed = unlink(registry, store, &plan.blobs, &g.pushed, g.inputs.grace).await?;
    pause().await;
    if let Some(data) = data {
        remove_dirs(data, &plan.dirs)?;
    }
    Ok(removed)
}
