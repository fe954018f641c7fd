//! Copying one image out of a local source (a layout folder, an
//! oci-archive) into the store: walk from the chosen manifest or index,
//! keep the requested platforms, and stream every blob through
//! verification. What the two OCI sources share: [`BlobSource`] and
//! [`LocalImage`].

use std::io::Read;

use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};

use super::platform::{self, PlatformFilter};
use super::Ingested;
use crate::store::Store;

/// Largest manifest, index or config read whole into memory.
pub const MAX_DOCUMENT: u64 = 16 << 20;

/// Somewhere blobs can be read from by digest.
pub trait BlobSource {
    /// Names the source in errors (`oci-layout /path`).
    fn label(&self) -> String;
    /// The blob stored under `digest`'s blob path, unverified.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;
    /// The blob's bytes, unverified (the store verifies them); a missing
    /// blob is named with its digest and the source.
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        self.open_blob(digest)
            .with_context(|| format!("blob {digest} is missing from {}", self.label()))
    }
}

/// A local image opened: where its blobs are and the manifest or index
/// the request's `ref` picked. The layout folder and the oci-archive
/// differ only in how they open; copying and checking are shared here.
pub struct LocalImage<S> {
    pub src: S,
    pub root: Descriptor,
}

impl<S: BlobSource> LocalImage<S> {
    /// Copy the image into `store` (see [`copy_image`]).
    pub fn ingest(&self, platforms: &[String], store: &Store) -> Result<Ingested> {
        copy_image(&self.src, &self.root, platforms, store)
    }

    /// What `airlift validate` checks without copying (see [`check_image`]).
    pub fn check(&self, platforms: &[String]) -> Result<()> {
        check_image(&self.src, &self.root, platforms)
    }
}

/// Read a small document (manifest, index, config), store it verified,
/// and return its bytes.
pub fn read_document(
    src: &dyn BlobSource,
    desc: &Descriptor,
    store: &Store,
    source: &str,
) -> Result<Vec<u8>> {
    // Verify before anything parses it; stored only if it matches.
    let bytes = read_verified(src, desc, source)?;
    store.put_bytes(desc, &bytes, source)?;
    Ok(bytes)
}

/// Most indexes nested in one image (the root counts as the first).
/// Real images nest one or two (an index of per-platform manifests,
/// sometimes inside one more); a chain deeper than this is hostile or
/// broken, and refusing it bounds the work one image can ask for.
pub const MAX_INDEX_DEPTH: usize = 8;

/// Copy the image rooted at `root` from `src` into `store`: walks the
/// documents iteratively (depth-first, in order), each once.
pub fn copy_image(
    src: &dyn BlobSource,
    root: &Descriptor,
    platforms: &[String],
    store: &Store,
) -> Result<Ingested> {
    let filters = platform::parse_filters(platforms)?;
    let source = src.label();
    let mut kept = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    // (descriptor, indexes above it, whether it is the root)
    let mut stack = vec![(root.clone(), 0usize, true)];
    while let Some((desc, above, top)) = stack.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let children = copy_node(src, &desc, &filters, store, &source, top, &mut kept)?;
        if children.is_empty() {
            continue;
        }
        let depth = above + 1;
        if depth > MAX_INDEX_DEPTH {
            bail!(
                "index {} from {source} is at depth {depth} of nested indexes below {} (more \
                 than {MAX_INDEX_DEPTH} are refused; real images nest one or two): the source is \
                 broken or hostile",
                desc.digest,
                root.digest
            );
        }
        for child in children.into_iter().rev() {
            stack.push((child, depth, false));
        }
    }
    Ok(Ingested {
        root: root.clone(),
        platforms: kept,
    })
}

