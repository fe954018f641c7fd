//! Day-two wiring on host0 (issue #19): the parts built separately,
//! joined here. The garbage-collection endpoint (`POST /airlift/v1/gc`,
//! [`crate::api::gc`]) on host0's API; garbage collection with the
//! configured keep after every successful update load (the releases'
//! after-load hook); once dropped releases are saved out of
//! `state.json`, the store serving the kept releases only; and the media
//! watcher ([`crate::services::media_watch`]) handing each update medium
//! attached while host0 runs to the releases' load, holding the medium
//! mounted until that load is over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlift_appliance::ApplianceFile;
use axum::Router;

use crate::api::gc::GcApi;
use crate::api::server::Current;
use crate::services::gc::{self, OnReleases, Request};
use crate::services::media_watch::{self, OnFound};
use crate::services::releases::progress::Phase;
use crate::services::releases::{dir, Ops, Refused, Release, Releases, ReleasesState};
use crate::sys::console::milestone;

/// Add the gc endpoint to `app` and collect after every update load.
pub fn attach(
    app: Router,
    current: &Current,
    data: &Path,
    file: &ApplianceFile,
    ops: &Ops,
    token: &str,
    releases: &Releases,
) -> Router {
    let api = Arc::new(GcApi {
        current: current.clone(),
        data: data.to_path_buf(),
        keep: file.storage.keep_releases(),
        ops: ops.clone(),
        token: token.to_string(),
        on_releases: serve_kept(current.clone(), data.to_path_buf()),
    });
    let after = api.clone();
    releases.set_after_load(Arc::new(move |r: Release| {
        tokio::spawn(collect_after_load(after.clone(), r));
    }));
    app.merge(crate::api::gc::router(api))
}

/// Make the serving store's layers the releases `state` keeps.
fn serve_kept(current: Current, data: PathBuf) -> Arc<OnReleases> {
    Arc::new(move |state: &ReleasesState| {
        current
            .registry()
            .store
            .set_layers(&dir::layer_specs(&data, state))
    })
}

/// Garbage collection with the configured keep, after `loaded` moved the
/// tags; a failure is logged (the load itself succeeded).
async fn collect_after_load(api: Arc<GcApi>, loaded: Release) {
    let _op = match api
        .ops
        .begin(&format!("garbage collection after loading {}", loaded.id))
    {
        Ok(g) => g,
        Err(busy) => {
            tracing::warn!("no garbage collection after the load: {busy}");
            return;
        }
    };
    let req = Request {
        keep: api.keep,
        dry_run: false,
        grace: gc::GRACE,
    };
    let registry = api.current.registry();
    let on_releases: &OnReleases = api.on_releases.as_ref();
    match gc::collect_live(&registry.store, Some(&api.data), &req, Some(on_releases)).await {
        Ok(report) => milestone(&report.milestone()),
        Err(e) => tracing::warn!("garbage collection after loading {}: {e:#}", loaded.id),
    }
}

/// Watch for update media with the appliance's volume label and load
/// each one found (after the boot media's load, when that still runs).
pub fn watch_media(file: &ApplianceFile, releases: &Releases) {
    let releases = releases.clone();
    let on_found: OnFound = Arc::new(move |folder: PathBuf, device: String| {
        let releases = releases.clone();
        Box::pin(async move { load_medium(&releases, folder, &device).await })
    });
    media_watch::spawn(&file.volume_label, on_found);
}

/// How often a load in progress (or a busy host0) is looked at.
const LOOK: Duration = Duration::from_secs(1);

/// Load the medium mounted at `folder`; resolves once that load is over
/// (the watcher then unmounts it). Waits while another change runs.
async fn load_medium(releases: &Releases, folder: PathBuf, device: &str) -> anyhow::Result<()> {
    let id = loop {
        match releases.start_load(folder.clone()) {
            Ok(id) => break id,
            Err(Refused::Busy(why)) => {
                tracing::info!("the update medium on {device} waits: {why}");
                tokio::time::sleep(LOOK).await;
            }
            Err(Refused::Bad(e)) => return Err(e),
        }
    };
    loop {
        tokio::time::sleep(LOOK).await;
        let loading = releases.view()?.loading.filter(|l| l.id == id);
        match loading {
            None => return Ok(()),
            Some(l) if l.state == Phase::Failed => {
                anyhow::bail!(
                    "loading {}: {}",
                    folder.display(),
                    l.error.unwrap_or_default()
                )
            }
            Some(_) => {}
        }
    }
}
