//! Backup and restore of host0: what cannot be rebuilt from the release
//! media, in one tar (`airlift-firstboot backup -o PATH`, `restore PATH`).
//!
//! ```text
//! airlift-backup.json                      BackupInfo: appliance, when, what it holds (first)
//! oci-layout, index.json                   the pushed images as an OCI layout (ref-name repo:tag)
//! airlift/registry/repositories/…          the registry's metadata files verbatim (tags, referrers)
//! airlift/releases/state.json              host0's releases and the current one
//! airlift/releases/<hex>/{oci-layout,index.json,bundle.json,update.json}
//! airlift/private/tls/…, airlift/private/admin-token   the CA, server key and admin token (0600)
//! airlift/nodes.json                       the node table, when host0 answered
//! blobs/sha256/<hex>                       every blob the pushed images reach, except release blobs (last)
//! ```
//!
//! [`collect`] reads host0's files (only reads: host0 may be serving),
//! [`plan`] turns them into the entry list (pure), [`write`] streams the
//! tar, [`read`] checks and reads one back, [`install`] puts it in place.

pub mod collect;
pub mod entry;
pub mod install;
pub mod plan;
pub mod reach;
pub mod read;
pub mod write;

#[cfg(test)]
mod tests;

use airlift_appliance::ReleaseId;
use airlift_oci::Digest;
use serde::{Deserialize, Serialize};

/// The `schema` of [`entry::INFO`].
pub const SCHEMA: &str = "airlift.backup/v1";

/// A blob the archive carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// `airlift-backup.json`: the archive's first entry, read before anything
/// is written on restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackupInfo {
    /// [`SCHEMA`].
    pub schema: String,
    /// The appliance's name (`appliance.json`'s `name`).
    pub appliance: String,
    /// When it was taken (RFC 3339 UTC).
    pub created_at: String,
    /// The airlift-firstboot that wrote it.
    pub airlift_version: String,
    /// Pushed tags (one `index.json` entry each) and pushed manifests.
    pub images: u64,
    pub manifests: u64,
    /// Every blob the archive carries, in archive order.
    pub blobs: Vec<BlobRef>,
    /// Blobs the pushed images reach that release media carry (left out).
    pub left_out_blobs: u64,
    pub left_out_bytes: u64,
    /// The releases host0 held.
    pub releases: Vec<ReleaseId>,
    /// Every entry other than this file and the blobs, in archive order.
    pub files: Vec<String>,
}

impl BackupInfo {
    /// Bytes of the blobs carried.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}
