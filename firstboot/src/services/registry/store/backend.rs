//! What storage is made of, behind two traits so the store has one code
//! path whatever holds the bytes: a [`BlobBackend`] (content-addressed
//! bytes: stat, ranged read as a stream, put, delete) and a
//! [`MetaBackend`] (which manifests are members of a repository, tags,
//! referrer entries). The data folder implements both ([`super::folder`]),
//! so do the bundle's read-only layouts (blobs only, never written) and
//! an S3 bucket ([`super::remote`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlift_oci::documents::Descriptor;
use airlift_oci::Digest;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::StreamExt;

use super::error::StoreResult;
use super::index::{ManifestInfo, Repos};

/// A blob's bytes, or a range of them, as read.
pub enum BlobStream {
    /// All of it in one buffer (a small read).
    Whole(Bytes),
    /// Chunks as they arrive; an error ends the stream (the length was
    /// already promised, so it cannot become an error answer).
    Chunks(BoxStream<'static, std::io::Result<Bytes>>),
    /// A range of a local file, not read yet (a large read from a
    /// folder): sent with `sendfile(2)` or read as a stream.
    File(super::file_read::FileRange),
}

impl std::fmt::Debug for BlobStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobStream::Whole(b) => write!(f, "Whole({} bytes)", b.len()),
            BlobStream::Chunks(_) => f.write_str("Chunks"),
            BlobStream::File(r) => write!(f, "File({r:?})"),
        }
    }
}

/// Where blobs are kept.
#[async_trait]
pub trait BlobBackend: Send + Sync {
    /// The stored size of blob `d`, None if it is not stored here.
    async fn stat(&self, d: &Digest) -> StoreResult<Option<u64>>;
    /// `len` bytes of blob `d` from `start` (the caller checked the
    /// range against [`BlobBackend::stat`]).
    async fn read(&self, d: &Digest, start: u64, len: u64) -> StoreResult<BlobStream>;
    /// Make the verified upload file `file` blob `d`; the file is gone
    /// afterwards (moved or sent and removed).
    async fn put_file(&self, file: PathBuf, d: &Digest) -> StoreResult<()>;
    /// Store `bytes` as blob `d` unless it is stored.
    async fn put_bytes(&self, d: &Digest, bytes: Bytes) -> StoreResult<()>;
    /// Remove blob `d`; false if it was not stored here.
    async fn delete(&self, d: &Digest) -> StoreResult<bool>;
    /// Whether the bytes travel over a network: then local layers are
    /// looked at first and manifests read back are re-hashed.
    fn remote(&self) -> bool {
        false
    }
    /// Where blob `d` lives, for messages (a path or `s3://bucket/key`).
    fn describe(&self, d: &Digest) -> String;
}

/// Where repository metadata is kept. The store keeps the index in
/// memory; a backend makes each change durable and loads it back.
#[async_trait]
pub trait MetaBackend: Send + Sync {
    /// The whole index as stored.
    async fn load(&self) -> StoreResult<Repos>;
    /// Make `d` (of `media_type`) a member of `repo`.
    async fn put_manifest(&self, repo: &str, d: &Digest, media_type: &str) -> StoreResult<()>;
    /// Record `desc` as a referrer of `subject` in `repo`.
    async fn put_referrer(
        &self,
        repo: &str,
        subject: &Digest,
        desc: &Descriptor,
    ) -> StoreResult<()>;
    /// Point `repo:tag` at `d`.
    async fn put_tag(&self, repo: &str, tag: &str, d: &Digest) -> StoreResult<()>;
    /// Remove `d` from `repo`'s members.
    async fn remove_manifest(&self, repo: &str, d: &Digest) -> StoreResult<()>;
    /// Remove `repo:tag`.
    async fn remove_tag(&self, repo: &str, tag: &str) -> StoreResult<()>;
    /// Remove the referrer `d` of `subject` in `repo`.
    async fn remove_referrer(&self, repo: &str, subject: &Digest, d: &Digest) -> StoreResult<()>;
    /// Look a tag up in storage itself (another instance may have just
    /// written it). None where the in-memory index is the whole truth.
    async fn find_tag(&self, _repo: &str, _tag: &str) -> StoreResult<Option<Digest>> {
        Ok(None)
    }
    /// Look a member manifest up in storage itself, like [`MetaBackend::find_tag`].
    async fn find_member(&self, _repo: &str, _d: &Digest) -> StoreResult<Option<ManifestInfo>> {
        Ok(None)
    }
    /// How often the index is rebuilt from storage: None when this
    /// process is its only writer.
    fn refresh_every(&self) -> Option<Duration> {
        None
    }
    /// Where the metadata lives, for messages.
    fn describe(&self) -> String {
        "the data folder's repositories".to_string()
    }
}

/// A blob found in one of the store's backends: its size, and the way
/// to read it, whichever backend holds it.
#[derive(Clone)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    from: Arc<dyn BlobBackend>,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blob")
            .field("digest", &self.digest)
            .field("size", &self.size)
            .field("at", &self.from.describe(&self.digest))
            .finish()
    }
}

impl Blob {
    /// Blob `d` of `size` bytes in `from`.
    pub fn new(d: &Digest, size: u64, from: Arc<dyn BlobBackend>) -> Blob {
        Blob {
            digest: d.clone(),
            size,
            from,
        }
    }

    /// `len` bytes from `start`.
    pub async fn read(&self, start: u64, len: u64) -> StoreResult<BlobStream> {
        self.from.read(&self.digest, start, len).await
    }

    /// The whole blob in memory (for manifests and image configs: small).
    pub async fn bytes(&self) -> StoreResult<Bytes> {
        let mut stream = match self.read(0, self.size).await? {
            BlobStream::Whole(b) => return Ok(b),
            BlobStream::Chunks(s) => s,
            BlobStream::File(range) => range.stream(),
        };
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk?);
        }
        Ok(buf.freeze())
    }

    /// Whether it came over a network (see [`BlobBackend::remote`]).
    pub fn remote(&self) -> bool {
        self.from.remote()
    }

    /// Where it lives, for messages.
    pub fn describe(&self) -> String {
        self.from.describe(&self.digest)
    }
}
