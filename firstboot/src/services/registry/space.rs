//! The upload guardrail: before the registry accepts blob bytes, the
//! data folder's filesystem must keep its reserve free afterwards
//! ([`crate::sys::disk_space::check`]). An upload start needs the
//! reserve itself free; a chunk of known length (`Content-Length`, or
//! the `Content-Range` it declares) is checked for that many bytes
//! before any is written; a chunk streamed without a length is checked
//! one [`WINDOW`] at a time. A refusal is [`StoreError::NoSpace`]
//! (answered 507 `DENIED`), and it names what `gc` would free when the
//! [`Reclaimable`] hook says.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use futures_util::StreamExt;

use super::store::uploads::Chunks;
use super::store::StoreError;
use crate::sys::disk_space::{self, Space};

/// A chunk streamed without a declared length is checked this many bytes
/// at a time (64 MiB): at its start and each time this much has arrived.
pub const WINDOW: u64 = 64 << 20;

/// The bytes garbage collection would free, when known (set by whoever
/// runs GC; None: unknown).
pub type Reclaimable = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Where the free space is read from (statvfs; tests give another).
pub type SpaceSource = Arc<dyn Fn(&Path) -> anyhow::Result<Space> + Send + Sync>;

/// The reserve and where it applies.
pub struct SpaceGuard {
    dir: PathBuf,
    reserve: u64,
    source: SpaceSource,
    reclaimable: RwLock<Option<Reclaimable>>,
}

impl SpaceGuard {
    /// Keep `reserve` bytes free on the filesystem holding `dir`.
    pub fn new(dir: &Path, reserve: u64) -> SpaceGuard {
        SpaceGuard::with_source(dir, reserve, Arc::new(disk_space::space))
    }

    /// [`SpaceGuard::new`] reading the free space from `source`.
    pub fn with_source(dir: &Path, reserve: u64, source: SpaceSource) -> SpaceGuard {
        SpaceGuard {
            dir: dir.to_path_buf(),
            reserve,
            source,
            reclaimable: RwLock::new(None),
        }
    }

    /// The bytes kept free.
    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    /// The folder whose filesystem is watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Say how to learn what garbage collection would free (None: unknown).
    pub fn set_reclaimable(&self, f: Option<Reclaimable>) {
        if let Ok(mut r) = self.reclaimable.write() {
            *r = f;
        }
    }

    /// May `needed` more bytes be written for `what`? A filesystem whose
    /// space cannot be read is not refused (logged): the write itself
    /// then reports the real fault.
    pub fn check(&self, what: &str, needed: u64) -> Result<(), StoreError> {
        let space = match (self.source)(&self.dir) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("upload space check skipped: {e:#}");
                return Ok(());
            }
        };
        disk_space::check(what, needed, space, self.reserve, None).map_err(|mut refusal| {
            let hook = self.reclaimable.read().ok().and_then(|r| r.clone());
            refusal.reclaimable = hook.and_then(|f| f());
            tracing::warn!("{refusal}");
            StoreError::NoSpace(refusal)
        })
    }

    /// `chunks`, checked as they arrive: `declared` bytes at once before
    /// the first, or (no length declared) one [`WINDOW`] at a time.
    pub fn guard(
        self: &Arc<Self>,
        chunks: impl Chunks + 'static,
        what: String,
        declared: Option<u64>,
    ) -> impl Chunks {
        let state = Guarded {
            guard: self.clone(),
            what,
            declared,
            seen: 0,
            checked_to: 0,
            failed: false,
        };
        // Checked when bytes arrive: an empty body (a PUT that only
        // finishes an upload) writes nothing and is never refused.
        futures_util::stream::unfold((chunks, state), |(mut chunks, mut st)| async move {
            if st.failed {
                return None;
            }
            let item = match chunks.next().await? {
                Ok(b) if !b.is_empty() => match st.before_more() {
                    Ok(()) => {
                        st.seen += b.len() as u64;
                        Ok(b)
                    }
                    Err(e) => {
                        st.failed = true;
                        Err(e)
                    }
                },
                other => other,
            };
            Some((item, (chunks, st)))
        })
        .boxed()
    }
}

/// One guarded body's progress.
struct Guarded {
    guard: Arc<SpaceGuard>,
    what: String,
    declared: Option<u64>,
    /// Bytes passed on so far.
    seen: u64,
    /// Bytes allowed by the checks so far (a window's end).
    checked_to: u64,
    failed: bool,
}

impl Guarded {
    /// Check before passing on more bytes, once those seen reach what the
    /// last check allowed (so always before the first).
    fn before_more(&mut self) -> Result<(), StoreError> {
        if self.seen < self.checked_to {
            return Ok(());
        }
        match self.declared {
            Some(n) => {
                self.checked_to = u64::MAX;
                self.guard.check(&self.what, n)
            }
            None => {
                self.checked_to = self.seen + WINDOW;
                let what = format!(
                    "{} ({} received, its length not declared: checked {} at a time)",
                    self.what,
                    disk_space::mb(self.seen),
                    disk_space::mb(WINDOW)
                );
                self.guard.check(&what, WINDOW)
            }
        }
    }
}

