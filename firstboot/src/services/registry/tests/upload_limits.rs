//! Uploads cannot exhaust the registry: caps per client address and in
//! all (429 naming the cap) while other clients still push and pull,
//! idle uploads expire, and idle uploads hold no open files.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::services::registry::store::upload_table::UploadPolicy;
use crate::services::registry::ClientAddr;

fn env_with(policy: UploadPolicy) -> (Env, Arc<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let tok = token_file(dir.path());
    let reg = registry(&dir.path().join("data"), &[], false, Some(&tok));
    reg.store.set_upload_policy(policy);
    let app = router(reg.clone());
    (Env { dir, app }, reg)
}

/// A pushing request from `client`.
async fn from(env: &Env, client: &str, method: Method, uri: &str, body: &[u8]) -> Resp {
    let ip: IpAddr = client.parse().unwrap();
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .extension(ClientAddr(ip))
        .body(Body::from(body.to_vec()))
        .unwrap();
    Resp::read(env.app.clone().oneshot(req).await.unwrap()).await
}

async fn start(env: &Env, client: &str) -> Resp {
    from(
        env,
        client,
        Method::POST,
        "/v2/quay.io/a/blobs/uploads/",
        b"",
    )
    .await
}

fn policy(max: usize, max_per_client: usize) -> UploadPolicy {
    UploadPolicy {
        idle: Duration::from_secs(3600),
        max,
        max_per_client,
    }
}

#[tokio::test]
async fn uploads_are_capped_per_client_and_in_all() {
    let (env, _reg) = env_with(policy(5, 3));
    let mut mine = Vec::new();
    for _ in 0..3 {
        let r = start(&env, "10.0.0.1").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        mine.push(r.header("location").to_string());
    }
    let r = start(&env, "10.0.0.1").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    let msg = r.json()["errors"][0]["message"].to_string();
    assert!(msg.contains("10.0.0.1"), "{msg}");
    assert!(msg.contains("max-uploads-per-client 3"), "{msg}");
    assert_eq!(
        env.files_under("uploads").len(),
        3,
        "the refused upload left a file"
    );

    // Another client still pushes (chunked and monolithic) and pulls.
    let layer = b"another client's layer";
    let r = start(&env, "10.0.0.2").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let loc = r.header("location").to_string();
    let ld = Digest::sha256_of(layer);
    let r = from(&env, "10.0.0.2", Method::PATCH, &loc, layer).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = from(
        &env,
        "10.0.0.2",
        Method::PUT,
        &format!("{loc}?digest={ld}"),
        b"",
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cd = env.push_blob("quay.io/a", b"{}").await;
    let m = image_manifest(&cd, 2, &ld, layer.len());
    let r = from(
        &env,
        "10.0.0.2",
        Method::PUT,
        "/v2/quay.io/a/manifests/v1",
        &m,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        env.get("/v2/quay.io/a/manifests/v1").await.status,
        StatusCode::OK
    );
    let r = env.get(&format!("/v2/quay.io/a/blobs/{ld}")).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &layer[..]));

    // The cap on all clients together: 3 + 2 open now.
    assert_eq!(start(&env, "10.0.0.3").await.status, StatusCode::ACCEPTED);
    assert_eq!(start(&env, "10.0.0.4").await.status, StatusCode::ACCEPTED);
    let r = start(&env, "10.0.0.5").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let msg = r.json()["errors"][0]["message"].to_string();
    assert!(msg.contains("max-uploads 5"), "{msg}");

    // Cancelling one frees its place.
    let r = from(&env, "10.0.0.1", Method::DELETE, &mine[0], b"").await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(start(&env, "10.0.0.1").await.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn idle_uploads_expire_with_their_files() {
    let (env, reg) = env_with(policy(100, 100));
    let r = start(&env, "10.0.0.1").await;
    let loc = r.header("location").to_string();
    let r = from(&env, "10.0.0.1", Method::PATCH, &loc, b"abc").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        reg.store.uploads().expire().await,
        0,
        "not idle for an hour yet"
    );
    assert_eq!(env.files_under("uploads").len(), 1);

    reg.store.set_upload_policy(UploadPolicy {
        idle: Duration::from_millis(50),
        ..policy(100, 100)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(reg.store.uploads().expire().await, 1);
    assert!(reg.store.uploads().is_empty());
    assert!(env.files_under("uploads").is_empty());
    let r = from(&env, "10.0.0.1", Method::PATCH, &loc, b"def").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    assert!(r.json()["errors"][0]["message"]
        .to_string()
        .contains("expired"));
}

#[tokio::test]
async fn idle_uploads_hold_no_open_files() {
    let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let (env, reg) = env_with(policy(1000, 1000));
    let before = fds();
    for _ in 0..200 {
        let r = start(&env, "10.0.0.1").await;
        let loc = r.header("location").to_string();
        let r = from(&env, "10.0.0.1", Method::PATCH, &loc, b"some bytes").await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    assert_eq!(reg.store.uploads().len(), 200);
    let after = fds();
    assert!(
        after < before + 100,
        "200 idle uploads hold open files: {before} before, {after} after"
    );
}
