//! The build's signature check (the config's `verify:`): before a
//! bundle is finished, every image in a trusted key's scope must carry a
//! valid cosign signature by that key over its top digest, for an
//! identity matching its reference. The signatures are the `.sig`
//! attachments already carried into the staging layout, read from there
//! (bounded), so what is checked is what host0 will serve.
//!
//! The verification itself is `airlift_appliance::trust`, which host0's
//! registry also uses: the build and the appliance cannot disagree.

use std::io::Read;

use airlift_appliance::trust::check::{signature_tag, MAX_PAYLOAD};
use airlift_appliance::{AttachmentKind, BundleImage, Outcome, Verifier};
use airlift_oci::digest::Hasher;
use airlift_oci::documents::Descriptor;
use airlift_oci::{Digest, Layout, Reference};
use anyhow::{bail, Context, Result};

/// Largest `.sig` manifest read (cosign's hold one small descriptor per
/// signature; [`airlift_appliance::trust::check::MAX_SIGNATURES`] of
/// them fit many times over).
pub const MAX_SIG_MANIFEST: u64 = 1 << 20;

/// Check every image of `images` against `trust` (nothing to do without
/// one): a verified signature is added to the image's `signatures`; an
/// image in a key's scope without one fails the whole check, which
/// lists every such image and says what to do.
pub fn check(layout: &Layout, images: &mut [BundleImage], trust: Option<&Verifier>) -> Result<()> {
    let Some(verifier) = trust else {
        return Ok(());
    };
    let mut refused = Vec::new();
    for image in images.iter_mut() {
        let reference: Reference = image.reference.parse().with_context(|| {
            format!(
                "image {} in the bundle has a reference that does not parse",
                image.reference
            )
        })?;
        if verifier.governing(&reference).is_none() {
            continue;
        }
        let sig = signature_manifest(layout, image)?;
        let mut read_payload = |d: &Descriptor| read_capped(layout, &d.digest, MAX_PAYLOAD);
        let outcome = verifier.verify(
            &reference,
            &image.digest,
            sig.as_ref().map(|(d, b)| (d, b.as_slice())),
            &mut read_payload,
        );
        match outcome {
            Outcome::OutOfScope => {}
            Outcome::Verified(v) => {
                tracing::info!(
                    "image {reference}: signature by key {:?} verified (identity {})",
                    v.key,
                    v.identity
                );
                image.signatures.push(v);
            }
            refusal @ Outcome::Refused { .. } => {
                let message = refusal
                    .refusal_message(&reference, &image.digest)
                    .expect("a refusal has a message");
                refused.push(message);
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    let n = refused.len();
    bail!(
        "{n} image{} in the scope of a verify: key {} no valid signature, so no bundle was \
         written:\n  - {}\nSign each with the key its scope names (`cosign sign --key \
         cosign.key IMAGE@DIGEST`, then bundle again), or narrow that key's scopes in the \
         config's verify: section if the image is not meant to be signed by it.",
        if n == 1 { "" } else { "s" },
        if n == 1 { "has" } else { "have" },
        refused.join("\n  - ")
    )
}

/// The image's `sha256-<hex>.sig` manifest, as carried into `layout`
/// (its digest and bytes), or `None` when none was carried.
fn signature_manifest(layout: &Layout, image: &BundleImage) -> Result<Option<(Digest, Vec<u8>)>> {
    let tag = signature_tag(&image.digest);
    let Some(att) = image.attachments.iter().find(|a| {
        a.subject == image.digest
            && a.kind == AttachmentKind::Signature
            && a.tag.as_deref() == Some(tag.as_str())
    }) else {
        return Ok(None);
    };
    let bytes = read_capped(layout, &att.digest, MAX_SIG_MANIFEST)
        .with_context(|| format!("image {}: its signatures {tag}", image.reference))?;
    let mut h = Hasher::new(att.digest.algorithm());
    h.update(&bytes);
    if h.finish() != att.digest {
        bail!(
            "image {}: its signatures {tag} ({}) in the bundle do not match their digest; \
             bundle again",
            image.reference,
            att.digest
        );
    }
    Ok(Some((att.digest.clone(), bytes)))
}

/// The blob `digest` of `layout`, at most `max` bytes (a larger blob is
/// an error, not read whole). Its digest is checked by the caller.
fn read_capped(layout: &Layout, digest: &Digest, max: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    layout
        .open_blob(digest)?
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading blob {digest}"))?;
    if bytes.len() as u64 > max {
        bail!("blob {digest} is larger than {max} bytes");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use airlift_appliance::trust::check::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
    use airlift_appliance::{Attachment, TrustPolicy, TrustedKey};
    use base64::Engine as _;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    use super::*;

    /// A signer of either kind, from a fixed seed.
    enum Key {
        P256(p256::ecdsa::SigningKey),
        Ed25519(ed25519_dalek::SigningKey),
    }

    impl Key {
        fn p256(seed: u8) -> Key {
            let mut b = [0x11u8; 32];
            b[31] = seed;
            Key::P256(p256::ecdsa::SigningKey::from_slice(&b).unwrap())
        }

        fn ed25519(seed: u8) -> Key {
            Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
        }

        fn pem(&self) -> String {
            match self {
                Key::P256(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
                Key::Ed25519(k) => k.verifying_key().to_public_key_pem(LineEnding::LF),
            }
            .unwrap()
        }

        fn sign_b64(&self, msg: &[u8]) -> String {
            let sig = match self {
                Key::P256(k) => {
                    use p256::ecdsa::signature::Signer;
                    let s: p256::ecdsa::Signature = k.sign(msg);
                    s.to_der().as_bytes().to_vec()
                }
                Key::Ed25519(k) => {
                    use ed25519_dalek::Signer;
                    k.sign(msg).to_bytes().to_vec()
                }
            };
            base64::engine::general_purpose::STANDARD.encode(sig)
        }
    }

    fn payload(identity: &str, digest: &Digest) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest.to_string()},
                "type": "cosign container image signature",
            },
            "optional": null
        }))
        .unwrap()
    }

    /// A bundle being staged: a layout in a temp folder.
    struct Staging {
        _dir: tempfile::TempDir,
        layout: Layout,
    }

    impl Staging {
        fn new() -> Staging {
            let dir = tempfile::tempdir().unwrap();
            let layout = Layout::create(dir.path()).unwrap();
            Staging { _dir: dir, layout }
        }

        /// An image (one manifest, stored) and its bundle entry.
        fn image(&self, reference: &str) -> BundleImage {
            let m = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": Digest::sha256_of(reference.as_bytes()).to_string()},
                "layers": [],
            }))
            .unwrap();
            let (digest, size) = self.layout.put_blob(&m, None).unwrap();
            BundleImage {
                reference: reference.into(),
                digest,
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                platforms: vec!["linux/amd64".into()],
                size,
                attachments: Vec::new(),
                signatures: Vec::new(),
            }
        }

        /// Store a `.sig` manifest of `layers` (payload, base64 signature)
        /// for `image` and list it as the carried attachment.
        fn attach(&self, image: &mut BundleImage, layers: &[(Vec<u8>, String)]) -> Digest {
            let descs: Vec<_> = layers
                .iter()
                .map(|(p, s)| {
                    let (d, _) = self.layout.put_blob(p, None).unwrap();
                    serde_json::json!({
                        "mediaType": SIMPLE_SIGNING, "size": p.len(), "digest": d.to_string(),
                        "annotations": {SIGNATURE_ANNOTATION: s},
                    })
                })
                .collect();
            let (config, _) = self.layout.put_blob(b"{}", None).unwrap();
            let m = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                           "digest": config.to_string()},
                "layers": descs,
            }))
            .unwrap();
            let (digest, size) = self.layout.put_blob(&m, None).unwrap();
            image.attachments.push(Attachment {
                subject: image.digest.clone(),
                digest: digest.clone(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                kind: AttachmentKind::Signature,
                artifact_type: SIMPLE_SIGNING.into(),
                tag: Some(signature_tag(&image.digest)),
                size,
            });
            digest
        }

        /// `image` signed by `key` for `identity`.
        fn sign(&self, image: &mut BundleImage, key: &Key, identity: &str) -> Digest {
            let p = payload(identity, &image.digest);
            let s = key.sign_b64(&p);
            self.attach(image, &[(p, s)])
        }
    }

    fn verifier(keys: &[(&str, &Key, &[&str])]) -> Verifier {
        Verifier::new(&TrustPolicy {
            keys: keys
                .iter()
                .map(|(name, k, scopes)| TrustedKey {
                    name: name.to_string(),
                    scopes: scopes.iter().map(|s| s.to_string()).collect(),
                    public_key_pem: k.pem(),
                })
                .collect(),
            enforce: true,
        })
        .unwrap()
    }

    #[test]
    fn signed_images_in_scope_pass_and_are_recorded() {
        let s = Staging::new();
        let (team, edge) = (Key::p256(1), Key::ed25519(2));
        let v = verifier(&[
            ("team", &team, &["quay.io/team"]),
            ("edge", &edge, &["registry.example:5000/edge"]),
        ]);
        let mut a = s.image("quay.io/team/app:1.0");
        let sig_a = s.sign(&mut a, &team, "quay.io/team/app");
        let mut b = s.image("registry.example:5000/edge/db:2");
        s.sign(&mut b, &edge, "registry.example:5000/edge/db:2");
        // Out of scope: unsigned is fine, and nothing is recorded.
        let c = s.image("docker.io/library/busybox:1.36");
        let mut images = vec![a, b, c];
        check(&s.layout, &mut images, Some(&v)).unwrap();
        assert_eq!(images[0].signatures.len(), 1);
        let got = &images[0].signatures[0];
        assert_eq!(
            (got.key.as_str(), got.identity.as_str()),
            ("team", "quay.io/team/app")
        );
        assert_eq!((&got.subject, &got.signature), (&images[0].digest, &sig_a));
        assert_eq!(images[1].signatures[0].key, "edge");
        assert!(images[2].signatures.is_empty());
        // Without a policy nothing is checked or recorded.
        let mut unsigned = vec![s.image("quay.io/team/other:1")];
        check(&s.layout, &mut unsigned, None).unwrap();
        assert!(unsigned[0].signatures.is_empty());
    }

    #[test]
    fn every_refused_image_is_listed_with_key_and_reason() {
        let s = Staging::new();
        let (team, stranger) = (Key::p256(1), Key::p256(9));
        let v = verifier(&[("team", &team, &["quay.io/team"])]);
        let unsigned = s.image("quay.io/team/unsigned:1");
        let mut other_key = s.image("quay.io/team/other-key:1");
        s.sign(&mut other_key, &stranger, "quay.io/team/other-key");
        let mut other_id = s.image("quay.io/team/other-id:1");
        s.sign(&mut other_id, &team, "quay.io/someone/else");
        let mut altered = s.image("quay.io/team/altered:1");
        let p = payload("quay.io/team/altered", &altered.digest);
        let mut sig = base64::engine::general_purpose::STANDARD
            .decode(team.sign_b64(&p))
            .unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        let sig = base64::engine::general_purpose::STANDARD.encode(sig);
        s.attach(&mut altered, &[(p, sig)]);
        let mut good = s.image("quay.io/team/good:1");
        s.sign(&mut good, &team, "quay.io/team/good:1");

        let mut images = vec![unsigned, other_key, other_id, altered, good];
        let e = format!("{:#}", check(&s.layout, &mut images, Some(&v)).unwrap_err());
        assert!(e.starts_with("4 images in the scope"), "{e}");
        let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("  - ")).collect();
        assert_eq!(lines.len(), 4, "{e}");
        for (line, (name, why)) in lines.iter().zip([
            ("unsigned", "no signature"),
            ("other-key", "none of its 1 signature(s) verifies"),
            ("other-id", "\"quay.io/someone/else\""),
            ("altered", "none of its 1 signature(s) verifies"),
        ]) {
            assert!(
                line.contains(&format!("image quay.io/team/{name}:1 (sha256:")),
                "{line}"
            );
            assert!(line.contains("key \"team\" (scope quay.io/team)"), "{line}");
            assert!(line.contains(why), "{line}");
        }
        assert!(e.contains("cosign sign --key"), "{e}");
        assert!(e.contains("narrow that key's scopes"), "{e}");
    }

    #[test]
    fn broken_signature_blobs_in_the_bundle_are_refused() {
        let s = Staging::new();
        let team = Key::ed25519(4);
        let v = verifier(&[("team", &team, &["quay.io/team"])]);
        // A payload whose stored bytes no longer match its digest.
        let mut img = s.image("quay.io/team/app:1");
        s.sign(&mut img, &team, "quay.io/team/app");
        let p = payload("quay.io/team/app", &img.digest);
        std::fs::write(s.layout.blob_path(&Digest::sha256_of(&p)), b"{\"x\":1}").unwrap();
        let mut images = vec![img];
        let e = format!("{:#}", check(&s.layout, &mut images, Some(&v)).unwrap_err());
        assert!(
            e.contains("corrupted") && e.contains("does not match"),
            "{e}"
        );

        // A `.sig` manifest whose bytes changed in the bundle.
        let mut img = s.image("quay.io/team/db:1");
        let sig = s.sign(&mut img, &team, "quay.io/team/db");
        std::fs::write(s.layout.blob_path(&sig), b"{}").unwrap();
        let e = format!("{:#}", check(&s.layout, &mut [img], Some(&v)).unwrap_err());
        assert!(e.contains("do not match their digest"), "{e}");

        // An oversized payload file is not read whole.
        let mut img = s.image("quay.io/team/big:1");
        let p = vec![b' '; 10];
        s.attach(&mut img, &[(p.clone(), team.sign_b64(&p))]);
        std::fs::write(
            s.layout.blob_path(&Digest::sha256_of(&p)),
            vec![b' '; MAX_PAYLOAD as usize + 10],
        )
        .unwrap();
        let e = format!("{:#}", check(&s.layout, &mut [img], Some(&v)).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
    }
}
