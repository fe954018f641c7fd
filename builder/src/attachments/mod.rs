//! What refers to a bundled image (signatures, SBOMs, attestations),
//! found at its source and carried into the bundle beside it, verified by
//! digest like every blob. See `airlift_appliance::bundle_manifest` for
//! how attachments are named in the bundle's `index.json`.
//!
//! For every bundled image, the **subjects** are its top manifest or index
//! and each kept platform manifest. For each subject:
//! - from a registry ([`registry`]): the OCI 1.1 referrers API
//!   (`GET /v2/<name>/referrers/<digest>`), or where the registry lacks it
//!   the referrers tag schema (the `sha256-<hex>` tag's index); and the
//!   sigstore/cosign attachment tags `sha256-<hex>.sig`, `.att`, `.sbom`;
//! - from an OCI layout or oci-archive ([`local`]): the `index.json`
//!   entries whose manifest has that `subject`, and entries named with
//!   the cosign tags;
//! - a docker-archive holds none.
//!
//! Each attachment found is copied like an image (its manifest and every
//! blob it reaches, each verified), unless the config's `attachments:`
//! section ([`Filter`]) leaves it out. One level only: what refers to an
//! attachment (a signature of an SBOM) is not followed.

pub mod local;
pub mod registry;
pub mod verify;

use airlift_appliance::{Attachment, AttachmentKind};
use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::Digest;

/// The cosign attachment tag suffixes, in the order they are looked for.
pub const COSIGN_SUFFIXES: [&str; 3] = [".sig", ".att", ".sbom"];

/// The cosign tag for `subject` and `suffix` (`sha256-<hex>.sig`).
pub fn cosign_tag(subject: &Digest, suffix: &str) -> String {
    format!("{}{suffix}", subject.to_string().replacen(':', "-", 1))
}

/// An attachment found at a source, before it is copied.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The manifest it refers to.
    pub subject: Digest,
    /// Its manifest (digest, media type, size; `artifactType` when the
    /// referrers index gave one).
    pub manifest: Descriptor,
    /// The cosign tag it was found under; `None` for an OCI referrer.
    pub tag: Option<String>,
}

/// The config's `attachments:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `false`: nothing is looked for or carried.
    pub carry: bool,
    /// Non-empty: only attachments whose artifact type is listed.
    pub artifact_types: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            carry: true,
            artifact_types: Vec::new(),
        }
    }
}

impl Filter {
    /// Is an attachment of `artifact_type` carried?
    pub fn keeps(&self, artifact_type: &str) -> bool {
        self.carry
            && (self.artifact_types.is_empty()
                || self.artifact_types.iter().any(|t| t == artifact_type))
    }
}

/// The artifact type of an attachment's manifest (see
/// `airlift_appliance::Attachment::artifact_type`): its `artifactType`,
/// else its config's media type unless generic, else its first layer's
/// media type, else its config's.
pub fn artifact_type(doc: &Document) -> String {
    match doc {
        Document::Index(i) => i
            .extra
            .get("artifactType")
            .and_then(|v| v.as_str())
            .unwrap_or(media::OCI_INDEX)
            .to_string(),
        Document::Manifest(m) => {
            if let Some(t) = m.artifact_type.as_deref().filter(|t| !t.is_empty()) {
                return t.to_string();
            }
            let generic = [media::OCI_CONFIG, media::OCI_EMPTY, media::DOCKER_CONFIG];
            if !generic.contains(&m.config.media_type.as_str()) {
                return m.config.media_type.clone();
            }
            m.layers
                .first()
                .map(|l| l.media_type.clone())
                .unwrap_or_else(|| m.config.media_type.clone())
        }
    }
}

/// The bundle manifest's record of an attachment.
pub fn record(found: &Found, artifact_type: String, size: u64) -> Attachment {
    let kind = AttachmentKind::judge(&artifact_type, found.tag.as_deref());
    Attachment {
        subject: found.subject.clone(),
        digest: found.manifest.digest.clone(),
        media_type: found.manifest.media_type.clone(),
        kind,
        artifact_type,
        tag: found.tag.clone(),
        size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_types_and_kinds() {
        let doc = |json: &str| Document::parse(json.as_bytes(), None).unwrap();
        let cfg = |mt: &str| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{{"mediaType":"{mt}","digest":"sha256:{}","size":2}},
                "layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json",
                "digest":"sha256:{}","size":3}}]}}"#,
                "a".repeat(64),
                "b".repeat(64)
            )
        };
        let sig = doc(&cfg(media::OCI_CONFIG));
        assert_eq!(
            artifact_type(&sig),
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        assert_eq!(
            artifact_type(&doc(&cfg("application/spdx+json"))),
            "application/spdx+json"
        );
        assert_eq!(
            AttachmentKind::judge("application/spdx+json", None),
            AttachmentKind::Sbom
        );
        assert_eq!(
            AttachmentKind::judge("x", Some("sha256-ab.sig")),
            AttachmentKind::Signature
        );
        assert_eq!(
            AttachmentKind::judge("application/vnd.dsse.envelope.v1+json", None),
            AttachmentKind::Attestation
        );
        let f = Filter {
            carry: true,
            artifact_types: vec!["application/spdx+json".into()],
        };
        assert!(f.keeps("application/spdx+json") && !f.keeps("text/plain"));
        assert!(!Filter {
            carry: false,
            artifact_types: vec![]
        }
        .keeps("x"));
    }
}
