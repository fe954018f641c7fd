//! host0's app as `host0` builds it (status, join, registry fallback,
//! then `web::attach`), driven without a socket: the page and its assets
//! (ETag, CSP, 304), `GET /airlift/v1/images` from bundle.json and the
//! registry's store, `GET /airlift/v1/mirror-config`, no-store on the
//! JSON, joins listed when netboot is off, and every state-changing
//! method refused on the page's routes.

use std::path::Path;
use std::sync::Arc;

use airlift_appliance::bundle_manifest::{BundleImage, BundleManifest, Totals, BUNDLE_SCHEMA};
use airlift_appliance::{ApplianceFile, RegistryFile, Role, Storage, TlsMode};
use airlift_firstboot::api::join::{Join, Peer};
use airlift_firstboot::api::server::{self, Current};
use airlift_firstboot::services::mirrors::{Runtime, Scheme};
use airlift_firstboot::services::registry::store::NewManifest;
use airlift_firstboot::services::registry::{Registry, ServeOptions};
use airlift_firstboot::services::status::{ApplianceName, Identity, LoadState, Progress, Status};
use airlift_oci::documents::{media, Descriptor, Index, Platform, REF_NAME};
use airlift_oci::{Digest, Layout};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use tower::ServiceExt;

const TOKEN: &str = "web-router-test-token-0123456789";

/// An image manifest with one layer of `layer` bytes for `arch`.
fn put_image(l: &Layout, arch: &str, layer: &[u8]) -> Descriptor {
    let (ld, ls) = l.put_blob(layer, None).unwrap();
    let config = serde_json::json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
    let (cd, cs) = l
        .put_blob(&serde_json::to_vec(&config).unwrap(), None)
        .unwrap();
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": Descriptor::new(media::OCI_CONFIG, cd, cs),
        "layers": [Descriptor::new(media::OCI_LAYER_TAR, ld, ls)],
    });
    let (md, ms) = l.put_blob(&serde_json::to_vec(&m).unwrap(), None).unwrap();
    Descriptor::new(media::OCI_MANIFEST, md, ms)
}

struct Bundle {
    app: Descriptor,
    multi: Descriptor,
    /// Sizes of the multi-arch image: index + 2 × (manifest, config, layer).
    multi_size: u64,
}

/// A bundle with `quay.io/test/app:1.0` (listed in bundle.json) and a
/// two-platform index `docker.io/library/multi:2` (not listed).
fn bundle(dir: &Path) -> Bundle {
    let l = Layout::create(dir).unwrap();
    let mut app = put_image(&l, "amd64", &[1u8; 1000]);
    let amd = put_image(&l, "amd64", &[2u8; 2000]);
    let arm = put_image(&l, "arm64", &[3u8; 3000]);
    let mut children = Vec::new();
    let mut multi_size = 0;
    for (d, arch) in [(&amd, "amd64"), (&arm, "arm64")] {
        let mut c = d.clone();
        c.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: vec![],
            variant: None,
        });
        let doc: serde_json::Value =
            serde_json::from_slice(&l.read_blob(&d.digest).unwrap()).unwrap();
        multi_size += d.size
            + doc["config"]["size"].as_u64().unwrap()
            + doc["layers"][0]["size"].as_u64().unwrap();
        children.push(c);
    }
    let mut index = Index::empty();
    index.manifests = children;
    let (xd, xs) = l
        .put_blob(&serde_json::to_vec(&index).unwrap(), None)
        .unwrap();
    multi_size += xs;
    let mut multi = Descriptor::new(media::OCI_INDEX, xd, xs);
    app.annotations
        .insert(REF_NAME.into(), "quay.io/test/app:1.0".into());
    multi
        .annotations
        .insert(REF_NAME.into(), "docker.io/library/multi:2".into());
    let mut top = Index::empty();
    top.manifests = vec![app.clone(), multi.clone()];
    l.write_index(&top).unwrap();
    let manifest = BundleManifest {
        schema: BUNDLE_SCHEMA.into(),
        name: "web-test".into(),
        version: "9.9.9".into(),
        images: vec![BundleImage {
            reference: "quay.io/test/app:1.0".into(),
            digest: app.digest.clone(),
            media_type: media::OCI_MANIFEST.into(),
            platforms: vec!["linux/amd64".into()],
            size: 4242,
            attachments: Vec::new(),
            signatures: Vec::new(),
        }],
        totals: Totals {
            images: 1,
            blobs: 3,
            unique_bytes: 4242,
            referenced_bytes: 4242,
            saved_bytes: 0,
        },
        base: None,
    };
    std::fs::write(
        dir.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    Bundle {
        app,
        multi,
        multi_size,
    }
}

