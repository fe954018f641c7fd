//! The operator's status page on host0's registry port: `GET /` and its
//! assets, all embedded in the binary (no CDN, no fonts from outside:
//! the appliance runs air-gapped), and `GET /airlift/v1/mirror-config`.
//!
//! The page is static; its script polls the same JSON endpoints the CLI
//! and the tests read (`/airlift/v1/status`, `/airlift/v1/nodes`,
//! `/airlift/v1/images`, `/airlift/v1/mirror-config`). Nothing here
//! changes state: every route answers GET and HEAD only (others: 405).
//!
//! Headers: assets carry an `ETag` (sha256 of the content) and
//! `Cache-Control: no-cache`, so browsers revalidate and an upgrade shows
//! at once; the page has `Content-Security-Policy: default-src 'self'`
//! (no inline script or style); JSON under `/airlift/v1/` gets
//! `Cache-Control: no-store` ([`no_store`]).

pub mod assets;
pub mod mirror_config;

use std::sync::Arc;

use airlift_appliance::ApplianceFile;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};

use crate::api::images::{CurrentRegistry, Images, ManifestSource};
use crate::api::join::Join;

pub use assets::{Asset, ASSET_PREFIX};

/// The page's Content-Security-Policy: nothing but this origin, no
/// framing, no forms, no `<base>`.
pub const CSP: &str = "default-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'; object-src 'none'";

/// The page and its assets (GET and HEAD; other methods get 405).
pub fn router() -> Router {
    let mut r = Router::new().route("/", get(assets::index));
    for a in assets::all() {
        if a.path != "/" {
            r = r.route(a.path, get(assets::serve));
        }
    }
    r
}

/// Middleware: `Cache-Control: no-store` on every `/airlift/v1/`
/// response that does not set its own cache policy (status, nodes, join
/// included: they change from one second to the next).
pub async fn no_store(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/airlift/v1/");
    let mut res = next.run(req).await;
    if api && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Add the page, `GET /airlift/v1/images` and `GET /airlift/v1/mirror-config`
/// to host0's `app`, and `no-store` on its JSON. `manifest` gives the
/// served release's `bundle.json` ([`crate::api::images::release_manifest`]).
///
/// When netboot is off, host0 still keeps a node table, so the nodes
/// that join (by token, installed some other way) are listed too; with
/// netboot on, [`crate::api::netboot::attach`] has added its own.
pub fn attach(
    app: Router,
    file: &ApplianceFile,
    manifest: ManifestSource,
    registry: CurrentRegistry,
    join: Arc<Join>,
) -> Router {
    let mut app = app
        .merge(router())
        .merge(crate::api::images::router(Images::with_source(
            manifest, registry,
        )))
        .merge(mirror_config::router(join));
    let netboot_on =
        crate::services::netboot::config::checked(&file.netboot).is_ok_and(|c| c.enabled);
    if !netboot_on {
        let nodes = crate::services::netboot::Nodes::new();
        app = app
            .merge(crate::api::netboot::nodes_router(nodes.clone()))
            .layer(Extension(nodes));
    }
    app.layer(axum::middleware::from_fn(no_store))
}
