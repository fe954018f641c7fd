//! A blob file's bytes as a stream of large chunks, read straight into
//! the buffers the server writes to the socket.
//!
//! Each chunk is first read on the async worker itself with
//! `preadv2(RWF_NOWAIT)`, which copies only what is already in the page
//! cache and never waits for the disk; whatever is missing is read on
//! tokio's blocking pool. The file is opened the same way: inline with
//! `openat2(RESOLVE_CACHED)` when every path component is in the kernel's
//! lookup cache, else on the blocking pool. A blob served from memory so
//! costs one copy into the buffer (still in the CPU cache when the
//! server writes it) and no thread hop; one on slow media never blocks a worker.
//!
//! Why not `tokio::fs::File` + `ReaderStream`: that reads on the blocking
//! pool into tokio's own buffer and copies it again into the stream's
//! (two memcpys of every byte, plus a thread hop per 256 KiB), and the
//! fresh buffer per chunk costs an mmap, page faults and zeroing.
//!
//! Memory: per response, the chunks the server has not written yet (two
//! or three: it asks for the next one only while it holds less than about
//! 400 KiB) plus at most [`POOL`] spare buffers of at most [`CHUNK`]
//! bytes; a written chunk's buffer returns to its response's pool, and
//! the pool is freed with the response.

use std::fs::File;
use std::io::{self, IoSliceMut};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::{preadv2, Errno, ReadWriteFlags};

use super::backend::BlobStream;

/// Bytes per body chunk.
pub const CHUNK: usize = 256 << 10;

/// Buffers a response keeps for reuse: the chunk the server is writing, the
/// one being read, and one spare.
const POOL: usize = 3;

/// Spare chunk buffers of one response (initialised, at most `CHUNK` long).
type Pool = Mutex<Vec<Vec<u8>>>;

/// A chunk's buffer; dropping it (the server wrote it) returns it to the pool
/// of its response if that response is still going.
struct Recycled {
    buf: Vec<u8>,
    len: usize,
    pool: Weak<Pool>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            if let Ok(mut spare) = pool.lock() {
                if spare.len() < POOL {
                    spare.push(std::mem::take(&mut self.buf));
                }
            }
        }
    }
}

/// An open blob file, where the next chunk starts and how much is left.
struct Reader {
    file: Arc<File>,
    path: PathBuf,
    pos: u64,
    left: u64,
    /// Whether `RWF_NOWAIT` reads may be tried (off once the file
    /// system said it does not support them).
    nowait: bool,
    pool: Arc<Pool>,
}

/// What a `RWF_NOWAIT` read managed.
enum Cached {
    /// Filled `n` bytes (maybe fewer than asked: the rest is not cached).
    Read(usize),
    /// Nothing could be read without waiting.
    WouldBlock,
    /// The file system does not do `RWF_NOWAIT`.
    Unsupported,
}

/// Read from the page cache only.
fn read_cached(file: &File, buf: &mut [u8], pos: u64) -> io::Result<Cached> {
    match preadv2(
        file,
        &mut [IoSliceMut::new(buf)],
        pos,
        ReadWriteFlags::NOWAIT,
    ) {
        Ok(n) => Ok(Cached::Read(n)),
        Err(Errno::AGAIN) => Ok(Cached::WouldBlock),
        Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => Ok(Cached::Unsupported),
        Err(e) => Err(e.into()),
    }
}

impl Reader {
    fn early_end(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "blob file {} ends before byte {}, the end of the response",
                self.path.display(),
                self.pos + self.left
            ),
        )
    }

    /// Read the next `min(left, CHUNK)` bytes. A file that ends early is
    /// an error (the response already promised the length).
    async fn next(&mut self) -> io::Result<Bytes> {
        // `want` is at most `CHUNK`, a `usize`.
        let want = self.left.min(CHUNK as u64) as usize;
        let spare = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut buf = spare.unwrap_or_default();
        if buf.len() < want {
            buf.resize(want, 0);
        }
        let mut got = 0;
        while self.nowait && got < want {
            match read_cached(&self.file, &mut buf[got..want], self.pos + got as u64)? {
                Cached::Read(0) => return Err(self.early_end()),
                Cached::Read(n) => got += n,
                Cached::WouldBlock => break,
                Cached::Unsupported => self.nowait = false,
            }
        }
        if got < want {
            let file = Arc::clone(&self.file);
            let from = self.pos + got as u64;
            let read = tokio::task::spawn_blocking(move || {
                let r = file.read_exact_at(&mut buf[got..want], from);
                (buf, r)
            });
            let (back, r) = read
                .await
                .map_err(|e| io::Error::other(format!("blob read task failed: {e}")))?;
            buf = back;
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(self.early_end()),
                Err(e) => return Err(e),
            }
        }
        self.pos += want as u64;
        self.left -= want as u64;
        let pool = Arc::downgrade(&self.pool);
        Ok(Bytes::from_owner(Recycled {
            buf,
            len: want,
            pool,
        }))
    }
}