fn appliance(netboot: airlift_appliance::Netboot) -> ApplianceFile {
    ApplianceFile {
        schema: airlift_appliance::SCHEMA,
        name: "web-test".into(),
        version: "9.9.9".into(),
        volume_label: "AIRLIFT_WEB".into(),
        role: Role::Host0,
        join_token: TOKEN.into(),
        kernel_release: "6.1.0-test".into(),
        registry: RegistryFile {
            port: 5000,
            tls: TlsMode::Off,
            tls_cert: None,
            tls_key: None,
            extra_names: vec![],
            push: false,
            allow_delete: false,
        },
        mirrors: vec!["quay.io".into(), "docker.io".into()],
        runtimes: vec![airlift_appliance::Runtime::Containerd],
        netboot,
        storage: Storage::default(),
        ha: None,
        trust: None,
        base: None,
    }
}

struct Fixture {
    app: Router,
    registry: Arc<Registry>,
    bundle: Bundle,
    _tmp: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let bdir = tmp.path().join("media/airlift/bundle");
    let b = bundle(&bdir);
    let opts: ServeOptions = serde_json::from_value(serde_json::json!({
        "listen": "127.0.0.1:5000",
        "data": tmp.path().join("data"),
        "layers": [bdir],
    }))
    .unwrap();
    let registry = Arc::new(Registry::open(&opts).unwrap());
    let status = Status::new(
        Identity {
            name: "web-test".into(),
            version: "9.9.9".into(),
            registry: "http://10.0.0.1:5000".into(),
            ca_fingerprint: None,
            started_at: "2026-11-22T12:00:00Z".into(),
        },
        LoadState::Loading,
    );
    status.start_load(Progress {
        blobs_total: 10,
        bytes_total: 1000,
        ..Progress::default()
    });
    let join = Arc::new(Join {
        token: TOKEN.into(),
        appliance: ApplianceName {
            name: "web-test".into(),
            version: "9.9.9".into(),
        },
        upstreams: vec!["quay.io".into(), "docker.io".into()],
        ca_pem: None,
        scheme: Scheme::Http,
        port: 5000,
        advertised: vec!["10.0.0.1:5000".into()],
        runtimes: vec![Runtime::Containerd],
        tls_dir: None,
        replica_sans: vec![],
        replicas: Default::default(),
        trust: None,
    });
    let current = Current::new(registry.clone());
    let app = server::app(current.clone(), status, join.clone());
    let c = current.clone();
    let app = airlift_firstboot::api::web::attach(
        app,
        &appliance(airlift_appliance::Netboot::default()),
        airlift_firstboot::api::images::release_manifest(&bdir, tmp.path().join("state")),
        Arc::new(move || c.registry()),
        join,
    );
    Fixture {
        app,
        registry,
        bundle: b,
        _tmp: tmp,
    }
}

struct Res {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Bytes,
}

impl Res {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header: {:?}", self.headers))
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Res {
    let mut req = req;
    req.extensions_mut().insert(Peer {
        remote: "10.0.0.50:40000".parse().unwrap(),
        local: "10.0.0.1:5000".parse().unwrap(),
    });
    let res = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = res.into_parts();
    Res {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, 1 << 24).await.unwrap(),
    }
}

