//! Blob reads: whole and ranged GETs, cross-repository mounts, sha512 content.

use super::*;

#[tokio::test]
async fn blobs_stream_with_ranges() {
    let env = Env::new();
    let data: Vec<u8> = (0..100u8).collect();
    let d = env.push_blob("quay.io/org/app", &data).await;
    let url = format!("/v2/quay.io/org/app/blobs/{d}");
    let r = env.get(&url).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body.as_ref(), data.as_slice());
    assert_eq!(r.header("accept-ranges"), "bytes");
    assert_eq!(r.header("docker-content-digest"), d.to_string());
    let h = env.call(Method::HEAD, &url, &[], vec![]).await;
    assert_eq!(
        (h.status, h.header("content-length")),
        (StatusCode::OK, "100")
    );
    assert!(h.body.is_empty());
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=10-19")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.body.as_ref(), &data[10..20]);
    assert_eq!(r.header("content-range"), "bytes 10-19/100");
    assert_eq!(r.header("content-length"), "10");
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=-5")], vec![])
        .await;
    assert_eq!(r.body.as_ref(), &data[95..]);
    let r = env
        .call(Method::GET, &url, &[("range", "bytes=100-")], vec![])
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.header("content-range"), "bytes */100");
    let missing = Digest::sha256_of(b"nope");
    let r = env
        .get(&format!("/v2/quay.io/org/app/blobs/{missing}"))
        .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UNKNOWN")
    );
}

#[tokio::test]
async fn cross_repository_mount() {
    let env = Env::new();
    let d = env.push_blob("quay.io/a", b"shared").await;
    let r = env
        .push(
            Method::POST,
            &format!("/v2/docker.io/b/c/blobs/uploads/?mount={d}&from=quay.io/a"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), format!("/v2/docker.io/b/c/blobs/{d}"));
    let missing = Digest::sha256_of(b"absent");
    let r = env
        .push(
            Method::POST,
            &format!("/v2/docker.io/b/c/blobs/uploads/?mount={missing}&from=quay.io/a"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert!(!r.header("docker-upload-uuid").is_empty());
}

#[tokio::test]
async fn sha512_blobs_and_manifests() {
    let env = Env::new();
    let data = b"sha512 content".to_vec();
    let (d, _) = airlift_oci::digest::hash_reader(Algorithm::Sha512, &data[..]).unwrap();
    let r = env
        .push(
            Method::POST,
            &format!("/v2/quay.io/a/blobs/uploads/?digest={d}"),
            &[],
            data.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/blobs/{d}"))
            .await
            .body
            .as_ref(),
        data.as_slice()
    );
    let cfg = env.push_blob("quay.io/a", b"{}").await;
    let m = image_manifest(&cfg, 2, &d, data.len());
    let (md, _) = airlift_oci::digest::hash_reader(Algorithm::Sha512, &m[..]).unwrap();
    let r = env
        .push_manifest("quay.io/a", &md.to_string(), media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.header("docker-content-digest"), md.to_string());
    assert_eq!(
        env.get(&format!("/v2/quay.io/a/manifests/{md}"))
            .await
            .body
            .as_ref(),
        m.as_slice()
    );
}
