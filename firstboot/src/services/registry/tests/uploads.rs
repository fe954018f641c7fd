//! Blob uploads: chunked and monolithic, status, ordering, cancel, broken or oversize bodies.

use super::*;

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

    let r = env.patch(&loc, "0-4", b"hello").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.header("range"), "0-4");
    // Out of order: 416, and the upload is unharmed.
    let r = env.patch(&loc, "7-9", b"xyz").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID")
    );
    // A range that does not match the body length: 416, rolled back.
    let r = env.patch(&loc, "5-20", b" wor").await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = env.patch(&loc, "garbage", b"x").await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::NO_CONTENT, "0-4")
    );
    let r = env.patch(&loc, "5-10", b" world").await;
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
