//! The bundle manifest (`bundle.json`): every image in the bundle with
//! its reference, digest, platforms and size, what refers to it
//! (signatures, SBOMs, attestations: [`Attachment`]) and which trusted
//! key verified it ([`VerifiedSignature`]), and totals that show what
//! sharing blobs saved.
//!
//! ## Attachments in the bundle's `index.json`
//!
//! Beside one entry per image, `index.json` has one entry per attachment,
//! annotated with [`ATTACHMENT_SUBJECT`] (the manifest it refers to), so
//! host0 serves it in the image's repository exactly as upstream did:
//! - a sigstore/cosign attachment tag keeps its tag:
//!   `org.opencontainers.image.ref.name` = `quay.io/org/app:sha256-<hex>.sig`;
//! - an OCI 1.1 referrer (a manifest with `subject`) is named by its own
//!   digest, `quay.io/org/app@sha256:<its digest>`: served by digest, and
//!   listed by the referrers API through its `subject`.

use serde::{Deserialize, Serialize};

use airlift_oci::Digest;

/// Annotation on an attachment's `index.json` entry: the digest of the
/// manifest it refers to (the image's top manifest or index, or one of
/// its platform manifests). Entries without it are images.
pub const ATTACHMENT_SUBJECT: &str = "io.airlift.attachment.subject";

/// File name of the bundle manifest beside (or inside) a bundle.
pub const BUNDLE_MANIFEST_FILE: &str = "bundle.json";
/// The `schema` value this airlift writes and reads.
pub const BUNDLE_SCHEMA: &str = "airlift.bundle/v1";

/// The bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleManifest {
    pub schema: String,
    /// Appliance name and version from the config.
    pub name: String,
    pub version: String,
    pub images: Vec<BundleImage>,
    pub totals: Totals,
    /// The base image the appliance OS came from (`base.image`); absent
    /// for a base given as host paths, and in bundles written by
    /// `airlift bundle`. Not an entry of `images`: its blobs are not in
    /// the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseImageRecord>,
}

/// The base image an appliance was built from (`base.image`), in
/// `bundle.json` and `appliance.json`. Names no source path, so builds
/// from an oci-archive and from a registry holding the same digest write
/// the same bytes.
///
/// ```json
/// { "reference": "registry.airlift.test/base/demo:bookworm",
///   "digest": "sha256:…", "manifestDigest": "sha256:…",
///   "kernelRelease": "6.1.0-18-amd64",
///   "signatures": [ { "subject": "sha256:…", "key": "ci", "identity": "…", "signature": "sha256:…" } ] }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaseImageRecord {
    /// The reference as configured, fully qualified.
    pub reference: String,
    /// Digest of the top manifest or index.
    pub digest: Digest,
    /// Digest of the linux/amd64 image manifest the OS was taken from
    /// (the top digest when that is a manifest).
    pub manifest_digest: Digest,
    /// The kernel's release (`uname -r`).
    pub kernel_release: String,
    /// Signatures that verified at build with a key of `verify:` (empty
    /// when the base is in no key's scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<VerifiedSignature>,
}

impl BaseImageRecord {
    /// `reference@digest`.
    pub fn pinned(&self) -> String {
        format!("{}@{}", self.reference, self.digest)
    }

    /// Who signed it, as a phrase: `signed by key ci`, or that no
    /// signature was checked (no `verify:` key covers it).
    pub fn signed_by(&self) -> String {
        let mut keys: Vec<&str> = self.signatures.iter().map(|s| s.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        match keys.len() {
            0 => "no signature checked (no verify: key covers it)".to_string(),
            1 => format!("signed by key {}", keys[0]),
            _ => format!("signed by keys {}", keys.join(", ")),
        }
    }
}

/// One image in the bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BundleImage {
    /// The full upstream reference nodes pull (`quay.io/org/app:1.2`).
    pub reference: String,
    /// Digest of the top manifest or index.
    pub digest: Digest,
    pub media_type: String,
    /// `os/arch[/variant]` of every platform kept.
    pub platforms: Vec<String>,
    /// Bytes of every blob this image reaches, manifests and attachments
    /// included.
    pub size: u64,
    /// What refers to the image or its platform manifests and was carried
    /// (sorted by subject, then digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Signatures that verified at build with a key of the config's
    /// `verify:` section (empty when the image is in no key's scope).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signatures: Vec<VerifiedSignature>,
}

