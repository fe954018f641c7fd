//! `POST /airlift/v1/gc` on a registry opened in-process over a state
//! folder built by hand (two releases, a pushed image, a stray blob):
//! who may call it, 409 while another change runs, the dry run, the run
//! (state first, the layers hook, blobs, release folders), and a
//! manifest push waiting on the collection's lock and refused when its
//! blob was collected meanwhile.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use airlift_appliance::ReleaseId;
use airlift_firstboot::api::gc::{router, GcApi, PATH};
use airlift_firstboot::api::join::Peer;
use airlift_firstboot::api::server::Current;
use airlift_firstboot::services::registry::store::{NewManifest, StoreError};
use airlift_firstboot::services::registry::{Registry, ServeOptions};
use airlift_firstboot::services::releases::{Ops, Release, ReleasesState, Source};
use airlift_oci::documents::media;
use airlift_oci::{Digest, Layout};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

const TOKEN: &str = "gc-api-test-token";

/// A one-layer image's blobs in `l`: (manifest digest, size, every digest).
fn image(l: &Layout, seed: u8) -> (Digest, u64, Vec<Digest>) {
    let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":{seed}}}");
    let layer = vec![seed; 1000 + seed as usize];
    let (c, cs) = l.put_blob(config.as_bytes(), None).unwrap();
    let (y, ys) = l.put_blob(&layer, None).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{c}","size":{cs}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{y}","size":{ys}}}]}}"#,
        media::OCI_MANIFEST
    );
    let (m, ms) = l.put_blob(manifest.as_bytes(), None).unwrap();
    (m.clone(), ms, vec![m, c, y])
}

/// A release holding one image, as host0 keeps it.
fn release(data: &Path, version: &str, m: &Digest, size: u64) -> Release {
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{m}","size":{size},"annotations":{{"org.opencontainers.image.ref.name":"quay.io/demo/app:{version}"}}}}]}}"#,
        media::OCI_MANIFEST
    );
    let id = ReleaseId {
        name: "demo".into(),
        version: version.into(),
        bundle: airlift_appliance::release::bundle_id(index.as_bytes()),
    };
    let dir = data.join("releases").join(id.bundle.hex());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), index).unwrap();
    std::os::unix::fs::symlink("../../registry/blobs", dir.join("blobs")).unwrap();
    Release {
        id,
        images: 1,
        blobs: 3,
        bytes: 0,
        loaded_at: "2026-12-01T00:00:00Z".into(),
        source: Source::Media,
        base: None,
    }
}

/// Every blob file an hour old (past the grace period).
fn age_blobs(registry: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    for f in std::fs::read_dir(registry.join("blobs/sha256")).unwrap() {
        let f = std::fs::File::options()
            .append(true)
            .open(f.unwrap().path())
            .unwrap();
        f.set_modified(old).unwrap();
    }
}

struct Fixture {
    data: PathBuf,
    registry: Arc<Registry>,
    ops: Ops,
    app: axum::Router,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    r1: (Release, Vec<Digest>),
    r2: (Release, Vec<Digest>),
    pushed: Vec<Digest>,
    stray: Digest,
    _tmp: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let reg_dir = data.join("registry");
    let l = Layout::create(&reg_dir).unwrap();
    let (m1, s1, b1) = image(&l, 1);
    let (m2, s2, b2) = image(&l, 2);
    let (mp, _, bp) = image(&l, 3);
    let (stray, _) = l.put_blob(b"stray", None).unwrap();
    let r1 = release(&data, "1.0", &m1, s1);
    let r2 = release(&data, "2.0", &m2, s2);
    let mut state = ReleasesState::default();
    state.add(r1.clone());
    state.add(r2.clone());
    state.set_current(&r2.id.bundle).unwrap();
    state.save(&data).unwrap();

    let opts: ServeOptions = serde_json::from_value(serde_json::json!({
        "listen": "127.0.0.1:5000",
        "data": reg_dir,
    }))
    .unwrap();
    let registry = Arc::new(Registry::open(&opts).unwrap());
    let bytes = l.read_blob(&mp).unwrap();
    registry
        .store
        .put_manifest(NewManifest {
            repo: "pushed/app",
            tags: &["1"],
            digest: &mp,
            bytes: bytes.into(),
            media_type: media::OCI_MANIFEST,
            referrer: None,
        })
        .await
        .unwrap();
    age_blobs(&reg_dir);
    let ops = Ops::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = router(Arc::new(GcApi {
        current: Current::new(registry.clone()),
        data: data.clone(),
        keep: 2,
        ops: ops.clone(),
        token: TOKEN.into(),
        on_releases: Arc::new(move |s: &ReleasesState| {
            record.lock().unwrap().push(s.names());
            Ok(())
        }),
    }));
    Fixture {
        data,
        registry,
        ops,
        app,
        seen,
        r1: (r1, b1),
        r2: (r2, b2),
        pushed: bp,
        stray,
        _tmp: tmp,
    }
}

