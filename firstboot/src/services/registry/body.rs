//! Reading request bodies with limits: a size cap for manifests and a
//! per-chunk stall timeout, so a slow or stalled client cannot hold a
//! request open forever.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use super::error::{Code, RegistryError, Result};
use super::store::StoreError;

/// A body's chunks as the store takes them. A chunk that does not
/// arrive within `stall`, or a broken body, ends the stream with
/// [`StoreError::Incoming`] (answered `BLOB_UPLOAD_INVALID`).
pub fn chunks(
    body: Body,
    stall: Duration,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + Unpin {
    let stream = body.into_data_stream();
    futures_util::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        let item = match tokio::time::timeout(stall, stream.next()).await {
            Err(_) => Err(StoreError::Incoming(format!(
                "the request body stalled for more than {}s",
                stall.as_secs()
            ))),
            Ok(None) => return None,
            Ok(Some(Err(e))) => Err(StoreError::Incoming(format!(
                "the request body broke off: {e}"
            ))),
            Ok(Some(Ok(b))) => Ok(b),
        };
        // After an error the stream ends.
        let next = item.is_ok().then_some(stream);
        Some((item, next))
    })
    .boxed()
}

/// Read a whole body of at most `max` bytes; a larger one is answered
/// with `code` and 413.
pub async fn read_limited(body: Body, max: usize, stall: Duration, code: Code) -> Result<Bytes> {
    let mut stream = chunks(body, stall);
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::new(code, e.to_string()))?;
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
