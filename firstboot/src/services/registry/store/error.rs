//! The storage's own error type: what went wrong in storage terms
//! (missing content, a broken upload, a full upload table, a fault).
//! It knows no HTTP: the routes turn it into the spec's error JSON in
//! one place (`From<StoreError> for RegistryError` in the registry's
//! `error` module).

use airlift_oci::Digest;

/// What a storage operation failed with.
#[derive(Debug)]
pub enum StoreError {
    /// A blob's bytes are not (or no longer) stored.
    BlobGone(String),
    /// A member manifest's bytes are gone.
    ManifestGone(String),
    /// A manifest to adopt or reference is not stored at all.
    ManifestMissing(String),
    /// No such upload in progress (finished, cancelled or expired).
    UploadUnknown(String),
    /// A chunk's declared range does not continue the upload or reaches
    /// past the size limit.
    UploadRange(String),
    /// The incoming bytes stalled or broke off.
    Incoming(String),
    /// The blob would grow past the size limit.
    TooLarge(String),
    /// The content does not have the digest it was pushed as.
    DigestMismatch {
        message: String,
        expected: Digest,
        actual: Digest,
    },
    /// An upload cap is reached.
    Busy(String),
    /// Accepting the bytes would eat into the data folder's reserve.
    NoSpace(crate::sys::disk_space::NoSpace),
    /// A fault of the storage itself (I/O, the bucket, a poisoned lock).
    Internal(anyhow::Error),
}

/// Storage operations return this.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

impl StoreError {
    /// A fault, from a message.
    pub fn internal(msg: impl std::fmt::Display) -> StoreError {
        StoreError::Internal(anyhow::anyhow!("{msg}"))
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::BlobGone(m)
            | StoreError::ManifestGone(m)
            | StoreError::ManifestMissing(m)
            | StoreError::UploadUnknown(m)
            | StoreError::UploadRange(m)
            | StoreError::Incoming(m)
            | StoreError::TooLarge(m)
            | StoreError::Busy(m)
            | StoreError::DigestMismatch { message: m, .. } => f.write_str(m),
            StoreError::NoSpace(e) => write!(f, "{e}"),
            StoreError::Internal(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<anyhow::Error> for StoreError {
    fn from(err: anyhow::Error) -> Self {
        StoreError::Internal(err)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        StoreError::Internal(err.into())
    }
}

impl From<tokio::task::JoinError> for StoreError {
    fn from(err: tokio::task::JoinError) -> Self {
        StoreError::Internal(anyhow::anyhow!("a storage task failed: {err}"))
    }
}

/// A poisoned lock as a fault.
pub fn lock_poisoned<T>(_: T) -> StoreError {
    StoreError::internal("a registry lock was poisoned")
}
