//! Writing one OCI archive (a tar of an OCI image layout, with
//! `bundle.json` and `update.json` beside `index.json`): deterministic
//! (entries sorted, every parent folder listed, owner 0:0, fixed modes,
//! every mtime the build epoch), so two builds of the same inputs are
//! byte-identical; atomic (temp file beside the output, fsync, rename).
//!
//! Blob files the bundler linked without reading are hashed as they are
//! copied into the archive and must match their digest, unless the
//! verification record vouches for the unchanged source file
//! ([`crate::verified`]); a mismatch fails the build and leaves nothing.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use airlift_oci::digest::Hasher;
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};

use crate::iso::{Checked, Checks};
use crate::verified::FileKey;

/// What one archive entry holds.
#[derive(Debug, Clone)]
pub enum Content {
    /// Small in-memory content.
    Bytes(Vec<u8>),
    /// A blob file, already verified (the bundler copied and hashed it).
    Verified(PathBuf),
    /// A blob file to check against `digest` as it is copied; `trusted`:
    /// the key the verification record vouches for.
    Check {
        file: PathBuf,
        digest: Digest,
        source: String,
        trusted: Option<FileKey>,
    },
}

/// Writes `entries` (path in the archive, content) as a tar at `out`.
pub fn write(entries: Vec<(String, Content)>, epoch: i64, out: &Path) -> Result<Checks> {
    let dir = crate::pipeline::parent_dir(out);
    let tmp = tempfile::Builder::new()
        .prefix(".airlift-archive-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let mut tar = tar::Builder::new(BufWriter::new(tmp.reopen()?));
    let mut checks = Checks::default();
    let mtime = u64::try_from(epoch).unwrap_or(0);
    for dir_path in parents(&entries) {
        let mut h = header(tar::EntryType::Directory, 0o755, 0, mtime);
        tar.append_data(&mut h, &dir_path, std::io::empty())
            .with_context(|| format!("writing {dir_path} into the archive"))?;
    }
    let mut entries = entries;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, content) in &entries {
        append(&mut tar, path, content, mtime, &mut checks)
            .with_context(|| format!("writing {path} into {}", out.display()))?;
    }
    let file = tar
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", out.display()))?;
    file.sync_all()
        .with_context(|| format!("syncing {}", out.display()))?;
    drop(file);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(out)
        .with_context(|| format!("renaming the archive to {}", out.display()))?;
    airlift_oci::atomic::sync_dir(dir)?;
    Ok(checks)
}

/// Every folder above an entry (`blobs/`, `blobs/sha256/`), sorted.
fn parents(entries: &[(String, Content)]) -> BTreeSet<String> {
    let mut dirs = BTreeSet::new();
    for (p, _) in entries {
        let mut at = 0;
        while let Some(i) = p[at..].find('/') {
            at += i + 1;
            dirs.insert(p[..at].to_string());
        }
    }
    dirs
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    content: &Content,
    mtime: u64,
    checks: &mut Checks,
) -> Result<()> {
    let (file, check) = match content {
        Content::Bytes(b) => {
            let mut h = header(tar::EntryType::Regular, 0o644, b.len() as u64, mtime);
            tar.append_data(&mut h, path, b.as_slice())?;
            return Ok(());
        }
        Content::Verified(file) => (file, None),
        Content::Check {
            file,
            digest,
            source,
            trusted,
        } => (file, Some((digest, source, *trusted))),
    };
    let f = File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let before = FileKey::of(&f.metadata()?);
    let trusted = check.is_some_and(|(_, _, t)| t == Some(before));
    let hasher = match check {
        Some((d, _, _)) if !trusted => Some(Hasher::new(d.algorithm())),
        _ => None,
    };
    let mut reader = HashRead { inner: f, hasher };
    let mut h = header(tar::EntryType::Regular, 0o644, before.size, mtime);
    tar.append_data(&mut h, path, (&mut reader).take(before.size))?;
    let Some((digest, source, _)) = check else {
        return Ok(());
    };
    let after = FileKey::at(file);
    if trusted {
        if after != Some(before) {
            bail!(
                "blob {digest} from {source}: {} changed while it was copied; build again",
                file.display()
            );
        }
        checks.trusted_files += 1;
        checks.trusted_bytes += before.size;
        return Ok(());
    }
    let got = reader.hasher.take().map(Hasher::finish);
    if got.as_ref() != Some(digest) {
        bail!(
            "blob {digest} from {source}: {} does not hash to its digest; the source is damaged \
             or changed while it was read (fix the source, then build again)",
            file.display()
        );
    }
    checks.hashed_files += 1;
    checks.hashed_bytes += before.size;
    if after == Some(before) {
        checks.checked.push(Checked {
            digest: digest.clone(),
            key: before,
            file: file.clone(),
        });
    }
    Ok(())
}

/// A reader that hashes what passes through it.
struct HashRead<R> {
    inner: R,
    hasher: Option<Hasher>,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path, blob: &[u8]) -> Vec<(String, Content)> {
        let file = dir.join("blob");
        std::fs::write(&file, blob).unwrap();
        vec![
            ("oci-layout".into(), Content::Bytes(b"{}".to_vec())),
            (
                Digest::sha256_of(b"blob").blob_path(),
                Content::Check {
                    file,
                    digest: Digest::sha256_of(b"blob"),
                    source: "oci-layout /src".into(),
                    trusted: None,
                },
            ),
            ("index.json".into(), Content::Bytes(b"{}".to_vec())),
        ]
    }

    #[test]
    fn archives_are_sorted_deterministic_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        let checks = write(entries(dir.path(), b"blob"), 1_700_000_000, &a).unwrap();
        assert_eq!((checks.hashed_files, checks.hashed_bytes), (1, 4));
        write(entries(dir.path(), b"blob"), 1_700_000_000, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let mut ar = tar::Archive::new(File::open(&a).unwrap());
        let names: Vec<(String, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().to_string();
                (name, e.header().mtime().unwrap())
            })
            .collect();
        let hex = Digest::sha256_of(b"blob").hex().to_string();
        let want = [
            "blobs/",
            "blobs/sha256/",
            &format!("blobs/sha256/{hex}"),
            "index.json",
            "oci-layout",
        ];
        assert_eq!(names.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(), want);
        assert!(names.iter().all(|n| n.1 == 1_700_000_000));
    }

    #[test]
    fn a_blob_that_does_not_match_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        let err = write(entries(dir.path(), b"bolb"), 0, &out).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("does not hash to its digest"), "{text}");
        assert!(text.contains("oci-layout /src"), "{text}");
        assert!(!out.exists());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "only the source blob remains");
    }
}
