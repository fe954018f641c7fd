//! Manifest references the OCI conformance suite probes: a tag outside the
//! grammar on a read (404, it names nothing that can exist), and `tag`
//! query parameters on a push by digest (end-7b, `OCI-Tag` per tag).

use super::*;
use crate::services::registry::routes::MAX_TAG_PARAMS;

/// `PUT /v2/<name>/manifests/<reference><query>` with an OCI manifest.
async fn put(env: &Env, name: &str, reference: &str, query: &str, m: &[u8]) -> Resp {
    env.push(
        Method::PUT,
        &format!("/v2/{name}/manifests/{reference}{query}"),
        &[("content-type", media::OCI_MANIFEST)],
        m.to_vec(),
    )
    .await
}

/// A manifest whose config and layer are stored in `name`.
async fn stored_manifest(env: &Env, name: &str) -> Vec<u8> {
    let cfg = env.push_blob(name, b"{}").await;
    let layer = env.push_blob(name, b"layer").await;
    image_manifest(&cfg, 2, &layer, 5)
}

fn oci_tags(r: &Resp) -> Vec<&str> {
    r.headers
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_tag_outside_the_grammar_is_unknown_on_reads() {
    let env = Env::new();
    env.push_image("quay.io/a", "1.0", "x").await;
    for method in [Method::GET, Method::HEAD] {
        let r = env
            .call(
                method.clone(),
                "/v2/quay.io/a/manifests/.INVALID_MANIFEST_NAME",
                &[],
                vec![],
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method}");
        if method == Method::GET {
            assert_eq!(r.code(), "MANIFEST_UNKNOWN");
        }
    }
    // A push to such a tag is still a bad request.
    let m = stored_manifest(&env, "quay.io/a").await;
    let r = put(&env, "quay.io/a", ".INVALID_MANIFEST_NAME", "", &m).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_INVALID")
    );
}

#[tokio::test]
async fn tag_parameters_tag_a_push_by_digest() {
    let env = Env::new();
    let m = stored_manifest(&env, "quay.io/a").await;
    let d = Digest::sha256_of(&m);
    let r = put(
        &env,
        "quay.io/a",
        &d.to_string(),
        "?tag=1.2.3&tag=latest&tag=1.2.3",
        &m,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(oci_tags(&r), ["1.2.3", "latest"]);
    assert_eq!(r.header("docker-content-digest"), d.to_string());
    for tag in ["1.2.3", "latest"] {
        let g = env.get(&format!("/v2/quay.io/a/manifests/{tag}")).await;
        assert_eq!(g.status, StatusCode::OK, "{tag}");
        assert_eq!(g.header("docker-content-digest"), d.to_string());
        assert_eq!(g.body.as_ref(), m.as_slice());
    }
    let tags = env.get("/v2/quay.io/a/tags/list").await.json();
    assert_eq!(tags["tags"], json!(["1.2.3", "latest"]));
}

#[tokio::test]
async fn tag_parameters_keep_a_sha512_digest() {
    let env = Env::new();
    let m = stored_manifest(&env, "quay.io/a").await;
    let (d, _) = airlift_oci::digest::hash_reader(Algorithm::Sha512, &m[..]).unwrap();
    let r = put(&env, "quay.io/a", &d.to_string(), "?tag=v1", &m).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(oci_tags(&r), ["v1"]);
    let h = env
        .call(Method::HEAD, "/v2/quay.io/a/manifests/v1", &[], vec![])
        .await;
    assert_eq!(h.status, StatusCode::OK);
    assert_eq!(h.header("docker-content-digest"), d.to_string());
}

#[tokio::test]
async fn bad_tag_parameters_store_nothing() {
    let env = Env::new();
    let m = stored_manifest(&env, "quay.io/a").await;
    let d = Digest::sha256_of(&m).to_string();
    let many: String = (0..=MAX_TAG_PARAMS).map(|i| format!("&tag=t{i}")).collect();
    for (reference, query, status) in [
        (d.as_str(), "?tag=ok&tag=-bad", StatusCode::BAD_REQUEST),
        (d.as_str(), "?tag=", StatusCode::BAD_REQUEST),
        (d.as_str(), "?tag=sha256:abc", StatusCode::BAD_REQUEST),
        ("1.0", "?tag=other", StatusCode::BAD_REQUEST),
        (
            d.as_str(),
            &many.replacen('&', "?", 1),
            StatusCode::URI_TOO_LONG,
        ),
    ] {
        let r = put(&env, "quay.io/a", reference, query, &m).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, "MANIFEST_INVALID"),
            "{reference}{query}"
        );
    }
    let r = env.get(&format!("/v2/quay.io/a/manifests/{d}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = env.get("/v2/quay.io/a/manifests/ok").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
