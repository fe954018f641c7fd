//! The signature gate ([`crate::services::registry::gate`]) through the
//! registry API: images and cosign `.sig` manifests pushed as clients
//! push them, signed with fixed P-256 keys, pulled by tag and digest.

use airlift_appliance::trust::check::{signature_tag, SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use airlift_appliance::trust::payload::SIGNATURE_TYPE;
use airlift_appliance::{TrustPolicy, TrustedKey, Verifier};
use base64::Engine as _;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};

use super::*;
use crate::services::registry::gate::Gate;

const REPO: &str = "quay.io/org/app";
/// The token replicas present (host0's join token).
const JOIN: &str = "join-token-0123456789abcdef";

/// A fixed P-256 key (no RNG).
fn key(seed: u8) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[0] = 0x42;
    bytes[31] = seed;
    SigningKey::from_slice(&bytes).unwrap()
}

/// A registry whose gate trusts `key(1)` as "team" for `quay.io/org`.
fn gated(allow_delete: bool) -> (Env, Arc<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let tok = token_file(dir.path());
    let mut reg = registry(&dir.path().join("data"), &[], allow_delete, Some(&tok));
    let policy = TrustPolicy {
        keys: vec![TrustedKey {
            name: "team".into(),
            scopes: vec!["quay.io/org".into()],
            public_key_pem: key(1)
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
        }],
        enforce: true,
    };
    let verifier = Arc::new(Verifier::new(&policy).unwrap());
    Arc::get_mut(&mut reg).unwrap().gate = Some(Gate::new(verifier).with_bypass(Some(JOIN.into())));
    let app = router(reg.clone());
    (Env { dir, app }, reg)
}

/// Push a cosign `.sig` manifest for `digest` in `repo`, signed by
/// `signer` over a payload naming `identity`; returns its digest and bytes.
async fn sign(
    env: &Env,
    repo: &str,
    digest: &Digest,
    identity: &str,
    signer: &SigningKey,
) -> (Digest, Vec<u8>) {
    use p256::ecdsa::signature::Signer;
    let payload = serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    }))
    .unwrap();
    let sig: p256::ecdsa::Signature = signer.sign(&payload);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes());
    let pd = env.push_blob(repo, &payload).await;
    let cd = env.push_blob(repo, b"{}").await;
    let m = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": 2},
        "layers": [{"mediaType": SIMPLE_SIGNING, "digest": pd.to_string(), "size": payload.len(),
                    "annotations": {SIGNATURE_ANNOTATION: b64}}],
    }))
    .unwrap();
    push_sig(env, repo, digest, &m).await
}

/// Push `m` as the `.sig` manifest of `digest`.
async fn push_sig(env: &Env, repo: &str, digest: &Digest, m: &[u8]) -> (Digest, Vec<u8>) {
    let r = env
        .push_manifest(repo, &signature_tag(digest), media::OCI_MANIFEST, m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (Digest::sha256_of(m), m.to_vec())
}

async fn pull(env: &Env, repo: &str, reference: &str) -> Resp {
    env.get(&format!("/v2/{repo}/manifests/{reference}")).await
}

async fn head(env: &Env, repo: &str, reference: &str) -> Resp {
    env.call(
        Method::HEAD,
        &format!("/v2/{repo}/manifests/{reference}"),
        &[],
        vec![],
    )
    .await
}

/// A refusal: 403 `DENIED`, the message naming image, digest and key.
fn assert_refused(r: &Resp, digest: &Digest, reason: &str) {
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.message());
    assert_eq!(r.code(), "DENIED");
    let m = r.message();
    for want in [
        REPO,
        &digest.to_string(),
        "key \"team\"",
        "scope quay.io/org",
        reason,
    ] {
        assert!(m.contains(want), "{want:?} not in {m:?}");
    }
    assert_eq!(r.json()["errors"][0]["detail"]["key"], "team");
}

#[tokio::test]
async fn a_signed_image_is_served_by_tag_and_digest_with_get_and_head() {
    let (env, reg) = gated(false);
    let (bytes, d) = env.push_image(REPO, "1.0", "signed").await;
    sign(&env, REPO, &d, REPO, &key(1)).await;
    for reference in ["1.0".to_string(), d.to_string()] {
        let r = pull(&env, REPO, &reference).await;
        assert_eq!(r.status, StatusCode::OK, "{reference}: {}", r.message());
        assert_eq!(r.body, bytes);
        let r = head(&env, REPO, &reference).await;
        assert_eq!(r.status, StatusCode::OK, "HEAD {reference}");
        assert_eq!(r.header("docker-content-digest"), d.to_string());
    }
    // Through containerd's mirror form too.
    let r = env.get("/v2/org/app/manifests/1.0?ns=quay.io").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(reg.gate.as_ref().unwrap().refusals(), 0);
}

