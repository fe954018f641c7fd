//! Router tests without a socket: every endpoint and error path, driven
//! through `tower::ServiceExt::oneshot` against real storage in a temp folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlift_oci::documents::{media, Descriptor, Index, REF_NAME};
use airlift_oci::{Algorithm, Digest, Layout};
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use tower::ServiceExt;

use super::auth::Auth;
use super::store::Store;
use super::{router, Registry};

mod auth;
mod blob_delete;
mod blob_scope;
mod blobs;
mod conn;
mod content_range;
mod discovery;
mod layer_swap;
mod manifest_classes;
mod manifest_refs;
mod manifests;
mod names;
mod password_guessing;
mod signatures;
mod storage;
mod upload_errors;
mod upload_limits;
mod upload_space;
mod uploads;

const TOKEN: &str = "test-token-0123456789";

struct Env {
    dir: tempfile::TempDir,
    app: Router,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    /// Status, headers and the whole body of `resp`.
    async fn read(resp: axum::response::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .unwrap();
        Resp {
            status,
            headers,
            body,
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first error's message ("" when there is none).
    fn message(&self) -> String {
        self.json()["errors"][0]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
    fn header(&self, k: &str) -> &str {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn token_file(dir: &Path) -> PathBuf {
    let p = dir.join("token");
    std::fs::write(&p, TOKEN).unwrap();
    p
}

fn open(data: &Path, layers: &[PathBuf], allow_delete: bool, token: Option<&Path>) -> Router {
    router(registry(data, layers, allow_delete, token))
}

fn registry(
    data: &Path,
    layers: &[PathBuf],
    allow_delete: bool,
    token: Option<&Path>,
) -> Arc<Registry> {
    let reg = Registry {
        store: Store::open(data, layers).unwrap(),
        auth: Auth::load(None, token).unwrap(),
        allow_delete,
        limits: super::Limits {
            body_stall: Duration::from_secs(5),
            max_blob_bytes: 1 << 20,
        },
        space: Arc::new(super::space::SpaceGuard::new(data, 0)),
        gate: None,
    };
    Arc::new(reg)
}

impl Env {
    fn new() -> Env {
        Env::with(&[], false)
    }

    fn with(layers: &[PathBuf], allow_delete: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let tok = token_file(dir.path());
        let app = open(&dir.path().join("data"), layers, allow_delete, Some(&tok));
        Env { dir, app }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        Resp::read(resp).await
    }

    /// A pushing request (with the token).
    async fn push(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        let mut h = headers.to_vec();
        h.push(("authorization", &auth));
        self.call(method, uri, &h, body).await
    }

    /// A pushed chunk: `PATCH loc` with `Content-Range: range`.
    async fn patch(&self, loc: &str, range: &str, body: &[u8]) -> Resp {
        self.push(
            Method::PATCH,
            loc,
            &[("content-range", range)],
            body.to_vec(),
        )
        .await
    }

    async fn get(&self, uri: &str) -> Resp {
        self.call(Method::GET, uri, &[], Vec::new()).await
    }

    async fn push_blob(&self, name: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_of(data);
        let r = self
            .push(
                Method::POST,
                &format!("/v2/{name}/blobs/uploads/?digest={d}"),
                &[],
                data.to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        d
    }

    async fn push_manifest(&self, name: &str, reference: &str, mt: &str, bytes: &[u8]) -> Resp {
        self.push(
            Method::PUT,
            &format!("/v2/{name}/manifests/{reference}"),
            &[("content-type", mt)],
            bytes.to_vec(),
        )
        .await
    }

    /// Push a config + one layer + an OCI manifest; returns (manifest bytes, digest).
    async fn push_image(&self, name: &str, tag: &str, seed: &str) -> (Vec<u8>, Digest) {
        let layer = format!("layer-{seed}").into_bytes();
        let config = format!(r#"{{"seed":"{seed}"}}"#).into_bytes();
        let ld = self.push_blob(name, &layer).await;
        let cd = self.push_blob(name, &config).await;
        let m = image_manifest(&cd, config.len(), &ld, layer.len());
        let r = self.push_manifest(name, tag, media::OCI_MANIFEST, &m).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        (m.clone(), Digest::sha256_of(&m))
    }

    fn files_under(&self, rel: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.data().join(rel), &mut out);
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path().display().to_string());
        }
    }
}

fn image_manifest(cd: &Digest, cs: usize, ld: &Digest, ls: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": cs},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": ld.to_string(), "size": ls}],
    }))
    .unwrap()
}

async fn push_artifact(
    env: &Env,
    name: &str,
    subject: &Digest,
    subject_size: usize,
    kind: &str,
) -> Digest {
    let empty = env.push_blob(name, b"{}").await;
    let blob = env.push_blob(name, kind.as_bytes()).await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "artifactType": kind,
        "config": {"mediaType": media::OCI_EMPTY, "digest": empty.to_string(), "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": blob.to_string(), "size": kind.len()}],
        "subject": {"mediaType": media::OCI_MANIFEST, "digest": subject.to_string(), "size": subject_size},
        "annotations": {"org.example.kind": kind},
    }))
    .unwrap();
    let d = Digest::sha256_of(&m);
    let r = env
        .push_manifest(name, &d.to_string(), media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("oci-subject"), subject.to_string());
    d
}
