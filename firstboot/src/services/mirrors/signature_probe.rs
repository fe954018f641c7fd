//! Can this machine's containers/image verify sigstore signatures? Asked
//! once per process, of the real tool: `skopeo` copies a tiny image that
//! carries a (bogus) sigstore signature under a policy requiring one.
//!
//! - stderr says `sigstore disabled`: containers/image was built without
//!   sigstore (Debian 12's skopeo 1.9, podman and CRI-O: a Debian patch);
//!   a `sigstoreSigned` requirement there refuses every image.
//! - any other policy refusal (`Source image rejected: …`): the
//!   requirement was evaluated and the bogus signature refused, so real
//!   ones verify.
//! - no `skopeo`: no containers/image tools to configure.
//! - anything else (the copy succeeded, or failed for another reason):
//!   unknown, and nothing is written.
//!
//! The image is a `dir:` layout (containers/image's own), since its
//! `signature-N` files carry sigstore signatures: an image without any
//! signature is refused ("no signature exists") before the sigstore code
//! is reached, which tells nothing (measured on Debian 12).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};

use super::signatures::Sigstore;
use super::MirrorSpec;

/// The probe's key: any valid P-256 public key (nothing is signed with it).
const PROBE_KEY: &str = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEft+1G23psrcWM4k6npvXnTxHUElo\n\
oir556ps4NPdC8kVMlmrZLZqMh7BuO21GTNA7Igh6oUwC9hIZyMvvddMCQ==\n\
-----END PUBLIC KEY-----\n";

/// The answer for `spec`: probed (once per process) when its trust policy
/// asks for enforcement; otherwise nothing depends on it and no tool runs.
pub fn detect_for(spec: &MirrorSpec) -> Sigstore {
    match &spec.trust {
        Some(t) if t.enforce => cached(),
        _ => Sigstore::Unknown("not probed: signature enforcement is off".into()),
    }
}

/// [`probe`] with `skopeo` from `PATH`, run once per process.
pub fn cached() -> Sigstore {
    static ONCE: OnceLock<Sigstore> = OnceLock::new();
    ONCE.get_or_init(|| {
        let s = probe(Path::new("skopeo"));
        tracing::info!("sigstore probe: {s:?}");
        s
    })
    .clone()
}

/// Run the probe with this `skopeo`.
pub fn probe(skopeo: &Path) -> Sigstore {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Sigstore::Unknown(format!("no temp folder: {e}")),
    };
    if let Err(e) = write_probe(dir.path()) {
        return Sigstore::Unknown(format!("writing the probe image: {e:#}"));
    }
    let out = Command::new(skopeo)
        .arg("--policy")
        .arg(dir.path().join("policy.json"))
        .arg("copy")
        .arg(format!("dir:{}", dir.path().join("image").display()))
        .arg(format!("dir:{}", dir.path().join("copy").display()))
        .output();
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Sigstore::NoTools,
        Err(e) => Sigstore::Unknown(format!("running {}: {e}", skopeo.display())),
        Ok(o) => classify(o.status.success(), &String::from_utf8_lossy(&o.stderr)),
    }
}

/// What skopeo's answer means (pure).
pub fn classify(succeeded: bool, stderr: &str) -> Sigstore {
    if succeeded {
        return Sigstore::Unknown(
            "skopeo accepted a bogus sigstore signature; its policy handling is not understood"
                .into(),
        );
    }
    if stderr.contains("sigstore disabled") {
        return Sigstore::Disabled;
    }
    if stderr.contains("Source image rejected") {
        return Sigstore::Verifies;
    }
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    let short: String = last
        .unwrap_or("no output")
        .trim()
        .chars()
        .take(200)
        .collect();
    Sigstore::Unknown(format!("skopeo failed: {short}"))
}

/// The probe's files under `dir`: `image/` (a `dir:` layout with one
/// sigstore signature), `policy.json` and the key it names.
fn write_probe(dir: &Path) -> Result<()> {
    let image = dir.join("image");
    std::fs::create_dir(&image).context("creating the probe image folder")?;
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_hex = hex::encode(Sha256::digest(config));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_hex}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let write = |p: &Path, b: &[u8]| {
        std::fs::write(p, b).with_context(|| format!("writing {}", p.display()))
    };
    write(
        &image.join("version"),
        b"Directory Transport Version: 1.1\n",
    )?;
    write(&image.join(&config_hex), config)?;
    write(&image.join("manifest.json"), manifest.as_bytes())?;
    // containers/image's non-simple-signing signature file: NUL, format
    // name, newline, then the format's JSON (payload as base64 bytes).
    let mut sig = b"\0sigstore-json\n".to_vec();
    sig.extend_from_slice(
        br#"{"mimeType":"application/vnd.dev.cosign.simplesigning.v1+json","payload":"e30=","annotations":{"dev.cosignproject.cosign/signature":"MEUCIQ=="}}"#,
    );
    write(&image.join("signature-1"), &sig)?;
    let key = dir.join("probe.pub");
    write(&key, PROBE_KEY.as_bytes())?;
    let policy = serde_json::json!({
        "default": [{
            "type": "sigstoreSigned",
            "keyPath": key,
            "signedIdentity": { "type": "matchRepoDigestOrExact" },
        }],
    });
    write(&dir.join("policy.json"), policy.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reads_skopeo_s_answers() {
        assert_eq!(
            classify(
                false,
                "time=\"…\" level=fatal msg=\"Source image rejected: Debian-local change: sigstore disabled\"\n"
            ),
            Sigstore::Disabled
        );
        assert_eq!(
            classify(
                false,
                "level=fatal msg=\"Source image rejected: cryptographic signature verification failed\""
            ),
            Sigstore::Verifies
        );
        assert!(matches!(classify(true, ""), Sigstore::Unknown(_)));
        let Sigstore::Unknown(why) = classify(false, "boom\nunknown flag --policy\n\n") else {
            panic!("unknown expected");
        };
        assert!(why.contains("unknown flag --policy"), "{why}");
    }

    #[test]
    fn a_missing_skopeo_means_no_tools() {
        assert_eq!(
            probe(Path::new("/nonexistent/skopeo-for-airlift-test")),
            Sigstore::NoTools
        );
    }

    #[test]
    fn no_probe_without_enforcement() {
        let spec = MirrorSpec::new(
            vec![super::super::Endpoint::https("h:1")],
            vec!["quay.io".into()],
            None,
        );
        assert!(matches!(detect_for(&spec), Sigstore::Unknown(w) if w.contains("not probed")));
    }
}
