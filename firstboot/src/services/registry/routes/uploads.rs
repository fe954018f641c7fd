//! Blob uploads: `POST` (start, monolithic with `?digest=`, or
//! cross-repository `?mount=&from=`), chunked `PATCH`, `PUT ?digest=`
//! to finish, `GET` for status and `DELETE` to cancel. Bytes are taken
//! only while the data folder keeps its reserve ([`crate::services::registry::space`]); an upload
//! refused for space is removed with its file (507 `DENIED`).

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::{respond, Query, Repo, DOCKER_CONTENT_DIGEST, DOCKER_UPLOAD_UUID};
use crate::services::registry::body::chunks;
use crate::services::registry::error::{Code, RegistryError, Result};
use crate::services::registry::route::{parse_digest, resolve_name};
use crate::services::registry::store::uploads::Upload;
use crate::services::registry::store::StoreError;
use crate::services::registry::Registry;

fn progress(repo: &Repo, id: &str, size: u64, status: StatusCode) -> Result<Response> {
    respond(
        status,
        &[
            (header::LOCATION, repo.url(&format!("blobs/uploads/{id}"))),
            (header::RANGE, format!("0-{}", size.saturating_sub(1))),
            (DOCKER_UPLOAD_UUID, id.to_string()),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
        Body::empty(),
    )
}

/// A `Content-Range` error: 416 with `BLOB_UPLOAD_INVALID`.
fn range_error(msg: String) -> RegistryError {
    RegistryError::new(Code::BlobUploadInvalid, msg).with_status(StatusCode::RANGE_NOT_SATISFIABLE)
}

fn created(repo: &Repo, digest: &str) -> Result<Response> {
    respond(
        StatusCode::CREATED,
        &[
            (header::LOCATION, repo.url(&format!("blobs/{digest}"))),
            (DOCKER_CONTENT_DIGEST, digest.to_string()),
            (header::CONTENT_LENGTH, "0".to_string()),
        ],
        Body::empty(),
    )
}

/// Parse `Content-Range: <start>-<end>` (a `bytes ` prefix is tolerated).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("");
    let spec = text
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or("");
    let parsed = spec
        .split_once('-')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some(r) => Ok(Some(r)),
        // The header is not echoed: a client's bytes stay out of errors and logs.
        None => Err(range_error(format!(
            "Content-Range ({} bytes) is not <start>-<end> with decimal offsets, e.g. 0-1023",
            v.len()
        ))),
    }
}

pub async fn start(reg: &Registry, repo: &Repo, q: &Query, req: Request) -> Result<Response> {
    if let Some(m) = q.get("mount") {
        let d = parse_digest(m)?;
        // With `from`, the blob must be in that repository; without it
        // (automatic mount, distribution-spec 1.1) anywhere in the store.
        let found = match q.get("from") {
            Some(from) => {
                let from = resolve_name(from, repo.ns.as_deref())?;
                reg.store.blob_in(&from, &d).await.is_some()
            }
            None => reg.store.blob(&d).await.is_some(),
        };
        if found {
            reg.store.link_blob(&repo.name, &d);
            tracing::debug!(repository = %repo.name, digest = %d, from = ?q.get("from"), "mounted");
            return created(repo, &d.to_string());
        }
    }
    let digest = q.get("digest").map(parse_digest).transpose()?;
    // A new upload needs the reserve free (its bytes are checked as they come).
    reg.space
        .check(&format!("a new upload to {}", repo.name), 0)?;
    let client = req
        .extensions()
        .get::<crate::services::registry::ClientAddr>()
        .map(|c| c.0);
    let id = reg.store.start_upload(&repo.name, client).await?;
    let Some(d) = digest else {
        return progress(repo, &id, 0, StatusCode::ACCEPTED);
    };
    // Monolithic: the body is the whole blob.
    let result: Result<_> = async {
        let slot = reg.store.upload(&repo.name, &id)?;
        let mut guard = slot.lock().await;
        let mut upload = guard.take().ok_or_else(|| gone(&id))?;
        let body = body(reg, &id, &repo.name, None, req);
        if let Err(e) = upload.append(body, reg.limits.max_blob_bytes, None).await {
            upload.discard().await;
            return Err(e.into());
        }
        finish(reg, &repo.name, upload, &d).await?;
        Ok(d)
    }
    .await;
    reg.store.forget_upload(&id);
    created(repo, &result?.to_string())
}

/// The request's body as the store takes it, checked against the
/// reserve: for the length it declares (`range`, else the body's exact
/// length, which `Content-Length` gives), or one window at a time.
fn body(
    reg: &Registry,
    id: &str,
    repo: &str,
    range: Option<(u64, u64)>,
    req: Request,
) -> impl crate::services::registry::store::uploads::Chunks {
    let declared = range
        .map(|(start, end)| end.saturating_sub(start).saturating_add(1))
        .or_else(|| req.body().size_hint().exact())
        .or_else(|| content_length(req.headers()));
    let what = format!("the upload {id} to {repo}");
    let bytes = chunks(req.into_body(), reg.limits.body_stall);
    reg.space.guard(bytes, what, declared)
}

