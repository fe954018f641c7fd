//! What a set of manifests reaches in a blob folder (`blobs/<alg>/<hex>`):
//! the manifests themselves, their children, configs and layers, each
//! once with its size, and the digests that are not there.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use airlift_oci::documents::media;
use airlift_oci::{Descriptor, Digest, Document};
use anyhow::{bail, Context, Result};

/// Largest manifest read while walking (a manifest is a few kB).
const MAX_MANIFEST: u64 = 4 << 20;

/// The blobs reached and the ones missing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reached {
    /// Present blobs and their sizes on disk.
    pub present: BTreeMap<Digest, u64>,
    pub missing: BTreeSet<Digest>,
}

/// `blobs/<alg>/<hex>` under `root`.
pub fn blob_path(root: &Path, d: &Digest) -> PathBuf {
    root.join(d.blob_path())
}

/// Walk from `roots` in the blob folder of `root` (a folder holding
/// `blobs/`). A missing blob is recorded, not an error; a manifest that
/// does not hash to its digest or does not parse is an error naming it.
pub fn reach(root: &Path, roots: &[Descriptor]) -> Result<Reached> {
    let mut out = Reached::default();
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Descriptor> = roots.to_vec();
    while let Some(desc) = stack.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let path = blob_path(root, &desc.digest);
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => {
                out.missing.insert(desc.digest);
                continue;
            }
        };
        if media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type) {
            let bytes = read_manifest(&path, &desc.digest)?;
            let doc = Document::parse(&bytes, Some(&desc.media_type))
                .with_context(|| format!("manifest {} in {}", desc.digest, root.display()))?;
            stack.extend(doc.children().into_iter().cloned());
        }
        out.present.insert(desc.digest, size);
    }
    Ok(out)
}

fn read_manifest(path: &Path, d: &Digest) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_MANIFEST + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading manifest {d} ({})", path.display()))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        bail!(
            "manifest {d} ({}) is larger than {MAX_MANIFEST} bytes",
            path.display()
        );
    }
    let actual = Digest::sha256_of(&bytes);
    if d.algorithm() == actual.algorithm() && &actual != d {
        bail!(
            "manifest {d} ({}) is damaged: its content hashes to {actual}",
            path.display()
        );
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::Layout;

    #[test]
    fn walks_an_index_to_its_layers_and_records_missing_blobs() {
        let t = tempfile::tempdir().unwrap();
        let l = Layout::create(t.path()).unwrap();
        let (layer, _) = l.put_blob(b"layer", None).unwrap();
        let (config, _) = l.put_blob(b"{}", None).unwrap();
        let gone = Digest::sha256_of(b"gone");
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config, "size": 2},
            "layers": [{"mediaType": media::OCI_LAYER_TAR, "digest": layer, "size": 5},
                       {"mediaType": media::OCI_LAYER_TAR, "digest": gone, "size": 4}],
        });
        let mbytes = serde_json::to_vec(&manifest).unwrap();
        let (m, msize) = l.put_blob(&mbytes, None).unwrap();
        let index = serde_json::json!({
            "schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "manifests": [{"mediaType": media::OCI_MANIFEST, "digest": m, "size": msize}],
        });
        let (i, isize) = l
            .put_blob(&serde_json::to_vec(&index).unwrap(), None)
            .unwrap();
        let r = reach(
            t.path(),
            &[Descriptor::new(media::OCI_INDEX, i.clone(), isize)],
        )
        .unwrap();
        let got: BTreeSet<_> = r.present.keys().cloned().collect();
        assert_eq!(got, BTreeSet::from([i, m.clone(), config, layer.clone()]));
        assert_eq!(r.present[&layer], 5);
        assert_eq!(r.missing, BTreeSet::from([gone]));
        // A damaged manifest is an error naming it.
        std::fs::write(blob_path(t.path(), &m), b"{\"schemaVersion\": 2}").unwrap();
        let e = reach(
            t.path(),
            &[Descriptor::new(media::OCI_MANIFEST, m.clone(), 1)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains(&m.to_string()) && e.contains("damaged"), "{e}");
    }
}
