//! What a collection removes, decided from facts alone (no I/O): the
//! blob files present, what each release held reaches, every other
//! root (pushed manifests and what they reach, blobs linked since the
//! registry started), the release folders present, a grace period and
//! the time now. A blob goes when no kept release and no root reaches
//! it and its file is older than the grace period; a release folder
//! goes when it is not a kept release's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use airlift_appliance::ReleaseId;
use airlift_oci::Digest;
use serde::{Deserialize, Serialize};

/// One file under the registry's `blobs/`.
#[derive(Debug, Clone)]
pub struct BlobFile {
    pub digest: Digest,
    pub size: u64,
    pub modified: SystemTime,
}

/// A release of `state.json` and the blobs its layout reaches.
#[derive(Debug, Clone)]
pub struct ReleaseReach {
    pub id: ReleaseId,
    pub kept: bool,
    pub blobs: BTreeSet<Digest>,
}

/// Everything the plan is decided from.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub files: Vec<BlobFile>,
    pub releases: Vec<ReleaseReach>,
    /// Blobs kept whatever the releases say (pushed content, links).
    pub roots: BTreeSet<Digest>,
    /// Folder names found under `DATA/releases/`.
    pub release_dirs: Vec<String>,
    pub grace: Duration,
    pub now: SystemTime,
}

/// A blob that goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doomed {
    pub digest: Digest,
    pub size: u64,
    /// The releases (`name version (short)`) that reached it; empty
    /// for a blob nothing references (a deleted push, a broken load).
    pub releases: Vec<String>,
}

/// What a collection does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Releases dropped from `state.json`, oldest first.
    pub dropped: Vec<ReleaseId>,
    /// Release folders to remove (dropped releases' and orphans').
    pub dirs: Vec<String>,
    /// Blobs to unlink, by digest.
    pub blobs: Vec<Doomed>,
    /// Their total size.
    pub bytes: u64,
}

