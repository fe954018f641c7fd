//! Releases: what names a bundle ([`ReleaseId`]) and what an update
//! medium says about itself ([`UpdateManifest`], `update.json`).
//!
//! A release is one bundle as `airlift build` wrote it: the appliance's
//! name and version from the image config, and the bundle's identity,
//! the SHA-256 of its `index.json` ([`bundle_id`]). A full ISO is a
//! release medium. An update medium (`airlift build --update-from`)
//! carries the new release's whole `index.json` and `bundle.json` but
//! only the blobs its base release lacks, with `update.json` beside
//! `bundle.json`:
//!
//! ```text
//! ISO:          /airlift/bundle/{oci-layout,index.json,blobs/…}  (blobs: only those carried)
//!               /airlift/bundle.json  /airlift/update.json
//! OCI archive:  oci-layout  index.json  blobs/…  bundle.json  update.json   (one tar)
//! ```
//!
//! host0 loads a medium only if its `name` is the appliance's and, for an
//! update, its `base` release is on host0 (`airlift-firstboot update`).

use std::fmt;

use airlift_oci::Digest;
use serde::{Deserialize, Serialize};

/// File name of the update manifest, beside `bundle.json`.
pub const UPDATE_FILE: &str = "update.json";
/// Where the update manifest sits in an ISO.
pub const UPDATE_ISO_PATH: &str = "airlift/update.json";
/// The `schema` value this airlift writes and reads.
pub const UPDATE_SCHEMA: &str = "airlift.update/v1";

/// A bundle's identity: `sha256:` of its `index.json` bytes.
pub fn bundle_id(index_json: &[u8]) -> Digest {
    Digest::sha256_of(index_json)
}

/// What names one release.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseId {
    /// The appliance's name (`metadata.name`): media of another name are
    /// another appliance's.
    pub name: String,
    /// `metadata.version`.
    pub version: String,
    /// [`bundle_id`] of the release's bundle.
    pub bundle: Digest,
}

impl ReleaseId {
    /// Does `s` name this release? Its version, its bundle digest, or the
    /// digest's first 12 or more hex digits (as `docker images` shortens).
    pub fn matches(&self, s: &str) -> bool {
        let s = s.trim();
        if s.is_empty() {
            return false;
        }
        if s == self.version || s == self.bundle.to_string() {
            return true;
        }
        let hex = s.strip_prefix("sha256:").unwrap_or(s);
        hex.len() >= 12 && self.bundle.hex().starts_with(hex)
    }

    /// The digest's first 12 hex digits, for tables and messages.
    pub fn short(&self) -> &str {
        let h = self.bundle.hex();
        &h[..h.len().min(12)]
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.name, self.version, self.short())
    }
}

/// `update.json`: what an update medium brings and what it builds on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateManifest {
    /// [`UPDATE_SCHEMA`].
    pub schema: String,
    /// The release this medium brings.
    pub release: ReleaseId,
    /// The release that must be on host0 already: it holds every blob of
    /// `release` this medium does not carry.
    pub base: ReleaseId,
    /// Blobs on this medium.
    pub carried: BlobCount,
    /// Every blob `release` reaches (carried or in `base`).
    pub total: BlobCount,
    /// Images `release` has and `base` had not, by reference.
    pub added: Vec<ImageChange>,
    /// Images both have, under another digest.
    pub changed: Vec<ImageChange>,
    /// Images `base` had and `release` has not.
    pub removed: Vec<ImageChange>,
}

/// A number of blobs and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlobCount {
    pub blobs: u64,
    pub bytes: u64,
}

/// One image that an update adds, changes or removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageChange {
    /// The full upstream reference (`quay.io/org/app:1.2`).
    pub reference: String,
    /// Its digest in `base` (None when added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Digest>,
    /// Its digest in `release` (None when removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Digest>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ReleaseId {
        ReleaseId {
            name: "demo".into(),
            version: "2.0".into(),
            bundle: bundle_id(b"{\"schemaVersion\":2}"),
        }
    }

    #[test]
    fn a_release_is_named_by_version_digest_or_its_prefix() {
        let r = id();
        let hex = r.bundle.hex().to_string();
        assert!(r.matches("2.0"));
        assert!(r.matches(&r.bundle.to_string()));
        assert!(r.matches(&hex[..12]));
        assert!(r.matches(&format!("sha256:{}", &hex[..16])));
        assert!(!r.matches(&hex[..11]), "too short a prefix is ambiguous");
        assert!(!r.matches("2"));
        assert!(!r.matches(""));
        assert_eq!(r.to_string(), format!("demo 2.0 ({})", &hex[..12]));
    }

    #[test]
    fn the_update_manifest_round_trips_and_refuses_unknown_fields() {
        let m = UpdateManifest {
            schema: UPDATE_SCHEMA.into(),
            release: id(),
            base: ReleaseId {
                version: "1.0".into(),
                ..id()
            },
            carried: BlobCount {
                blobs: 3,
                bytes: 10,
            },
            total: BlobCount {
                blobs: 30,
                bytes: 1000,
            },
            added: vec![ImageChange {
                reference: "quay.io/a/b:1".into(),
                from: None,
                to: Some(id().bundle),
            }],
            changed: vec![],
            removed: vec![],
        };
        let json = serde_json::to_string(&m).unwrap();
        assert!(!json.contains("\"from\""), "{json}");
        assert_eq!(serde_json::from_str::<UpdateManifest>(&json).unwrap(), m);
        let bad = json.replace("\"carried\"", "\"extra\":1,\"carried\"");
        assert!(serde_json::from_str::<UpdateManifest>(&bad).is_err());
    }
}
