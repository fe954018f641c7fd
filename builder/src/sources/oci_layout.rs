//! Source: an OCI image layout folder. The entry is picked from its
//! `index.json` (see [`resolve_entry`](super::local::resolve_entry)); the
//! reachable blobs are copied and each verified while it streams.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use airlift_oci::{Digest, Index, Layout};
use anyhow::Result;

use super::local::{self, BlobSource, LocalImage};

/// An OCI layout folder read as a blob source.
pub struct LayoutDir {
    root: PathBuf,
}

impl BlobSource for LayoutDir {
    fn label(&self) -> String {
        format!("oci-layout {}", self.root.display())
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(File::open(self.root.join(digest.blob_path()))?))
    }
}

/// Opens the layout at `path` and resolves `reference` in its index.json.
pub fn open(path: &Path, reference: Option<&str>) -> Result<LocalImage<LayoutDir>> {
    let (src, index) = open_index(path)?;
    let root = local::resolve_entry(&index, reference, &src.label())?;
    Ok(LocalImage { src, root })
}

/// Opens the layout at `path`: its blobs and its whole index.json (the
/// attachments are found there).
pub fn open_index(path: &Path) -> Result<(LayoutDir, Index)> {
    let layout = Layout::open(path)?;
    let index = layout.read_index()?;
    let src = LayoutDir {
        root: path.to_path_buf(),
    };
    Ok((src, index))
}