/// A body stream of test chunks (for the guard's own tests).
#[cfg(test)]
fn stream_of(parts: Vec<bytes::Bytes>) -> impl Chunks {
    futures_util::stream::iter(parts.into_iter().map(Ok)).boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use bytes::Bytes;

    use super::*;

    /// A guard over a fake filesystem with `free` bytes, counting reads.
    fn fake(free: Arc<AtomicU64>, reads: Arc<AtomicUsize>, reserve: u64) -> Arc<SpaceGuard> {
        let source: SpaceSource = Arc::new(move |_| {
            reads.fetch_add(1, Ordering::SeqCst);
            Ok(Space {
                total: 1 << 40,
                available: free.load(Ordering::SeqCst),
            })
        });
        Arc::new(SpaceGuard::with_source(Path::new("/x"), reserve, source))
    }

    async fn drain(s: impl Chunks) -> (u64, Option<StoreError>) {
        let mut s = s;
        let mut n = 0;
        while let Some(item) = s.next().await {
            match item {
                Ok(b) => n += b.len() as u64,
                Err(e) => return (n, Some(e)),
            }
        }
        (n, None)
    }

    #[test]
    fn check_refuses_past_the_reserve_and_asks_the_gc_hook() {
        let free = Arc::new(AtomicU64::new(100 << 20));
        let g = fake(free, Arc::default(), 50 << 20);
        assert!(g.check("a", 50 << 20).is_ok());
        let Err(StoreError::NoSpace(e)) = g.check("the upload x", 51 << 20) else {
            panic!("not refused");
        };
        assert_eq!(
            (e.needed, e.reserve, e.reclaimable),
            (51 << 20, 50 << 20, None)
        );
        g.set_reclaimable(Some(Arc::new(|| Some(7_000_000))));
        let e = g.check("the upload x", 51 << 20).unwrap_err().to_string();
        assert!(
            e.contains("not enough space for the upload x") && e.contains("would free 7 MB"),
            "{e}"
        );
        // An unreadable filesystem does not refuse.
        let broken = SpaceGuard::with_source(
            Path::new("/x"),
            1 << 40,
            Arc::new(|_| Err(anyhow::anyhow!("gone"))),
        );
        assert!(broken.check("a", 1).is_ok());
    }

    #[tokio::test]
    async fn a_declared_length_is_checked_once_up_front() {
        let (free, reads) = (Arc::new(AtomicU64::new(10 << 20)), Arc::default());
        let g = fake(free.clone(), Arc::clone(&reads), 1 << 20);
        let body = || stream_of(vec![Bytes::from(vec![0u8; 1 << 20]); 4]);
        let (n, e) = drain(g.guard(body(), "u".into(), Some(4 << 20))).await;
        assert_eq!((n, e.is_none()), (4 << 20, true));
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Too big: refused before a byte passes.
        let (n, e) = drain(g.guard(body(), "u".into(), Some(10 << 20))).await;
        assert_eq!(n, 0);
        assert!(matches!(e, Some(StoreError::NoSpace(_))));
        // An empty body writes nothing: never refused, never checked.
        free.store(0, Ordering::SeqCst);
        let before = reads.load(Ordering::SeqCst);
        let (n, e) = drain(g.guard(stream_of(vec![]), "u".into(), None)).await;
        assert_eq!((n, e.is_none()), (0, true));
        assert_eq!(reads.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn an_undeclared_length_is_checked_per_window() {
        let (free, reads) = (Arc::new(AtomicU64::new(1 << 30)), Arc::default());
        let g = fake(free.clone(), Arc::clone(&reads), 1 << 20);
        let part = Bytes::from(vec![0u8; 16 << 20]);
        // 10 parts of 16 MiB = 160 MiB: checks at 0, 64 and 128 MiB.
        let (n, e) = drain(g.guard(stream_of(vec![part.clone(); 10]), "u".into(), None)).await;
        assert_eq!((n, e.is_none()), (160 << 20, true));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
        // The disk fills while streaming: stopped at the next window,
        // after the first window's bytes passed.
        let mut s = g.guard(stream_of(vec![part; 10]), "u".into(), None);
        for _ in 0..4 {
            assert!(s.next().await.unwrap().is_ok());
        }
        free.store(WINDOW, Ordering::SeqCst);
        let msg = s.next().await.unwrap().unwrap_err().to_string();
        assert!(
            msg.contains("67 MB received, its length not declared"),
            "{msg}"
        );
        assert!(s.next().await.is_none(), "the stream ends after a refusal");
    }
}
