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

mod blob_delete;
mod blob_scope;
mod content_range;
mod manifest_classes;
mod manifest_refs;
mod password_guessing;
mod upload_errors;
mod upload_limits;

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

#[tokio::test]
async fn base_endpoint_and_challenge() {
    let env = Env::new();
    let r = env.push(Method::GET, "/v2/", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({}));
    assert_eq!(r.header("docker-distribution-api-version"), "registry/2.0");
    let r = env.get("/v2/").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Basic realm=\"airlift\"");
    // Without any push credentials configured, /v2/ is simply open.
    let dir = tempfile::tempdir().unwrap();
    let open_app = open(&dir.path().join("d"), &[], false, None);
    let resp = open_app
        .oneshot(Request::get("/v2/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn monolithic_push_then_pull_by_tag_and_digest() {
    let env = Env::new();
    let (m, md) = env.push_image("quay.io/org/app", "1.0", "a").await;
    for reference in ["1.0".to_string(), md.to_string()] {
        let r = env
            .get(&format!("/v2/quay.io/org/app/manifests/{reference}"))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.as_ref(), m.as_slice());
        assert_eq!(r.header("content-type"), media::OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), md.to_string());
        assert_eq!(r.header("content-length"), m.len().to_string());
        let h = env
            .call(
                Method::HEAD,
                &format!("/v2/quay.io/org/app/manifests/{reference}"),
                &[],
                vec![],
            )
            .await;
        assert_eq!(h.status, StatusCode::OK);
        assert!(h.body.is_empty());
        assert_eq!(h.header("content-length"), m.len().to_string());
        assert_eq!(h.header("docker-content-digest"), md.to_string());
    }
    let r = env.get("/v2/quay.io/org/app/manifests/2.0").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let r = env.get("/v2/quay.io/org/other/manifests/1.0").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
}

#[tokio::test]
async fn blobs_stream_with_ranges() {
    let env = Env::new();
    let data: Vec<u8> = (0..100u8).collect();
    let d = env.push_blob("quay.io/org/app", &data).await;
    let url = format!("/v2/quay.io/org/app/blobs/{d}");
    let r = env.get(&url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), data.as_slice());
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("docker-content-digest"), d.to_string());
    let h = env.call(Method::HEAD, &url, &[], vec![]).await;
    assert_eq!(
        (h.status, h.header("content-length")),
        (StatusCode::OK, "100")
    );
    assert!(h.body.is_empty());
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=10-19")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[10..20]);
    assert_eq!(r.header("content-range"), "bytes 10-19/100");
    assert_eq!(r.header("content-length"), "10");
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=-5")], vec![])
        .await;
    assert_eq!(r.body.as_ref(), &data[95..]);
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=100-")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */100");
    let missing = Digest::sha256_of(b"nope");
    let r = env
        .get(&format!("/v2/quay.io/org/app/blobs/{missing}"))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
}

#[tokio::test]
async fn chunked_upload_with_status_and_ordering() {
    let env = Env::new();
    let r = env
        .push(
            Method::POST,
            "/v2/quay.io/org/app/blobs/uploads/",
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").to_string();
    let uuid = r.header("docker-upload-uuid").to_string();
    assert_eq!(loc, format!("/v2/quay.io/org/app/blobs/uploads/{uuid}"));
    assert_eq!(r.header("range"), "0-0");

    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", "0-4")],
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-4");
    // Out of order: 416, and the upload is unharmed.
    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", "7-9")],
            b"xyz".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
    );
    // A range that does not match the body length: 416, rolled back.
    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", "5-20")],
            b" wor".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", "garbage")],
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::NO_CONTENT, "0-4")
    );
    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", "5-10")],
            b" world".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::ACCEPTED, "0-10")
    );

    let d = Digest::sha256_of(b"hello world!");
    let r = env
        .push(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            b"!".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.header("location"),
        format!("/v2/quay.io/org/app/blobs/{d}")
    );
    assert_eq!(r.header("docker-content-digest"), d.to_string());
    assert_eq!(
        env.get(&format!("/v2/quay.io/org/app/blobs/{d}"))
            .await
            .body
            .as_ref(),
        b"hello world!"
    );
    // The finished upload is gone.
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
    assert!(env.files_under("uploads").is_empty());
}

