//! The verification record of `airlift build`: which source blob files
//! were hashed and matched their digest, each keyed by what changes when
//! the file's bytes do (device, inode, size, mtime and ctime, as git's
//! index and ccache do), so a rebuild copies them without hashing again.
//!
//! Why the key is sound: every write to a file (and every truncate,
//! chmod or link) sets its ctime to the current time, and unlike mtime no
//! user call can set ctime back. A file is recorded only when its ctime
//! is at least [`RACY_MARGIN`] older than the moment its check started,
//! so a change made after the check gets a later ctime even on a file
//! system with coarse timestamps (git's "racily clean" entries). What
//! the key cannot see is a change that bypasses the file system (writes
//! to the raw block device) or a clock set back past the record.
//!
//! The record is a cache: a missing, unreadable or damaged record only
//! means hashing again. It is written atomically (temp file, fsync,
//! rename), and entries whose file no longer has its key are dropped
//! when it is saved.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use airlift_oci::Digest;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// How much older than its check a file's ctime must be to be recorded;
/// at least the timestamp granularity of any file system it may sit on
/// (2 s on the coarsest).
pub const RACY_MARGIN: Duration = Duration::from_secs(2);

/// The record's file name in the cache folder.
pub const FILE_NAME: &str = "verified-blobs.json";

const SCHEMA: &str = "airlift-verified-blobs/1";

/// What identifies one state of a file's bytes: a write changes ctime
/// (and usually size and mtime), a replacement changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_s: i64,
    pub mtime_ns: i64,
    pub ctime_s: i64,
    pub ctime_ns: i64,
}

impl FileKey {
    /// The key of a file's metadata (from `stat` or `fstat`).
    pub fn of(md: &std::fs::Metadata) -> FileKey {
        FileKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime_s: md.mtime(),
            mtime_ns: md.mtime_nsec(),
            ctime_s: md.ctime(),
            ctime_ns: md.ctime_nsec(),
        }
    }

    /// The key of the file at `path` (following symlinks), if it has one.
    pub fn at(path: &Path) -> Option<FileKey> {
        std::fs::metadata(path).ok().map(|m| FileKey::of(&m))
    }

    /// Whether the file's last change (ctime) is at least [`RACY_MARGIN`]
    /// before `checked`, when its check started.
    pub fn settled_before(&self, checked: SystemTime) -> bool {
        let Ok(since) = checked.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let checked_ns =
            i128::from(since.as_secs()) * 1_000_000_000 + i128::from(since.subsec_nanos());
        let ctime_ns = i128::from(self.ctime_s) * 1_000_000_000 + i128::from(self.ctime_ns);
        ctime_ns + RACY_MARGIN.as_nanos() as i128 <= checked_ns
    }
}

/// One recorded check, as the file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    digest: String,
    path: PathBuf,
    #[serde(flatten)]
    key: FileKey,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    schema: String,
    entries: Vec<Entry>,
}

/// The checks recorded in one cache folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// (digest, key of the file that hashed to it) -> where the file was.
    entries: BTreeMap<(Digest, FileKey), PathBuf>,
}

