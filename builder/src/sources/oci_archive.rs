//! Source: an `oci-archive` (a tar of an OCI image layout). Members are
//! indexed by [`TarIndex`] and blobs stream straight out of the tar,
//! verified as they go; nothing is extracted.

use std::io::Read;
use std::path::Path;

use airlift_oci::{Digest, Index};
use anyhow::{bail, Result};

use super::local::{self, BlobSource, LocalImage, MAX_DOCUMENT};
use super::safe_tar::TarIndex;

/// An oci-archive read as a blob source.
pub struct ArchiveSource {
    tar: TarIndex,
}

impl BlobSource for ArchiveSource {
    fn label(&self) -> String {
        format!("oci-archive {}", self.tar.path().display())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.tar.open_member(&digest.blob_path())?))
    }
}

/// Indexes the archive at `path` and resolves `reference` in its index.json.
pub fn open(path: &Path, reference: Option<&str>) -> Result<LocalImage<ArchiveSource>> {
    let (src, index) = open_index(path)?;
    let root = local::resolve_entry(&index, reference, &src.label())?;
    Ok(LocalImage { src, root })
}

/// Indexes the archive at `path`: its blobs and its whole index.json
/// (the attachments are found there).
pub fn open_index(path: &Path) -> Result<(ArchiveSource, Index)> {
    let tar = TarIndex::open(path)?;
    let src = ArchiveSource { tar };
    if !src.tar.contains("oci-layout") {
        bail!(
            "{} is not an OCI archive: it has no oci-layout member",
            src.label()
        );
    }
    let bytes = src.tar.read_member("index.json", MAX_DOCUMENT)?;
    let index: Index = airlift_oci::quiet_json::parse(
        &bytes,
        &format!("index.json in {} is malformed", src.label()),
    )?;
    Ok((src, index))
}
