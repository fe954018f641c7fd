//! host0's signature gate with real clients: `airlift-firstboot host0`
//! started with a trust policy (`appliance.json`'s `trust`, a key made
//! here), images pushed into it with skopeo and signed by the harness in
//! cosign's format, pulled with Debian's real skopeo: a signed image
//! copies; an unsigned image in the key's scope and a signed tag
//! re-pushed with other content are refused, and skopeo prints the
//! registry's message (key and reason); images out of scope copy.
//! containerd's `ctr`, through the hosts.toml files host0 wrote, is
//! refused too (403; it resolves with HEAD, so it has no message to print).

use std::path::Path;
use std::process::Command;

use airlift_appliance::{TlsMode, TrustPolicy, TrustedKey};
use airlift_integration::host0::{self, Containerd, Host0, Host0Dirs};
use airlift_integration::images::{write_layout, Layer, TestImage};
use airlift_integration::sigstore::{sig_tag, KeyKind, PushTarget, TestKey};
use airlift_integration::tools::{require, run_or_stderr};

const PUSH_TOKEN: &str = "signature-gate-push-token-0123456789";

/// `skopeo copy` of the layout entry `image` to `host`/`reference` with
/// host0's push token; the digest of the manifest it wrote.
fn push(layout: &Path, image: &str, host: &str, reference: &str) -> String {
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(require("skopeo", "skopeo"))
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .args(["--dest-creds", &format!("push:{PUSH_TOKEN}")])
        .arg("--digestfile")
        .arg(digest_file.path())
        .arg(format!("oci:{}:{image}", layout.display()))
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pushing {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = std::fs::read_to_string(digest_file.path()).unwrap();
    digest.trim().to_string()
}

/// `skopeo copy` of `host`/`reference` into a fresh OCI layout; skopeo's
/// stderr when it fails.
fn pull(tmp: &Path, host: &str, reference: &str) -> Result<(), String> {
    let out_dir = tmp.join("pulled");
    let _ = std::fs::remove_dir_all(&out_dir);
    run_or_stderr(
        Command::new(require("skopeo", "skopeo"))
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{host}/{reference}"))
            .arg(format!("oci:{}:x", out_dir.display())),
    )
}

fn assert_refused(tmp: &Path, host: &str, reference: &str, digest: &str, reason: &str) {
    let e = pull(tmp, host, reference)
        .map(|()| panic!("{reference} ({digest}) was served unsigned"))
        .unwrap_err();
    // skopeo logs in logfmt, quotes escaped: `key \"team\"`.
    for want in [
        "denied: image",
        "must be signed by key \\\"team\\\" (scope quay.io/signed)",
        digest,
        reason,
    ] {
        assert!(e.contains(want), "{want:?} not in skopeo's error: {e}");
    }
}

#[test]
fn skopeo_pulls_signed_images_only_in_a_keys_scope() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    // The bundle: one image out of every scope.
    write_layout(
        &t.join("media"),
        &[TestImage {
            ref_name: "docker.io/library/busybox:1.36".into(),
            layers: vec![Layer::Busybox],
            architecture: "amd64".into(),
            gzip: true,
        }],
    )
    .unwrap();
    // What gets pushed.
    let src = t.join("src");
    write_layout(
        &src,
        &[
            TestImage::random("good", 81, 4096),
            TestImage::random("evil", 82, 4096),
            TestImage::random("bare", 83, 4096),
        ],
    )
    .unwrap();

    let key = TestKey::generate(KeyKind::P256, t, "team").unwrap();
    let mut file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    file.registry.tls = TlsMode::Off;
    file.registry.push = true;
    file.storage.allow_ram_push = true;
    file.trust = Some(TrustPolicy {
        keys: vec![TrustedKey {
            name: "team".into(),
            scopes: vec!["quay.io/signed".into()],
            public_key_pem: key.public_pem.clone(),
        }],
        enforce: true,
    });
    let dirs = Host0Dirs::new(t, &t.join("media"), &file);
    std::fs::write(dirs.config.parent().unwrap().join("push-token"), PUSH_TOKEN).unwrap();
    let h = Host0::start(&dirs, &[]);
    let host = dirs.host();
    let target = PushTarget {
        addr: host.parse().unwrap(),
        basic: Some(("push".into(), PUSH_TOKEN.into())),
    };

    // Signed: copies, by tag and by digest.
    let good = push(&src, "good", &host, "quay.io/signed/app:1.0");
    target
        .sign("quay.io/signed/app", &good, "quay.io/signed/app", &key)
        .unwrap();
    pull(t, &host, "quay.io/signed/app:1.0").unwrap_or_else(|e| panic!("signed image: {e}"));
    pull(t, &host, &format!("quay.io/signed/app@{good}"))
        .unwrap_or_else(|e| panic!("signed image by digest: {e}"));

    // Unsigned in scope: refused, skopeo printing key and reason.
    let bare = push(&src, "bare", &host, "quay.io/signed/bare:1.0");
    assert_refused(t, &host, "quay.io/signed/bare:1.0", &bare, "no signature");

    // The signed tag re-pushed with other content: refused.
    let evil = push(&src, "evil", &host, "quay.io/signed/app:1.0");
    assert_ne!(evil, good);
    assert_refused(t, &host, "quay.io/signed/app:1.0", &evil, "no signature");
    // ... with the good signature copied beside it too.
    let sig = airlift_integration::http::request(
        target.addr,
        "GET",
        &format!("/v2/quay.io/signed/app/manifests/{}", sig_tag(&good)),
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    )
    .unwrap();
    assert_eq!(sig.status, 200, "the .sig is served as it is");
    target
        .push_manifest(
            "quay.io/signed/app",
            &sig_tag(&evil),
            "application/vnd.oci.image.manifest.v1+json",
            &sig.body,
        )
        .unwrap();
    assert_refused(
        t,
        &host,
        "quay.io/signed/app:1.0",
        &evil,
        &format!("over another manifest, {good}"),
    );

    // Out of every scope: pushed unsigned, or the bundle's.
    push(&src, "bare", &host, "quay.io/free/app:1.0");
    pull(t, &host, "quay.io/free/app:1.0").unwrap_or_else(|e| panic!("out of scope: {e}"));
    pull(t, &host, "docker.io/library/busybox:1.36")
        .unwrap_or_else(|e| panic!("the bundle's image: {e}"));

    // containerd's ctr through the hosts.toml files host0 wrote (plain
    // HTTP here, so no CA path to rewrite): the same refusal.
    let cd = Containerd::start(&t.join("containerd"));
    let hosts = dirs.root.join("etc/containerd/certs.d");
    cd.pull(&hosts, "quay.io/free/app:1.0");
    let out = cd
        .ctr()
        .args(["images", "pull", "--hosts-dir"])
        .arg(&hosts)
        .args(["--snapshotter", "native", "quay.io/signed/bare:1.0"])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // containerd resolves with HEAD, whose answer has no body: it can
    // print the status only (host0's log has the message).
    assert!(
        !out.status.success()
            && text.contains(&format!("{host} failed with status code"))
            && text.contains("403 Forbidden"),
        "ctr pulled an unsigned image, or failed otherwise: {text}"
    );

    // The status counts the refusals (skopeo's three, ctr's at least one).
    let status =
        airlift_integration::http::request(target.addr, "GET", "/airlift/v1/status", &[], b"")
            .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    let refused = status["refused-pulls"].as_u64().unwrap_or(0);
    assert!(refused >= 4, "status: {status}");

    let log = h.log_text();
    assert!(
        log.contains("pull refused: image quay.io/signed/bare:1.0"),
        "host0 logs no refusal:\n{log}"
    );
}