/// What `airlift validate` checks of a local image without copying it:
/// every manifest and index reachable from `root` is read (bounded),
/// verified against its digest and parsed, nesting is bounded as in
/// [`copy_image`], and every other blob can be opened. Blob contents are
/// verified by `airlift bundle` as it copies them.
pub fn check_image(src: &dyn BlobSource, root: &Descriptor, platforms: &[String]) -> Result<()> {
    let filters = platform::parse_filters(platforms)?;
    let source = src.label();
    let mut seen = std::collections::BTreeSet::new();
    let mut stack = vec![(root.clone(), 0usize, true)];
    while let Some((desc, above, top)) = stack.pop() {
        if !seen.insert(desc.digest.clone()) {
            continue;
        }
        let is_doc = media::is_index(&desc.media_type) || media::is_manifest(&desc.media_type);
        if !is_doc {
            if top {
                bail!(
                    "{} in {source} has media type {:?}, not an image manifest or index",
                    desc.digest,
                    desc.media_type
                );
            }
            src.open(&desc.digest)?;
            continue;
        }
        let bytes = read_verified(src, &desc, &source)?;
        let doc = Document::parse(&bytes, Some(&desc.media_type))
            .with_context(|| format!("manifest {} from {source}", desc.digest))?;
        let children: Vec<Descriptor> = match &doc {
            Document::Index(index) => {
                let depth = above + 1;
                if depth > MAX_INDEX_DEPTH {
                    bail!(
                        "index {} from {source} is at depth {depth} of nested indexes below {} \
                         (more than {MAX_INDEX_DEPTH} are refused; real images nest one or two): \
                         the source is broken or hostile",
                        desc.digest,
                        root.digest
                    );
                }
                if top {
                    platform::select_children(index, &filters)
                        .with_context(|| format!("index {} from {source}", desc.digest))?
                } else {
                    index.manifests.clone()
                }
            }
            Document::Manifest(m) => {
                let config = read_verified(src, &m.config, &source)?;
                if top {
                    platform::check_single(platform::of_config(&config).as_ref(), &filters)
                        .with_context(|| format!("image from {source}"))?;
                }
                m.layers.clone()
            }
        };
        let depth = above + usize::from(matches!(doc, Document::Index(_)));
        for child in children.into_iter().rev() {
            stack.push((child, depth, false));
        }
    }
    Ok(())
}

