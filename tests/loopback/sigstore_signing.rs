//! What Debian 12's real skopeo (1.9.3, containers/image 5.23 with a
//! Debian patch) does with sigstore signatures, measured: it can neither
//! sign (`--sign-by-sigstore-private-key`: "creating signature:
//! Debian-local change: sigstore disabled") nor verify (a
//! containers-policy.json(5) `sigstoreSigned` requirement rejects every
//! image it covers, good signatures included). So the harness signs in
//! cosign's format itself (`tests/support/sigstore.rs`), and these tests
//! notice the day Debian's skopeo changes.

use std::path::Path;
use std::process::Command;

use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::sigstore::{
    skopeo_copy_signed, KeyKind, PushTarget, TestKey, E2E_KEY_SEED,
};
use airlift_integration::tools::{require, run_or_stderr};

/// `skopeo copy` from the registry with a policy requiring `key` for
/// `scope`; stderr on failure.
fn pull(dir: &Path, reg: &TestRegistry, repo: &str, scope: &str, key: &Path) -> Result<(), String> {
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::to_vec(&serde_json::json!({
            "default": [{ "type": "insecureAcceptAnything" }],
            "transports": { "docker": { scope: [{
                "type": "sigstoreSigned",
                "keyPath": key,
                "signedIdentity": { "type": "matchRepoDigestOrExact" },
            }]}}
        }))
        .unwrap(),
    )
    .unwrap();
    let regd = dir.join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("a.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    let out_dir = dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    run_or_stderr(
        Command::new(require("skopeo", "skopeo"))
            .arg("--policy")
            .arg(&policy)
            .arg("--registries.d")
            .arg(&regd)
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{repo}:1.0", reg.host()))
            .arg(format!("oci:{}:x", out_dir.display())),
    )
}

