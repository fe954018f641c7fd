//! The archive's entry list, from what [`super::collect`] read: pure, so
//! what goes in (and what is left out) is tested without a disk.

use std::collections::{BTreeMap, BTreeSet};

use airlift_appliance::ReleaseId;
use airlift_oci::documents::REF_NAME;
use airlift_oci::{Descriptor, Digest, Index};
use anyhow::{bail, Context, Result};

use super::entry::{self, Kind};
use super::{BackupInfo, BlobRef, SCHEMA};

/// The annotation naming an untagged pushed manifest's repository in the
/// archive's `index.json`.
pub const REPOSITORY: &str = "io.airlift.repository";

/// The archive's `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// What host0 holds, as read.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    pub appliance: String,
    pub created_at: String,
    /// Pushed tags: repository, tag, the manifest's descriptor.
    pub tags: Vec<(String, String, Descriptor)>,
    /// Pushed manifests no tag of their repository names (referrers,
    /// pushes by digest, an index's children).
    pub untagged: Vec<(String, Descriptor)>,
    /// Every blob the pushed manifests reach that is on disk, with size.
    pub reached: BTreeMap<Digest, u64>,
    /// Blobs the pushed manifests reach that are not on disk.
    pub missing: BTreeSet<Digest>,
    /// Every blob any release dir's index reaches.
    pub release_blobs: BTreeSet<Digest>,
    pub releases: Vec<ReleaseId>,
    /// Small files: archive path and content.
    pub files: Vec<(String, Vec<u8>)>,
}

/// An entry's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bytes(Vec<u8>),
    /// Streamed from the registry's blob folder.
    Blob(BlobRef),
}

/// One archive entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub body: Body,
}

/// The archive: its info (also its first entry) and every entry in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub info: BackupInfo,
    pub entries: Vec<Entry>,
}

/// Decide the entries: the info, the layout files, the small files by
/// name, then the pushed blobs no release carries, by digest.
pub fn plan(inputs: &Inputs, version: &str) -> Result<Plan> {
    if let Some(d) = inputs.missing.difference(&inputs.release_blobs).next() {
        bail!(
            "a pushed image reaches blob {d}, which is neither in the registry's blob folder \
             nor in a release; the registry is damaged (re-push that image, then back up)"
        );
    }
    let blobs: Vec<BlobRef> = inputs
        .reached
        .iter()
        .filter(|(d, _)| !inputs.release_blobs.contains(*d))
        .map(|(d, s)| BlobRef {
            digest: d.clone(),
            size: *s,
        })
        .collect();
    let left: Vec<u64> = inputs
        .reached
        .iter()
        .filter(|(d, _)| inputs.release_blobs.contains(*d))
        .map(|(_, s)| *s)
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("oci-layout".into(), OCI_LAYOUT.to_vec()),
        ("index.json".into(), index_json(inputs)?),
    ];
    let mut small = inputs.files.clone();
    small.sort_by(|a, b| a.0.cmp(&b.0));
    files.extend(small);
    let info = BackupInfo {
        schema: SCHEMA.into(),
        appliance: inputs.appliance.clone(),
        created_at: inputs.created_at.clone(),
        airlift_version: version.into(),
        images: inputs.tags.len() as u64,
        manifests: (inputs.tags.iter().map(|t| &t.2.digest))
            .chain(inputs.untagged.iter().map(|u| &u.1.digest))
            .collect::<BTreeSet<_>>()
            .len() as u64,
        blobs: blobs.clone(),
        left_out_blobs: left.len() as u64,
        left_out_bytes: left.iter().sum(),
        releases: inputs.releases.clone(),
        files: files.iter().map(|f| f.0.clone()).collect(),
    };
    let mut info_json = serde_json::to_vec_pretty(&info).context("encoding the backup info")?;
    info_json.push(b'\n');
    let mut entries = vec![small_entry(entry::INFO, info_json)?];
    for (path, bytes) in files {
        entries.push(small_entry(&path, bytes)?);
    }
    for b in blobs {
        entries.push(Entry {
            path: b.digest.blob_path(),
            mode: 0o644,
            body: Body::Blob(b),
        });
    }
    Ok(Plan { info, entries })
}

fn small_entry(path: &str, bytes: Vec<u8>) -> Result<Entry> {
    let kind: Kind = entry::classify(path).context("planning the backup")?;
    Ok(Entry {
        path: path.to_string(),
        mode: kind.mode(),
        body: Body::Bytes(bytes),
    })
}

