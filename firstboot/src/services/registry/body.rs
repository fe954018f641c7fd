//! Reading request bodies with limits: a size cap for manifests and a
//! per-chunk stall timeout, so a slow or stalled client cannot hold a
//! request open forever.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::{Code, RegistryError, Result};

/// The next chunk of a body, or None at its end. A chunk that does not
/// arrive within `stall`, or a broken body, is `BLOB_UPLOAD_INVALID`.
pub async fn next_chunk(
    stream: &mut axum::body::BodyDataStream,
    stall: Duration,
) -> Result<Option<Bytes>> {
    match tokio::time::timeout(stall, stream.next()).await {
        Err(_) => Err(RegistryError::new(
            Code::BlobUploadInvalid,
            format!(
                "the request body stalled for more than {}s",
                stall.as_secs()
            ),
        )),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(RegistryError::new(
            Code::BlobUploadInvalid,
            format!("the request body broke off: {e}"),
        )),
        Ok(Some(Ok(b))) => Ok(Some(b)),
    }
}

/// Read a whole body of at most `max` bytes; a larger one is answered
/// with `code` and 413.
pub async fn read_limited(body: Body, max: usize, stall: Duration, code: Code) -> Result<Bytes> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = next_chunk(&mut stream, stall)
        .await
        .map_err(|e| RegistryError::new(code, e.message))?
    {
        if buf.len() + chunk.len() > max {
            return Err(RegistryError::new(
                code,
                format!("the body is larger than the limit of {max} bytes"),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
