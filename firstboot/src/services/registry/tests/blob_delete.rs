//! With --allow-delete, a blob DELETE through one repository does not
//! take the bytes from another repository whose manifest references
//! them; the bytes go once nothing references them.

use super::*;

#[tokio::test]
async fn a_blob_delete_keeps_bytes_other_manifests_reference() {
    let env = Env::with(&[], true);
    let (_, ma) = env.push_image("quay.io/a", "v1", "shared").await;
    let (_, mb) = env.push_image("quay.io/b", "v1", "shared").await;
    assert_eq!(ma, mb);
    let layer = Digest::sha256_of(b"layer-shared");
    let blob_file = env.data().join(layer.blob_path());
    assert!(blob_file.is_file());

    // Deleting it through a: b's manifest still references it.
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/a/blobs/{layer}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(
        blob_file.is_file(),
        "the bytes went while b still uses them"
    );
    assert_eq!(
        env.get("/v2/quay.io/b/manifests/v1").await.status,
        StatusCode::OK
    );
    let r = env.get(&format!("/v2/quay.io/b/blobs/{layer}")).await;
    assert_eq!(
        (r.status, &r.body[..]),
        (StatusCode::OK, &b"layer-shared"[..])
    );

    // Once no manifest references it, a delete removes the bytes.
    for repo in ["quay.io/a", "quay.io/b"] {
        let r = env
            .push(
                Method::DELETE,
                &format!("/v2/{repo}/manifests/{ma}"),
                &[],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/quay.io/b/blobs/{layer}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(!blob_file.exists());
    let r = env.get(&format!("/v2/quay.io/b/blobs/{layer}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
