//! host0's releases over HTTP: `GET /airlift/v1/releases` (open, like
//! the status), and the admin-only changes `POST
//! /airlift/v1/releases/load {"path"}` (202: the load runs in the
//! background; watch `loading`) and `POST /airlift/v1/releases/current
//! {"release"}` (a rollback, or forward again; 200 once the tags moved).
//! A change while another runs is 409 with what runs.

use std::path::PathBuf;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use bytes::Bytes;
use serde::Deserialize;

use super::admin::authorize;
use super::join::Peer;
use super::json::json_response;
use crate::services::releases::{Refused, Releases};

/// `GET` here lists the releases.
pub const PATH: &str = "/airlift/v1/releases";
/// `POST` here loads a medium.
pub const LOAD_PATH: &str = "/airlift/v1/releases/load";
/// `POST` here makes a held release current.
pub const CURRENT_PATH: &str = "/airlift/v1/releases/current";

/// The endpoints' state.
#[derive(Clone)]
pub struct Admin {
    pub releases: Releases,
    /// The admin token ([`super::admin`]).
    pub token: String,
}

/// Add the endpoints to host0's app.
pub fn attach(app: Router, admin: Admin) -> Router {
    app.route(PATH, get(list).with_state(admin.clone()))
        .route(LOAD_PATH, post(load).with_state(admin.clone()))
        .route(CURRENT_PATH, post(current).with_state(admin))
}

fn error(code: StatusCode, message: &str) -> Response {
    json_response(code, &serde_json::json!({ "error": message }))
}

fn refused(r: Refused) -> Response {
    match r {
        Refused::Busy(m) => error(StatusCode::CONFLICT, &m),
        Refused::Bad(e) => error(StatusCode::BAD_REQUEST, &format!("{e:#}")),
    }
}

async fn list(State(admin): State<Admin>) -> Response {
    let r = admin.releases.clone();
    match tokio::task::spawn_blocking(move || r.view()).await {
        Ok(Ok(v)) => json_response(StatusCode::OK, &v),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Parse a small JSON body, or the 400 answer naming the endpoint.
#[allow(clippy::result_large_err)]
fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, Response> {
    airlift_oci::quiet_json::parse(bytes, what)
        .map_err(|e| error(StatusCode::BAD_REQUEST, &format!("{e:#}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    path: PathBuf,
}

async fn load(
    State(admin): State<Admin>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Err(r) = authorize(&admin.token, &headers, peer.as_ref().map(|p| &p.0)) {
        return r;
    }
    let b: LoadBody = match body(&bytes, LOAD_PATH) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match admin.releases.start_load(b.path) {
        Ok(id) => json_response(StatusCode::ACCEPTED, &serde_json::json!({ "id": id })),
        Err(r) => refused(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CurrentBody {
    #[serde(default)]
    release: Option<String>,
}

async fn current(
    State(admin): State<Admin>,
    peer: Option<Extension<Peer>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Err(r) = authorize(&admin.token, &headers, peer.as_ref().map(|p| &p.0)) {
        return r;
    }
    let b: CurrentBody = match body(&bytes, CURRENT_PATH) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match admin.releases.rollback(b.release).await {
        Ok(r) => json_response(StatusCode::OK, &serde_json::json!({ "release": r.id })),
        Err(r) => refused(r),
    }
}
