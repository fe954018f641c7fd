//! Manifest pushes and pulls: by tag and digest, refused documents, Docker lists, deletes.

use super::*;

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