/// A folder name that can be a release's (`<64 hex digits>`); anything
/// else under `DATA/releases/` is not ours to remove.
fn is_release_dir(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Decide what goes.
pub fn plan(inputs: &Inputs) -> Plan {
    let mut keep: BTreeSet<&Digest> = inputs.roots.iter().collect();
    let mut by_blob: BTreeMap<&Digest, Vec<String>> = BTreeMap::new();
    let mut kept_dirs = BTreeSet::new();
    let mut dropped = Vec::new();
    for r in &inputs.releases {
        if r.kept {
            keep.extend(r.blobs.iter());
            kept_dirs.insert(r.id.bundle.hex().to_string());
        } else {
            dropped.push(r.id.clone());
            for d in &r.blobs {
                by_blob.entry(d).or_default().push(r.id.to_string());
            }
        }
    }
    let young = |f: &BlobFile| match inputs.now.duration_since(f.modified) {
        Ok(age) => age < inputs.grace,
        // Modified "in the future": a clock step; keep it.
        Err(_) => true,
    };
    let mut blobs: Vec<Doomed> = inputs
        .files
        .iter()
        .filter(|f| !keep.contains(&f.digest) && !young(f))
        .map(|f| Doomed {
            digest: f.digest.clone(),
            size: f.size,
            releases: by_blob.get(&f.digest).cloned().unwrap_or_default(),
        })
        .collect();
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    blobs.dedup_by(|a, b| a.digest == b.digest);
    let mut dirs: Vec<String> = inputs
        .release_dirs
        .iter()
        .filter(|n| is_release_dir(n) && !kept_dirs.contains(n.as_str()))
        .cloned()
        .collect();
    dirs.sort();
    Plan {
        dropped,
        dirs,
        bytes: blobs.iter().map(|b| b.size).sum(),
        blobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::sha256_of(s.as_bytes())
    }

    fn release(v: &str, kept: bool, blobs: &[&str]) -> ReleaseReach {
        ReleaseReach {
            id: ReleaseId {
                name: "demo".into(),
                version: v.into(),
                bundle: d(&format!("bundle {v}")),
            },
            kept,
            blobs: blobs.iter().map(|b| d(b)).collect(),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn file(name: &str, size: u64, age: Duration, now: SystemTime) -> BlobFile {
        BlobFile {
            digest: d(name),
            size,
            modified: now - age,
        }
    }

    fn inputs(releases: Vec<ReleaseReach>, roots: &[&str], files: &[(&str, u64)]) -> Inputs {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        Inputs {
            files: files.iter().map(|(n, s)| file(n, *s, HOUR, now)).collect(),
            releases,
            roots: roots.iter().map(|r| d(r)).collect(),
            release_dirs: Vec::new(),
            grace: Duration::from_secs(600),
            now,
        }
    }

    fn gone(p: &Plan) -> Vec<Digest> {
        p.blobs.iter().map(|b| b.digest.clone()).collect()
    }

    #[test]
    fn dropped_release_unique_blobs_go_shared_and_pushed_stay() {
        let i = inputs(
            vec![
                release("1", false, &["old", "shared", "pushed-too"]),
                release("2", true, &["new", "shared"]),
            ],
            &["pushed", "pushed-too"],
            &[
                ("old", 10),
                ("shared", 20),
                ("new", 30),
                ("pushed", 40),
                ("pushed-too", 50),
                ("stray", 7),
            ],
        );
        let p = plan(&i);
        let mut want = vec![d("old"), d("stray")];
        want.sort();
        assert_eq!(gone(&p), want);
        assert_eq!(p.bytes, 17);
        assert_eq!(p.dropped, vec![i.releases[0].id.clone()]);
        let old = p.blobs.iter().find(|b| b.digest == d("old")).unwrap();
        assert_eq!(old.releases, vec![i.releases[0].id.to_string()]);
        let stray = p.blobs.iter().find(|b| b.digest == d("stray")).unwrap();
        assert!(stray.releases.is_empty());
    }

    #[test]
    fn all_kept_and_nothing_stray_removes_nothing() {
        let i = inputs(
            vec![release("1", true, &["a"]), release("2", true, &["b"])],
            &["c"],
            &[("a", 1), ("b", 2), ("c", 3)],
        );
        assert_eq!(plan(&i), Plan::default());
    }

    #[test]
    fn young_files_and_future_files_stay_within_grace() {
        let mut i = inputs(vec![release("1", false, &["a", "b", "c"])], &[], &[]);
        let now = i.now;
        i.files = vec![
            file("a", 1, Duration::from_secs(599), now),
            file("b", 2, Duration::from_secs(601), now),
            BlobFile {
                digest: d("c"),
                size: 3,
                modified: now + HOUR,
            },
        ];
        assert_eq!(gone(&plan(&i)), vec![d("b")]);
        i.grace = Duration::ZERO;
        let mut want = vec![d("a"), d("b")];
        want.sort();
        assert_eq!(gone(&plan(&i)), want);
    }

    #[test]
    fn dropped_and_orphan_dirs_go_kept_and_foreign_names_stay() {
        let mut i = inputs(
            vec![release("1", false, &[]), release("2", true, &[])],
            &[],
            &[],
        );
        let orphan = d("orphan").hex().to_string();
        let dropped = i.releases[0].id.bundle.hex().to_string();
        let kept = i.releases[1].id.bundle.hex().to_string();
        i.release_dirs = vec![
            kept,
            orphan.clone(),
            dropped.clone(),
            ".tmp-x".into(),
            "notes".into(),
            orphan.to_uppercase(),
        ];
        let mut want = vec![orphan, dropped];
        want.sort();
        assert_eq!(plan(&i).dirs, want);
    }

    #[test]
    fn a_blob_of_two_dropped_releases_names_both() {
        let i = inputs(
            vec![
                release("1", false, &["x"]),
                release("2", false, &["x"]),
                release("3", true, &[]),
            ],
            &[],
            &[("x", 5)],
        );
        let p = plan(&i);
        assert_eq!(p.blobs.len(), 1);
        assert_eq!(
            p.blobs[0].releases,
            vec![i.releases[0].id.to_string(), i.releases[1].id.to_string()]
        );
        assert_eq!(p.dropped.len(), 2);
    }
}
