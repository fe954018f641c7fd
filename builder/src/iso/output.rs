//! The output file: a temp file in the destination's directory, written at
//! explicit offsets (holes stay holes), fsynced and renamed into place.
//! Payload copies use `copy_file_range` over the source's data extents
//! (SEEK_DATA/SEEK_HOLE), so sparse inputs stay sparse and bytes move once.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::tree::FileSource;
use crate::verified::FileKey;

/// An output image being written.
pub struct Output {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl Output {
    /// Creates the temp file next to `dest` with the final size (all holes).
    pub fn create(dest: &Path, size: u64) -> Result<Output> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".airlift-iso-")
            .tempfile_in(&dir)
            .with_context(|| format!("creating a temp file in {}", dir.display()))?;
        tmp.as_file()
            .set_len(size)
            .with_context(|| format!("sizing {}", tmp.path().display()))?;
        Ok(Output {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Writes `bytes` at `offset`.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file()
            .write_all_at(bytes, offset)
            .with_context(|| format!("writing {} at offset {offset}", self.tmp.path().display()))
    }

    /// Copies `src` (expected to be `len` bytes) to `offset`. For a file,
    /// returns its key (from the open file) before and after the copy.
    pub fn copy_in(
        &self,
        src: &FileSource,
        offset: u64,
        len: u64,
    ) -> Result<Option<(FileKey, FileKey)>> {
        match src {
            FileSource::Bytes(b) => {
                if b.len() as u64 != len {
                    bail!("in-memory file changed size");
                }
                self.write_at(offset, b)?;
                Ok(None)
            }
            FileSource::Path(p) => {
                let f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
                let key = || -> Result<FileKey> {
                    let md = f
                        .metadata()
                        .with_context(|| format!("reading {}", p.display()))?;
                    Ok(FileKey::of(&md))
                };
                let before = key()?;
                if before.size != len {
                    bail!(
                        "{} changed size while building the ISO ({len} -> {} bytes); rebuild",
                        p.display(),
                        before.size
                    );
                }
                copy_sparse(&f, self.file(), offset, len)
                    .with_context(|| format!("copying {} into the ISO", p.display()))?;
                Ok(Some((before, key()?)))
            }
        }
    }

    /// Hashes the `len` bytes written at `offset` and checks them against
    /// `digest`; the error gives the digest they have.
    pub fn check_digest(&self, offset: u64, len: u64, digest: &airlift_oci::Digest) -> Result<()> {
        let mut h = airlift_oci::digest::Hasher::new(digest.algorithm());
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let n = ((len - done) as usize).min(buf.len());
            self.file()
                .read_exact_at(&mut buf[..n], offset + done)
                .with_context(|| format!("reading back {}", self.tmp.path().display()))?;
            h.update(&buf[..n]);
            done += n as u64;
        }
        let actual = h.finish();
        if &actual != digest {
            bail!("digest mismatch: expected {digest}, got {actual} ({len} bytes)");
        }
        Ok(())
    }

    /// Fsyncs the image (still under its temp name).
    pub fn sync(&self) -> Result<()> {
        self.file()
            .sync_all()
            .with_context(|| format!("syncing {}", self.tmp.path().display()))
    }

    /// Writes back the data written so far (fdatasync), without waiting
    /// for the rest of the image.
    pub fn sync_data(&self) -> Result<()> {
        self.file()
            .sync_data()
            .with_context(|| format!("syncing {}", self.tmp.path().display()))
    }

    /// Renames the (fsynced) image into place and syncs the folder.
    pub fn persist(self) -> Result<()> {
        let dest = self.dest.clone();
        self.tmp
            .persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the ISO into place at {}", dest.display()))?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Data extents of `f` (start, end) up to `len`, via SEEK_DATA/SEEK_HOLE;
/// the whole file if the filesystem does not support them.
fn data_extents(f: &File, len: u64) -> Vec<(u64, u64)> {
    use rustix::fs::{seek, SeekFrom as RSeek};
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let start = match seek(f, RSeek::Data(pos)) {
            Ok(s) => s,
            Err(rustix::io::Errno::NXIO) => break,
            Err(_) => return vec![(0, len)],
        };
        if start >= len {
            break;
        }
        let end = match seek(f, RSeek::Hole(start)) {
            Ok(e) => e.min(len),
            Err(_) => len,
        };
        out.push((start, end));
        pos = end;
    }
    out
}

fn copy_sparse(src: &File, dst: &File, offset: u64, len: u64) -> Result<()> {
    for (start, end) in data_extents(src, len) {
        let mut off_in = start;
        let mut off_out = offset + start;
        while off_in < end {
            let want = ((end - off_in).min(1 << 30)) as usize;
            match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want)
            {
                Ok(0) => bail!("source ended early at byte {off_in} (expected {len})"),
                Ok(_) => {}
                Err(_) => {
                    // Fall back to a bounded read/write loop.
                    let mut s = src.try_clone()?;
                    s.seek(SeekFrom::Start(off_in))?;
                    let mut buf = vec![0u8; 1 << 20];
                    while off_in < end {
                        let n = ((end - off_in) as usize).min(buf.len());
                        s.read_exact(&mut buf[..n])?;
                        dst.write_all_at(&buf[..n], off_out)?;
                        off_in += n as u64;
                        off_out += n as u64;
                    }
                }
            }
        }
    }
    Ok(())
}
