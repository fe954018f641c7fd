//! Writing the archive: a tar in the plan's order, to a temp file beside
//! the output (mode 0600 from its creation), fsynced and renamed, so the
//! output is either the old file or the whole new archive. Blobs are
//! streamed from the registry's blob folder and hashed on the way: a
//! damaged blob on disk fails the backup naming it.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use airlift_oci::digest::Hasher;
use airlift_oci::{atomic, Digest};
use anyhow::{Context, Result};

use super::plan::{Body, Entry, Plan};
use super::reach::blob_path;
use super::BlobRef;

/// Write `plan` to `out`, blobs read from `registry` (a folder holding
/// `blobs/`). Returns the archive's size in bytes.
pub fn write(out: &Path, registry: &Path, plan: &Plan) -> Result<u64> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(atomic::TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));
    tar.mode(tar::HeaderMode::Deterministic);
    for e in &plan.entries {
        append(&mut tar, registry, e).with_context(|| format!("writing entry {}", e.path))?;
    }
    let tmp = tar
        .into_inner()
        .context("finishing the archive")?
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the archive")?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.path().display()))?;
    let size = tmp.as_file().metadata()?.len();
    tmp.persist(out)
        .with_context(|| format!("renaming the archive into {}", out.display()))?;
    atomic::sync_dir(dir)?;
    Ok(size)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, registry: &Path, e: &Entry) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(e.mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    match &e.body {
        Body::Bytes(b) => {
            header.set_size(b.len() as u64);
            tar.append_data(&mut header, &e.path, b.as_slice())?;
        }
        Body::Blob(b) => {
            let path = blob_path(registry, &b.digest);
            let file =
                File::open(&path).with_context(|| format!("opening blob {}", path.display()))?;
            header.set_size(b.size);
            let reader = Verified::new(file, b);
            tar.append_data(&mut header, &e.path, reader)?;
        }
    }
    Ok(())
}

/// A blob file read through a hasher: at its end (at the planned size)
/// the digest must match, else the read fails naming the blob.
struct Verified {
    inner: io::Take<File>,
    hasher: Option<Hasher>,
    want: Digest,
}

impl Verified {
    fn new(file: File, b: &BlobRef) -> Verified {
        Verified {
            inner: file.take(b.size),
            hasher: Some(Hasher::new(b.digest.algorithm())),
            want: b.digest.clone(),
        }
    }
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(h) = &mut self.hasher {
                h.update(&buf[..n]);
            }
        } else if let Some(h) = self.hasher.take() {
            let got = h.finish();
            if got != self.want {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} in the registry is damaged: it hashes to {got}",
                        self.want
                    ),
                ));
            }
        }
        Ok(n)
    }
}