/// Open a file for reading: inline if the path resolves from the kernel's
/// lookup cache alone, else (or on any error, for the authoritative one)
/// on the blocking pool.
async fn open(path: &Path) -> io::Result<File> {
    let flags = OFlags::RDONLY | OFlags::CLOEXEC;
    if let Ok(fd) = openat2(CWD, path, flags, Mode::empty(), ResolveFlags::CACHED) {
        return Ok(File::from(fd));
    }
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || File::open(owned))
        .await
        .map_err(|e| io::Error::other(format!("blob open task failed: {e}")))?
}

/// A range of an open blob file: what a plain-HTTP connection hands to
/// `sendfile(2)` (see [`crate::services::registry::conn`]), and what any
/// other connection reads as a stream ([`FileRange::stream`]).
#[derive(Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    pub path: Arc<Path>,
    pub start: u64,
    pub len: u64,
}

impl std::fmt::Debug for FileRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes {}+{}",
            self.path.display(),
            self.start,
            self.len
        )
    }
}

impl FileRange {
    /// The error for a file that ends before the range does.
    pub fn early_end(&self, at: u64) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "blob file {} ends at byte {at}, before byte {}, the end of the response",
                self.path.display(),
                self.start + self.len
            ),
        )
    }

    fn reader(self) -> Reader {
        Reader {
            file: self.file,
            path: self.path.to_path_buf(),
            pos: self.start,
            left: self.len,
            nowait: true,
            pool: Arc::default(),
        }
    }

    /// Read the range: the first chunk now (so a file that cannot be read
    /// is an error answer, not a cut-off body), the rest as the stream is
    /// polled. A range of at most [`CHUNK`] bytes comes back whole.
    pub async fn read(self) -> io::Result<BlobStream> {
        let mut reader = self.reader();
        let first = reader.next().await?;
        if reader.left == 0 {
            return Ok(BlobStream::Whole(first));
        }
        Ok(BlobStream::Chunks(chunks(Some(first), reader)))
    }

    /// The range as a stream that reads nothing until it is polled: a
    /// response body that a `sendfile(2)` connection never polls costs
    /// no reads. A read error ends the stream (the length was promised).
    pub fn stream(self) -> BoxStream<'static, io::Result<Bytes>> {
        chunks(None, self.reader())
    }
}

/// `ready`, then the reader's chunks until it is done or fails.
fn chunks(ready: Option<Bytes>, reader: Reader) -> BoxStream<'static, io::Result<Bytes>> {
    let more = (reader.left > 0).then_some(reader);
    futures_util::stream::unfold((ready, more), |(ready, reader)| async move {
        if let Some(chunk) = ready {
            return Some((Ok(chunk), (None, reader)));
        }
        let mut reader = reader?;
        match reader.next().await {
            Ok(chunk) => {
                let more = (reader.left > 0).then_some(reader);
                Some((Ok(chunk), (None, more)))
            }
            Err(e) => Some((Err(e), (None, None))),
        }
    })
    .boxed()
}

