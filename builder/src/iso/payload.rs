//! The payload copy: every file's bytes to its extent, once, with the
//! digest checks trailing the copies on a second thread and early
//! write-back on a third, so the final fsync has little left to do.

use anyhow::{Context, Result};

use super::encode::SECTOR;
use super::output::Output;
use super::plan::FilePlan;

/// Payload bytes copied between two early write-back nudges.
const FLUSH_EVERY: u64 = 64 << 20;

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
) -> Result<T> {
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
        let copied = (|| -> Result<()> {
            let mut since_nudge = 0u64;
            for f in files {
                if f.size > 0 {
                    o.copy_in(f.src, u64::from(f.lba) * SECTOR, f.size)?;
                }
                since_nudge += f.size;
                if since_nudge >= FLUSH_EVERY {
                    since_nudge = 0;
                    let _ = nudge.try_send(());
                }
                if f.expect.is_some() && tx.send(f).is_err() {
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
        checked.and(rest)
    })
}
