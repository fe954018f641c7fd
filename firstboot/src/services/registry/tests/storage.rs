//! Storage across restarts and the read-only layers of the bundle.

use super::*;

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
