//! Checking an image's cosign signatures: the `sha256-<hex>.sig`
//! manifest beside it holds one layer per signature, each a simple
//! signing payload (media type [`SIMPLE_SIGNING`]) with the base64
//! signature in its [`SIGNATURE_ANNOTATION`] annotation, as cosign and
//! containers/image write them. An image passes when one layer's
//! signature verifies with the key governing it, and its payload names
//! the image's digest and an identity matching its reference.
//!
//! Shared by the builder (before an ISO is written) and host0's
//! registry (before a manifest is served); both give it the bytes, so
//! it does no I/O.

use airlift_oci::documents::{Descriptor, Document};
use airlift_oci::{Digest, Reference};
use base64::Engine as _;

use super::keys::PublicKey;
use super::payload::{self, identity_matches};

/// A `.sig` layer's media type.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding a `.sig` layer's base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Payloads larger than this are not read (cosign's are a few hundred
/// bytes): a hostile `.sig` cannot make a verifier read gigabytes.
pub const MAX_PAYLOAD: u64 = 64 * 1024;
/// At most this many signature layers are tried per image.
pub const MAX_SIGNATURES: usize = 64;

/// The cosign tag holding `digest`'s signatures (`sha256-<hex>.sig`).
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm().as_str(), digest.hex())
}

/// A signature that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The identity it claims.
    pub identity: String,
}

/// Why an image has no valid signature, in words for an error message
/// that already names the image and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `.sig` manifest at all.
    Unsigned,
    /// The `.sig` manifest is not a manifest of signature layers.
    Malformed(String),
    /// Signatures are there, none by this key.
    OtherKey {
        signatures: usize,
    },
    /// Signed by this key, but for another image (digest) or name.
    OtherDigest {
        signed: Digest,
    },
    OtherIdentity {
        signed: String,
    },
    /// A layer whose bytes, signature or payload are broken.
    Corrupted(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unsigned => f.write_str("it has no signature (no sha256-<hex>.sig beside it)"),
            Refusal::Malformed(why) => write!(f, "its .sig manifest {why}"),
            Refusal::OtherKey { signatures } => write!(
                f,
                "none of its {signatures} signature(s) verifies with the key (signed by another \
                 key, or the signature was altered)"
            ),
            Refusal::OtherDigest { signed } => {
                write!(f, "its signature is over another manifest, {signed}")
            }
            Refusal::OtherIdentity { signed } => {
                write!(f, "its signature is for another image name, {signed:?}")
            }
            Refusal::Corrupted(why) => write!(f, "its signature is corrupted: {why}"),
        }
    }
}

/// Check the signatures in `sig_manifest` (the `.sig` manifest's bytes,
/// `None` when there is none) for `image` at `digest` with `key`.
/// `read_payload` returns a layer's bytes (the caller's store; this
/// function checks them against the layer's digest itself).
pub fn check(
    sig_manifest: Option<&[u8]>,
    read_payload: &mut dyn FnMut(&Descriptor) -> anyhow::Result<Vec<u8>>,
    key: &PublicKey,
    image: &Reference,
    digest: &Digest,
) -> Result<Verified, Refusal> {
    let Some(bytes) = sig_manifest else {
        return Err(Refusal::Unsigned);
    };
    let manifest = match Document::parse(bytes, None) {
        Ok(Document::Manifest(m)) => m,
        Ok(Document::Index(_)) => {
            return Err(Refusal::Malformed("is an index, not a manifest".into()))
        }
        Err(_) => return Err(Refusal::Malformed("is not a manifest".into())),
    };
    let layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
        .take(MAX_SIGNATURES)
        .collect();
    if layers.is_empty() {
        return Err(Refusal::Malformed(format!("has no {SIMPLE_SIGNING} layer")));
    }
    // The most telling refusal wins: a signature by the key for the wrong
    // image beats a corrupted layer, which beats "another key".
    let mut best: Option<Refusal> = None;
    let note = |r: Refusal, best: &mut Option<Refusal>| {
        let rank = |r: &Refusal| match r {
            Refusal::OtherDigest { .. } | Refusal::OtherIdentity { .. } => 3,
            Refusal::Corrupted(_) => 2,
            _ => 1,
        };
        if best.as_ref().is_none_or(|b| rank(&r) > rank(b)) {
            *best = Some(r);
        }
    };
    for layer in &layers {
        match check_layer(layer, read_payload, key, image, digest) {
            Ok(v) => return Ok(v),
            Err(r) => note(r, &mut best),
        }
    }
    Err(best.unwrap_or(Refusal::OtherKey {
        signatures: layers.len(),
    }))
}

