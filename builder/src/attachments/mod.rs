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

//!
//! ## Which artifact types to list
//!
//! `attachments.artifactTypes` is matched against [`artifact_type`]: a
//! cosign `.sig` is `application/vnd.dev.cosign.simplesigning.v1+json`
//! (list it to keep signatures; `verify:` needs them), a cosign `.att` is
//! `application/vnd.dsse.envelope.v1+json`, an SPDX SBOM referrer is
//! usually `application/spdx+json`, a CycloneDX one
//! `application/vnd.cyclonedx+json`.

pub mod local;
pub mod registry;
pub mod verify;

use std::collections::BTreeMap;

use airlift_appliance::bundle_manifest::ATTACHMENT_SUBJECT;
use airlift_appliance::{Attachment, AttachmentKind};
use airlift_oci::documents::{media, Descriptor, Document, REF_NAME};
use airlift_oci::{Digest, Layout, Reference};
use anyhow::{Context, Result};

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

/// An attachment copied into the store: its record for `bundle.json`,
/// the descriptor of its manifest (for its `index.json` entry) and every
/// blob it reaches with its size (manifest included).
#[derive(Debug, Clone, PartialEq)]
pub struct Carried {
    pub record: Attachment,
    pub manifest: Descriptor,
    pub blobs: BTreeMap<Digest, u64>,
}

/// Finish carrying `found` once its manifest and blobs are in `layout`:
/// reads what it reaches and makes its [`Carried`].
pub fn carried(layout: &Layout, found: &Found, doc: &Document) -> Result<Carried> {
    let blobs = crate::bundler::image_blobs(layout, &found.manifest)
        .with_context(|| format!("attachment {}", found.manifest.digest))?;
    let mut manifest = found.manifest.clone();
    manifest.annotations.clear();
    let artifact = artifact_type(doc);
    Ok(Carried {
        record: record(found, artifact, blobs.values().sum()),
        manifest,
        blobs,
    })
}

/// The subjects of an image whose top manifest or index `root` is in
/// `layout`: `root` itself and, for an index, each child manifest the
/// layout holds (the kept platforms).
pub fn subjects(layout: &Layout, root: &Descriptor) -> Result<Vec<Digest>> {
    let mut out = vec![root.digest.clone()];
    if media::is_index(&root.media_type) {
        let doc = Document::parse(&layout.read_blob(&root.digest)?, Some(&root.media_type))
            .with_context(|| format!("index {}", root.digest))?;
        for c in doc.children() {
            if layout.has_blob(&c.digest) && !out.contains(&c.digest) {
                out.push(c.digest.clone());
            }
        }
    }
    Ok(out)
}

/// The `index.json` entry of a carried attachment of the image
/// `image` (see `airlift_appliance::bundle_manifest`): named
/// `<registry>/<repo>:sha256-<hex>.sig` when it came under a cosign tag,
/// else `<registry>/<repo>@<its digest>`, and annotated with its subject.
pub fn index_entry(image: &Reference, c: &Carried) -> Descriptor {
    let mut d = c.manifest.clone();
    let name = match &c.record.tag {
        Some(tag) => format!("{}:{tag}", image.name()),
        None => format!("{}@{}", image.name(), c.record.digest),
    };
    d.annotations.insert(REF_NAME.to_string(), name);
    d.annotations
        .insert(ATTACHMENT_SUBJECT.to_string(), c.record.subject.to_string());
    d
}

/// The cosign tag `tag` is for one of `subjects` (`sha256-<hex>.sig`,
/// `.att`, `.sbom`): that subject.
pub fn cosign_subject<'a>(tag: &str, subjects: &'a [Digest]) -> Option<&'a Digest> {
    subjects.iter().find(|s| {
        COSIGN_SUFFIXES
            .iter()
            .any(|suffix| cosign_tag(s, suffix) == tag)
    })
}

/// The target of the `rel="next"` link in a `Link` header value
/// (`</v2/app/referrers/sha256:…?n=10&last=x>; rel="next"`), as the
/// distribution spec paginates the referrers API; `None` without one.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|p| {
            let Some((k, v)) = p.trim().split_once('=') else {
                return false;
            };
            k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.to_string())
    })
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
    fn next_links_follow_rel_next_only() {
        assert_eq!(
            next_link(r#"</v2/app/referrers/sha256:ab?n=2&last=x>; rel="next""#).as_deref(),
            Some("/v2/app/referrers/sha256:ab?n=2&last=x")
        );
        assert_eq!(
            next_link(r#"<https://r.example/a>; rel="prev", <https://r.example/b>; rel=next"#)
                .as_deref(),
            Some("https://r.example/b")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn index_entries_are_named_so_the_bundle_registry_parses_them() {
        let image: Reference = "quay.io/org/app:1.0".parse().unwrap();
        let subject = Digest::sha256_of(b"image");
        let own = Digest::sha256_of(b"sbom");
        let tag = cosign_tag(&subject, ".sig");
        assert_eq!(tag, format!("sha256-{}.sig", &subject.to_string()[7..]));
        let carried = |tag: Option<String>| Carried {
            record: Attachment {
                subject: subject.clone(),
                digest: own.clone(),
                media_type: media::OCI_MANIFEST.into(),
                kind: AttachmentKind::Sbom,
                artifact_type: "application/spdx+json".into(),
                tag,
                size: 10,
            },
            manifest: Descriptor::new(media::OCI_MANIFEST, own.clone(), 7),
            blobs: BTreeMap::new(),
        };
        let sig = index_entry(&image, &carried(Some(tag.clone())));
        let name = sig.ref_name().unwrap();
        assert_eq!(name, format!("quay.io/org/app:{tag}"));
        let r: Reference = name.parse().unwrap();
        assert_eq!((r.name(), r.tag()), (image.name(), Some(tag.as_str())));
        assert_eq!(
            sig.annotations.get(ATTACHMENT_SUBJECT),
            Some(&subject.to_string())
        );
        assert_eq!(sig.size, 7);
        let referrer = index_entry(&image, &carried(None));
        let r: Reference = referrer.ref_name().unwrap().parse().unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(&own)));
    }

    #[test]
    fn subjects_are_the_top_and_each_kept_platform_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let (kept, _) = layout.put_blob(b"{\"kept\":1}", None).unwrap();
        let dropped = Digest::sha256_of(b"dropped");
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[
            {{"mediaType":"{m}","digest":"{kept}","size":10}},
            {{"mediaType":"{m}","digest":"{dropped}","size":10}}]}}"#,
            media::OCI_INDEX,
            m = media::OCI_MANIFEST
        );
        let (top, size) = layout.put_blob(index.as_bytes(), None).unwrap();
        let root = Descriptor::new(media::OCI_INDEX, top.clone(), size);
        assert_eq!(subjects(&layout, &root).unwrap(), vec![top, kept.clone()]);
        let single = Descriptor::new(media::OCI_MANIFEST, kept.clone(), 10);
        assert_eq!(subjects(&layout, &single).unwrap(), vec![kept]);
    }

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