#[test]
fn debians_skopeo_cannot_verify_sigstore_signatures() {
    // Debian 12's containers/image refuses every image a `sigstoreSigned`
    // requirement covers, good signatures included, so no node of a
    // Debian 12 base can enforce them through containers-policy.json:
    // host0's registry gate does (see the trust tests). Recorded so that
    // a skopeo that verifies is noticed: then airlift writes the policy.
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let made = write_layout(&layout, &[TestImage::random("app", 71, 4096)]).unwrap();
    let digest = made[0].manifest.digest.to_string();
    let reg = TestRegistry::start();
    let target = PushTarget {
        addr: reg.addr(),
        basic: None,
    };
    let key = TestKey::generate(KeyKind::P256, tmp.path(), "k").unwrap();
    assert!(key.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    reg.push_layout(&layout, "app", "t/good:1.0");
    target
        .sign(
            "t/good",
            &digest,
            &format!("{}/t/good:1.0", reg.host()),
            &key,
        )
        .unwrap();
    let scope = format!("{}/t", reg.host());
    let e = pull(tmp.path(), &reg, "t/good", &scope, &key.public_path).unwrap_err();
    assert!(
        e.contains("sigstore disabled"),
        "skopeo's sigstore verification changed (write the policy where it works): {e}"
    );
    // Out of the requirement's scope the same image copies: the refusal
    // is sigstore's, not the registry's or the layout's.
    reg.push_layout(&layout, "app", "u/free:1.0");
    pull(tmp.path(), &reg, "u/free", &scope, &key.public_path)
        .unwrap_or_else(|e| panic!("an image out of scope refused: {e}"));
}

#[test]
fn debians_skopeo_cannot_sign_with_sigstore_keys() {
    // Recorded so that a skopeo that can sign is noticed: then the
    // harness can sign with `skopeo_copy_signed` as users do.
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    write_layout(&layout, &[TestImage::random("app", 72, 1024)]).unwrap();
    let key = TestKey::generate(KeyKind::P256, tmp.path(), "k").unwrap();
    let reg = TestRegistry::start();
    let e = skopeo_copy_signed(
        tmp.path(),
        &format!("oci:{}:app", layout.display()),
        &format!("docker://{}/x/app:1.0", reg.host()),
        &key,
        None,
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("sigstore disabled"),
        "skopeo now signs with sigstore keys (use it in the tests): {e:#}"
    );
}

/// GET `path` from the registry; the body of a 200.
fn get(reg: &TestRegistry, path: &str, accept: &str) -> Vec<u8> {
    let r = airlift_integration::http::request(reg.addr(), "GET", path, &[("Accept", accept)], b"")
        .unwrap();
    assert_eq!(r.status, 200, "GET {path}");
    r.body
}

#[test]
fn the_harness_signatures_pass_airlifts_verifier_after_a_registry_round_trip() {
    use airlift_appliance::trust::check::signature_tag;
    use airlift_appliance::{Outcome, TrustPolicy, TrustedKey, Verifier};
    use airlift_oci::{Digest, Reference};

    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let made = write_layout(&layout, &[TestImage::random("app", 73, 2048)]).unwrap();
    let digest: Digest = made[0].manifest.digest.clone();
    let reg = TestRegistry::start();
    let target = PushTarget {
        addr: reg.addr(),
        basic: None,
    };
    for kind in [KeyKind::P256, KeyKind::Ed25519] {
        let key = TestKey::generate(kind, tmp.path(), "k").unwrap();
        let other = TestKey::generate(kind, tmp.path(), "o").unwrap();
        let verifier = |pem: &str| {
            Verifier::new(&TrustPolicy {
                keys: vec![TrustedKey {
                    name: "team".into(),
                    scopes: vec![reg.host()],
                    public_key_pem: pem.to_string(),
                }],
                enforce: true,
            })
            .unwrap()
        };
        let repo = format!("{kind:?}/app").to_lowercase();
        reg.push_layout(&layout, "app", &format!("{repo}:1.0"));
        target
            .sign(
                &repo,
                &digest.to_string(),
                &format!("{}/{repo}", reg.host()),
                &key,
            )
            .unwrap();
        // Read the signature back from the registry, as the builder does.
        let tag = signature_tag(&digest);
        let sig = get(
            &reg,
            &format!("/v2/{repo}/manifests/{tag}"),
            "application/vnd.oci.image.manifest.v1+json",
        );
        let sig_digest = Digest::sha256_of(&sig);
        let mut read = |d: &airlift_oci::Descriptor| {
            Ok(get(&reg, &format!("/v2/{repo}/blobs/{}", d.digest), "*/*"))
        };
        let image: Reference = format!("{}/{repo}:1.0", reg.host()).parse().unwrap();
        match verifier(&key.public_pem).verify(
            &image,
            &digest,
            Some((&sig_digest, &sig)),
            &mut read,
        ) {
            Outcome::Verified(v) => {
                assert_eq!(v.key, "team");
                assert_eq!(v.identity, format!("{}/{repo}", reg.host()));
                assert_eq!(v.signature, sig_digest);
            }
            o => panic!("{kind:?}: the harness's signature did not verify: {o:?}"),
        }
        let refused = verifier(&other.public_pem).verify(
            &image,
            &digest,
            Some((&sig_digest, &sig)),
            &mut read,
        );
        let msg = refused.refusal_message(&image, &digest).unwrap();
        assert!(
            msg.contains("\"team\"") && msg.contains("verifies with the key"),
            "{msg}"
        );
    }
}

#[test]
fn the_committed_e2e_public_key_is_the_seeded_one() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TestKey::from_seed(KeyKind::P256, E2E_KEY_SEED, tmp.path(), "e2e").unwrap();
    let path = airlift_integration::tools::workspace_root()
        .join("image-configs/files/e2e-update/signing.pub");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed,
        key.public_pem,
        "{} must hold the public key of seed {E2E_KEY_SEED:#x}",
        path.display()
    );
}
