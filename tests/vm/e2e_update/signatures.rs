//! The e2e step for signatures (issue #20). The configs trust one key,
//! `e2e` (image-configs/files/e2e-update/signing.pub, the public half of
//! the seeded test key), for `quay.io/test/signed`. On the joined node:
//! the key and the admission policies are written under /etc/airlift, and
//! no containers-policy.json `sigstoreSigned` requirement (Debian 12's
//! containers/image cannot verify sigstore signatures: it would refuse
//! every image). Then host0's registry enforces the key for every pull:
//! an image pushed and signed (cosign's `.sig` format, pushed with
//! skopeo) pulls on the node; an unsigned image in scope, and the signed
//! tag re-pushed with other content, are refused with host0's message
//! naming the key.

use std::path::Path;

use airlift_integration::images::TestImage;
use airlift_integration::sigstore::{
    sig_tag, write_signature_layout, KeyKind, TestKey, E2E_KEY_SEED,
};
use airlift_integration::vm::GuestShell;

use super::{copy_to_host0, node_pull, push_as, CMD};

const SIGNED: &str = "quay.io/test/signed/app:1.0";
const UNSIGNED: &str = "quay.io/test/signed/unsigned:1.0";

/// Does skopeo's error carry host0's refusal naming the key? (skopeo
/// quotes the message Go-style: `key \"e2e\"`.)
fn names_the_key(e: &str) -> bool {
    e.contains("denied: image")
        && e.replace('\\', "")
            .contains("must be signed by key \"e2e\"")
}

/// A pull on the node that must fail; skopeo's error output.
fn node_pull_refused(node: &mut GuestShell, reference: &str) -> String {
    let out = node.ok(
        &format!(
            "rm -rf /tmp/pull; if skopeo copy docker://{reference} dir:/tmp/pull \
             >/tmp/pull.log 2>&1; then echo PULLED; else tail -c 3000 /tmp/pull.log; fi"
        ),
        CMD,
    );
    assert!(
        !out.contains("PULLED"),
        "node-1 pulled {reference}, which host0 must refuse"
    );
    out
}

pub fn check(node: &mut GuestShell, port: u16, dir: &Path) {
    let key = TestKey::from_seed(KeyKind::P256, E2E_KEY_SEED, dir, "e2e").unwrap();

    let files = node.ok(
        "cat /etc/airlift/keys/e2e.pub; ls /etc/airlift/policy/; \
         grep -l sigstoreSigned /etc/containers/policy.json || echo NO-SIGSTORE-POLICY",
        CMD,
    );
    assert!(
        files.contains(key.public_pem.trim()),
        "node-1 has the trusted key at /etc/airlift/keys/e2e.pub:\n{files}"
    );
    for f in ["cluster-image-policy.yaml", "kyverno-cluster-policy.yaml"] {
        assert!(
            files.contains(f),
            "node-1 has /etc/airlift/policy/{f}:\n{files}"
        );
    }
    assert!(
        files.contains("NO-SIGSTORE-POLICY"),
        "Debian 12's containers/image cannot verify sigstore: no sigstoreSigned policy:\n{files}"
    );

    let image = |name: &str, seed: u64| TestImage::random(name, seed, 16 * 1024);
    let (signed, _) = push_as(port, dir, image("signed-app", 81), SIGNED);
    let repo = SIGNED.rsplit_once(':').unwrap().0;
    let sig_layout = dir.join("signed-app-sig");
    write_signature_layout(&sig_layout, "sig", &key, repo, &signed).unwrap();
    copy_to_host0(
        port,
        dir,
        &format!("oci:{}:sig", sig_layout.display()),
        &format!("{repo}:{}", sig_tag(&signed)),
    );
    let (_, _) = push_as(port, dir, image("unsigned-app", 82), UNSIGNED);

    assert_eq!(
        node_pull(node, SIGNED),
        signed,
        "node-1 pulls the signed image"
    );
    let e = node_pull_refused(node, UNSIGNED);
    assert!(
        names_the_key(&e) && e.contains("no signature"),
        "an unsigned image in scope is refused naming the key and why:\n{e}"
    );
    // The signed tag, re-pushed with other content.
    let (swapped, _) = push_as(port, dir, image("swapped-app", 83), SIGNED);
    assert_ne!(swapped, signed);
    let e = node_pull_refused(node, SIGNED);
    assert!(
        names_the_key(&e) && e.contains(&swapped),
        "a signed tag re-pushed with other content is refused:\n{e}"
    );
    // host0 counts what its gate refused, and names the trust policy.
    let status = airlift_integration::vm::get_json(port, "/airlift/v1/status").unwrap();
    assert!(
        status["refused-pulls"].as_u64().unwrap_or(0) >= 2,
        "host0's status counts the refused pulls: {status:#}"
    );
    assert!(
        status["trust"].to_string().contains("e2e"),
        "host0's status names the trusted key: {status:#}"
    );
}
