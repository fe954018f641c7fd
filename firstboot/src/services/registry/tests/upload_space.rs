//! The upload guardrail through the router, over a data folder whose
//! free space the test sets: refused uploads get 507 `DENIED` with the
//! reserve message and leave no file; other uploads, pulls and manifest
//! pushes go on.

use std::sync::atomic::{AtomicU64, Ordering};

use super::super::space::{SpaceGuard, SpaceSource};
use super::*;
use crate::sys::disk_space::Space;

const MIB: u64 = 1 << 20;
const RESERVE: u64 = 10 * MIB;

/// An Env whose filesystem has `free` bytes available, and the guard.
fn env_with_free(free: Arc<AtomicU64>) -> (Env, Arc<SpaceGuard>) {
    let dir = tempfile::tempdir().unwrap();
    let tok = token_file(dir.path());
    let data = dir.path().join("data");
    let source: SpaceSource = Arc::new(move |_| {
        Ok(Space {
            total: 100 * MIB,
            available: free.load(Ordering::SeqCst),
        })
    });
    let space = Arc::new(SpaceGuard::with_source(&data, RESERVE, source));
    let reg = Registry {
        store: Store::open(&data, &[]).unwrap(),
        auth: Auth::load(None, Some(&tok)).unwrap(),
        allow_delete: false,
        limits: super::super::Limits {
            body_stall: Duration::from_secs(5),
            max_blob_bytes: 1 << 20,
        },
        space: space.clone(),
        gate: None,
    };
    let app = router(Arc::new(reg));
    (Env { dir, app }, space)
}

fn assert_refused(r: &Resp) {
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{:?}", r.body);
    assert_eq!(r.code(), "DENIED");
    let m = r.message();
    assert!(
        m.starts_with("not enough space for ") && m.contains("10 MB is kept in reserve"),
        "{m}"
    );
}

#[tokio::test]
async fn an_upload_start_needs_the_reserve_free() {
    let free = Arc::new(AtomicU64::new(RESERVE - 1));
    let (env, _) = env_with_free(free.clone());
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    assert_refused(&r);
    assert!(
        r.message().contains("a new upload to quay.io/a"),
        "{}",
        r.message()
    );
    assert!(env.files_under("uploads").is_empty());
    free.store(RESERVE, Ordering::SeqCst);
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn a_chunk_that_does_not_fit_removes_the_upload_and_its_file() {
    let free = Arc::new(AtomicU64::new(RESERVE + 100));
    let (env, space) = env_with_free(free.clone());
    let pulled = env.push_blob("quay.io/a", b"kept").await;
    space.set_reclaimable(Some(Arc::new(|| Some(3_000_000))));
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    // 60 bytes fit; then 101 more do not (Content-Range declares them).
    let r = env.patch(&loc, "0-59", &[b'x'; 60]).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = env.patch(&loc, "60-160", &[b'y'; 101]).await;
    assert_refused(&r);
    assert!(r.message().contains("it needs 1 kB"), "{}", r.message());
    assert!(r.message().contains("would free 3 MB"), "{}", r.message());
    assert!(
        env.files_under("uploads").is_empty(),
        "the partial file stays"
    );
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // Pulls go on.
    let r = env.get(&format!("/v2/quay.io/a/blobs/{pulled}")).await;
    assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"kept"[..]));
}

#[tokio::test]
async fn a_finishing_put_and_a_monolithic_post_are_checked_for_their_body() {
    let free = Arc::new(AtomicU64::new(RESERVE + 100));
    let (env, _) = env_with_free(free.clone());
    let big = vec![b'z'; 101];
    let d = Digest::sha256_of(&big);
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/a/blobs/uploads/?digest={d}"),
            &[("content-length", "101")],
            big.clone(),
        )
        .await;
    assert_refused(&r);
    assert!(env.files_under("uploads").is_empty());
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = env
        .push(Method::PUT, &format!("{loc}{sep}digest={d}"), &[], big)
        .await;
    assert_refused(&r);
    assert!(env.files_under("uploads").is_empty());
    assert!(env.files_under("blobs").is_empty());
    // What fits still goes in, chunked or whole.
    env.push_blob("quay.io/a", &[b'k'; 100]).await;
}

#[tokio::test]
async fn a_manifest_completing_an_image_is_not_refused() {
    // Decision: manifests are tiny and complete an image whose blobs
    // were accepted; refusing them would strand those blobs.
    let free = Arc::new(AtomicU64::new(RESERVE + MIB));
    let (env, _) = env_with_free(free.clone());
    let layer = b"layer".to_vec();
    let config = br#"{"a":1}"#.to_vec();
    let ld = env.push_blob("quay.io/a", &layer).await;
    let cd = env.push_blob("quay.io/a", &config).await;
    free.store(0, Ordering::SeqCst);
    let m = image_manifest(&cd, config.len(), &ld, layer.len());
    let r = env
        .push_manifest("quay.io/a", "v1", media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = env.get("/v2/quay.io/a/manifests/v1").await;
    assert_eq!(r.status, StatusCode::OK);
}
