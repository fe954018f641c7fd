//! The payload copy: every file's bytes to its extent, once, with the
//! digest checks trailing the copies on a second thread and early
//! write-back on a third, so the final fsync has little left to do.
//! Files a verification record vouches for ([`Expected::trusted`]) are
//! copied unhashed when their source is unchanged before and after.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::encode::SECTOR;
use super::output::Output;
use super::plan::FilePlan;
use super::tree::{Expected, FileSource};
use crate::verified::FileKey;

/// Payload bytes copied between two early write-back nudges.
const FLUSH_EVERY: u64 = 64 << 20;

/// A source file whose bytes were hashed to their digest as they were
/// written, with the key it had throughout its copy: what a verification
/// record may keep ([`crate::verified::Record::add`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    pub digest: airlift_oci::Digest,
    pub key: FileKey,
    pub file: PathBuf,
}

/// What the digest checks cost: files hashed, and files copied unhashed
/// on a verification record's word.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checks {
    pub hashed_files: usize,
    pub hashed_bytes: u64,
    pub trusted_files: usize,
    pub trusted_bytes: u64,
    /// The hashed files that may be recorded (a path source, unchanged
    /// during its copy).
    pub checked: Vec<Checked>,
}

impl Checks {
    /// Decide what the copied file `f` (`keys`: its source's key before
    /// and after the copy) needs: `true` when its bytes must be hashed.
    fn after_copy(&mut self, f: &FilePlan, e: &Expected, keys: Option<(FileKey, FileKey)>) -> bool {
        let stable = keys
            .filter(|(before, after)| before == after)
            .map(|(k, _)| k);
        if e.trusted.is_some() && stable == e.trusted {
            self.trusted_files += 1;
            self.trusted_bytes += f.size;
            return false;
        }
        if let (Some(key), FileSource::Path(file)) = (stable, f.src) {
            self.checked.push(Checked {
                digest: e.digest.clone(),
                key,
                file: file.clone(),
            });
        }
        self.hashed_files += 1;
        self.hashed_bytes += f.size;
        true
    }
}

/// Copies every payload to its extent, then runs `then` (the rest of
/// the image and its fsync). Files with an expected digest are hashed as
/// written, read back from the output (so the check covers exactly the
/// image's bytes), on a second thread that trails the copies: hashing
/// overlaps the copies and the fsync. A mismatch is the error, whatever
/// `then` returned.
pub fn copy_payloads<T>(
    o: &Output,
    files: &[FilePlan],
    then: impl FnOnce() -> Result<T>,
) -> Result<(T, Checks)> {
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<&FilePlan>(files.len().max(1));
        let checker = scope.spawn(move || -> Result<()> {
            for f in rx {
                let expect = f.expect.expect("only files with a digest are sent");
                o.check_digest(u64::from(f.lba) * SECTOR, f.size, &expect.digest)
                    .with_context(|| {
                        format!(
                            "blob {} from {} (ISO file {}) failed verification; the source is corrupt \
                             or was changed",
                            expect.digest, expect.source, f.path
                        )
                    })?;
            }
            Ok(())
        });
        // Write back what is copied while the copies go on, so the final
        // fsync has little left to do. Nudges coalesce. Its first error is
        // kept and returned: a later fsync on this file would not report
        // it again.
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let flusher = scope.spawn(move || -> Result<()> {
            for () in nudged {
                o.sync_data()?;
            }
            Ok(())
        });
        let mut checks = Checks::default();
        let copied = (|| -> Result<()> {
            let mut since_nudge = 0u64;
            for f in files {
                let keys = o.copy_in(f.src, u64::from(f.lba) * SECTOR, f.size)?;
                since_nudge += f.size;
                if since_nudge >= FLUSH_EVERY {
                    since_nudge = 0;
                    let _ = nudge.try_send(());
                }
                let Some(e) = f.expect else { continue };
                if checks.after_copy(f, e, keys) && tx.send(f).is_err() {
                    // The checker stopped on a mismatch: its error wins.
                    break;
                }
            }
            Ok(())
        })();
        drop(tx);
        drop(nudge);
        let flushed = flusher.join().expect("the flusher panicked");
        let rest = copied.and(flushed).and_then(|()| then());
        let checked = checker.join().expect("the digest checker panicked");
        checked.and(rest).map(|t| (t, checks))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> FileKey {
        FileKey {
            dev: 1,
            ino,
            size: 3,
            mtime_s: 0,
            mtime_ns: 0,
            ctime_s: 0,
            ctime_ns: 0,
        }
    }

    #[test]
    fn only_an_unchanged_vouched_for_source_skips_the_hash() {
        let src = FileSource::Path("/l/blob".into());
        let digest = airlift_oci::Digest::sha256_of(b"abc");
        let expect = |trusted| Expected {
            digest: digest.clone(),
            source: "s".into(),
            trusted,
        };
        let plan = |e| FilePlan {
            path: "b".into(),
            src: &src,
            size: 3,
            lba: 0,
            expect: Some(e),
        };
        let mut c = Checks::default();
        // Vouched for and unchanged: copied unhashed.
        let e = expect(Some(key(1)));
        assert!(!c.after_copy(&plan(&e), &e, Some((key(1), key(1)))));
        // Changed during the copy, or since the record: hashed, and not
        // recorded when it changed during the copy.
        assert!(c.after_copy(&plan(&e), &e, Some((key(1), key(2)))));
        assert!(c.after_copy(&plan(&e), &e, Some((key(2), key(2)))));
        // Not vouched for: hashed, recordable.
        let e = expect(None);
        assert!(c.after_copy(&plan(&e), &e, Some((key(3), key(3)))));
        assert_eq!((c.trusted_files, c.trusted_bytes), (1, 3));
        assert_eq!((c.hashed_files, c.hashed_bytes), (3, 9));
        let recorded: Vec<_> = c.checked.iter().map(|k| k.key).collect();
        assert_eq!(recorded, [key(2), key(3)]);
    }
}
