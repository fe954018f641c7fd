//! Sending a blob file's range on a plain TCP socket with `sendfile(2)`:
//! the page cache's pages go to the socket without a copy through this
//! process (on loopback and most NICs the kernel references them).
//!
//! `sendfile` waits for the disk when a page is not cached, so each
//! window is probed first with a one-byte `preadv2(RWF_NOWAIT)` at its
//! last byte: a cached window is sent on the async worker, one that is
//! not from tokio's blocking pool, as `file_read` does for reads.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::io::{preadv2, Errno, ReadWriteFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::services::registry::store::file_read::FileRange;

/// Bytes one `sendfile` call may send.
const WINDOW: u64 = 4 << 20;

/// Responses sent with `sendfile` since the process started.
static SENT: AtomicU64 = AtomicU64::new(0);

/// How many responses went out with `sendfile` (the driver's tests
/// check it moves).
pub fn responses() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// Whether the byte at `pos` is in the page cache.
fn cached(range: &FileRange, pos: u64) -> bool {
    let mut byte = [0u8; 1];
    !matches!(
        preadv2(
            &*range.file,
            &mut [IoSliceMut::new(&mut byte)],
            pos,
            ReadWriteFlags::NOWAIT,
        ),
        Err(Errno::AGAIN)
    )
}

/// Send all of `range` on `sock`. A file shorter than the range is an
/// error naming it (the length was promised: the caller closes).
pub async fn send(sock: &TcpStream, range: &FileRange) -> io::Result<()> {
    let end = range.start + range.len;
    let mut pos = range.start;
    let mut dup: Option<OwnedFd> = None;
    while pos < end {
        let want = (end - pos).min(WINDOW);
        sock.writable().await?;
        let sent = if cached(range, pos + want - 1) {
            let r = sock.try_io(Interest::WRITABLE, || {
                let mut at = pos;
                // `want` is at most WINDOW, a usize.
                rustix::fs::sendfile(sock, &*range.file, Some(&mut at), want as usize)
                    .map_err(io::Error::from)
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => r?,
            }
        } else {
            let out = match &dup {
                Some(fd) => fd.try_clone()?,
                None => dup.insert(sock.as_fd().try_clone_to_owned()?).try_clone()?,
            };
            let file = range.file.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut at = pos;
                rustix::fs::sendfile(&out, &*file, Some(&mut at), want as usize)
            })
            .await
            .map_err(|e| io::Error::other(format!("sendfile task failed: {e}")))?;
            match r {
                Err(Errno::AGAIN) => continue,
                r => r?,
            }
        };
        if sent == 0 {
            return Err(range.early_end(pos));
        }
        pos += sent as u64;
    }
    SENT.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
