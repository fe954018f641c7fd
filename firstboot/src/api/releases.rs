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

/// An authorized request's JSON body, or the answer refusing it (403,
/// 401, or 400 naming the endpoint).
#[allow(clippy::result_large_err)]
fn admit<T: for<'de> Deserialize<'de>>(
    admin: &Admin,
    peer: Option<&Extension<Peer>>,
    headers: &HeaderMap,
    bytes: &[u8],
    what: &str,
) -> Result<T, Response> {
    authorize(&admin.token, headers, peer.map(|p| &p.0))?;
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
    let b: LoadBody = match admit(&admin, peer.as_ref(), &headers, &bytes, LOAD_PATH) {
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
    let b: CurrentBody = match admit(&admin, peer.as_ref(), &headers, &bytes, CURRENT_PATH) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match admin.releases.rollback(b.release).await {
        Ok(r) => json_response(StatusCode::OK, &serde_json::json!({ "release": r.id })),
        Err(r) => refused(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::releases::Ops;
    use axum::body::Body;
    use axum::http::{header, Request};
    use std::sync::Arc;
    use tower::ServiceExt;

    fn app(data: &std::path::Path, ops: Ops) -> Router {
        let file: airlift_appliance::ApplianceFile = serde_json::from_value(serde_json::json!({
            "schema": 1, "name": "demo", "version": "1", "volumeLabel": "DEMO", "role": "host0",
            "joinToken": "ab".repeat(32), "kernelRelease": "6.1",
            "registry": {"port": 5000, "tls": "generate", "push": false, "allowDelete": false},
            "mirrors": [], "runtimes": [],
        }))
        .unwrap();
        let registry: crate::services::releases::service::RegistryOf =
            Arc::new(|| unreachable!("no change reaches the registry here"));
        let releases = Releases::new(data, &file, registry, ops);
        attach(
            Router::new(),
            Admin {
                releases,
                token: "s3cret".into(),
            },
        )
    }

    async fn call(
        app: &Router,
        path: &str,
        peer: Option<&str>,
        token: bool,
        body: &str,
    ) -> (u16, serde_json::Value) {
        let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if token {
            req = req.header(header::AUTHORIZATION, "Bearer s3cret");
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        if let Some(ip) = peer {
            req.extensions_mut().insert(Peer {
                remote: format!("{ip}:40000").parse().unwrap(),
                local: "127.0.0.1:5000".parse().unwrap(),
            });
        }
        let res = app.clone().oneshot(req).await.unwrap();
        let code = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn changes_need_host0_the_token_and_a_free_lock() {
        let t = tempfile::tempdir().unwrap();
        let ops = Ops::default();
        let app = app(t.path(), ops.clone());
        let res = app
            .clone()
            .oneshot(Request::get(PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            (
                v["releases"].clone(),
                v["loading"].clone(),
                v["keep"].clone()
            ),
            (
                serde_json::json!([]),
                serde_json::Value::Null,
                serde_json::json!(2)
            )
        );

        let load = r#"{"path": "/nowhere"}"#;
        assert_eq!(call(&app, LOAD_PATH, None, true, load).await.0, 403);
        assert_eq!(
            call(&app, LOAD_PATH, Some("10.0.0.5"), true, load).await.0,
            403
        );
        assert_eq!(
            call(&app, LOAD_PATH, Some("127.0.0.1"), false, load)
                .await
                .0,
            401
        );
        let (code, v) = call(&app, LOAD_PATH, Some("127.0.0.1"), true, r#"{"nope": 1}"#).await;
        assert_eq!(code, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(LOAD_PATH), "{v}");

        let held = ops.begin("garbage collection").unwrap();
        let (code, v) = call(&app, LOAD_PATH, Some("127.0.0.1"), true, load).await;
        assert_eq!(code, 409, "{v}");
        assert_eq!(
            v["error"],
            "cannot start loading /nowhere: garbage collection is running; wait for it \
             (airlift-firstboot releases)"
        );
        let (code, v) = call(&app, CURRENT_PATH, Some("127.0.0.1"), true, "{}").await;
        assert_eq!(code, 409, "{v}");
        drop(held);
        let (code, v) = call(
            &app,
            CURRENT_PATH,
            Some("127.0.0.1"),
            true,
            r#"{"release": "2.0"}"#,
        )
        .await;
        assert_eq!(code, 400, "{v}");
        assert!(
            v["error"].as_str().unwrap().contains("no release \"2.0\""),
            "{v}"
        );
        assert!(
            ops.running().is_none(),
            "a refused rollback left the lock held"
        );
    }
}
