//! The blob store of the bundle being built: a staging OCI layout that
//! every source writes blobs into, and the previous bundle (if any) whose blobs are reused by
//! hard link instead of being fetched again. Counts what was fetched,
//! reused and shared.
//!
//! For `airlift build` the store can also point at blobs of a local OCI
//! layout folder instead of copying them ([`Store::set_link_root`]): a
//! symlink to the source file stands in the staging layout, nothing is
//! read, and the blob is listed in [`Store::unverified`] with the file,
//! so the caller verifies it later (the ISO writer copies it from the
//! source and checks its digest). A symlink, not a hard link: linking
//! and unlinking would change the source file's ctime, which the
//! verification record ([`crate::verified`]) keys on.
//!
//! It sits below both the sources (which copy into it) and the bundler
//! (which drives the sources and finishes the layout), so the dependency
//! points one way: bundler -> sources -> store.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use airlift_oci::documents::Descriptor;
use airlift_oci::{BlobWriter, Digest, Layout};
use anyhow::{Context, Result};

use crate::progress::Progress;

/// How many blobs and bytes came from where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Blobs read from a source (registry, layout, archive) and verified.
    pub fetched_blobs: u64,
    pub fetched_bytes: u64,
    /// Blobs hard-linked from the previous bundle instead of fetched.
    pub reused_blobs: u64,
    pub reused_bytes: u64,
    /// Blob references satisfied by a blob another image already brought.
    pub shared_blobs: u64,
    /// Blobs symlinked from a local layout folder, not read (see
    /// [`Store::unverified`]).
    pub linked_blobs: u64,
    pub linked_bytes: u64,
}

/// The staging layout plus reuse and accounting.
pub struct Store {
    layout: Layout,
    previous: Option<Layout>,
    stats: Mutex<TransferStats>,
    progress: Progress,
    /// The local layout folder whose blobs may be symlinked (None: copy).
    link_root: Mutex<Option<PathBuf>>,
    /// Blobs linked without being read.
    unverified: Mutex<BTreeMap<Digest, Unverified>>,
}

/// A blob the store linked without reading it: the caller must check it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    /// Where it came from, for errors (such as `oci-layout /srv/images`).
    pub source: String,
    /// The source file (absolute), which the staging layout's symlink
    /// points at.
    pub file: PathBuf,
}

impl Store {
    /// Write into `layout`, reusing blobs of `previous` when present.
    pub fn new(layout: Layout, previous: Option<Layout>, progress: Progress) -> Self {
        Store {
            layout,
            previous,
            stats: Mutex::new(TransferStats::default()),
            progress,
            link_root: Mutex::new(None),
            unverified: Mutex::new(BTreeMap::new()),
        }
    }

    /// From now on, symlink blobs of the OCI layout folder `root` into
    /// the staging layout instead of copying them (`None`: copy again).
    /// Linked blobs are NOT verified here: they are listed by
    /// [`Store::unverified`] and the caller must verify them.
    pub fn set_link_root(&self, root: Option<&Path>) {
        *self.link_root.lock().expect("link root lock") = root.map(Path::to_path_buf);
    }

    /// Blobs linked without being read, with the source each came from.
    pub fn unverified(&self) -> BTreeMap<Digest, Unverified> {
        self.unverified.lock().expect("unverified lock").clone()
    }

    /// Symlink `desc`'s blob from the link root, if one is set and holds
    /// a regular file of the declared size. `Ok(false)`: copy it instead
    /// (a size mismatch is then reported by the copy).
    fn try_link(&self, desc: &Descriptor, source: &str) -> Result<bool> {
        let Some(root) = self.link_root.lock().expect("link root lock").clone() else {
            return Ok(false);
        };
        let old = root.join(desc.digest.blob_path());
        match fs::symlink_metadata(&old) {
            Ok(m) if m.is_file() && m.len() == desc.size => {}
            _ => return Ok(false),
        }
        let old =
            std::path::absolute(&old).with_context(|| format!("resolving {}", old.display()))?;
        let new = self.layout.blob_path(&desc.digest);
        if let Some(dir) = new.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        match std::os::unix::fs::symlink(&old, &new) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(true),
            Err(e) => {
                tracing::debug!("cannot symlink {}: {e}; copying it", old.display());
                return Ok(false);
            }
        }
        self.unverified.lock().expect("unverified lock").insert(
            desc.digest.clone(),
            Unverified {
                source: source.to_string(),
                file: old,
            },
        );
        let mut s = self.stats.lock().expect("stats lock");
        s.linked_blobs += 1;
        s.linked_bytes += desc.size;
        Ok(true)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Counters so far.
    pub fn stats(&self) -> TransferStats {
        self.stats.lock().expect("stats lock").clone()
    }