/// A well-formed `Content-Length`, if the request has one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// After a refusal for space the upload is removed with its file, so
/// nothing it wrote stays on the full disk; any other error leaves it
/// resumable.
async fn drop_if_no_space(reg: &Registry, id: &str, e: &StoreError, upload: Option<Upload>) {
    if !matches!(e, StoreError::NoSpace(_)) {
        return;
    }
    if let Some(u) = upload {
        u.discard().await;
    }
    reg.store.forget_upload(id);
    tracing::info!(upload = %id, "upload removed: {e}");
}

fn gone(id: &str) -> RegistryError {
    RegistryError::new(
        Code::BlobUploadUnknown,
        format!("upload {id:?} is not in progress"),
    )
}

async fn finish(reg: &Registry, repo: &str, upload: Upload, d: &airlift_oci::Digest) -> Result<()> {
    let (file, size) = upload.finish(d).await?;
    reg.store.commit_blob(file, d).await?;
    reg.store.link_blob(repo, d);
    tracing::debug!(digest = %d, size, "blob stored");
    Ok(())
}

pub async fn patch(reg: &Registry, repo: &Repo, id: &str, req: Request) -> Result<Response> {
    let range = content_range(req.headers())?;
    let slot = reg.store.upload(&repo.name, id)?;
    let mut guard = slot.lock().await;
    let upload = guard.as_mut().ok_or_else(|| gone(id))?;
    let body = body(reg, id, &repo.name, range, req);
    if let Err(e) = upload.append(body, reg.limits.max_blob_bytes, range).await {
        let taken = matches!(e, StoreError::NoSpace(_))
            .then(|| guard.take())
            .flatten();
        drop_if_no_space(reg, id, &e, taken).await;
        return Err(e.into());
    }
    progress(repo, id, upload.size(), StatusCode::ACCEPTED)
}

pub async fn put(
    reg: &Registry,
    repo: &Repo,
    id: &str,
    q: &Query,
    req: Request,
) -> Result<Response> {
    let digest = q.get("digest").ok_or_else(|| {
        RegistryError::new(Code::DigestInvalid, "finishing an upload needs ?digest=")
    })?;
    let d = parse_digest(digest)?;
    let range = content_range(req.headers())?;
    let slot = reg.store.upload(&repo.name, id)?;
    let mut guard = slot.lock().await;
    let mut upload = guard.take().ok_or_else(|| gone(id))?;
    let body = body(reg, id, &repo.name, range, req);
    if let Err(e) = upload.append(body, reg.limits.max_blob_bytes, range).await {
        if matches!(e, StoreError::NoSpace(_)) {
            drop_if_no_space(reg, id, &e, Some(upload)).await;
        } else {
            // The chunk was rolled back: the upload stays resumable.
            *guard = Some(upload);
        }
        return Err(e.into());
    }
    let result = finish(reg, &repo.name, upload, &d).await;
    drop(guard);
    reg.store.forget_upload(id);
    result?;
    created(repo, &d.to_string())
}

pub async fn status(reg: &Registry, repo: &Repo, id: &str) -> Result<Response> {
    let slot = reg.store.upload(&repo.name, id)?;
    let guard = slot.lock().await;
    let upload = guard.as_ref().ok_or_else(|| gone(id))?;
    progress(repo, id, upload.size(), StatusCode::NO_CONTENT)
}

pub async fn cancel(reg: &Registry, repo: &Repo, id: &str) -> Result<Response> {
    let slot = reg.store.upload(&repo.name, id)?;
    let mut guard = slot.lock().await;
    let upload = guard.take().ok_or_else(|| gone(id))?;
    upload.discard().await;
    drop(guard);
    reg.store.forget_upload(id);
    respond(StatusCode::NO_CONTENT, &[], Body::empty())
}

#[cfg(test)]
mod content_range_tests {
    use super::*;

    fn parse(v: &str) -> std::result::Result<Option<(u64, u64)>, String> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, v.parse().unwrap());
        content_range(&h).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn parses_offsets_and_never_echoes_a_bad_header() {
        assert_eq!(parse("0-1023"), Ok(Some((0, 1023))));
        assert_eq!(parse("bytes 5-9/*"), Ok(Some((5, 9))));
        assert_eq!(content_range(&HeaderMap::new()).unwrap(), None);
        let e = parse("secret-token-xyz").unwrap_err();
        assert!(!e.contains("secret") && !e.contains("xyz"), "{e}");
        assert!(e.contains("Content-Range (16 bytes)"), "{e}");
    }
}
