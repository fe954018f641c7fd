//! Source: an OCI image layout folder. The entry is picked from its
//! `index.json` (see [`resolve_entry`](super::local::resolve_entry)); the
//! reachable blobs are copied and each verified while it streams.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use airlift_oci::{Descriptor, Digest, Layout};
use anyhow::{Context, Result};

use super::local::{self, BlobSource};
use super::Ingested;
use crate::bundler::store::Store;

/// An OCI layout folder read as a blob source.
pub struct LayoutDir {
    root: PathBuf,
}

impl BlobSource for LayoutDir {
    fn label(&self) -> String {
        format!("oci-layout {}", self.root.display())
    }

    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        let p = self.root.join(digest.blob_path());
        let f = File::open(&p)
            .with_context(|| format!("blob {digest} is missing from {}", self.label()))?;
        Ok(Box::new(f))
    }
}

/// Copy the image `reference` picks out of the layout at `path`.
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

/// Opens the layout and resolves `reference` in its index.json.
fn open(path: &Path, reference: Option<&str>) -> Result<(LayoutDir, Descriptor)> {
    let layout = Layout::open(path)?;
    let index = layout.read_index()?;
    let src = LayoutDir {
        root: path.to_path_buf(),
    };
    let root = local::resolve_entry(&index, reference, &src.label())?;
    Ok((src, root))
}
