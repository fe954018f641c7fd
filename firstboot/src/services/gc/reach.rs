//! What a set of manifests reaches: the manifests themselves, an
//! index's children, a manifest's config and layers, transitively.
//! A walk that is fed manifest bytes by its caller, so the same logic
//! serves the files on disk and the running store. A manifest that is
//! not stored reaches nothing (there is nothing of it to keep); one
//! that cannot be parsed stops the collection, since what it
//! references is unknown.

use std::collections::BTreeSet;

use airlift_oci::documents::{media, Document};
use airlift_oci::Digest;
use anyhow::{Context, Result};

/// A walk in progress.
#[derive(Debug, Default)]
pub struct Reach {
    /// Every digest reached so far.
    pub seen: BTreeSet<Digest>,
    todo: Vec<(Digest, String)>,
}

impl Reach {
    /// Reach `d`, of type `media_type`; a manifest or index is read next.
    pub fn add(&mut self, d: &Digest, media_type: &str) {
        if self.seen.insert(d.clone())
            && (media::is_index(media_type) || media::is_manifest(media_type))
        {
            self.todo.push((d.clone(), media_type.to_string()));
        }
    }

    /// The next manifest to read (its digest and media type).
    pub fn next_manifest(&mut self) -> Option<(Digest, String)> {
        self.todo.pop()
    }

    /// The bytes of manifest `d` (from [`Reach::next_manifest`]): reach its children.
    pub fn found(&mut self, d: &Digest, media_type: &str, bytes: &[u8]) -> Result<()> {
        let doc = Document::parse(bytes, Some(media_type)).with_context(|| {
            format!("manifest {d} cannot be read, so what it references is unknown; nothing was collected")
        })?;
        for child in doc.children() {
            self.add(&child.digest, &child.media_type);
        }
        Ok(())
    }

    /// Walk to the end, reading each manifest with `read` (None: not stored).
    pub fn run(&mut self, read: impl Fn(&Digest) -> Result<Option<Vec<u8>>>) -> Result<()> {
        while let Some((d, mt)) = self.next_manifest() {
            if let Some(bytes) = read(&d)? {
                self.found(&d, &mt, &bytes)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn walks_index_manifest_config_layers_and_skips_missing() {
        let layer = Digest::sha256_of(b"layer");
        let config = Digest::sha256_of(b"config");
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":6}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":5}}]}}"#,
            media::OCI_MANIFEST
        );
        let m = Digest::sha256_of(manifest.as_bytes());
        let gone = Digest::sha256_of(b"gone");
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","digest":"{m}","size":1}},{{"mediaType":"{}","digest":"{gone}","size":1}}]}}"#,
            media::OCI_INDEX,
            media::OCI_MANIFEST,
            media::OCI_MANIFEST
        );
        let i = Digest::sha256_of(index.as_bytes());
        let files: HashMap<Digest, Vec<u8>> = [
            (m.clone(), manifest.into_bytes()),
            (i.clone(), index.into_bytes()),
        ]
        .into();
        let mut r = Reach::default();
        r.add(&i, media::OCI_INDEX);
        r.run(|d| Ok(files.get(d).cloned())).unwrap();
        let want: BTreeSet<Digest> = [i, m, gone, config, layer].into();
        assert_eq!(r.seen, want);
    }

    #[test]
    fn an_unreadable_manifest_stops_the_walk_naming_it() {
        let bad = Digest::sha256_of(b"bad");
        let mut r = Reach::default();
        r.add(&bad, media::OCI_MANIFEST);
        let e = r.run(|_| Ok(Some(b"not json".to_vec()))).unwrap_err();
        assert!(format!("{e:#}").contains(&bad.to_string()), "{e:#}");
    }
}