/// The archive's `index.json`: one entry per pushed tag (`repo:tag`),
/// then each untagged pushed manifest with its repository.
fn index_json(inputs: &Inputs) -> Result<Vec<u8>> {
    let mut index = Index::empty();
    let mut tags = inputs.tags.clone();
    tags.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (repo, tag, desc) in tags {
        let mut d = desc.clone();
        d.annotations
            .insert(REF_NAME.into(), format!("{repo}:{tag}"));
        index.manifests.push(d);
    }
    let mut untagged = inputs.untagged.clone();
    untagged.sort_by(|a, b| (&a.0, &a.1.digest).cmp(&(&b.0, &b.1.digest)));
    for (repo, desc) in untagged {
        let mut d = desc.clone();
        d.annotations.insert(REPOSITORY.into(), repo);
        index.manifests.push(d);
    }
    let mut bytes = serde_json::to_vec_pretty(&index).context("encoding index.json")?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::documents::media;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn inputs() -> Inputs {
        let m = Descriptor::new(media::OCI_MANIFEST, d("m"), 10);
        let r = Descriptor::new(media::OCI_MANIFEST, d("referrer"), 11);
        Inputs {
            appliance: "demo".into(),
            created_at: "2026-12-07T00:00:00Z".into(),
            tags: vec![("team/app".into(), "1.0".into(), m)],
            untagged: vec![("team/app".into(), r)],
            reached: BTreeMap::from([
                (d("m"), 10),
                (d("referrer"), 11),
                (d("config"), 2),
                (d("own layer"), 1000),
                (d("base layer"), 5000),
            ]),
            missing: BTreeSet::new(),
            release_blobs: BTreeSet::from([d("base layer"), d("other release blob")]),
            releases: vec![],
            files: vec![
                ("airlift/private/tls/ca.key".into(), b"KEY".to_vec()),
                ("airlift/private/admin-token".into(), b"T".to_vec()),
                (
                    "airlift/registry/repositories/team/app/_tags/1.0".into(),
                    b"x".to_vec(),
                ),
            ],
        }
    }

    #[test]
    fn carries_pushed_blobs_and_leaves_release_blobs_out() {
        let p = plan(&inputs(), "9.9").unwrap();
        let names: Vec<&str> = p.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names[..3],
            ["airlift-backup.json", "oci-layout", "index.json"]
        );
        // Small files by name, then blobs by digest.
        assert_eq!(
            names[3..6],
            [
                "airlift/private/admin-token",
                "airlift/private/tls/ca.key",
                "airlift/registry/repositories/team/app/_tags/1.0"
            ]
        );
        let blobs: Vec<&Body> = p.entries[6..].iter().map(|e| &e.body).collect();
        assert_eq!(blobs.len(), 4, "the base layer is left out");
        assert!(!names.contains(&format!("blobs/sha256/{}", d("base layer").hex()).as_str()));
        assert_eq!(p.info.blob_bytes(), 10 + 11 + 2 + 1000);
        assert_eq!((p.info.left_out_blobs, p.info.left_out_bytes), (1, 5000));
        assert_eq!((p.info.images, p.info.manifests), (1, 2));
        assert_eq!(p.info.files.len(), 5);
        // Secrets 0600, the rest as host0 keeps them.
        assert_eq!(p.entries[3].mode, 0o600);
        assert_eq!(p.entries[4].mode, 0o600);
        // The same inputs make the same archive.
        assert_eq!(plan(&inputs(), "9.9").unwrap().entries, p.entries);
    }

    #[test]
    fn index_names_tags_and_untagged_manifests() {
        let p = plan(&inputs(), "9.9").unwrap();
        let Body::Bytes(b) = &p.entries[2].body else {
            panic!("index.json is bytes")
        };
        let index: Index = serde_json::from_slice(b).unwrap();
        assert_eq!(index.manifests.len(), 2);
        assert_eq!(index.manifests[0].ref_name(), Some("team/app:1.0"));
        assert_eq!(index.manifests[1].annotations[REPOSITORY], "team/app");
        let info: BackupInfo = match &p.entries[0].body {
            Body::Bytes(b) => serde_json::from_slice(b).unwrap(),
            Body::Blob(_) => panic!(),
        };
        assert_eq!(info, p.info);
    }

    #[test]
    fn a_missing_pushed_blob_is_an_error_unless_a_release_has_it() {
        let mut i = inputs();
        i.missing.insert(d("other release blob"));
        assert!(plan(&i, "1").is_ok());
        i.missing.insert(d("lost"));
        let e = plan(&i, "1").unwrap_err().to_string();
        assert!(e.contains(&d("lost").to_string()), "{e}");
    }
}
