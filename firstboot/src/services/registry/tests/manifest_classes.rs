//! A pushed document is classified by its content, not by the type it
//! is sent with, and every descriptor must match what is stored: an
//! image manifest sent as an index, an index child that is a layer, and
//! a descriptor with the wrong size are refused by name.

use super::*;

fn index_of(children: &[(&str, &Digest, usize)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(mt, d, size)| json!({"mediaType": mt, "digest": d.to_string(), "size": size}))
        .collect();
    serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests}),
    )
    .unwrap()
}

#[tokio::test]
async fn an_image_manifest_sent_as_an_index_is_refused() {
    let env = Env::new();
    let cd = env.push_blob("quay.io/a", b"{}").await;
    let missing = Digest::sha256_of(b"never pushed");
    // No mediaType in the body, a layer that is not stored, index Content-Type.
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": missing.to_string(), "size": 12}],
    }))
    .unwrap();
    let r = env
        .push_manifest("quay.io/a", "v1", media::OCI_INDEX, &m)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(r.message().contains("Content-Type"), "{}", r.message());
    assert_eq!(
        env.get("/v2/quay.io/a/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );
    // Sent as what it is, its missing layer is named.
    let r = env
        .push_manifest("quay.io/a", "v1", media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    assert!(
        r.message().contains(&missing.to_string()),
        "{}",
        r.message()
    );
}

#[tokio::test]
async fn index_children_must_be_manifests() {
    let env = Env::new();
    let (m, md) = env.push_image("quay.io/a", "v1", "x").await;
    let layer = b"layer-x";
    let ld = Digest::sha256_of(layer);
    let bad = index_of(&[(media::OCI_MANIFEST, &ld, layer.len())]);
    let r = env
        .push_manifest("quay.io/a", "all", media::OCI_INDEX, &bad)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(r.message().contains(&ld.to_string()), "{}", r.message());
    assert!(r.message().contains("not a manifest"), "{}", r.message());
    // The layer is not served as a manifest.
    let r = env.get(&format!("/v2/quay.io/a/manifests/{ld}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // A child declared as an index that is an image manifest.
    let bad = index_of(&[(media::OCI_INDEX, &md, m.len())]);
    let r = env
        .push_manifest("quay.io/a", "all", media::OCI_INDEX, &bad)
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
    // The real child is fine.
    let good = index_of(&[(media::OCI_MANIFEST, &md, m.len())]);
    let r = env
        .push_manifest("quay.io/a", "all", media::OCI_INDEX, &good)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.message());
}

#[tokio::test]
async fn descriptor_sizes_must_match_the_stored_blobs() {
    let env = Env::new();
    let layer = b"twelve bytes";
    let ld = env.push_blob("quay.io/a", layer).await;
    let cd = env.push_blob("quay.io/a", b"{}").await;
    let m = image_manifest(&cd, 2, &ld, layer.len() + 1);
    let r = env
        .push_manifest("quay.io/a", "v1", media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    let msg = r.message();
    assert!(
        msg.contains(&ld.to_string()) && msg.contains("13") && msg.contains("12"),
        "{msg}"
    );
    let (m, md) = env.push_image("quay.io/a", "v2", "y").await;
    let bad = index_of(&[(media::OCI_MANIFEST, &md, m.len() - 1)]);
    let r = env
        .push_manifest("quay.io/a", "all", media::OCI_INDEX, &bad)
        .await;
    assert_eq!(r.code(), "MANIFEST_INVALID");
}