async fn post(
    f: &Fixture,
    from: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::post(PATH)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    if let Some(t) = token {
        req.headers_mut().insert(
            header::AUTHORIZATION,
            format!("Bearer {t}").parse().unwrap(),
        );
    }
    req.extensions_mut().insert(Peer {
        remote: format!("{from}:40000").parse().unwrap(),
        local: "127.0.0.1:5000".parse().unwrap(),
    });
    let res = f.app.clone().oneshot(req).await.unwrap();
    let code = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (code, serde_json::from_slice(&bytes).unwrap())
}

fn present(f: &Fixture, d: &Digest) -> bool {
    f.data.join("registry/blobs/sha256").join(d.hex()).is_file()
}

fn listed(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn gc_endpoint_is_admin_only_exclusive_and_frees_only_the_dropped_and_stray() {
    let f = fixture().await;
    let (code, _) = post(&f, "127.0.0.1", None, "{}").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = post(&f, "10.0.0.50", Some(TOKEN), "{}").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, v) = post(&f, "127.0.0.1", Some(TOKEN), r#"{"keep":0}"#).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    {
        let _load = f.ops.begin("loading release demo 3.0").unwrap();
        let (code, v) = post(&f, "127.0.0.1", Some(TOKEN), r#"{"keep":1}"#).await;
        assert_eq!(code, StatusCode::CONFLICT);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .contains("loading release demo 3.0"),
            "{v}"
        );
    }

    // keep 2 (the configured default): both releases stay, the stray goes.
    let (code, v) = post(&f, "127.0.0.1", Some(TOKEN), r#"{"dryRun":true}"#).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(listed(&v), vec![f.stray.to_string()]);
    assert_eq!(v["keep"], 2);

    let mut want: Vec<String> = f.r1.1.iter().map(|d| d.to_string()).collect();
    want.push(f.stray.to_string());
    want.sort();
    let (code, dry) = post(&f, "127.0.0.1", Some(TOKEN), r#"{"dryRun":true,"keep":1}"#).await;
    assert_eq!(code, StatusCode::OK, "{dry}");
    assert_eq!(listed(&dry), want);
    assert_eq!(
        dry["releasesDropped"],
        serde_json::json!([f.r1.0.id.to_string()])
    );
    assert!(present(&f, &f.stray) && f.r1.1.iter().all(|d| present(&f, d)));
    assert!(f.seen.lock().unwrap().is_empty());
    assert_eq!(ReleasesState::load(&f.data).unwrap().releases.len(), 2);

    let (code, done) = post(&f, "127.0.0.1", Some(TOKEN), r#"{"keep":1}"#).await;
    assert_eq!(code, StatusCode::OK, "{done}");
    assert_eq!(listed(&done), want);
    assert_eq!(done["dryRun"], false);
    assert_eq!(*f.seen.lock().unwrap(), vec![vec![f.r2.0.id.to_string()]]);
    assert_eq!(
        ReleasesState::load(&f.data).unwrap().names(),
        vec![f.r2.0.id.to_string()]
    );
    assert!(!present(&f, &f.stray) && f.r1.1.iter().all(|d| !present(&f, d)));
    assert!(f.r2.1.iter().chain(&f.pushed).all(|d| present(&f, d)));
    let releases = f.data.join("releases");
    assert!(!releases.join(f.r1.0.id.bundle.hex()).exists());
    assert!(releases
        .join(f.r2.0.id.bundle.hex())
        .join("index.json")
        .is_file());
    assert!(f.registry.store.blob(&f.pushed[0]).await.is_some());
}

#[tokio::test]
async fn a_push_waits_for_the_collection_and_is_refused_if_its_blob_went() {
    let f = fixture().await;
    let l = Layout::open(&f.data.join("registry")).unwrap();
    let (m, _, blobs) = image(&l, 9);
    let bytes = l.read_blob(&m).unwrap();
    let guard = f.registry.store.collection_lock().await;
    let store = f.registry.clone();
    let (m2, blobs2) = (m.clone(), blobs.clone());
    let push = tokio::spawn(async move {
        store
            .store
            .put_manifest_present(
                NewManifest {
                    repo: "pushed/late",
                    tags: &["1"],
                    digest: &m2,
                    bytes: bytes.into(),
                    media_type: media::OCI_MANIFEST,
                    referrer: None,
                },
                &blobs2[1..],
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !push.is_finished(),
        "the push did not wait for the collection's lock"
    );
    // What a collection does under the lock: the layer goes.
    std::fs::remove_file(f.data.join("registry/blobs/sha256").join(blobs[2].hex())).unwrap();
    drop(guard);
    match push.await.unwrap() {
        Err(StoreError::ManifestMissing(msg)) => {
            assert!(msg.contains(&blobs[2].to_string()), "{msg}")
        }
        other => panic!("the push was not refused: {other:?}"),
    }
    assert!(f.registry.store.tags("pushed/late").is_none());
}
