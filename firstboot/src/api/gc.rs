//! `POST /airlift/v1/gc {"dryRun", "keep"?}`: collect garbage on the
//! running host0 (admin only, one day-two change at a time) and answer
//! what went, or with `dryRun` what would go.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::{Extension, Router};
use serde::Deserialize;

use super::join::Peer;
use super::json::json_response;
use super::server::Current;
use crate::services::gc::{self, OnReleases, Request};
use crate::services::releases::Ops;

/// The endpoint's path.
pub const PATH: &str = "/airlift/v1/gc";

/// What the endpoint needs from host0.
pub struct GcApi {
    /// The registry serving now (its store).
    pub current: Current,
    /// host0's state folder (`/var/lib/airlift`).
    pub data: PathBuf,
    /// `storage.keepReleases`, when the request names none.
    pub keep: u32,
    pub ops: Ops,
    /// The admin token (`api::admin::ensure_token`).
    pub token: String,
    /// Makes the store serve the kept releases only, once dropped ones
    /// are saved out of `state.json` (`Store::set_layers`).
    pub on_releases: Arc<OnReleases>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    dry_run: bool,
    keep: Option<u32>,
}

/// The route, to merge into host0's app.
pub fn router(api: Arc<GcApi>) -> Router {
    Router::new().route(PATH, post(handler)).with_state(api)
}

fn error(code: StatusCode, message: String) -> Response {
    json_response(code, &serde_json::json!({ "error": message }))
}

async fn handler(
    State(api): State<Arc<GcApi>>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let peer = peer.map(|Extension(p)| p);
    if let Err(refused) = super::admin::authorize(&api.token, &headers, peer.as_ref()) {
        return refused;
    }
    let body: Body = if body.is_empty() {
        Body {
            dry_run: false,
            keep: None,
        }
    } else {
        match airlift_oci::quiet_json::parse(&body, "the gc request") {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("{e:#}")),
        }
    };
    let keep = body.keep.unwrap_or(api.keep);
    if keep == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "keep must be at least 1 (the current release)".into(),
        );
    }
    let _op = match api.ops.begin("garbage collection") {
        Ok(g) => g,
        Err(busy) => return error(StatusCode::CONFLICT, busy),
    };
    let req = Request {
        keep,
        dry_run: body.dry_run,
        grace: gc::GRACE,
    };
    let registry = api.current.registry();
    let on_releases: &OnReleases = api.on_releases.as_ref();
    match gc::collect_live(&registry.store, Some(&api.data), &req, Some(on_releases)).await {
        Ok(report) => {
            if !report.dry_run {
                crate::sys::console::milestone(&report.milestone());
            }
            json_response(StatusCode::OK, &report)
        }
        Err(e) => {
            tracing::warn!("garbage collection: {e:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("garbage collection: {e:#}"),
            )
        }
    }
}
