//! An OCI image layout on disk (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`): blobs are hashed while they are written and
//! renamed into place only when their digest matches.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::atomic;

/// Largest `index.json` read (one entry is a few hundred bytes).
pub const MAX_INDEX_JSON: u64 = 16 << 20;
use crate::digest::{Algorithm, Digest, Hasher};
use crate::documents::{Descriptor, Document, Index};

/// The `oci-layout` file's content.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// An OCI image layout folder.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Create (or reuse) a layout at `root`: the folder, `oci-layout`,
    /// `blobs/sha256`, and an empty `index.json` if there is none.
    pub fn create(root: &Path) -> Result<Layout> {
        atomic::create_dir_all(&root.join("blobs").join("sha256"))?;
        let layout = Layout {
            root: root.to_path_buf(),
        };
        if !root.join(OCI_LAYOUT_FILE).exists() {
            atomic::write(&root.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT.as_bytes())?;
        }
        if !root.join("index.json").exists() {
            layout.write_index(&Index::empty())?;
        }
        Ok(layout)
    }

    /// Open an existing layout, checking its `oci-layout` file.
    pub fn open(root: &Path) -> Result<Layout> {
        let marker = root.join(OCI_LAYOUT_FILE);
        let text = fs::read_to_string(&marker).with_context(|| {
            format!(
                "{} is not an OCI image layout: cannot read {}",
                root.display(),
                marker.display()
            )
        })?;
        let v: serde_json::Value =
            crate::quiet_json::parse(text.as_bytes(), &marker.display().to_string())?;
        match v.get("imageLayoutVersion").and_then(|v| v.as_str()) {
            Some(ver) if ver.starts_with("1.") => {}
            // The value is not echoed: errors never quote file content.
            _ => bail!(
                "{}: missing or unsupported imageLayoutVersion (expected 1.x)",
                marker.display()
            ),
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(digest.blob_path())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let p = self.blob_path(digest);
        File::open(&p).with_context(|| format!("blob {digest} is missing ({})", p.display()))
    }

    /// Read a whole (small) blob, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut data)
            .with_context(|| format!("reading blob {digest} in {}", self.root.display()))?;
        let mut h = Hasher::new(digest.algorithm());
        h.update(&data);
        let actual = h.finish();
        if &actual != digest {
            bail!(
                "blob {digest} in {} is corrupt: its content hashes to {actual}",
                self.root.display()
            );
        }
        Ok(data)
    }

    /// Start writing a blob; see [`BlobWriter`].
    pub fn blob_writer(&self, algorithm: Algorithm) -> Result<BlobWriter> {
        let dir = self.root.join("blobs").join(algorithm.as_str());
        atomic::create_dir_all(&dir)?;
        let tmp = tempfile::Builder::new()
            .prefix(atomic::PARTIAL_PREFIX)
            .tempfile_in(&dir)
            .with_context(|| format!("creating a temp blob in {}", dir.display()))?;
        Ok(BlobWriter {
            tmp,
            hasher: Hasher::new(algorithm),
            size: 0,
            dir,
        })
    }

    /// Store bytes as a blob, checking them against `expected` if given.
    pub fn put_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<(Digest, u64)> {
        let alg = expected.map_or(Algorithm::Sha256, Digest::algorithm);
        let mut w = self.blob_writer(alg)?;
        w.write_all(data).context("writing blob")?;
        w.commit(expected, None)
    }

    /// Read `index.json` (at most [`MAX_INDEX_JSON`] bytes).
    pub fn read_index(&self) -> Result<Index> {
        let p = self.root.join("index.json");
        let mut bytes = Vec::new();
        File::open(&p)
            .and_then(|f| f.take(MAX_INDEX_JSON + 1).read_to_end(&mut bytes))
            .with_context(|| format!("reading {}", p.display()))?;
        if bytes.len() as u64 > MAX_INDEX_JSON {
            bail!(
                "{} is larger than {MAX_INDEX_JSON} bytes; an image layout's index is far \
                 smaller (is this an OCI layout?)",
                p.display()
            );
        }
        crate::quiet_json::parse(&bytes, &format!("{} is malformed", p.display()))
    }

    /// Replace `index.json` atomically.
    pub fn write_index(&self, index: &Index) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(index).context("encoding index.json")?;
        bytes.push(b'\n');
        atomic::write(&self.root.join("index.json"), &bytes)
    }

    /// Every descriptor reachable from `root` (itself included), each
    /// once, in a stable order. Fails naming the first missing blob or
    /// undecodable manifest; blob content is not hashed here except for
    /// manifests and indexes, which are read whole and verified.
    pub fn reachable(&self, root: &Descriptor) -> Result<Vec<Descriptor>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(desc) = stack.pop() {
            if !seen.insert(desc.digest.clone()) {
                continue;
            }
            if !self.has_blob(&desc.digest) {
                bail!(
                    "blob {} ({}) is missing from {}",
                    desc.digest,
                    desc.media_type,
                    self.root.display()
                );
            }
            if crate::documents::media::is_index(&desc.media_type)
                || crate::documents::media::is_manifest(&desc.media_type)
            {
                let bytes = self.read_blob(&desc.digest)?;
                let doc = Document::parse(&bytes, Some(&desc.media_type))
                    .with_context(|| format!("manifest {}", desc.digest))?;
                for child in doc.children().into_iter().rev() {
                    stack.push(child.clone());
                }
            }
            out.push(desc);
        }
        Ok(out)
    }
}