/// `len` bytes of the file at `path` from offset `start`: a range of at
/// most [`CHUNK`] bytes is read now and comes back whole; a longer one
/// comes back as the open file ([`BlobStream::File`]), read (or sent)
/// when the response goes out. A file that cannot be opened is an error
/// answer either way.
pub async fn read_file(path: &Path, start: u64, len: u64) -> io::Result<BlobStream> {
    let range = FileRange {
        file: Arc::new(open(path).await?),
        path: Arc::from(path),
        start,
        len,
    };
    if len <= CHUNK as u64 {
        return range.read().await;
    }
    Ok(BlobStream::File(range))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: BlobStream) -> io::Result<Vec<u8>> {
        let mut stream = match body {
            BlobStream::Whole(b) => return Ok(b.to_vec()),
            BlobStream::Chunks(s) => s,
            BlobStream::File(f) => f.stream(),
        };
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    fn blob(dir: &Path, n: usize) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + i / 251) as u8).collect();
        let path = dir.join("blob");
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    #[tokio::test]
    async fn whole_and_ranges_across_chunk_edges() {
        let dir = tempfile::tempdir().unwrap();
        let c = CHUNK;
        let n = 3 * c + 12_345;
        let (path, data) = blob(dir.path(), n);
        for (start, len) in [
            (0, n),
            (0, 0),
            (0, 1),
            (0, c),
            (0, c + 1),
            (c - 1, 2),
            (c, c),
            (5, n - 5),
            (n - 1, 1),
            (2 * c + 17, c + 100),
        ] {
            let body = read_file(&path, start as u64, len as u64).await.unwrap();
            let got = collect(body).await.unwrap();
            assert_eq!(got.len(), len, "start {start} len {len}");
            assert!(got == data[start..start + len], "start {start} len {len}");
        }
    }

    #[tokio::test]
    async fn blocking_pool_path_reads_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * CHUNK + 99;
        let (path, data) = blob(dir.path(), n);
        let mut reader = Reader {
            file: Arc::new(File::open(&path).unwrap()),
            path,
            pos: 3,
            left: (n - 3) as u64,
            nowait: false,
            pool: Arc::default(),
        };
        let mut got = Vec::new();
        while reader.left > 0 {
            got.extend_from_slice(&reader.next().await.unwrap());
        }
        assert!(got == data[3..]);
    }

    #[tokio::test]
    async fn uncached_pages_are_read_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let n = 3 * CHUNK + 777;
        let (path, data) = blob(dir.path(), n);
        let file = File::open(&path).unwrap();
        file.sync_all().unwrap();
        // Drop the file from the page cache (where the file system allows
        // it): `RWF_NOWAIT` reads find nothing, or only what the kernel's
        // readahead has brought in since, and the rest comes from the
        // blocking pool.
        let _ = rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed);
        let body = read_file(&path, 1, (n - 1) as u64).await.unwrap();
        let got = collect(body).await.unwrap();
        assert!(got == data[1..]);
    }

    #[tokio::test]
    async fn written_chunks_return_their_buffers_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = blob(dir.path(), 4 * CHUNK);
        let mut reader = Reader {
            file: Arc::new(File::open(&path).unwrap()),
            path,
            pos: 0,
            left: (4 * CHUNK) as u64,
            nowait: true,
            pool: Arc::default(),
        };
        let first = reader.next().await.unwrap();
        let addr = first.as_ptr();
        drop(first);
        assert_eq!(reader.pool.lock().unwrap().len(), 1);
        let second = reader.next().await.unwrap();
        assert_eq!(second.as_ptr(), addr, "the buffer was reused");
        assert_eq!(reader.pool.lock().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn small_blob_is_one_full_body() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = blob(dir.path(), 1000);
        let body = read_file(&path, 0, 1000).await.unwrap();
        // Whole: the server answers it as one full body of known length.
        assert!(matches!(&body, BlobStream::Whole(b) if b.len() == 1000));
        assert_eq!(collect(body).await.unwrap(), data);
    }

    #[tokio::test]
    async fn a_short_blob_gets_a_buffer_of_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = blob(dir.path(), 4096);
        let mut reader = Reader {
            file: Arc::new(open(&path).await.unwrap()),
            path,
            pos: 100,
            left: 50,
            nowait: true,
            pool: Arc::default(),
        };
        let chunk = reader.next().await.unwrap();
        assert!(chunk == data[100..150]);
        drop(chunk);
        let spare = reader.pool.lock().unwrap().pop().unwrap();
        assert_eq!(spare.len(), 50);
    }

    #[tokio::test]
    async fn missing_file_fails_before_the_response() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_file(&dir.path().join("nope"), 0, 10)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn file_shorter_than_promised_breaks_the_body_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * CHUNK;
        let (path, _) = blob(dir.path(), n);
        // Promise more than the file holds: the first chunk reads, a later one fails.
        let body = read_file(&path, 0, n as u64 + 10).await.unwrap();
        let err = collect(body).await.unwrap_err();
        let want = format!("ends before byte {}", n + 10);
        assert!(err.to_string().contains(&want), "{err}");
        assert!(err.to_string().contains("blob"), "{err}");
    }

    #[tokio::test]
    async fn first_chunk_short_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = blob(dir.path(), 100);
        let err = read_file(&path, 0, 200).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