#[tokio::test]
async fn an_unsigned_image_in_scope_is_denied_naming_the_key_with_get_and_head() {
    let (env, reg) = gated(false);
    let (_, d) = env.push_image(REPO, "2.0", "unsigned").await;
    for reference in ["2.0".to_string(), d.to_string()] {
        assert_refused(&pull(&env, REPO, &reference).await, &d, "no signature");
        let r = head(&env, REPO, &reference).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "HEAD {reference}");
    }
    // The mirror form names the same repository.
    let r = env.get("/v2/org/app/manifests/2.0?ns=quay.io").await;
    assert_refused(&r, &d, "no signature");
    assert_eq!(reg.gate.as_ref().unwrap().refusals(), 5);
}

#[tokio::test]
async fn a_signature_by_another_key_or_for_another_name_is_denied_with_the_reason() {
    let (env, _) = gated(false);
    let (_, d) = env.push_image(REPO, "1.0", "other-key").await;
    sign(&env, REPO, &d, REPO, &key(2)).await;
    assert_refused(
        &pull(&env, REPO, "1.0").await,
        &d,
        "none of its 1 signature(s) verifies with the key",
    );

    let (_, d) = env.push_image(REPO, "1.1", "other-name").await;
    sign(&env, REPO, &d, "quay.io/org/else", &key(1)).await;
    assert_refused(
        &pull(&env, REPO, "1.1").await,
        &d,
        "another image name, \"quay.io/org/else\"",
    );

    // Signed for tag 1.2 only: pulled as 1.2 it passes, as 1.3 it does not.
    let (_, d) = env.push_image(REPO, "1.2", "tagged").await;
    sign(&env, REPO, &d, "quay.io/org/app:1.2", &key(1)).await;
    assert_eq!(pull(&env, REPO, "1.2").await.status, StatusCode::OK);
    let m = pull(&env, REPO, &d.to_string()).await;
    assert_eq!(m.status, StatusCode::OK, "by digest the tag is not asked");
    let r = env
        .push_manifest(REPO, "1.3", media::OCI_MANIFEST, &m.body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_refused(&pull(&env, REPO, "1.3").await, &d, "another image name");
}

#[tokio::test]
async fn a_signed_tag_re_pushed_with_other_content_is_denied() {
    let (env, _) = gated(false);
    let (_, good) = env.push_image(REPO, "1.0", "good").await;
    let (_, sig) = sign(&env, REPO, &good, REPO, &key(1)).await;
    assert_eq!(pull(&env, REPO, "1.0").await.status, StatusCode::OK);

    let (_, evil) = env.push_image(REPO, "1.0", "evil").await;
    assert_refused(&pull(&env, REPO, "1.0").await, &evil, "no signature");
    // The good signature copied beside the new content is over the old digest.
    push_sig(&env, REPO, &evil, &sig).await;
    assert_refused(
        &pull(&env, REPO, "1.0").await,
        &evil,
        &format!("over another manifest, {good}"),
    );
    // The signed content itself is still served by digest.
    assert_eq!(
        pull(&env, REPO, &good.to_string()).await.status,
        StatusCode::OK
    );
}

/// Push two platform manifests and an index of them at `tag`; returns
/// (index digest, child digests).
async fn push_index(env: &Env, tag: &str, seed: &str) -> (Digest, Vec<Digest>) {
    let mut children = Vec::new();
    let mut descs = Vec::new();
    for arch in ["amd64", "arm64"] {
        let (m, d) = env
            .push_image(REPO, &format!("{tag}-{arch}"), &format!("{seed}-{arch}"))
            .await;
        // Tagged for the push only; the tag goes, the manifest stays.
        descs.push(
            json!({"mediaType": media::OCI_MANIFEST, "digest": d.to_string(),
                          "size": m.len(), "platform": {"os": "linux", "architecture": arch}}),
        );
        children.push(d);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": descs,
    }))
    .unwrap();
    let r = env.push_manifest(REPO, tag, media::OCI_INDEX, &index).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (Digest::sha256_of(&index), children)
}