/// A blob being written: bytes go to a temp file in the blob folder and
/// through a hasher; [`BlobWriter::commit`] checks the digest and size,
/// fsyncs and renames. Dropping it without commit removes the temp file.
pub struct BlobWriter {
    tmp: tempfile::NamedTempFile,
    hasher: Hasher,
    size: u64,
    dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finish: verify against `expected` digest and size (when given),
    /// then make the blob visible. Returns its digest and size.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<(Digest, u64)> {
        self.tmp.flush().context("flushing blob")?;
        let actual = self.hasher.finish();
        if let Some(want) = expected {
            if want != &actual {
                bail!(
                    "digest mismatch: expected {want}, got {actual} ({} bytes)",
                    self.size
                );
            }
        }
        if let Some(want) = size {
            if want != self.size {
                bail!(
                    "size mismatch for {actual}: expected {want} bytes, got {}",
                    self.size
                );
            }
        }
        let dest = self.dir.join(actual.hex());
        if dest.is_file() {
            return Ok((actual, self.size));
        }
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("syncing blob {actual}"))?;
        self.tmp
            .persist(&dest)
            .with_context(|| format!("renaming blob {actual} into {}", dest.display()))?;
        atomic::sync_dir(&self.dir)?;
        Ok((actual, self.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::media;

    /// An index.json that never ends (or is huge) is refused at the bound,
    /// naming the file, without reading it all.
    #[test]
    fn read_index_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let p = dir.path().join("index.json");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_INDEX_JSON + 10).unwrap(); // sparse
        let e = format!("{:#}", layout.read_index().unwrap_err());
        assert!(e.contains("index.json") && e.contains("larger than"), "{e}");
    }

    #[test]
    fn writes_verifies_and_walks() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let (layer, lsize) = layout.put_blob(b"layer", None).unwrap();
        let (config, csize) = layout.put_blob(b"{}", None).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{config}","size":{csize}}},"layers":[{{"mediaType":"{}","digest":"{layer}","size":{lsize}}}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            media::OCI_LAYER_TAR
        );
        let (md, msize) = layout.put_blob(manifest.as_bytes(), None).unwrap();
        let root = Descriptor::new(media::OCI_MANIFEST, md.clone(), msize);
        let all = layout.reachable(&root).unwrap();
        let digests: Vec<_> = all.iter().map(|d| d.digest.clone()).collect();
        assert_eq!(digests, vec![md, config, layer.clone()]);

        let reopened = Layout::open(dir.path()).unwrap();
        assert_eq!(reopened.read_index().unwrap(), Index::empty());

        fs::remove_file(layout.blob_path(&layer)).unwrap();
        let e = layout.reachable(&root).unwrap_err().to_string();
        assert!(e.contains(&layer.to_string()), "{e}");
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let wrong = Digest::sha256_of(b"something else");
        let e = layout
            .put_blob(b"data", Some(&wrong))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&wrong.to_string()), "{e}");
        let left: Vec<_> = fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }

    #[test]
    fn detects_corrupt_blob() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let (d, _) = layout.put_blob(b"hello", None).unwrap();
        fs::write(layout.blob_path(&d), b"hellp").unwrap();
        assert!(layout
            .read_blob(&d)
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
    }

    #[test]
    fn open_rejects_non_layout() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Layout::open(dir.path()).is_err());
    }
}