impl Record {
    /// The record in `dir`; empty (with a warning naming the file) when
    /// it is missing, unreadable or damaged, since hashing again is safe.
    pub fn load(dir: &Path) -> Record {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Record::default(),
            Err(e) => {
                tracing::warn!("reading {}: {e}; hashing every blob", path.display());
                return Record::default();
            }
        };
        Record::parse(&text).unwrap_or_else(|e| {
            tracing::warn!(
                "{} is not a verification record ({e:#}); hashing every blob and rewriting it",
                path.display()
            );
            Record::default()
        })
    }

    /// Parses the record's text (the error never echoes it).
    pub fn parse(text: &str) -> Result<Record> {
        let doc: Document = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("not valid JSON of the record at line {}", e.line()))?;
        if doc.schema != SCHEMA {
            bail!("schema is not {SCHEMA}");
        }
        let mut entries = BTreeMap::new();
        for (i, e) in doc.entries.into_iter().enumerate() {
            let digest: Digest = e
                .digest
                .parse()
                .map_err(|_| anyhow::anyhow!("entries[{i}].digest is not a digest"))?;
            entries.insert((digest, e.key), e.path);
        }
        Ok(Record { entries })
    }

    /// The record's text: entries sorted, one JSON document.
    pub fn render(&self) -> Vec<u8> {
        let doc = Document {
            schema: SCHEMA.to_string(),
            entries: self
                .entries
                .iter()
                .map(|((digest, key), path)| Entry {
                    digest: digest.to_string(),
                    path: path.clone(),
                    key: *key,
                })
                .collect(),
        };
        let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Whether a file with `key` was checked to hash to `digest`.
    pub fn trusts(&self, digest: &Digest, key: &FileKey) -> bool {
        self.entries.contains_key(&(digest.clone(), *key))
    }

    /// Records that the file at `path`, with `key` throughout its check
    /// (which started at `checked`), hashed to `digest`. Not recorded
    /// (returns false) when its last change is too recent to be told
    /// apart from a later one (see [`RACY_MARGIN`]).
    pub fn add(&mut self, digest: &Digest, key: FileKey, path: &Path, checked: SystemTime) -> bool {
        if !key.settled_before(checked) {
            return false;
        }
        self.entries
            .insert((digest.clone(), key), path.to_path_buf());
        true
    }

    /// Drops every entry whose file no longer has its key (`key_at`
    /// gives the key a path has now, `None` if it is gone).
    pub fn prune(&mut self, key_at: impl Fn(&Path) -> Option<FileKey>) {
        self.entries
            .retain(|(_, key), path| key_at(path).as_ref() == Some(key));
    }

    /// How many checks are recorded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no check is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Prunes stale entries and writes the record atomically into `dir`
    /// (created if missing).
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        self.prune(FileKey::at);
        airlift_oci::atomic::create_dir_all(dir)
            .with_context(|| format!("creating the cache folder {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        airlift_oci::atomic::write(&path, &self.render())
            .with_context(|| format!("writing the verification record {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ctime_s: i64) -> FileKey {
        FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_s: 4,
            mtime_ns: 5,
            ctime_s,
            ctime_ns: 6,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn only_files_settled_before_the_check_are_recorded() {
        let d = Digest::sha256_of(b"x");
        let mut r = Record::default();
        // Changed 1 s before the check: a change after it could share the
        // recorded ctime on a coarse file system.
        assert!(!r.add(&d, key(99), Path::new("/a"), at(100)));
        assert!(!r.trusts(&d, &key(99)));
        assert!(r.add(&d, key(97), Path::new("/a"), at(100)));
        assert!(r.trusts(&d, &key(97)));
        // Another digest, or any field of the key changed: not trusted.
        assert!(!r.trusts(&Digest::sha256_of(b"y"), &key(97)));
        for changed in [
            FileKey { dev: 9, ..key(97) },
            FileKey { ino: 9, ..key(97) },
            FileKey { size: 9, ..key(97) },
            FileKey {
                mtime_s: 9,
                ..key(97)
            },
            FileKey {
                mtime_ns: 9,
                ..key(97)
            },
            FileKey {
                ctime_ns: 9,
                ..key(97)
            },
            key(98),
        ] {
            assert!(!r.trusts(&d, &changed), "{changed:?}");
        }
    }

    #[test]
    fn the_record_round_trips_and_damage_is_an_error_without_its_text() {
        let mut r = Record::default();
        r.add(&Digest::sha256_of(b"x"), key(1), Path::new("/l/x"), at(100));
        r.add(&Digest::sha256_of(b"y"), key(2), Path::new("/l/y"), at(100));
        let text = String::from_utf8(r.render()).unwrap();
        assert_eq!(Record::parse(&text).unwrap(), r);
        for bad in [
            "{ not json SECRET",
            r#"{"schema":"other/1","entries":[]}"#,
            r#"{"schema":"airlift-verified-blobs/1","entries":[{"digest":"SECRET","path":"/a","dev":1,"ino":2,"size":3,"mtime_s":4,"mtime_ns":5,"ctime_s":6,"ctime_ns":7}]}"#,
        ] {
            let e = format!("{:#}", Record::parse(bad).unwrap_err());
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    #[test]
    fn saving_is_atomic_and_drops_entries_whose_file_changed() {
        let dir = tempfile::tempdir().unwrap();
        let kept = dir.path().join("kept");
        let gone = dir.path().join("gone");
        let changed = dir.path().join("changed");
        for p in [&kept, &gone, &changed] {
            std::fs::write(p, b"abc").unwrap();
        }
        let later = SystemTime::now() + Duration::from_secs(60);
        let mut r = Record::default();
        for (p, body) in [(&kept, "k"), (&gone, "g"), (&changed, "c")] {
            let d = Digest::sha256_of(body.as_bytes());
            assert!(r.add(&d, FileKey::at(p).unwrap(), p, later));
        }
        std::fs::remove_file(&gone).unwrap();
        std::fs::write(&changed, b"abcd").unwrap();
        let cache = dir.path().join("cache");
        r.save(&cache).unwrap();
        let loaded = Record::load(&cache);
        assert_eq!(loaded.len(), 1);
        assert!(loaded.trusts(&Digest::sha256_of(b"k"), &FileKey::at(&kept).unwrap()));
        let names: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE_NAME], "no temp file is left");
        // A damaged record loads as empty.
        std::fs::write(cache.join(FILE_NAME), b"garbage").unwrap();
        assert!(Record::load(&cache).is_empty());
    }
}
