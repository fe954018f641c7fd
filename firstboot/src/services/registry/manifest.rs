//! Checking a pushed manifest: its media type, the descriptors it
//! references, its `subject`, and the descriptor it gets in a referrers
//! list. Pure functions over bytes.

use std::collections::BTreeMap;

use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::Digest;

use super::error::{Code, RegistryError, Result};

/// The largest manifest accepted (the spec's recommended minimum limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// What the registry needs to know about a manifest document.
#[derive(Debug, Clone)]
pub struct Inspected {
    /// The media type to store and serve it with.
    pub media_type: String,
    /// Index children, or config and layers.
    pub children: Vec<Descriptor>,
    /// True for indexes (children are manifests).
    pub is_index: bool,
    pub subject: Option<Descriptor>,
    /// The type a referrers list shows: `artifactType`, else the config's media type.
    pub artifact_type: Option<String>,
    pub annotations: BTreeMap<String, String>,
}

fn invalid(msg: impl Into<String>) -> RegistryError {
    RegistryError::new(Code::ManifestInvalid, msg)
}

/// Inspect manifest bytes pushed with `content_type` (the request's
/// `Content-Type`, if it names a manifest or index type).
pub fn inspect(bytes: &[u8], content_type: Option<&str>) -> Result<Inspected> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid("manifest is not a JSON object"));
    }
    let own = value.get("mediaType").and_then(|v| v.as_str());
    let declared = content_type.filter(|ct| media::is_index(ct) || media::is_manifest(ct));
    if let (Some(ct), Some(own)) = (declared, own) {
        if ct != own {
            return Err(invalid(format!(
                "Content-Type {ct} does not match the manifest's mediaType {own}"
            )));
        }
    }
    if value.get("schemaVersion").and_then(|v| v.as_u64()) != Some(2) {
        return Err(invalid("manifest schemaVersion must be 2"));
    }
    // What the document is comes from its content; the types it
    // declares (Content-Type, mediaType) must agree with it.
    let is_index = classify(&value)?;
    for (what, mt) in [("Content-Type", declared), ("mediaType", own)] {
        let Some(mt) = mt else { continue };
        let says_index = media::is_index(mt);
        if says_index != is_index && (says_index || media::is_manifest(mt)) {
            let (said, is) = if says_index {
                ("an index", "an image manifest (config, layers)")
            } else {
                ("an image manifest", "an index (manifests)")
            };
            return Err(invalid(format!(
                "{what} {mt} says {said} but the document is {is}"
            )));
        }
    }
    let class = if is_index {
        media::OCI_INDEX
    } else {
        media::OCI_MANIFEST
    };
    let doc = Document::parse(bytes, Some(declared.or(own).unwrap_or(class)))
        .map_err(|e| invalid(format!("{e:#}")))?;
    let media_type = declared
        .or(own)
        .unwrap_or_else(|| doc.media_type())
        .to_string();
    let subject = match value.get("subject") {
        Some(s) => Some(
            serde_json::from_value::<Descriptor>(s.clone())
                .map_err(|e| invalid(format!("subject is malformed: {e}")))?,
        ),
        None => None,
    };
    let artifact_type = value
        .get("artifactType")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let (is_index, artifact_type, annotations) = match &doc {
        Document::Index(i) => (true, artifact_type, i.annotations.clone()),
        Document::Manifest(m) => (
            false,
            artifact_type.or_else(|| Some(m.config.media_type.clone())),
            m.annotations.clone(),
        ),
    };
    Ok(Inspected {
        media_type,
        children: doc.children().into_iter().cloned().collect(),
        is_index,
        subject,
        artifact_type,
        annotations,
    })
}

/// Is the document an index (`manifests`) or an image manifest
/// (`config`)? Both or neither is refused.
fn classify(value: &serde_json::Value) -> Result<bool> {
    match (
        value.get("manifests").is_some(),
        value.get("config").is_some(),
    ) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        (true, true) => Err(invalid(
            "the document has both manifests (an index) and config (an image manifest)",
        )),
        (false, false) => Err(invalid(
            "the document is neither an index (no manifests) nor an image manifest (no config)",
        )),
    }
}

impl Inspected {
    /// This manifest's entry in its subject's referrers list.
    pub fn referrer_descriptor(&self, digest: &Digest, size: u64) -> Descriptor {
        let mut d = Descriptor::new(&self.media_type, digest.clone(), size);
        d.artifact_type = self.artifact_type.clone();
        d.annotations = self.annotations.clone();
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn artifact_with_subject() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","artifactType":"application/x-sig","config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[],"subject":{{"mediaType":"{}","digest":"{}","size":10}},"annotations":{{"k":"v"}}}}"#,
            media::OCI_MANIFEST,
            media::OCI_EMPTY,
            d('e'),
            media::OCI_MANIFEST,
            d('a')
        );
        let i = inspect(m.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(i.subject.as_ref().unwrap().digest.to_string(), d('a'));
        assert_eq!(i.artifact_type.as_deref(), Some("application/x-sig"));
        let r = i.referrer_descriptor(&d('b').parse().unwrap(), 5);
        assert_eq!(r.annotations["k"], "v");
        assert_eq!(i.children.len(), 1);
    }

    #[test]
    fn config_type_is_the_fallback_artifact_type() {
        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/x-cfg","digest":"{}","size":2}},"layers":[]}}"#,
            d('e')
        );
        let i = inspect(m.as_bytes(), None).unwrap();
        assert_eq!(i.media_type, media::OCI_MANIFEST);
        assert_eq!(i.artifact_type.as_deref(), Some("application/x-cfg"));
    }

    #[test]
    fn the_content_decides_index_or_manifest() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{}","size":2}},"layers":[]}}"#,
            media::OCI_CONFIG,
            d('e')
        );
        let e = inspect(manifest.as_bytes(), Some(media::OCI_INDEX)).unwrap_err();
        assert!(e.message.contains("Content-Type"), "{e}");
        assert!(e.message.contains("image manifest"), "{e}");
        let i = inspect(manifest.as_bytes(), None).unwrap();
        assert!(!i.is_index);
        let index = r#"{"schemaVersion":2,"manifests":[]}"#;
        let e = inspect(index.as_bytes(), Some(media::DOCKER_MANIFEST)).unwrap_err();
        assert!(e.message.contains("an index"), "{e}");
        let own = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            media::OCI_MANIFEST
        );
        assert!(inspect(own.as_bytes(), None).is_err());
        assert!(inspect(br#"{"schemaVersion":2}"#, None).is_err());
        let both = format!(
            r#"{{"schemaVersion":2,"manifests":[],"config":{{"mediaType":"{}","digest":"{}","size":2}}}}"#,
            media::OCI_CONFIG,
            d('e')
        );
        assert!(inspect(both.as_bytes(), None).is_err());
        assert!(
            inspect(index.as_bytes(), Some(media::OCI_INDEX))
                .unwrap()
                .is_index
        );
    }

    #[test]
    fn rejects_malformed_and_mismatched() {
        assert!(inspect(b"{", None).is_err());
        assert!(inspect(b"[]", None).is_err());
        assert!(inspect(br#"{"schemaVersion":1}"#, None).is_err());
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            media::DOCKER_MANIFEST_LIST
        );
        assert!(inspect(list.as_bytes(), Some(media::OCI_INDEX)).is_err());
        let ok = inspect(list.as_bytes(), Some("application/json")).unwrap();
        assert_eq!(ok.media_type, media::DOCKER_MANIFEST_LIST);
        assert!(ok.is_index);
    }
}
