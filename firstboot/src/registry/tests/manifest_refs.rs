//! Manifest references the OCI conformance suite probes: a tag outside the
//! grammar on a read (404, it names nothing that can exist).

use super::*;

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