#[tokio::test]
async fn cancel_and_foreign_upload_ids() {
    let env = Env::new();
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let uuid = r.header("docker-upload-uuid").to_string();
    // Another repository cannot touch it.
    let r = env
        .push(
            Method::GET,
            &format!("/v2/quay.io/b/blobs/uploads/{uuid}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    env.push(Method::PATCH, &loc, &[], b"abc".to_vec()).await;
    let r = env.push(Method::DELETE, &loc, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(env.files_under("uploads").is_empty());
    let r = env.push(Method::PATCH, &loc, &[], b"abc".to_vec()).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[tokio::test]
async fn truncated_or_wrong_uploads_store_nothing() {
    let env = Env::new();
    let full = b"0123456789".to_vec();
    let d = Digest::sha256_of(&full);
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/a/blobs/uploads/?digest={d}"),
            &[],
            full[..6].to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let r = env
        .push(
            Method::PUT,
            &format!("{loc}?digest={d}"),
            &[],
            full[..3].to_vec(),
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    // A failed finish ends the upload.
    let r = env
        .push(Method::PUT, &format!("{loc}?digest={d}"), &[], full.clone())
        .await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = env
        .push(
            Method::PUT,
            &format!("{loc}?digest=sha256:abc"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = env
        .push(
            Method::POST,
            "/v2/quay.io/a/blobs/uploads/?digest=sha256:zz",
            &[],
            full.clone(),
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert!(env.get(&format!("/v2/quay.io/a/blobs/{d}")).await.status == StatusCode::NOT_FOUND);
    assert!(env
        .files_under("blobs")
        .iter()
        .all(|f| !f.contains(d.hex())));
    assert!(env.files_under("uploads").is_empty());
}

#[tokio::test]
async fn blob_size_limit() {
    let env = Env::new();
    let big = vec![1u8; (1 << 20) + 1];
    let d = Digest::sha256_of(&big);
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/a/blobs/uploads/?digest={d}"),
            &[],
            big.clone(),
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "SIZE_INVALID")
    );
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let r = env
        .push(Method::PATCH, &loc, &[], big[..1 << 20].to_vec())
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = env.push(Method::PATCH, &loc, &[], vec![1]).await;
    assert_eq!(r.code(), "SIZE_INVALID");
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(r.header("range"), format!("0-{}", (1 << 20) - 1));
    assert!(env.files_under("blobs").is_empty());
}

#[tokio::test]
async fn sha512_blobs_and_manifests() {
    let env = Env::new();
    let data = b"sha512 content".to_vec();
    let (d, _) = airlift_oci::digest::hash_reader(Algorithm::Sha512, &data[..]).unwrap();
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/a/blobs/uploads/?digest={d}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/blobs/{d}"))
            .await
            .body
            .as_ref(),
        data.as_slice()
    );
    let cfg = env.push_blob("quay.io/a", b"{}").await;
    let m = image_manifest(&cfg, 2, &d, data.len());
    let (md, _) = airlift_oci::digest::hash_reader(Algorithm::Sha512, &m[..]).unwrap();
    let r = env
        .push_manifest("quay.io/a", &md.to_string(), media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), md.to_string());
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/manifests/{md}"))
            .await
            .body
            .as_ref(),
        m.as_slice()
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let env = Env::new();
    let d = env.push_blob("quay.io/a", b"shared").await;
    let r = env
        .push(
            Method::POST,
            &format!("/v2/docker.io/b/c/blobs/uploads/?mount={d}&from=quay.io/a"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), format!("/v2/docker.io/b/c/blobs/{d}"));
    let missing = Digest::sha256_of(b"absent");
    let r = env
        .push(
            Method::POST,
            &format!("/v2/docker.io/b/c/blobs/uploads/?mount={missing}&from=quay.io/a"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(!r.header("docker-upload-uuid").is_empty());
}

#[tokio::test]
async fn upstream_namespaces_resolve_to_one_store() {
    let env = Env::new();
    let (m, _) = env.push_image("quay.io/org/app", "1.0", "q").await;
    let r = env.get("/v2/org/app/manifests/1.0?ns=quay.io").await;
    assert_eq!(r.body.as_ref(), m.as_slice());
    // Same path under another host: a different repository.
    let r = env.get("/v2/org/app/manifests/1.0?ns=docker.io").await;
    assert_eq!(r.code(), "NAME_UNKNOWN");
    // Docker Hub's library/ rule, both ways in.
    let (m2, _) = env.push_image("docker.io/nginx", "1.25", "n").await;
    for u in [
        "/v2/nginx/manifests/1.25?ns=docker.io",
        "/v2/docker.io/library/nginx/manifests/1.25",
        "/v2/library/nginx/manifests/1.25?ns=docker.io",
    ] {
        assert_eq!(env.get(u).await.body.as_ref(), m2.as_slice(), "{u}");
    }
    // The local namespace (no host, no ns) is its own.
    let (m3, _) = env.push_image("myteam/app", "v1", "l").await;
    assert_eq!(
        env.get("/v2/myteam/app/manifests/v1").await.body.as_ref(),
        m3.as_slice()
    );
    assert_eq!(
        env.get("/v2/myteam/app/manifests/v1?ns=docker.io")
            .await
            .code(),
        "NAME_UNKNOWN"
    );
    let r = env.get("/v2/_catalog").await;
    assert_eq!(
        r.json()["repositories"],
        json!(["docker.io/library/nginx", "myteam/app", "quay.io/org/app"])
    );
    assert!(env
        .data()
        .join("repositories/quay.io/org/app/_tags/1.0")
        .is_file());
    assert!(env
        .data()
        .join("repositories/docker.io/library/nginx/_tags/1.25")
        .is_file());
}

#[tokio::test]
async fn bare_names_fall_back_to_docker_hub_for_reads() {
    // Docker's registry-mirrors sends /v2/library/busybox/... with no host
    // and no ns: a read the local namespace cannot answer is Docker Hub's.
    let env = Env::new();
    let (hub, _) = env
        .push_image("docker.io/library/busybox", "1.36", "h")
        .await;
    for u in [
        "/v2/library/busybox/manifests/1.36",
        "/v2/library/busybox/tags/list",
    ] {
        assert_eq!(env.get(u).await.status, StatusCode::OK, "{u}");
    }
    assert_eq!(
        env.get("/v2/library/busybox/manifests/1.36")
            .await
            .body
            .as_ref(),
        hub.as_slice()
    );
    // A local repository of the same name wins over the fallback.
    let (local, _) = env.push_image("library/busybox", "1.36", "l").await;
    assert_eq!(
        env.get("/v2/library/busybox/manifests/1.36")
            .await
            .body
            .as_ref(),
        local.as_slice()
    );
    // Names that are neither local nor Docker Hub's stay unknown.
    assert_eq!(
        env.get("/v2/library/nothing/manifests/1").await.code(),
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn hostile_names_and_digests_touch_nothing() {
    let env = Env::new();
    let before = env.files_under("");
    for uri in [
        "/v2/../../etc/manifests/x",
        "/v2/%2e%2e/%2e%2e/etc/manifests/x",
        "/v2/a/../../b/manifests/x",
        "/v2/a//b/manifests/x",
        "/v2/A/manifests/x",
        "/v2/a/manifests/x?ns=..",
        "/v2/a/manifests/x?ns=%2e%2e%2fetc",
        "/v2/quay.io/../../x/tags/list",
    ] {
        let r = env.get(uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            "{uri}"
        );
        if uri.contains("/manifests/") {
            let r = env
                .push(
                    Method::PUT,
                    uri,
                    &[("content-type", media::OCI_MANIFEST)],
                    b"{}".to_vec(),
                )
                .await;
            assert_eq!(r.code(), "NAME_INVALID", "{uri}");
        }
    }
    for uri in [
        "/v2/a/blobs/sha256:..%2f..%2fetc%2fpasswd",
        "/v2/a/blobs/sha256:abc",
        "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
        "/v2/a/manifests/sha256:..",
        "/v2/a/referrers/sha256:xyz",
    ] {
        let r = env.get(uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            "{uri}"
        );
    }
    // A tag outside the grammar names nothing that can exist: 404.
    let r = env.get("/v2/a/manifests/-bad-tag").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
    let r = env.get("/v3/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.files_under(""), before);
}

#[tokio::test]
async fn bad_manifests_are_refused_and_not_stored() {
    let env = Env::new();
    let missing = Digest::sha256_of(b"never pushed");
    let cfg = env.push_blob("quay.io/a", b"{}").await;
    let m = image_manifest(&cfg, 2, &missing, 12);
    let r = env
        .push_manifest("quay.io/a", "1", media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    assert_eq!(
        r.json()["errors"][0]["detail"]["digest"],
        missing.to_string()
    );
    let r = env
        .push_manifest("quay.io/a", "1", media::OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let r = env
        .push_manifest(
            "quay.io/a",
            "1",
            media::OCI_MANIFEST,
            br#"{"schemaVersion":2}"#,
        )
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let big = vec![b' '; 4 * 1024 * 1024 + 1];
    let r = env
        .push_manifest("quay.io/a", "1", media::OCI_MANIFEST, &big)
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "MANIFEST_INVALID")
    );
    let good = image_manifest(&cfg, 2, &cfg, 2);
    let r = env
        .push_manifest(
            "quay.io/a",
            &Digest::sha256_of(b"other").to_string(),
            media::OCI_MANIFEST,
            &good,
        )
        .await;
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = env
        .push_manifest("quay.io/a", "1", media::OCI_INDEX, &good)
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(!env.data().join("repositories/quay.io/a").exists());
    assert_eq!(
        env.get("/v2/quay.io/a/tags/list").await.code(),
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn push_needs_credentials() {
    let env = Env::new();
    let r = env
        .call(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
    );
    assert_eq!(r.header("www-authenticate"), "Basic realm=\"airlift\"");
    let r = env
        .call(
            Method::PUT,
            "/v2/quay.io/a/manifests/1",
            &[("authorization", "Bearer wrong")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let dir = tempfile::tempdir().unwrap();
    let closed = open(&dir.path().join("d"), &[], false, None);
    let resp = closed
        .oneshot(
            Request::post("/v2/quay.io/a/blobs/uploads/")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(env.files_under("uploads").is_empty());
}

#[tokio::test]
async fn tags_and_catalog_paginate() {
    let env = Env::new();
    let (m, _) = env.push_image("quay.io/a", "t1", "x").await;
    for t in ["t2", "t3", "t4"] {
        env.push_manifest("quay.io/a", t, media::OCI_MANIFEST, &m)
            .await;
    }
    let r = env.get("/v2/quay.io/a/tags/list").await;
    assert_eq!(
        r.json(),
        json!({"name": "quay.io/a", "tags": ["t1", "t2", "t3", "t4"]})
    );
    let r = env.get("/v2/quay.io/a/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], json!(["t1", "t2"]));
    assert_eq!(
        r.header("link"),
        "</v2/quay.io/a/tags/list?n=2&last=t2>; rel=\"next\""
    );
    let r = env.get("/v2/quay.io/a/tags/list?n=2&last=t2").await;
    assert_eq!(r.json()["tags"], json!(["t3", "t4"]));
    assert_eq!(r.header("link"), "");
    let r = env.get("/v2/a/tags/list?ns=quay.io&n=1&last=t3").await;
    assert_eq!(r.json()["tags"], json!(["t4"]));
    let r = env.get("/v2/a/tags/list?ns=quay.io&n=1").await;
    assert_eq!(
        r.header("link"),
        "</v2/a/tags/list?ns=quay.io&n=1&last=t1>; rel=\"next\""
    );
    env.push_image("quay.io/b", "1", "y").await;
    let r = env.get("/v2/_catalog?n=1").await;
    assert_eq!(r.json()["repositories"], json!(["quay.io/a"]));
    assert_eq!(
        r.header("link"),
        "</v2/_catalog?n=1&last=quay.io/a>; rel=\"next\""
    );
    let r = env.get("/v2/_catalog?n=1&last=quay.io/a").await;
    assert_eq!(r.json()["repositories"], json!(["quay.io/b"]));
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

#[tokio::test]
async fn referrers_api() {
    let env = Env::new();
    let (m, md) = env.push_image("quay.io/a", "1", "s").await;
    let sig = push_artifact(&env, "quay.io/a", &md, m.len(), "application/x-signature").await;
    let sbom = push_artifact(&env, "quay.io/a", &md, m.len(), "application/x-sbom").await;
    let r = env.get(&format!("/v2/quay.io/a/referrers/{md}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), media::OCI_INDEX);
    let idx: Index = serde_json::from_slice(&r.body).unwrap();
    let mut got: Vec<_> = idx.manifests.iter().map(|d| d.digest.clone()).collect();
    got.sort();
    let mut want = vec![sig.clone(), sbom];
    want.sort();
    assert_eq!(got, want);
    let sig_desc = idx.manifests.iter().find(|d| d.digest == sig).unwrap();
    assert_eq!(
        sig_desc.artifact_type.as_deref(),
        Some("application/x-signature")
    );
    assert_eq!(
        sig_desc.annotations["org.example.kind"],
        "application/x-signature"
    );
    let r = env
        .get(&format!(
            "/v2/a/referrers/{md}?ns=quay.io&artifactType=application%2Fx-signature"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let idx: Index = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(idx.manifests.len(), 1);
    assert_eq!(idx.manifests[0].digest, sig);
    let unknown = Digest::sha256_of(b"no subject");
    let r = env.get(&format!("/v2/quay.io/a/referrers/{unknown}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"], json!([]));
}

#[tokio::test]
async fn deletes_only_when_allowed() {
    let env = Env::new();
    let (_, md) = env.push_image("quay.io/a", "1", "d").await;
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/manifests/{md}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let r = env
        .push(Method::DELETE, "/v2/quay.io/a/manifests/1", &[], vec![])
        .await;
    assert_eq!(r.code(), "UNSUPPORTED");

    let env = Env::with(&[], true);
    let (m, md) = env.push_image("quay.io/a", "1", "d").await;
    env.push_manifest("quay.io/a", "2", media::OCI_MANIFEST, &m)
        .await;
    let r = env
        .call(Method::DELETE, "/v2/quay.io/a/manifests/1", &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = env
        .push(Method::DELETE, "/v2/quay.io/a/manifests/1", &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        env.get("/v2/quay.io/a/tags/list").await.json()["tags"],
        json!(["2"])
    );
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/manifests/{md}"))
            .await
            .status,
        StatusCode::OK
    );
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/manifests/{md}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        env.get("/v2/quay.io/a/manifests/2").await.status,
        StatusCode::NOT_FOUND
    );
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/manifests/{md}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let d = env.push_blob("quay.io/a", b"bye").await;
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/blobs/{d}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/blobs/{d}")).await.status,
        StatusCode::NOT_FOUND
    );
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/blobs/{d}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn docker_manifest_list_keeps_its_media_type() {
    let env = Env::new();
    let cfg = env.push_blob("docker.io/org/app", b"{}").await;
    let layer = env.push_blob("docker.io/org/app", b"docker layer").await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::DOCKER_MANIFEST,
        "config": {"mediaType": media::DOCKER_CONFIG, "digest": cfg.to_string(), "size": 2},
        "layers": [{"mediaType": media::DOCKER_LAYER_GZIP, "digest": layer.to_string(), "size": 12}],
    }))
    .unwrap();
    let md = Digest::sha256_of(&m);
    let r = env
        .push_manifest(
            "docker.io/org/app",
            &md.to_string(),
            media::DOCKER_MANIFEST,
            &m,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let list = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::DOCKER_MANIFEST_LIST,
        "manifests": [{"mediaType": media::DOCKER_MANIFEST, "digest": md.to_string(), "size": m.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    }))
    .unwrap();
    let r = env
        .push_manifest(
            "docker.io/org/app",
            "multi",
            media::DOCKER_MANIFEST_LIST,
            &list,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = env.get("/v2/org/app/manifests/multi?ns=docker.io").await;
    assert_eq!(r.header("content-type"), media::DOCKER_MANIFEST_LIST);
    let r = env
        .get(&format!("/v2/org/app/manifests/{md}?ns=docker.io"))
        .await;
    assert_eq!(r.header("content-type"), media::DOCKER_MANIFEST);
    // An index here whose child was pushed into another repository:
    // the child can then be pulled by digest here too.
    let list_elsewhere = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::DOCKER_MANIFEST, "digest": md.to_string(), "size": m.len()}],
    }))
    .unwrap();
    assert_eq!(
        env.get(&format!("/v2/quay.io/other/manifests/{md}"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let r = env
        .push_manifest("quay.io/other", "1", media::OCI_INDEX, &list_elsewhere)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = env.get(&format!("/v2/quay.io/other/manifests/{md}")).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (StatusCode::OK, media::DOCKER_MANIFEST)
    );
    // An index whose child was never pushed is refused.
    let orphan = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": Digest::sha256_of(b"x").to_string(), "size": 1}],
    }))
    .unwrap();
    let r = env
        .push_manifest("docker.io/org/app", "bad", media::OCI_INDEX, &orphan)
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
}

#[tokio::test]
async fn restart_recovers_everything() {
    let env = Env::new();
    let (m, md) = env.push_image("quay.io/org/app", "1.0", "r").await;
    let sig = push_artifact(&env, "quay.io/org/app", &md, m.len(), "application/x-sig").await;
    // Leftovers of a crash: an upload and a partial blob.
    std::fs::write(env.data().join("uploads/stale"), b"partial").unwrap();
    std::fs::write(env.data().join("blobs/sha256/.partial-xyz"), b"partial").unwrap();
    let tok = token_file(env.dir.path());
    let again = Env {
        app: open(&env.data(), &[], false, Some(&tok)),
        dir: env.dir,
    };
    let r = again.get("/v2/org/app/manifests/1.0?ns=quay.io").await;
    assert_eq!(r.body.as_ref(), m.as_slice());
    assert_eq!(r.header("content-type"), media::OCI_MANIFEST);
    let r = again
        .get(&format!("/v2/quay.io/org/app/referrers/{md}"))
        .await;
    assert_eq!(r.json()["manifests"][0]["digest"], sig.to_string());
    assert!(again.files_under("uploads").is_empty());
    assert!(!again.data().join("blobs/sha256/.partial-xyz").exists());
}

/// A bundle layout with a multi-arch index and an artifact referring to it.
fn make_bundle(dir: &Path) -> (Digest, Digest, Digest) {
    let layout = Layout::create(dir).unwrap();
    let (cd, cs) = layout
        .put_blob(b"{\"architecture\":\"amd64\"}", None)
        .unwrap();
    let (ld, ls) = layout.put_blob(b"bundle layer", None).unwrap();
    let m = image_manifest(&cd, cs as usize, &ld, ls as usize);
    let (md, ms) = layout.put_blob(&m, None).unwrap();
    let mut child = Descriptor::new(media::OCI_MANIFEST, md.clone(), ms);
    child.platform = Some(airlift_oci::Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        os_version: None,
        os_features: vec![],
        variant: None,
    });
    let mut idx = Index::empty();
    idx.manifests = vec![child];
    let ib = serde_json::to_vec(&idx).unwrap();
    let (id, is) = layout.put_blob(&ib, None).unwrap();
    let (ed, _) = layout.put_blob(b"{}", None).unwrap();
    let art = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST, "artifactType": "application/x-sig",
        "config": {"mediaType": media::OCI_EMPTY, "digest": ed.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": media::OCI_INDEX, "digest": id.to_string(), "size": is},
    }))
    .unwrap();
    let (ad, asz) = layout.put_blob(&art, None).unwrap();
    let mut top = Descriptor::new(media::OCI_INDEX, id.clone(), is);
    top.annotations
        .insert(REF_NAME.into(), "quay.io/test/app:1.0".into());
    let mut a = Descriptor::new(media::OCI_MANIFEST, ad.clone(), asz);
    a.annotations
        .insert(REF_NAME.into(), format!("quay.io/test/app@{ad}"));
    let mut index = Index::empty();
    index.manifests = vec![top, a];
    layout.write_index(&index).unwrap();
    (id, md, ad)
}

#[tokio::test]
async fn serves_read_only_layers() {
    let bundle = tempfile::tempdir().unwrap();
    let (id, md, ad) = make_bundle(bundle.path());
    let env = Env::with(&[bundle.path().to_path_buf()], true);
    for u in [
        "/v2/test/app/manifests/1.0?ns=quay.io",
        "/v2/quay.io/test/app/manifests/1.0",
    ] {
        let r = env.get(u).await;
        assert_eq!(r.status, StatusCode::OK, "{u}");
        assert_eq!(r.header("docker-content-digest"), id.to_string());
        assert_eq!(r.header("content-type"), media::OCI_INDEX);
    }
    // The child manifest, by digest, and its blobs.
    let r = env
        .get(&format!("/v2/test/app/manifests/{md}?ns=quay.io"))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let m: Value = r.json();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        env.get(&format!("/v2/quay.io/test/app/blobs/{layer}"))
            .await
            .body
            .as_ref(),
        b"bundle layer"
    );
    let r = env
        .get(&format!("/v2/quay.io/test/app/referrers/{id}"))
        .await;
    assert_eq!(r.json()["manifests"][0]["digest"], ad.to_string());
    assert_eq!(
        r.json()["manifests"][0]["artifactType"],
        "application/x-sig"
    );
    assert_eq!(
        env.get("/v2/quay.io/test/app/tags/list").await.json()["tags"],
        json!(["1.0"])
    );
    assert_eq!(
        env.get("/v2/_catalog").await.json()["repositories"],
        json!(["quay.io/test/app"])
    );
    // Read-only: deletes are refused, nothing in the bundle changes.
    let r = env
        .push(
            Method::DELETE,
            "/v2/quay.io/test/app/manifests/1.0",
            &[],
            vec![],
        )
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/test/app/blobs/{layer}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.code(), "UNSUPPORTED");
    // A push over a bundle tag lands in the data folder and wins.
    let (m2, _) = env.push_image("quay.io/test/app", "1.0", "newer").await;
    assert_eq!(
        env.get("/v2/quay.io/test/app/manifests/1.0")
            .await
            .body
            .as_ref(),
        m2.as_slice()
    );
    assert!(Layout::open(bundle.path()).unwrap().has_blob(&md));
}

#[test]
fn broken_layer_fails_naming_the_digest() {
    let bundle = tempfile::tempdir().unwrap();
    let (id, _, _) = make_bundle(bundle.path());
    std::fs::remove_file(bundle.path().join(id.blob_path())).unwrap();
    let data = tempfile::tempdir().unwrap();
    let e = Store::open(data.path(), &[bundle.path().to_path_buf()])
        .err()
        .unwrap();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&id.to_string()) && msg.contains("quay.io/test/app:1.0"),
        "{msg}"
    );

    let bundle = tempfile::tempdir().unwrap();
    make_bundle(bundle.path());
    let layout = Layout::open(bundle.path()).unwrap();
    let mut idx = layout.read_index().unwrap();
    idx.manifests[0]
        .annotations
        .insert(REF_NAME.into(), "1.0".into());
    idx.manifests[1].annotations.clear();
    layout.write_index(&idx).unwrap();
    let e = Store::open(data.path(), &[bundle.path().to_path_buf()])
        .err()
        .unwrap();
    assert!(format!("{e:#}").contains("ref.name"), "{e:#}");
}