    /// Is the blob already here, or could it be hard-linked from the
    /// previous bundle? Then nothing needs fetching. A blob of the previous
    /// bundle is reused only if its size and digest match (it may have
    /// been damaged since it was written); otherwise it is fetched again.
    pub fn try_existing(&self, desc: &Descriptor) -> Result<bool> {
        if self.layout.has_blob(&desc.digest) {
            self.stats.lock().expect("stats lock").shared_blobs += 1;
            return Ok(true);
        }
        let Some(prev) = &self.previous else {
            return Ok(false);
        };
        let old = prev.blob_path(&desc.digest);
        match fs::metadata(&old) {
            Ok(m) if m.is_file() && m.len() == desc.size => {}
            _ => return Ok(false),
        }
        let new = self.layout.blob_path(&desc.digest);
        if let Some(dir) = new.parent() {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        match fs::hard_link(&old, &new) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // Another file system, or no hard links: fetch it instead.
            Err(e) => {
                tracing::debug!("cannot hard-link {}: {e}; fetching it", old.display());
                return Ok(false);
            }
        }
        // Hash the linked file (the same inode), so what the new bundle
        // holds is what was checked.
        if !self.holds_intact(desc)? {
            tracing::warn!(
                "blob {} in the previous bundle ({}) does not match its digest; fetching it again",
                desc.digest,
                old.display()
            );
            fs::remove_file(&new).with_context(|| format!("removing {}", new.display()))?;
            return Ok(false);
        }
        let mut s = self.stats.lock().expect("stats lock");
        s.reused_blobs += 1;
        s.reused_bytes += desc.size;
        Ok(true)
    }

    /// Whether the staged blob `desc` names hashes to its digest.
    fn holds_intact(&self, desc: &Descriptor) -> Result<bool> {
        let path = self.layout.blob_path(&desc.digest);
        let f = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let (actual, size) = airlift_oci::digest::hash_reader(desc.digest.algorithm(), f)
            .with_context(|| format!("reading {}", path.display()))?;
        Ok(actual == desc.digest && size == desc.size)
    }

