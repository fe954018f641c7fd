//! Source: an `oci-archive` (a tar of an OCI image layout). Members are
//! indexed by [`TarIndex`] and blobs stream straight out of the tar,
//! verified as they go; nothing is extracted.

use std::io::Read;
use std::path::Path;

use airlift_oci::{Descriptor, Digest, Index};
use anyhow::{bail, Context, Result};

use super::local::{self, BlobSource, MAX_DOCUMENT};
use super::safe_tar::TarIndex;
use super::Ingested;
use crate::bundler::store::Store;

struct ArchiveSource {
    tar: TarIndex,
}

impl BlobSource for ArchiveSource {
    fn label(&self) -> String {
        format!("oci-archive {}", self.tar.path().display())
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        let r = self
            .tar
            .open_member(&digest.blob_path())
            .with_context(|| format!("blob {digest} is missing from {}", self.label()))?;
        Ok(Box::new(r))
    }
}

/// Copy the image `reference` picks out of the oci-archive at `path`.
pub fn ingest(
    path: &Path,
    reference: Option<&str>,
    platforms: &[String],
    store: &Store,
) -> Result<Ingested> {
    let (src, root) = open(path, reference)?;
    local::copy_image(&src, &root, platforms, store)
}

/// What `airlift validate` checks without copying (see
/// [`local::check_image`]).
pub fn check(path: &Path, reference: Option<&str>, platforms: &[String]) -> Result<()> {
    let (src, root) = open(path, reference)?;
    local::check_image(&src, &root, platforms)
}

/// Indexes the archive and resolves `reference` in its index.json.
fn open(path: &Path, reference: Option<&str>) -> Result<(ArchiveSource, Descriptor)> {
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
    let root = local::resolve_entry(&index, reference, &src.label())?;
    Ok((src, root))
}
