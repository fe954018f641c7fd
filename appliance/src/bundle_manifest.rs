//! The bundle manifest (`bundle.json`): every image in the bundle with
//! its reference, digest, platforms and size, and totals that show what
//! sharing blobs saved.

use serde::{Deserialize, Serialize};

use airlift_oci::Digest;

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
    /// Bytes of every blob this image reaches, manifests included.
    pub size: u64,
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
