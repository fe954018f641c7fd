//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`: the store finds the
//! blob (whichever backend holds it) and reads the requested range as a
//! stream; HEAD answers from its size alone.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{parse_range, respond, DOCKER_CONTENT_DIGEST};
use crate::services::registry::error::{Code, RegistryError, Result};
use crate::services::registry::route::parse_digest;
use crate::services::registry::store::{BlobRemoved, BlobStream, Removed};
use crate::services::registry::Registry;

fn unknown(d: &str) -> RegistryError {
    RegistryError::new(Code::BlobUnknown, format!("blob {d} is not stored"))
        .with_detail(serde_json::json!({ "digest": d }))
}

fn not_in(repo: &str, d: &str) -> RegistryError {
    RegistryError::new(Code::BlobUnknown, format!("blob {d} is not in {repo}"))
        .with_detail(serde_json::json!({ "digest": d, "name": repo }))
}

/// `GET`/`HEAD` of a blob through `repo`: served only if `repo` has it
/// (see [`crate::services::registry::store::Store::blob_in`]).
pub async fn get(
    reg: &Registry,
    repo: &str,
    digest: &str,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response> {
    let d = parse_digest(digest)?;
    let blob = reg
        .store
        .blob_in(repo, &d)
        .await
        .ok_or_else(|| not_in(repo, digest))?;
    let size = blob.size;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let mut out = vec![
        (DOCKER_CONTENT_DIGEST, d.to_string()),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
        (header::ETAG, format!("\"{d}\"")),
    ];
    let (status, start, len) = match parse_range(range, size) {
        Err(_) => {
            let mut r = RegistryError::new(
                Code::BlobUnknown,
                format!("range {range:?} is outside blob {d} of {size} bytes"),
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE)
            .into_response();
            if let Ok(v) = format!("bytes */{size}").parse() {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((s, e))) => {
            out.push((header::CONTENT_RANGE, format!("bytes {s}-{e}/{size}")));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
    };
    out.push((header::CONTENT_LENGTH, len.to_string()));
    if head {
        return respond(status, &out, Body::empty());
    }
    let (body, file) = match blob.read(start, len).await? {
        BlobStream::Whole(bytes) => (Body::from(bytes), None),
        BlobStream::Chunks(stream) => (Body::from_stream(stream), None),
        BlobStream::File(range) => (Body::from_stream(range.clone().stream()), Some(range)),
    };
    let mut resp = respond(status, &out, body)?;
    if let Some(range) = file {
        // A plain-HTTP connection sends the file with sendfile(2)
        // instead of the body (crate::services::registry::conn).
        resp.extensions_mut().insert(range);
    }
    Ok(resp)
}

/// `DELETE /v2/<name>/blobs/<digest>`: the bytes are removed only when
/// no repository's manifest references them (202 either way).
pub async fn delete(reg: &Registry, repo: &str, digest: &str) -> Result<Response> {
    if !reg.allow_delete {
        return Err(super::manifests::deletes_disabled());
    }
    let d = parse_digest(digest)?;
    match reg.store.delete_blob_in(repo, &d).await? {
        BlobRemoved::Done(Removed::Yes) | BlobRemoved::Kept(_) => {
            respond(StatusCode::ACCEPTED, &[], Body::empty())
        }
        BlobRemoved::Done(Removed::NotFound) => Err(unknown(digest)),
        BlobRemoved::Done(Removed::ReadOnly) => Err(super::manifests::read_only(&d.to_string())),
    }
}