fn check_layer(
    layer: &Descriptor,
    read_payload: &mut dyn FnMut(&Descriptor) -> anyhow::Result<Vec<u8>>,
    key: &PublicKey,
    image: &Reference,
    digest: &Digest,
) -> Result<Verified, Refusal> {
    let Some(b64) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
        return Err(Refusal::Corrupted(format!(
            "layer {} has no {SIGNATURE_ANNOTATION} annotation",
            layer.digest
        )));
    };
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return Err(Refusal::Corrupted(format!(
            "layer {}'s signature is not base64",
            layer.digest
        )));
    };
    if layer.size > MAX_PAYLOAD {
        return Err(Refusal::Corrupted(format!(
            "layer {} is {} bytes, more than a payload's {MAX_PAYLOAD}",
            layer.digest, layer.size
        )));
    }
    let bytes = read_payload(layer).map_err(|e| {
        Refusal::Corrupted(format!("payload {} cannot be read: {e:#}", layer.digest))
    })?;
    if bytes.len() as u64 != layer.size || Digest::sha256_of(&bytes) != layer.digest {
        return Err(Refusal::Corrupted(format!(
            "payload {} does not match its digest",
            layer.digest
        )));
    }
    if !key.verifies(&bytes, &signature) {
        return Err(Refusal::OtherKey { signatures: 1 });
    }
    // Only a payload the key signed is looked into.
    let p = payload::parse(&bytes).map_err(Refusal::Corrupted)?;
    if &p.digest != digest {
        return Err(Refusal::OtherDigest { signed: p.digest });
    }
    if !identity_matches(&p.identity, image) {
        return Err(Refusal::OtherIdentity { signed: p.identity });
    }
    Ok(Verified {
        identity: p.identity,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::keys::test_keys::*;
    use super::*;

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn payload(identity: &str, digest: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": payload::SIGNATURE_TYPE,
            },
            "optional": null
        }))
        .unwrap()
    }

    /// A `.sig` manifest of `layers` (payload, base64 signature) and a
    /// store of the payloads.
    fn sig(layers: &[(Vec<u8>, String)]) -> (Vec<u8>, HashMap<Digest, Vec<u8>>) {
        let mut store = HashMap::new();
        let descs: Vec<_> = layers
            .iter()
            .map(|(p, s)| {
                let d = Digest::sha256_of(p);
                store.insert(d.clone(), p.clone());
                serde_json::json!({
                    "mediaType": SIMPLE_SIGNING, "size": p.len(), "digest": d.to_string(),
                    "annotations": {SIGNATURE_ANNOTATION: s},
                })
            })
            .collect();
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                       "digest": Digest::sha256_of(b"{}").to_string()},
            "layers": descs,
        });
        (serde_json::to_vec(&m).unwrap(), store)
    }

    fn run(
        manifest: Option<&[u8]>,
        store: &HashMap<Digest, Vec<u8>>,
        key: &PublicKey,
        image: &str,
    ) -> Result<Verified, Refusal> {
        let mut read = |d: &Descriptor| {
            store
                .get(&d.digest)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("blob {} is missing", d.digest))
        };
        check(
            manifest,
            &mut read,
            key,
            &image.parse().unwrap(),
            &D.parse().unwrap(),
        )
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn a_good_signature_passes_and_each_fault_is_named() {
        let (k, other) = (p256(7), p256(8));
        let key = PublicKey::from_pem(&p256_pem(&k)).unwrap();
        let img = "quay.io/org/app:1.0";
        let good = payload("quay.io/org/app", D);

        let (m, s) = sig(&[(good.clone(), b64(&p256_sign(&k, &good)))]);
        assert_eq!(
            run(Some(&m), &s, &key, img).unwrap().identity,
            "quay.io/org/app"
        );
        assert_eq!(run(None, &s, &key, img), Err(Refusal::Unsigned));

        let (m, s) = sig(&[(good.clone(), b64(&p256_sign(&other, &good)))]);
        assert_eq!(
            run(Some(&m), &s, &key, img),
            Err(Refusal::OtherKey { signatures: 1 })
        );

        let elsewhere = payload("quay.io/someone/else", D);
        let (m, s) = sig(&[(elsewhere.clone(), b64(&p256_sign(&k, &elsewhere)))]);
        assert_eq!(
            run(Some(&m), &s, &key, img),
            Err(Refusal::OtherIdentity {
                signed: "quay.io/someone/else".into()
            })
        );

        let other_digest = format!("sha256:{}", "c".repeat(64));
        let wrong = payload("quay.io/org/app", &other_digest);
        let (m, s) = sig(&[(wrong.clone(), b64(&p256_sign(&k, &wrong)))]);
        assert!(matches!(
            run(Some(&m), &s, &key, img),
            Err(Refusal::OtherDigest { .. })
        ));

        // Corrupted: the payload bytes changed after signing (and the
        // layer digest with them), a payload blob that does not match
        // its digest, a signature that is not base64.
        let mut altered = good.clone();
        altered[10] ^= 1;
        let (m, s) = sig(&[(altered, b64(&p256_sign(&k, &good)))]);
        assert_eq!(
            run(Some(&m), &s, &key, img),
            Err(Refusal::OtherKey { signatures: 1 })
        );
        let (m, mut s) = sig(&[(good.clone(), b64(&p256_sign(&k, &good)))]);
        for v in s.values_mut() {
            v[0] ^= 1;
        }
        let e = run(Some(&m), &s, &key, img).unwrap_err();
        assert!(
            matches!(&e, Refusal::Corrupted(w) if w.contains("does not match")),
            "{e}"
        );
        let (m, s) = sig(&[(good.clone(), "%%%".into())]);
        assert!(matches!(
            run(Some(&m), &s, &key, img),
            Err(Refusal::Corrupted(_))
        ));

        // One good layer among bad ones passes.
        let (m, s) = sig(&[
            (good.clone(), b64(&p256_sign(&other, &good))),
            (good.clone(), b64(&p256_sign(&k, &good))),
        ]);
        assert!(run(Some(&m), &s, &key, img).is_ok());

        // Not a signature manifest at all.
        assert!(matches!(
            run(Some(b"{}"), &s, &key, img),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn ed25519_signatures_pass_too() {
        let k = ed25519(3);
        let key = PublicKey::from_pem(&ed25519_pem(&k)).unwrap();
        let good = payload("quay.io/org/app:1.0", D);
        let (m, s) = sig(&[(good.clone(), b64(&ed25519_sign(&k, &good)))]);
        assert!(run(Some(&m), &s, &key, "quay.io/org/app:1.0").is_ok());
        assert_eq!(
            run(Some(&m), &s, &key, "quay.io/org/app:2.0"),
            Err(Refusal::OtherIdentity {
                signed: "quay.io/org/app:1.0".into()
            })
        );
    }

    #[test]
    fn the_signature_tag_is_cosigns() {
        assert_eq!(
            signature_tag(&D.parse().unwrap()),
            format!("sha256-{}.sig", "a".repeat(64))
        );
    }
}