    /// A small blob (a manifest) already here or in the previous bundle,
    /// read whole and verified; `None` if neither has it (or the previous
    /// bundle's copy is damaged: it is fetched again).
    pub fn lookup(&self, digest: &Digest) -> Result<Option<Vec<u8>>> {
        if self.layout.has_blob(digest) {
            return self.layout.read_blob(digest).map(Some);
        }
        match &self.previous {
            Some(prev) if prev.has_blob(digest) => match prev.read_blob(digest) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) => {
                    tracing::warn!("{e:#}; fetching it again");
                    Ok(None)
                }
            },
            _ => Ok(None),
        }
    }

    /// A writer for a new blob in the staging layout.
    pub fn writer(&self, desc: &Descriptor) -> Result<BlobWriter> {
        self.layout.blob_writer(desc.digest.algorithm())
    }

    /// Verify a written blob against `desc` (digest and size) and make it
    /// visible; a mismatch names the digest and `source`.
    pub fn commit(&self, w: BlobWriter, desc: &Descriptor, source: &str) -> Result<()> {
        let (_, size) = w
            .commit(Some(&desc.digest), Some(desc.size))
            .with_context(|| {
                format!(
                    "blob {} from {source} failed verification (the source is corrupt or was changed)",
                    desc.digest
                )
            })?;
        let mut s = self.stats.lock().expect("stats lock");
        s.fetched_blobs += 1;
        s.fetched_bytes += size;
        Ok(())
    }

    /// Store `desc`'s blob from `reader` unless it is already here,
    /// reusable or linked (see [`Store::set_link_root`]); hashed while
    /// copied and verified before it is renamed.
    pub fn copy_from(&self, desc: &Descriptor, reader: impl Read, source: &str) -> Result<()> {
        if self.try_existing(desc)? || self.try_link(desc, source)? {
            return Ok(());
        }
        self.write_verified(desc, reader, source)
    }

    /// Copy `reader` into a new blob, hashed while written, verified
    /// against `desc` before it is renamed.
    fn write_verified(&self, desc: &Descriptor, reader: impl Read, source: &str) -> Result<()> {
        let mut w = self.writer(desc)?;
        // Read at most one byte more than declared: enough to detect an
        // oversized blob without reading an endless stream.
        let mut limited = reader.take(desc.size.saturating_add(1));
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = limited
                .read(&mut buf)
                .with_context(|| format!("reading blob {} from {source}", desc.digest))?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n])
                .with_context(|| format!("writing blob {}", desc.digest))?;
            self.progress.bytes(n as u64);
        }
        self.commit(w, desc, source)
    }

    /// Store in-memory bytes (a manifest) as `desc`'s blob, verified.
    /// The bytes are already in hand (and checked by the caller), so they
    /// are written, never linked.
    pub fn put_bytes(&self, desc: &Descriptor, bytes: &[u8], source: &str) -> Result<()> {
        if self.try_existing(desc)? {
            return Ok(());
        }
        self.write_verified(desc, bytes, source)
    }

    /// Store a blob whose digest is not known beforehand (a layer of a
    /// legacy docker archive): hashed while written. Returns digest and size.
    pub fn put_unknown(&self, reader: impl Read, source: &str) -> Result<(Digest, u64)> {
        let mut w = self.layout.blob_writer(airlift_oci::Algorithm::Sha256)?;
        let mut reader = reader;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .with_context(|| format!("reading {source}"))?;
            if n == 0 {
                break;
            }
            w.write_all(&buf[..n])
                .with_context(|| format!("writing a blob from {source}"))?;
            self.progress.bytes(n as u64);
        }
        let (d, size) = w.commit(None, None)?;
        let mut s = self.stats.lock().expect("stats lock");
        s.fetched_blobs += 1;
        s.fetched_bytes += size;
        Ok((d, size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::documents::media;

    #[test]
    fn reuses_previous_blobs_by_hard_link_and_verifies_new_ones() {
        let old = tempfile::tempdir().unwrap();
        let new = tempfile::tempdir().unwrap();
        let prev = Layout::create(old.path()).unwrap();
        let (d, n) = prev.put_blob(b"layer bytes", None).unwrap();
        let store = Store::new(
            Layout::create(new.path()).unwrap(),
            Some(prev),
            Progress::hidden(),
        );
        let desc = Descriptor::new(media::OCI_LAYER_TAR, d.clone(), n);
        store.copy_from(&desc, &b"never read"[..], "test").unwrap();
        assert_eq!(store.layout().read_blob(&d).unwrap(), b"layer bytes");
        // Already present now: counted as shared.
        store.copy_from(&desc, &b"never read"[..], "test").unwrap();

        let other = Descriptor::new(media::OCI_LAYER_TAR, Digest::sha256_of(b"abc"), 3);
        let e = store.copy_from(&other, &b"abd"[..], "src.tar").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains(&other.digest.to_string()) && msg.contains("src.tar"),
            "{msg}"
        );
        store.copy_from(&other, &b"abc"[..], "src.tar").unwrap();

        let s = store.stats();
        assert_eq!((s.reused_blobs, s.reused_bytes), (1, n));
        assert_eq!(
            (s.fetched_blobs, s.fetched_bytes, s.shared_blobs),
            (1, 3, 1)
        );
    }

    #[test]
    fn links_local_blobs_unread_and_lists_them_for_later_verification() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let source = Layout::create(src.path()).unwrap();
        let (good, n) = source.put_blob(b"layer bytes", None).unwrap();
        // A blob whose bytes do not match its name: linked all the same,
        // since nothing is read; the caller's check must catch it.
        let bad = Digest::sha256_of(b"what it should hold");
        fs::write(src.path().join(bad.blob_path()), b"something else!!!!!").unwrap();
        let store = Store::new(
            Layout::create(out.path()).unwrap(),
            None,
            Progress::hidden(),
        );
        store.set_link_root(Some(src.path()));
        let label = format!("oci-layout {}", src.path().display());
        let good_file = src.path().join(good.blob_path());
        let before = crate::verified::FileKey::at(&good_file).unwrap();
        for (d, size) in [(&good, n), (&bad, 19)] {
            let desc = Descriptor::new(media::OCI_LAYER_TAR, d.clone(), size);
            store.copy_from(&desc, &b"never read"[..], &label).unwrap();
        }
        // In-memory documents are written and verified, never linked.
        let doc = Descriptor::new(media::OCI_CONFIG, Digest::sha256_of(b"{}"), 2);
        fs::write(src.path().join(doc.digest.blob_path()), b"{}").unwrap();
        store.put_bytes(&doc, b"{}", &label).unwrap();
        // A file of the wrong size is not linked: the copy reports it.
        store.set_link_root(None);
        let unlinked = Descriptor::new(media::OCI_LAYER_TAR, Digest::sha256_of(b"xyz"), 3);
        store.copy_from(&unlinked, &b"xyz"[..], &label).unwrap();

        let unverified = store.unverified();
        assert_eq!(unverified.keys().collect::<Vec<_>>(), {
            let mut v = vec![&good, &bad];
            v.sort();
            v
        });
        assert!(unverified.values().all(|u| u.source == label));
        assert!(unverified
            .iter()
            .all(|(d, u)| u.file == src.path().join(d.blob_path())));
        let same_inode = |d: &Digest| {
            use std::os::unix::fs::MetadataExt;
            let a = fs::metadata(src.path().join(d.blob_path())).unwrap();
            let b = fs::metadata(store.layout().blob_path(d)).unwrap();
            (a.dev(), a.ino()) == (b.dev(), b.ino())
        };
        assert!(same_inode(&good) && same_inode(&bad));
        // The source file is untouched: no new link, so the same ctime
        // (the verification record's key).
        assert_eq!(crate::verified::FileKey::at(&good_file), Some(before));
        let links = std::os::unix::fs::MetadataExt::nlink(&fs::metadata(&good_file).unwrap());
        assert_eq!(links, 1, "the source blob got no hard link");
        assert!(
            !same_inode(&doc.digest),
            "documents are written, not linked"
        );
        let s = store.stats();
        assert_eq!((s.linked_blobs, s.linked_bytes), (2, n + 19));
        assert_eq!((s.fetched_blobs, s.fetched_bytes), (2, 5));
    }

    #[test]
    fn a_linked_blob_of_the_wrong_size_is_copied_and_fails() {
        let src = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let source = Layout::create(src.path()).unwrap();
        let (d, _) = source.put_blob(b"abc", None).unwrap();
        let store = Store::new(
            Layout::create(out.path()).unwrap(),
            None,
            Progress::hidden(),
        );
        store.set_link_root(Some(src.path()));
        let desc = Descriptor::new(media::OCI_LAYER_TAR, d, 4);
        let e = store.copy_from(&desc, &b"abc"[..], "src").unwrap_err();
        assert!(format!("{e:#}").contains("failed verification"), "{e:#}");
        assert!(store.unverified().is_empty());
    }

    #[test]
    fn oversized_and_short_blobs_fail() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(
            Layout::create(dir.path()).unwrap(),
            None,
            Progress::hidden(),
        );
        let d = Digest::sha256_of(b"abc");
        let short = Descriptor::new(media::OCI_LAYER_TAR, d.clone(), 3);
        assert!(store.copy_from(&short, &b"ab"[..], "x").is_err());
        assert!(store.copy_from(&short, &b"abcd"[..], "x").is_err());
        let wrong_size = Descriptor::new(media::OCI_LAYER_TAR, d, 4);
        assert!(store.copy_from(&wrong_size, &b"abc"[..], "x").is_err());
    }
}
