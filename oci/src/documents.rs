//! The OCI image-spec and Docker schema 2 documents airlift reads:
//! descriptors, indexes and image manifests. Unknown fields are kept
//! (`extra`) so a document survives a round trip; manifests themselves
//! are always stored and served as their original bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub mod media {
    //! Media types.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Is this an index (OCI index or Docker manifest list)?
    pub fn is_index(media_type: &str) -> bool {
        media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    /// Is this an image manifest (OCI or Docker schema 2)?
    pub fn is_manifest(media_type: &str) -> bool {
        media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
    }
}

/// The annotation that names an image in an OCI layout's `index.json`.
/// airlift stores the full upstream reference there (`quay.io/org/app:1.2`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// A platform in an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `os/arch[/variant]`, as in `linux/arm64/v8`.
    pub fn spec(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An OCI image index or Docker manifest list (also `index.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Index {
    /// An empty OCI index, as a new layout's `index.json`.
    pub fn empty() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(media::OCI_INDEX.to_string()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest or Docker schema 2 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// What a manifest document is, judged by its bytes and the media type
/// it was stored or served with.
#[derive(Debug, Clone, PartialEq)]
pub enum Document {
    Index(Index),
    Manifest(Box<Manifest>),
}

impl Document {
    /// Parse a manifest or index. `media_type` (from the descriptor or a
    /// Content-Type header) wins; otherwise the document's own
    /// `mediaType`, else the presence of `manifests`.
    pub fn parse(bytes: &[u8], media_type: Option<&str>) -> anyhow::Result<Document> {
        let value: serde_json::Value = crate::quiet_json::parse(bytes, "manifest")?;
        let own = value.get("mediaType").and_then(|v| v.as_str());
        let is_index = match media_type.or(own) {
            Some(mt) if media::is_index(mt) => true,
            Some(mt) if media::is_manifest(mt) => false,
            _ => value.get("manifests").is_some(),
        };
        if is_index {
            Ok(Document::Index(serde_json::from_value(value).map_err(
                |e| {
                    anyhow::anyhow!(
                        "image index is malformed: {}",
                        crate::quiet_json::describe(&e)
                    )
                },
            )?))
        } else {
            Ok(Document::Manifest(Box::new(
                serde_json::from_value(value).map_err(|e| {
                    anyhow::anyhow!(
                        "image manifest is malformed: {}",
                        crate::quiet_json::describe(&e)
                    )
                })?,
            )))
        }
    }

    /// The media type to serve this document with.
    pub fn media_type(&self) -> &str {
        match self {
            Document::Index(i) => i.media_type.as_deref().unwrap_or(media::OCI_INDEX),
            Document::Manifest(m) => m.media_type.as_deref().unwrap_or(media::OCI_MANIFEST),
        }
    }

    /// Descriptors this document points at (children of an index;
    /// config and layers of a manifest). The subject is not included.
    pub fn children(&self) -> Vec<&Descriptor> {
        match self {
            Document::Index(i) => i.manifests.iter().collect(),
            Document::Manifest(m) => std::iter::once(&m.config).chain(m.layers.iter()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_list_and_oci_manifest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let list = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{d}","size":7,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            media::DOCKER_MANIFEST_LIST,
            media::DOCKER_MANIFEST
        );
        let doc = Document::parse(list.as_bytes(), None).unwrap();
        assert_eq!(doc.media_type(), media::DOCKER_MANIFEST_LIST);
        let Document::Index(i) = &doc else { panic!() };
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().spec(),
            "linux/arm64/v8"
        );

        let m = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{d}","size":2}},"layers":[],"x-extra":1}}"#,
            media::OCI_CONFIG
        );
        let doc = Document::parse(m.as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(doc.children().len(), 1);
        let Document::Manifest(m) = doc else { panic!() };
        assert!(m.extra.contains_key("x-extra"));
    }

    #[test]
    fn rejects_malformed() {
        assert!(Document::parse(b"{", None).is_err());
        assert!(Document::parse(br#"{"schemaVersion":2,"layers":[]}"#, None).is_err());
    }
}