#[tokio::test]
async fn platform_manifests_of_a_signed_index_are_served_by_digest() {
    let (env, _) = gated(false);
    let (index, children) = push_index(&env, "multi", "signed").await;
    sign(&env, REPO, &index, REPO, &key(1)).await;
    assert_eq!(pull(&env, REPO, "multi").await.status, StatusCode::OK);
    for c in &children {
        let r = pull(&env, REPO, &c.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{c}: {}", r.message());
        assert_eq!(
            head(&env, REPO, &c.to_string()).await.status,
            StatusCode::OK
        );
    }
    // By a tag of its own a platform manifest must be signed itself.
    assert_refused(
        &pull(&env, REPO, "multi-amd64").await,
        &children[0],
        "no signature",
    );

    // An unsigned index's platform manifests are refused.
    let (other, children) = push_index(&env, "bare", "unsigned").await;
    assert_refused(&pull(&env, REPO, "bare").await, &other, "no signature");
    assert_refused(
        &pull(&env, REPO, &children[1].to_string()).await,
        &children[1],
        "no signature",
    );
}

#[tokio::test]
async fn attachments_the_referrers_api_and_tag_lists_are_served() {
    let (env, _) = gated(false);
    let (bytes, d) = env.push_image(REPO, "1.0", "attached").await;
    let (sig, _) = sign(&env, REPO, &d, REPO, &key(1)).await;
    let sbom = push_artifact(&env, REPO, &d, bytes.len(), "application/spdx+json").await;

    // The .sig by its tag and by digest; the SBOM referrer by digest.
    for reference in [signature_tag(&d), sig.to_string(), sbom.to_string()] {
        let r = pull(&env, REPO, &reference).await;
        assert_eq!(r.status, StatusCode::OK, "{reference}: {}", r.message());
    }
    let r = env.get(&format!("/v2/{REPO}/referrers/{d}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["manifests"][0]["digest"], sbom.to_string());
    let r = env.get(&format!("/v2/{REPO}/tags/list")).await;
    assert_eq!(r.status, StatusCode::OK);

    // An attachment of an unsigned image is served too (only the image
    // is refused), and so are cosign's other tags.
    let (bytes, u) = env.push_image(REPO, "2.0", "unsigned").await;
    let sbom = push_artifact(&env, REPO, &u, bytes.len(), "application/spdx+json").await;
    assert_eq!(
        pull(&env, REPO, &sbom.to_string()).await.status,
        StatusCode::OK
    );
    let envelope_bytes = br#"{"payloadType":"x"}"#;
    let envelope = env.push_blob(REPO, envelope_bytes).await;
    let cfg = env.push_blob(REPO, b"{}").await;
    let att = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cfg.to_string(), "size": 2},
        "layers": [{"mediaType": "application/vnd.dsse.envelope.v1+json",
                    "digest": envelope.to_string(), "size": envelope_bytes.len()}],
    }))
    .unwrap();
    let att_tag = format!("sha256-{}.att", u.hex());
    let r = env
        .push_manifest(REPO, &att_tag, media::OCI_MANIFEST, &att)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    for reference in [att_tag, Digest::sha256_of(&att).to_string()] {
        let r = pull(&env, REPO, &reference).await;
        assert_eq!(r.status, StatusCode::OK, "{reference}: {}", r.message());
    }
    assert_refused(&pull(&env, REPO, "2.0").await, &u, "no signature");
}