/// A document's bytes, bounded and checked against its descriptor.
pub fn read_verified(src: &dyn BlobSource, desc: &Descriptor, source: &str) -> Result<Vec<u8>> {
    if desc.size > MAX_DOCUMENT {
        bail!(
            "{} {} from {source} claims {} bytes; documents over {MAX_DOCUMENT} bytes are refused",
            desc.media_type,
            desc.digest,
            desc.size
        );
    }
    let mut bytes = Vec::new();
    src.open(&desc.digest)?
        .take(desc.size + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {} from {source}", desc.digest))?;
    let actual = (desc.digest.algorithm() == airlift_oci::Algorithm::Sha256)
        .then(|| Digest::sha256_of(&bytes));
    if actual.as_ref().is_some_and(|a| *a != desc.digest) || bytes.len() as u64 != desc.size {
        let got = actual.map_or_else(String::new, |a| format!("{a} "));
        bail!(
            "blob {} from {source} failed verification: digest mismatch: expected {} ({} bytes), \
             got {got}({} bytes); the source is corrupt or was changed",
            desc.digest,
            desc.digest,
            desc.size,
            bytes.len()
        );
    }
    Ok(bytes)
}

/// Copy one node. Returns an index's children still to copy (none for a
/// manifest or blob); the root's platform specs go to `kept`.
fn copy_node(
    src: &dyn BlobSource,
    desc: &Descriptor,
    filters: &[PlatformFilter],
    store: &Store,
    source: &str,
    top: bool,
    kept: &mut Vec<String>,
) -> Result<Vec<Descriptor>> {
    if !media::is_index(&desc.media_type) && !media::is_manifest(&desc.media_type) {
        if top {
            bail!(
                "{} in {source} has media type {:?}, not an image manifest or index",
                desc.digest,
                desc.media_type
            );
        }
        let r = src.open(&desc.digest)?;
        store.copy_from(desc, r, source)?;
        return Ok(Vec::new());
    }
    let bytes = read_document(src, desc, store, source)?;
    let doc = Document::parse(&bytes, Some(&desc.media_type))
        .with_context(|| format!("manifest {} from {source}", desc.digest))?;
    match doc {
        Document::Index(index) => {
            let children = if top {
                platform::select_children(&index, filters)
                    .with_context(|| format!("index {} from {source}", desc.digest))?
            } else {
                index.manifests.clone()
            };
            if top {
                *kept = platform::specs(&children);
            }
            Ok(children)
        }
        Document::Manifest(m) => {
            let config = read_document(src, &m.config, store, source)?;
            let p = platform::of_config(&config);
            if top {
                platform::check_single(p.as_ref(), filters)
                    .with_context(|| format!("image from {source}"))?;
                *kept = p.map(|p| vec![p.spec()]).unwrap_or_default();
            }
            for layer in &m.layers {
                if store.try_existing(layer)? {
                    continue;
                }
                let r = src.open(&layer.digest)?;
                store.copy_from(layer, r, source)?;
            }
            Ok(Vec::new())
        }
    }
}

/// Pick the `index.json` entry `wanted` names: an
/// `org.opencontainers.image.ref.name` value (`1.0` or a full reference),
/// or a digest. Without `wanted`, the only entry. Errors list what exists.
pub fn resolve_entry(
    index: &airlift_oci::Index,
    wanted: Option<&str>,
    label: &str,
) -> Result<Descriptor> {
    let names = || {
        let v: Vec<String> = index
            .manifests
            .iter()
            .map(|d| match d.ref_name() {
                Some(n) => n.to_string(),
                None => d.digest.to_string(),
            })
            .collect();
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    let Some(wanted) = wanted else {
        return match index.manifests.as_slice() {
            [one] => Ok(one.clone()),
            _ => bail!(
                "{label} holds {} images; set `ref` to pick one (available: {})",
                index.manifests.len(),
                names()
            ),
        };
    };
    let normal = |s: &str| s.parse::<airlift_oci::Reference>().ok();
    let found = index.manifests.iter().find(|d| {
        d.digest.to_string() == wanted
            || d.ref_name() == Some(wanted)
            || (d.ref_name().and_then(normal).is_some()
                && d.ref_name().and_then(normal) == normal(wanted))
    });
    match found {
        Some(d) => Ok(d.clone()),
        None => bail!("{label} has no image {wanted:?} (available: {})", names()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::documents::REF_NAME;
    use airlift_oci::Index;

    fn entry(name: Option<&str>, seed: &[u8]) -> Descriptor {
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(seed), 1);
        if let Some(n) = name {
            d.annotations.insert(REF_NAME.into(), n.into());
        }
        d
    }

    #[test]
    fn resolves_entries_by_name_reference_or_digest() {
        let mut i = Index::empty();
        i.manifests = vec![
            entry(Some("1.0"), b"a"),
            entry(Some("quay.io/org/app:2.0"), b"b"),
            entry(None, b"c"),
        ];
        let pick = |w: Option<&str>| resolve_entry(&i, w, "oci-layout x");
        assert_eq!(pick(Some("1.0")).unwrap().digest, Digest::sha256_of(b"a"));
        assert_eq!(
            pick(Some("quay.io/org/app:2.0")).unwrap().digest,
            Digest::sha256_of(b"b")
        );
        let c = Digest::sha256_of(b"c");
        assert_eq!(pick(Some(&c.to_string())).unwrap().digest, c);
        let e = pick(None).unwrap_err().to_string();
        assert!(
            e.contains("holds 3 images") && e.contains("1.0, quay.io/org/app:2.0"),
            "{e}"
        );
        let e = pick(Some("3.0")).unwrap_err().to_string();
        assert!(e.contains("\"3.0\"") && e.contains("available"), "{e}");
        i.manifests.truncate(1);
        assert!(resolve_entry(&i, None, "x").is_ok());
    }
}