async fn get(app: &Router, uri: &str) -> Res {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn page_and_assets_have_etags_csp_and_conditional_get() {
    let f = fixture();
    let page = get(&f.app, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert!(page
        .header(header::CONTENT_SECURITY_POLICY)
        .starts_with("default-src 'self'"));
    let html = page.text();
    for id in [
        "appliance-name",
        "images-table",
        "nodes-table",
        "replicas-empty",
        "mirror-text",
    ] {
        assert!(html.contains(&format!("data-testid=\"{id}\"")), "{id}");
    }
    let etag = page.header(header::ETAG).to_string();
    let again = send(
        &f.app,
        Request::get("/")
            .header(header::IF_NONE_MATCH, &etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    assert_eq!(again.header(header::ETAG), etag);

    for (path, ct) in [
        ("/airlift/ui/app.js", "text/javascript"),
        ("/airlift/ui/style.css", "text/css"),
        ("/airlift/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = get(&f.app, path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.header(header::CONTENT_TYPE).starts_with(ct), "{path}");
        assert!(r.header(header::ETAG).starts_with('"'), "{path}");
        assert_eq!(r.header(header::CACHE_CONTROL), "no-cache", "{path}");
        assert!(html.contains(path), "the page does not use {path}");
        let stale = send(
            &f.app,
            Request::get(path)
                .header(header::IF_NONE_MATCH, "\"not-the-etag\"")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(stale.status, StatusCode::OK, "{path}");
        assert_eq!(stale.body, r.body);
    }
    let head = send(&f.app, Request::head("/").body(Body::empty()).unwrap()).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    // An unknown asset is not the page: it falls to the registry (404).
    assert_eq!(
        get(&f.app, "/airlift/ui/nope.js").await.status,
        StatusCode::NOT_FOUND
    );
    // The registry behind it still answers.
    assert_eq!(get(&f.app, "/v2/").await.status, StatusCode::OK);
}

#[tokio::test]
async fn state_changing_methods_are_refused_on_the_page_routes() {
    let f = fixture();
    for path in [
        "/",
        "/airlift/ui/app.js",
        "/airlift/ui/style.css",
        "/airlift/v1/images",
        "/airlift/v1/mirror-config",
        "/airlift/v1/status",
        "/airlift/v1/nodes",
    ] {
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let r = send(
                &f.app,
                Request::builder()
                    .method(m.clone())
                    .uri(path)
                    .body(Body::from("{}"))
                    .unwrap(),
            )
            .await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
            assert!(
                r.header(header::ALLOW).contains("GET"),
                "{m} {path}: {:?}",
                r.headers
            );
        }
    }
}

#[tokio::test]
async fn images_come_from_bundle_json_and_the_registry_store() {
    let f = fixture();
    let r = get(&f.app, "/airlift/v1/images").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store");
    let v = r.json();
    assert_eq!(v["bundle"]["name"], "web-test");
    assert_eq!(v["bundle"]["unique-bytes"], 4242);
    let images = v["images"].as_array().unwrap();
    let refs: Vec<&str> = images
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs, ["docker.io/library/multi:2", "quay.io/test/app:1.0"]);
    // From bundle.json: the builder's numbers, as written.
    let app = &images[1];
    assert_eq!(app["source"], "bundle");
    assert_eq!(app["digest"], f.bundle.app.digest.to_string());
    assert_eq!(app["size"], 4242);
    assert_eq!(app["platforms"], serde_json::json!(["linux/amd64"]));
    // Not in bundle.json: worked out from the stored index and manifests.
    let multi = &images[0];
    assert_eq!(multi["source"], "registry");
    assert_eq!(multi["digest"], f.bundle.multi.digest.to_string());
    assert_eq!(multi["media-type"], media::OCI_INDEX);
    assert_eq!(
        multi["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(multi["size"], f.bundle.multi_size);

    // A pushed image (a new repository and tag in the data store) shows up.
    let bytes = Layout::open(&f._tmp.path().join("media/airlift/bundle"))
        .unwrap()
        .read_blob(&f.bundle.app.digest)
        .unwrap();
    f.registry
        .store
        .put_manifest(NewManifest {
            repo: "team/tool",
            tags: &["dev"],
            digest: &f.bundle.app.digest,
            bytes: Bytes::from(bytes.clone()),
            media_type: media::OCI_MANIFEST,
            referrer: None,
        })
        .await
        .unwrap();
    let v = get(&f.app, "/airlift/v1/images").await.json();
    let pushed = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == "team/tool:dev")
        .unwrap_or_else(|| panic!("no pushed image in {v}"))
        .clone();
    assert_eq!(pushed["source"], "registry");
    assert_eq!(pushed["platforms"], serde_json::json!(["linux/amd64"]));
    let layout = Layout::open(&f._tmp.path().join("media/airlift/bundle")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let expected = bytes.len() as u64
        + doc["config"]["size"].as_u64().unwrap()
        + doc["layers"][0]["size"].as_u64().unwrap();
    assert_eq!(pushed["size"], expected);
    assert!(layout.has_blob(&Digest::sha256_of(&bytes)));
}

#[tokio::test]
async fn mirror_config_is_what_a_joining_node_gets() {
    let f = fixture();
    let r = get(&f.app, "/airlift/v1/mirror-config").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header(header::CACHE_CONTROL), "no-store");
    let v = r.json();
    assert_eq!(v["registries"], serde_json::json!(["http://10.0.0.1:5000"]));
    assert_eq!(v["upstreams"], serde_json::json!(["quay.io", "docker.io"]));
    assert_eq!(v["node-runtimes"], serde_json::json!(["containerd"]));
    // The same files the join endpoint's spec renders to.
    let join = send(
        &f.app,
        Request::post("/airlift/v1/join")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .json();
    let spec: airlift_firstboot::services::mirrors::MirrorSpec =
        serde_json::from_value(join["mirror"].clone()).unwrap();
    let containerd = v["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["runtime"] == "containerd")
        .unwrap();
    assert_eq!(
        containerd["text"],
        airlift_firstboot::services::mirrors::render_text(&spec, Runtime::Containerd)
    );

    let text = get(&f.app, "/airlift/v1/mirror-config?runtime=containerd").await;
    assert_eq!(text.status, StatusCode::OK);
    assert!(text.header(header::CONTENT_TYPE).starts_with("text/plain"));
    let text = text.text();
    assert!(
        text.contains("/etc/containerd/certs.d/quay.io/hosts.toml"),
        "{text}"
    );
    assert!(text.contains("http://10.0.0.1:5000"), "{text}");
    let podman = get(&f.app, "/airlift/v1/mirror-config?runtime=podman")
        .await
        .text();
    assert!(podman.contains("registries.conf.d"), "{podman}");
    let bad = get(&f.app, "/airlift/v1/mirror-config?runtime=rkt").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text().contains("unknown runtime \\\"rkt\\\""),
        "{}",
        bad.text()
    );
}

#[tokio::test]
async fn status_and_nodes_are_no_store_and_joins_are_listed_without_netboot() {
    let f = fixture();
    let s = get(&f.app, "/airlift/v1/status").await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(s.json()["state"], "loading");
    let n = get(&f.app, "/airlift/v1/nodes").await;
    assert_eq!(n.status, StatusCode::OK);
    assert_eq!(n.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(n.json(), serde_json::json!([]));

    // A refused join is not a node; an accepted one is, by its MAC.
    let wrong = send(
        &f.app,
        Request::post("/airlift/v1/join")
            .body(Body::from(r#"{"token":"nope","mac":"52:54:00:00:00:09"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&f.app, "/airlift/v1/nodes").await.json(),
        serde_json::json!([])
    );
    let ok = send(
        &f.app,
        Request::post("/airlift/v1/join")
            .body(Body::from(format!(
                r#"{{"token":"{TOKEN}","mac":"52:54:00:AB:CD:01"}}"#
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    let nodes = get(&f.app, "/airlift/v1/nodes").await.json();
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes[0]["mac"], "52:54:00:ab:cd:01");
    assert_eq!(nodes[0]["ip"], "10.0.0.50");
    assert_eq!(nodes[0]["state"], "joined");
    // The registry's own answers keep their headers (no no-store added).
    let v2 = get(&f.app, "/v2/").await;
    assert!(
        v2.headers.get(header::CACHE_CONTROL).is_none(),
        "{:?}",
        v2.headers
    );
}
