//! Discovery: tag lists and the catalogue with pagination, the referrers API.

use super::*;

#[tokio::test]
async fn tags_and_catalog_paginate() {
    let env = Env::new();
    let (m, _) = env.push_image("quay.io/a", "t1", "x").await;
    for t in ["t2", "t3", "t4"] {
        env.push_manifest("quay.io/a", t, media::OCI_MANIFEST, &m)
            .await;
    }
    let r = env.get("/v2/quay.io/a/tags/list").await;
    assert_eq!(
        r.json(),
        json!({"name": "quay.io/a", "tags": ["t1", "t2", "t3", "t4"]})
    );
    let r = env.get("/v2/quay.io/a/tags/list?n=2").await;
    assert_eq!(r.json()["tags"], json!(["t1", "t2"]));
    assert_eq!(
        r.header("link"),
        "</v2/quay.io/a/tags/list?n=2&last=t2>; rel=\"next\""
    );
    let r = env.get("/v2/quay.io/a/tags/list?n=2&last=t2").await;
    assert_eq!(r.json()["tags"], json!(["t3", "t4"]));
    assert_eq!(r.header("link"), "");
    let r = env.get("/v2/a/tags/list?ns=quay.io&n=1&last=t3").await;
    assert_eq!(r.json()["tags"], json!(["t4"]));
    let r = env.get("/v2/a/tags/list?ns=quay.io&n=1").await;
    assert_eq!(
        r.header("link"),
        "</v2/a/tags/list?ns=quay.io&n=1&last=t1>; rel=\"next\""
    );
    env.push_image("quay.io/b", "1", "y").await;
    let r = env.get("/v2/_catalog?n=1").await;
    assert_eq!(r.json()["repositories"], json!(["quay.io/a"]));
    assert_eq!(
        r.header("link"),
        "</v2/_catalog?n=1&last=quay.io/a>; rel=\"next\""
    );
    let r = env.get("/v2/_catalog?n=1&last=quay.io/a").await;
    assert_eq!(r.json()["repositories"], json!(["quay.io/b"]));
}

#[tokio::test]
async fn referrers_api() {
    let env = Env::new();
    let (m, md) = env.push_image("quay.io/a", "1", "s").await;
    let sig = push_artifact(&env, "quay.io/a", &md, m.len(), "application/x-signature").await;
    let sbom = push_artifact(&env, "quay.io/a", &md, m.len(), "application/x-sbom").await;
    let r = env.get(&format!("/v2/quay.io/a/referrers/{md}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), media::OCI_INDEX);
    let idx: Index = serde_json::from_slice(&r.body).unwrap();
    let mut got: Vec<_> = idx.manifests.iter().map(|d| d.digest.clone()).collect();
    got.sort();
    let mut want = vec![sig.clone(), sbom];
    want.sort();
    assert_eq!(got, want);
    let sig_desc = idx.manifests.iter().find(|d| d.digest == sig).unwrap();
    assert_eq!(
        sig_desc.artifact_type.as_deref(),
        Some("application/x-signature")
    );
    assert_eq!(
        sig_desc.annotations["org.example.kind"],
        "application/x-signature"
    );
    let r = env
        .get(&format!(
            "/v2/a/referrers/{md}?ns=quay.io&artifactType=application%2Fx-signature"
        ))
        .await;
    assert_eq!(r.header("oci-filters-applied"), "artifactType");
    let idx: Index = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(idx.manifests.len(), 1);
    assert_eq!(idx.manifests[0].digest, sig);
    let unknown = Digest::sha256_of(b"no subject");
    let r = env.get(&format!("/v2/quay.io/a/referrers/{unknown}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"], json!([]));
}