#[tokio::test]
async fn an_image_dressed_as_an_attachment_is_still_refused() {
    let (env, _) = gated(false);
    let (bytes, u) = env.push_image(REPO, "1.0", "dressed").await;
    // Pushed under cosign's tags: by those tags and by digest, refused.
    for tag in [
        format!("sha256-{}.sbom", "a".repeat(64)),
        format!("sha256-{}", "b".repeat(64)),
    ] {
        let r = env
            .push_manifest(REPO, &tag, media::OCI_MANIFEST, &bytes)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_refused(&pull(&env, REPO, &tag).await, &u, "no signature");
        assert_refused(&pull(&env, REPO, &u.to_string()).await, &u, "no signature");
    }
    // Given a subject: refused too.
    let (other_bytes, other) = env.push_image(REPO, "2.0", "subject").await;
    let mut m: Value = serde_json::from_slice(&bytes).unwrap();
    m["subject"] = json!({"mediaType": media::OCI_MANIFEST, "digest": other.to_string(),
                          "size": other_bytes.len()});
    let m = serde_json::to_vec(&m).unwrap();
    let d = Digest::sha256_of(&m);
    let r = env
        .push_manifest(REPO, &d.to_string(), media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_refused(&pull(&env, REPO, &d.to_string()).await, &d, "no signature");
}

#[tokio::test]
async fn images_out_of_every_scope_are_served_unsigned() {
    let (env, reg) = gated(false);
    for repo in [
        "quay.io/orgs/app",
        "quay.io/other/app",
        "docker.io/library/busybox",
        "myteam/app",
    ] {
        let (_, d) = env.push_image(repo, "1.0", repo).await;
        for reference in ["1.0".to_string(), d.to_string()] {
            let r = pull(&env, repo, &reference).await;
            assert_eq!(r.status, StatusCode::OK, "{repo} {reference}");
        }
    }
    assert_eq!(reg.gate.as_ref().unwrap().refusals(), 0);
}

#[tokio::test]
async fn a_removed_signature_takes_effect_at_the_next_pull() {
    let (env, _) = gated(true);
    let (_, d) = env.push_image(REPO, "1.0", "revoked").await;
    let (sig, _) = sign(&env, REPO, &d, REPO, &key(1)).await;
    // Twice: the second pull is answered from the cache.
    for _ in 0..2 {
        assert_eq!(pull(&env, REPO, "1.0").await.status, StatusCode::OK);
        assert_eq!(
            pull(&env, REPO, &d.to_string()).await.status,
            StatusCode::OK
        );
    }
    // A push elsewhere leaves the cache; removing the .sig does not.
    env.push_image("quay.io/org/unrelated", "1", "x").await;
    let r = env
        .push(
            Method::DELETE,
            &format!("/v2/{REPO}/manifests/{sig}"),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_refused(&pull(&env, REPO, "1.0").await, &d, "no signature");
    assert_refused(&pull(&env, REPO, &d.to_string()).await, &d, "no signature");
    assert_eq!(head(&env, REPO, "1.0").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn pushes_are_not_gated() {
    let (env, _) = gated(false);
    // An unsigned image pushed by tag and by digest, and its blobs read back.
    let (m, d) = env.push_image(REPO, "1.0", "pushed").await;
    let r = env
        .push_manifest(REPO, &d.to_string(), media::OCI_MANIFEST, &m)
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let layer = Digest::sha256_of(b"layer-pushed");
    let r = env.get(&format!("/v2/{REPO}/blobs/{layer}")).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn replication_with_the_join_token_is_served_unsigned_images() {
    let (env, reg) = gated(false);
    let (_, d) = env.push_image(REPO, "1.0", "replicated").await;
    let uri = format!("/v2/{REPO}/manifests/{d}");
    let bearer = |t: &str| format!("Bearer {t}");
    let r = env
        .call(
            Method::GET,
            &uri,
            &[("authorization", &bearer(JOIN))],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    for wrong in [bearer("nope-0123456789abcdef"), bearer(TOKEN)] {
        let r = env
            .call(Method::GET, &uri, &[("authorization", &wrong)], vec![])
            .await;
        assert_refused(&r, &d, "no signature");
    }
    assert_eq!(reg.gate.as_ref().unwrap().refusals(), 2);
}

#[tokio::test]
async fn an_index_of_indexes_signed_at_the_top_serves_every_level_by_digest() {
    let (env, _) = gated(false);
    let (inner, children) = push_index(&env, "inner", "nested").await;
    let inner_bytes = pull(&env, REPO, &inner.to_string()).await;
    assert_eq!(inner_bytes.status, StatusCode::FORBIDDEN, "unsigned so far");
    let inner_size = env
        .call(
            Method::GET,
            &format!("/v2/{REPO}/manifests/{inner}"),
            &[("authorization", &format!("Bearer {JOIN}"))],
            vec![],
        )
        .await
        .body
        .len();
    let outer = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX,
        "manifests": [{"mediaType": media::OCI_INDEX, "digest": inner.to_string(), "size": inner_size}],
    }))
    .unwrap();
    let r = env
        .push_manifest(REPO, "outer", media::OCI_INDEX, &outer)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    sign(&env, REPO, &Digest::sha256_of(&outer), REPO, &key(1)).await;
    assert_eq!(pull(&env, REPO, "outer").await.status, StatusCode::OK);
    for d in std::iter::once(&inner).chain(&children) {
        let r = pull(&env, REPO, &d.to_string()).await;
        assert_eq!(r.status, StatusCode::OK, "{d}: {}", r.message());
    }
}
