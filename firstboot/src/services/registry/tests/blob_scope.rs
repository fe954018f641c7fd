//! Blobs are served through a repository only if it has them: pushed or
//! mounted into it, or referenced by one of its manifests. A mount with
//! `from` needs the blob to be in `from`.

use super::*;

async fn blob_status(env: &Env, repo: &str, d: &Digest) -> (StatusCode, StatusCode) {
    let uri = format!("/v2/{repo}/blobs/{d}");
    let get = env.get(&uri).await.status;
    let head = env.call(Method::HEAD, &uri, &[], vec![]).await.status;
    (get, head)
}

#[tokio::test]
async fn blobs_are_read_through_the_repositories_that_have_them() {
    let env = Env::new();
    let ok = (StatusCode::OK, StatusCode::OK);
    let missing = (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND);
    let x = env.push_blob("quay.io/a", b"pushed into a").await;
    assert_eq!(blob_status(&env, "quay.io/a", &x).await, ok);
    assert_eq!(blob_status(&env, "quay.io/b", &x).await, missing);
    let r = env.get(&format!("/v2/quay.io/b/blobs/{x}")).await;
    assert_eq!(r.code(), "BLOB_UNKNOWN");
    assert!(r.json()["errors"][0]["message"]
        .to_string()
        .contains("quay.io/b"));

    // A mount from a repository without the blob is not a mount (202:
    // an upload starts); from the one that has it, it is.
    let mount = |from: &str| format!("/v2/quay.io/c/blobs/uploads/?mount={x}&from={from}");
    let r = env
        .push(Method::POST, &mount("quay.io/b"), &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(blob_status(&env, "quay.io/c", &x).await, missing);
    let r = env
        .push(Method::POST, &mount("quay.io/a"), &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(blob_status(&env, "quay.io/c", &x).await, ok);

    // A repository whose manifest references blobs serves them.
    let (_, md) = env.push_image("quay.io/d", "v1", "d").await;
    let layer = Digest::sha256_of(b"layer-d");
    assert_eq!(blob_status(&env, "quay.io/d", &layer).await, ok);
    assert_eq!(blob_status(&env, "quay.io/e", &layer).await, missing);
    let m = env.get(&format!("/v2/quay.io/d/manifests/{md}")).await.body;
    let r = env
        .push_manifest("quay.io/e", "v1", media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(blob_status(&env, "quay.io/e", &layer).await, ok);
    // The manifest itself, through the blob endpoint, in its repository only.
    assert_eq!(blob_status(&env, "quay.io/e", &md).await, ok);
    assert_eq!(blob_status(&env, "quay.io/b", &md).await, missing);

    // An automatic mount (no from) takes the blob from the store.
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/f/blobs/uploads/?mount={x}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(blob_status(&env, "quay.io/f", &x).await, ok);
}
