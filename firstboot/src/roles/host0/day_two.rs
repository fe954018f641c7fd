//! Day-two wiring on host0 (issue #19): the parts built separately,
//! joined here. The garbage-collection endpoint (`POST /airlift/v1/gc`,
//! [`crate::api::gc`]) on host0's API; garbage collection with the
//! configured keep after every successful update load (the releases'
//! after-load hook); and, once dropped releases are saved out of
//! `state.json`, the store serving the kept releases only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlift_appliance::ApplianceFile;
use axum::Router;

use crate::api::gc::GcApi;
use crate::api::server::Current;
use crate::services::gc::{self, OnReleases, Request};
use crate::services::releases::{dir, Ops, Release, Releases, ReleasesState};
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