/// Something that refers to an image: a sigstore/cosign attachment tag or
/// an OCI 1.1 referrer, carried into the bundle with every blob it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Attachment {
    /// The manifest it refers to: the image's top digest or a platform
    /// manifest's.
    pub subject: Digest,
    /// The attachment's own manifest.
    pub digest: Digest,
    pub media_type: String,
    /// What it is, for people: judged from `artifact_type`.
    pub kind: AttachmentKind,
    /// The manifest's `artifactType`, else its config's media type unless
    /// that is the generic image config or the empty descriptor, else its
    /// first layer's media type (cosign `.sig`:
    /// `application/vnd.dev.cosign.simplesigning.v1+json`). What the
    /// config's `attachments.artifactTypes` filter matches.
    pub artifact_type: String,
    /// The cosign tag it was found under (`sha256-<hex>.sig`); absent for
    /// an OCI 1.1 referrer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Bytes of every blob it reaches, its manifest included.
    pub size: u64,
}

/// The kinds of [`Attachment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttachmentKind {
    /// A sigstore/cosign signature (`.sig`, simple signing payloads).
    Signature,
    /// An in-toto attestation (`.att`, or a DSSE envelope referrer).
    Attestation,
    /// A software bill of materials (`.sbom`, SPDX or CycloneDX referrer).
    Sbom,
    /// Any other referrer.
    Artifact,
}

impl AttachmentKind {
    /// The kind an artifact type (see [`Attachment::artifact_type`]) and
    /// cosign tag suffix say.
    pub fn judge(artifact_type: &str, tag: Option<&str>) -> AttachmentKind {
        let t = artifact_type.to_ascii_lowercase();
        if tag.is_some_and(|t| t.ends_with(".sig")) || t.contains("cosign.simplesigning") {
            AttachmentKind::Signature
        } else if tag.is_some_and(|t| t.ends_with(".att"))
            || t.contains("in-toto")
            || t.contains("dsse")
        {
            AttachmentKind::Attestation
        } else if tag.is_some_and(|t| t.ends_with(".sbom"))
            || t.contains("spdx")
            || t.contains("cyclonedx")
            || t.contains("syft")
        {
            AttachmentKind::Sbom
        } else {
            AttachmentKind::Artifact
        }
    }

    /// The name as written (`signature`, `sbom`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentKind::Signature => "signature",
            AttachmentKind::Attestation => "attestation",
            AttachmentKind::Sbom => "sbom",
            AttachmentKind::Artifact => "artifact",
        }
    }
}

/// A signature that verified at build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifiedSignature {
    /// The manifest digest the signature is over.
    pub subject: Digest,
    /// The trusted key's name (the config's `verify.keys[].name`).
    pub key: String,
    /// The identity the signature claims (`docker-reference` of its
    /// simple signing payload).
    pub identity: String,
    /// The `.sig` manifest that carries it.
    pub signature: Digest,
}

/// Totals over the whole bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Totals {
    pub images: u64,
    /// Distinct blobs stored.
    pub blobs: u64,
    /// Bytes stored (each blob once).
    pub unique_bytes: u64,
    /// Sum of the images' sizes (what separate copies would take).
    pub referenced_bytes: u64,
    /// `referenced_bytes - unique_bytes`.
    pub saved_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(signed: bool) -> BaseImageRecord {
        let d = |s: &[u8]| Digest::sha256_of(s);
        BaseImageRecord {
            reference: "registry.airlift.test/base/demo:bookworm".into(),
            digest: d(b"index"),
            manifest_digest: d(b"manifest"),
            kernel_release: "6.1.0-18-amd64".into(),
            signatures: if signed {
                vec![VerifiedSignature {
                    subject: d(b"index"),
                    key: "ci".into(),
                    identity: "registry.airlift.test/base/demo:bookworm".into(),
                    signature: d(b"sig"),
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn the_base_record_round_trips_and_is_left_out_when_absent() {
        let mut m = BundleManifest {
            schema: BUNDLE_SCHEMA.into(),
            name: "demo".into(),
            version: "1".into(),
            images: Vec::new(),
            totals: Totals::default(),
            base: None,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("\"base\""), "{text}");
        assert_eq!(serde_json::from_str::<BundleManifest>(&text).unwrap(), m);
        m.base = Some(record(true));
        let value = serde_json::to_value(&m).unwrap();
        let base = &value["base"];
        assert_eq!(
            base["reference"],
            "registry.airlift.test/base/demo:bookworm"
        );
        assert_eq!(
            base["manifestDigest"],
            Digest::sha256_of(b"manifest").to_string()
        );
        assert_eq!(base["kernelRelease"], "6.1.0-18-amd64");
        assert_eq!(base["signatures"][0]["key"], "ci");
        assert_eq!(serde_json::from_value::<BundleManifest>(value).unwrap(), m);
        // Unsigned: no signatures key at all.
        let text = serde_json::to_string(&record(false)).unwrap();
        assert!(!text.contains("signatures"), "{text}");
        assert_eq!(
            record(false).signed_by(),
            "no signature checked (no verify: key covers it)"
        );
        assert_eq!(record(true).signed_by(), "signed by key ci");
        assert!(record(true)
            .pinned()
            .ends_with(&Digest::sha256_of(b"index").to_string()));
    }
}
