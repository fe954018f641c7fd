//! Finding attachments in an OCI layout or oci-archive: `index.json`
//! entries whose manifest has a `subject`, and entries named with the
//! cosign tags.
//!
//! An entry is an attachment of a subject when its name's tag (the part
//! after the last `:` of `org.opencontainers.image.ref.name`, or the whole
//! name when it is a bare tag) is that subject's cosign tag
//! (`sha256-<hex>.sig`, `.att`, `.sbom`), or when its manifest's
//! `subject` is that subject. Each one kept is copied like an image, every
//! blob verified. An entry whose manifest cannot be read or fails its
//! digest is skipped with a warning unless its name marks it as an
//! attachment (then the bundle fails): it may be an unrelated image.

use std::collections::BTreeSet;

use airlift_oci::documents::{media, Descriptor, Document};
use airlift_oci::{Digest, Index};
use anyhow::{Context, Result};

use super::registry::subject_of;
use super::{artifact_type, carried, cosign_subject, Carried, Filter, Found};
use crate::sources::local::{copy_image, read_verified, BlobSource};
use crate::sources::{oci_archive, oci_layout, SourceSpec};
use crate::store::Store;

/// Copy into `store` every attachment `source` holds for `subjects` that
/// `filter` keeps, each verified; returns them in `index.json` order. A
/// registry source is handled by [`super::registry`]; a docker-archive
/// has none.
pub fn carry(
    source: &SourceSpec,
    subjects: &[Digest],
    filter: &Filter,
    store: &Store,
) -> Result<Vec<Carried>> {
    if !filter.carry {
        return Ok(Vec::new());
    }
    match source {
        SourceSpec::OciLayout { path, .. } => {
            let (src, index) = oci_layout::open_index(path)?;
            carry_from(&src, &index, subjects, filter, store)
        }
        SourceSpec::OciArchive { path, .. } => {
            let (src, index) = oci_archive::open_index(path)?;
            carry_from(&src, &index, subjects, filter, store)
        }
        SourceSpec::Registry { .. } | SourceSpec::DockerArchive { .. } => Ok(Vec::new()),
    }
}

/// [`carry`] from an opened source.
pub fn carry_from(
    src: &dyn BlobSource,
    index: &Index,
    subjects: &[Digest],
    filter: &Filter,
    store: &Store,
) -> Result<Vec<Carried>> {
    let label = src.label();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for entry in &index.manifests {
        if subjects.contains(&entry.digest)
            || !(media::is_manifest(&entry.media_type) || media::is_index(&entry.media_type))
        {
            continue;
        }
        let tag = entry.ref_name().map(tag_of);
        let cosign = tag.and_then(|t| cosign_subject(t, subjects));
        let bytes = match read_verified(src, entry, &label) {
            Ok(b) => b,
            Err(e) if cosign.is_some() => {
                return Err(e).with_context(|| {
                    format!("attachment {} ({})", entry.digest, tag.unwrap_or_default())
                })
            }
            Err(e) => {
                tracing::warn!(
                    "{label}: index.json entry {} cannot be read ({e:#}); not looked at for \
                     attachments",
                    entry.digest
                );
                continue;
            }
        };
        let doc = match Document::parse(&bytes, Some(&entry.media_type)) {
            Ok(d) => d,
            Err(e) if cosign.is_some() => {
                return Err(e).with_context(|| format!("attachment {} in {label}", entry.digest))
            }
            Err(_) => continue,
        };
        let subject = match cosign {
            Some(s) => s.clone(),
            None => match subject_of(&doc) {
                Some(s) if subjects.contains(&s) => s,
                _ => continue,
            },
        };
        if !filter.keeps(&artifact_type(&doc)) {
            continue;
        }
        if !seen.insert((subject.clone(), entry.digest.clone())) {
            continue;
        }
        let manifest = Descriptor::new(&entry.media_type, entry.digest.clone(), entry.size);
        copy_image(src, &manifest, &[], store)
            .with_context(|| format!("attachment {} of {subject} in {label}", entry.digest))?;
        let found = Found {
            subject,
            manifest,
            tag: cosign.map(|_| tag.unwrap_or_default().to_string()),
        };
        out.push(carried(store.layout(), &found, &doc)?);
    }
    Ok(out)
}

/// The tag of an `index.json` name: after the last `:` that follows the
/// last `/` (`quay.io/app:sha256-<hex>.sig`), or the whole name when it
/// has no `:` there (a bare tag, `sha256-<hex>.sig`, as skopeo and cosign
/// name layout entries).
pub fn tag_of(ref_name: &str) -> &str {
    let name = ref_name.split('@').next().unwrap_or(ref_name);
    let last = name.rfind('/').map_or(0, |i| i + 1);
    match name[last..].rfind(':') {
        Some(i) => &name[last + i + 1..],
        None => &name[last..],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_entry_names() {
        let hex = "a".repeat(64);
        let sig = format!("sha256-{hex}.sig");
        assert_eq!(tag_of(&format!("quay.io/org/app:{sig}")), sig);
        assert_eq!(tag_of(&sig), sig);
        assert_eq!(tag_of(&format!("localhost:5000/app:{sig}")), sig);
        assert_eq!(tag_of("localhost:5000/app"), "app");
        let subject: Digest = format!("sha256:{hex}").parse().unwrap();
        let other = Digest::sha256_of(b"x");
        let subjects = [other, subject.clone()];
        assert_eq!(cosign_subject(&sig, &subjects), Some(&subject));
        assert_eq!(
            cosign_subject(&format!("sha256-{hex}.att"), &subjects),
            Some(&subject)
        );
        assert_eq!(cosign_subject(&format!("sha256-{hex}"), &subjects), None);
        assert_eq!(cosign_subject("1.0", &subjects), None);
    }
}
