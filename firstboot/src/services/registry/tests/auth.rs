//! Who may push: the base endpoint's challenge and pushes without or with credentials.

use super::*;

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
