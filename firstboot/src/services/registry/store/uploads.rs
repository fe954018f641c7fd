//! Blob uploads in progress: bytes stream into `DATA/uploads/<id>` and
//! through a sha256 hasher as they arrive. A chunk that breaks off or
//! does not match its declared range is rolled back (file truncated,
//! hash state restored), so the upload can be resumed from its last
//! good offset. Upload state lives in memory only: after a restart a
//! client starts its upload again. No file stays open between requests:
//! each chunk opens the upload's file, so idle uploads hold no file
//! descriptors. I/O errors name the upload and its file.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use airlift_oci::digest::Hasher;
use airlift_oci::{Algorithm, Digest};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;

use super::error::{StoreError, StoreResult as Result};

/// One upload session.
pub struct Upload {
    /// The stored repository name it was started in.
    pub repo: String,
    id: String,
    path: PathBuf,
    hasher: Hasher,
    size: u64,
    /// When a request last finished working on it.
    last_used: Instant,
}

/// Incoming bytes: chunks as they arrive, an error if they stall or
/// break off ([`StoreError::Incoming`]).
pub trait Chunks: Stream<Item = Result<Bytes>> + Send + Unpin {}

impl<S: Stream<Item = Result<Bytes>> + Send + Unpin> Chunks for S {}

fn range_error(msg: String) -> StoreError {
    StoreError::UploadRange(msg)
}

impl Upload {
    /// Create the upload file `dir/<id>`.
    pub async fn create(dir: &Path, id: &str, repo: &str) -> Result<Upload> {
        let path = dir.join(id);
        let mut upload = Upload {
            repo: repo.to_string(),
            id: id.to_string(),
            path,
            hasher: Hasher::new(Algorithm::Sha256),
            size: 0,
            last_used: Instant::now(),
        };
        let created = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&upload.path)
            .await;
        if let Err(e) = created {
            return Err(upload.io_error("creating", e));
        }
        upload.last_used = Instant::now();
        Ok(upload)
    }

    /// An I/O error naming this upload and its file (never its content).
    fn io_error(&self, doing: &str, e: std::io::Error) -> StoreError {
        StoreError::Internal(anyhow::anyhow!(
            "upload {}: {doing} {}: {e}",
            self.id,
            self.path.display()
        ))
    }

    /// How long since a request last worked on it.
    pub fn idle_for(&self) -> std::time::Duration {
        self.last_used.elapsed()
    }

    /// Bytes received so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append incoming bytes. `range` is the declared range (inclusive
    /// start and end): its start must be the current size and the bytes
    /// must have exactly its length. The blob may grow to `max_bytes`.
    pub async fn append(
        &mut self,
        chunks: impl Chunks,
        max_bytes: u64,
        range: Option<(u64, u64)>,
    ) -> Result<u64> {
        // The length the range declares (client numbers: checked arithmetic).
        let declared = match range {
            None => None,
            Some((start, end)) => {
                if start != self.size || end < start {
                    return Err(range_error(format!(
                        "upload {}: Content-Range {start}-{end} does not continue the upload at offset {}",
                        self.id, self.size
                    )));
                }
                let len = (end - start).checked_add(1);
                match len.filter(|n| start.checked_add(*n).is_some_and(|e| e <= max_bytes)) {
                    Some(n) => Some(n),
                    None => {
                        return Err(range_error(format!(
                            "upload {}: Content-Range {start}-{end} reaches past this registry's blob limit of {} bytes",
                            self.id, max_bytes
                        )))
                    }
                }
            }
        };
        let mut file = match self.open().await {
            Ok(f) => f,
            Err(e) => return Err(self.io_error("opening", e)),
        };
        let saved = (self.hasher.clone(), self.size);
        let result = self.write_chunks(&mut file, chunks, max_bytes).await;
        self.last_used = Instant::now();
        let written = self.size - saved.1;
        let failure = match result {
            Err(e) => Some(e),
            Ok(()) => match (range, declared) {
                (Some((start, end)), Some(n)) if written != n => Some(range_error(format!(
                    "upload {}: Content-Range {start}-{end} declares {n} bytes but the body had {written}",
                    self.id
                ))),
                _ => None,
            },
        };
        if let Some(e) = failure {
            self.hasher = saved.0;
            self.size = saved.1;
            if let Err(io) = file.set_len(saved.1).await {
                // The next chunk's open cuts the file back instead.
                tracing::warn!(upload = %self.id, "rolling back {}: {io}", self.path.display());
            }
            return Err(e);
        }
        Ok(written)
    }

    /// Open the upload's file for writing at its current size (bytes
    /// past it, left by a chunk that could not be rolled back, are cut).
    async fn open(&self) -> std::io::Result<tokio::fs::File> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&self.path)
            .await?;
        if file.metadata().await?.len() > self.size {
            file.set_len(self.size).await?;
        }
        file.seek(SeekFrom::Start(self.size)).await?;
        Ok(file)
    }

    async fn write_chunks(
        &mut self,
        file: &mut tokio::fs::File,
        mut chunks: impl Chunks,
        max_bytes: u64,
    ) -> Result<()> {
        while let Some(chunk) = chunks.next().await.transpose()? {
            if self.size + chunk.len() as u64 > max_bytes {
                return Err(StoreError::TooLarge(format!(
                    "the blob would exceed this registry's limit of {max_bytes} bytes"
                )));
            }
            if let Err(e) = file.write_all(&chunk).await {
                return Err(self.io_error("writing", e));
            }
            self.hasher.update(&chunk);
            self.size += chunk.len() as u64;
        }
        if let Err(e) = file.flush().await {
            return Err(self.io_error("writing", e));
        }
        Ok(())
    }

    /// Check the content against `expected`, sync it, and hand back the
    /// file path and size to be renamed into the blob store. On a
    /// mismatch the upload file is removed.
    pub async fn finish(self, expected: &Digest) -> Result<(PathBuf, u64)> {
        let actual = match expected.algorithm() {
            Algorithm::Sha256 => self.hasher.clone().finish(),
            alg => {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(&path)
                        .and_then(|f| airlift_oci::digest::hash_reader(alg, f))
                        .map(|(d, _)| d)
                })
                .await?
                .map_err(|e| self.io_error("hashing", e))?
            }
        };
        if &actual != expected {
            self.discard().await;
            return Err(StoreError::DigestMismatch {
                message: format!(
                    "the uploaded content ({} bytes) has digest {actual}, not {expected}",
                    self.size
                ),
                expected: expected.clone(),
                actual,
            });
        }
        let synced = match tokio::fs::File::open(&self.path).await {
            Ok(f) => f.sync_all().await,
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            return Err(self.io_error("syncing", e));
        }
        Ok((self.path.clone(), self.size))
    }

    /// Remove the upload file.
    pub async fn discard(&self) {
        if let Err(e) = tokio::fs::remove_file(&self.path).await {
            tracing::warn!("removing upload {}: {e}", self.path.display());
        }
    }
}
