//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`.

use airlift_oci::digest::Hasher;
use airlift_oci::documents::media;
use airlift_oci::reference::validate_tag;
use airlift_oci::{Algorithm, Digest};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::{respond, Query, Repo, DOCKER_CONTENT_DIGEST, OCI_SUBJECT, OCI_TAG};
use crate::services::registry::body::read_limited;
use crate::services::registry::error::{Code, RegistryError, Result};
use crate::services::registry::manifest::{inspect, Inspected, MAX_MANIFEST_BYTES};
use crate::services::registry::route::{parse_reference, ManifestRef};
use crate::services::registry::store::{NewManifest, Removed};
use crate::services::registry::Registry;

/// 405 `UNSUPPORTED`: deletes need `--allow-delete`.
pub fn deletes_disabled() -> RegistryError {
    RegistryError::new(
        Code::Unsupported,
        "deleting is disabled on this registry (start it with --allow-delete)",
    )
}

/// 405 `UNSUPPORTED`: the content is in a read-only layer.
pub fn read_only(what: &str) -> RegistryError {
    RegistryError::new(
        Code::Unsupported,
        format!("{what} is in a read-only layer (the bundle) and cannot be deleted"),
    )
}

fn unknown(reg: &Registry, repo: &Repo, reference: &str) -> RegistryError {
    if reg.store.repo_exists(&repo.name) {
        RegistryError::new(
            Code::ManifestUnknown,
            format!("manifest {reference} is not in {}", repo.name),
        )
    } else {
        RegistryError::new(
            Code::NameUnknown,
            format!("repository {} is not known", repo.name),
        )
    }
    .with_detail(serde_json::json!({ "name": repo.name, "reference": reference }))
}

/// `GET`/`HEAD` of a manifest; `authorization` is the request's header
/// (the signature gate lets replication through by it).
pub async fn get(
    reg: &Registry,
    repo: &Repo,
    reference: &str,
    head: bool,
    authorization: Option<&str>,
) -> Result<Response> {
    let r = match parse_reference(reference) {
        Ok(r) => r,
        // A tag outside the grammar names nothing that can exist: a read
        // answers 404 like any missing manifest (a push keeps the 400).
        Err(e) if e.code == Code::ManifestInvalid => return Err(unknown(reg, repo, reference)),
        Err(e) => return Err(e),
    };
    let (digest, info) = reg
        .store
        .find(&repo.name, &r)
        .await?
        .ok_or_else(|| unknown(reg, repo, reference))?;
    if let Some(gate) = &reg.gate {
        gate.check(&reg.store, &repo.name, &r, &digest, authorization)
            .await?;
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(reg.store.manifest_bytes(&digest).await?)
    };
    // The hottest answer: values built from owned strings (no copies),
    // the header map sized once.
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.reserve(6);
    h.insert(header::CONTENT_TYPE, value(info.media_type)?);
    h.insert(header::ETAG, value(format!("\"{digest}\""))?);
    h.insert(DOCKER_CONTENT_DIGEST, value(digest.to_string())?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    Ok(resp)
}

/// A header value from a stored string.
fn value(s: String) -> Result<HeaderValue> {
    HeaderValue::try_from(s)
        .map_err(|e| RegistryError::internal(anyhow::anyhow!("a stored manifest header: {e}")))
}

/// The most `tag` parameters one push may carry (the spec asks for at
/// least 10; more answer 414).
pub const MAX_TAG_PARAMS: usize = 100;

/// The tags a push applies: the reference's, or the `tag` query
/// parameters of a push by digest (end-7b), in order, without repeats.
fn push_tags<'a>(r: &'a ManifestRef, q: &'a Query) -> Result<Vec<&'a str>> {
    let params: Vec<&str> = q.all("tag").collect();
    if let ManifestRef::Tag(t) = r {
        if !params.is_empty() {
            return Err(RegistryError::new(
                Code::ManifestInvalid,
                "tag parameters go with a push by digest, not by tag",
            ));
        }
        return Ok(vec![t.as_str()]);
    }
    if params.len() > MAX_TAG_PARAMS {
        return Err(RegistryError::new(
            Code::ManifestInvalid,
            format!("at most {MAX_TAG_PARAMS} tag parameters per push"),
        )
        .with_status(StatusCode::URI_TOO_LONG));
    }
    let mut tags = Vec::with_capacity(params.len());
    for t in params {
        validate_tag(t).map_err(|m| {
            RegistryError::new(Code::ManifestInvalid, format!("tag parameter: {m}"))
        })?;
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    Ok(tags)
}

/// A pushed manifest's body, read within the size cap, with the media
/// type its `Content-Type` names (parameters dropped).
async fn read_body(reg: &Registry, req: Request) -> Result<(Bytes, Option<String>)> {
    let too_big = || {
        RegistryError::new(
            Code::ManifestInvalid,
            format!("the manifest is larger than {MAX_MANIFEST_BYTES} bytes"),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > MAX_MANIFEST_BYTES as u64) {
        return Err(too_big());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_string());
    let bytes = read_limited(
        req.into_body(),
        MAX_MANIFEST_BYTES,
        reg.limits.body_stall,
        Code::ManifestInvalid,
    )
    .await?;
    Ok((bytes, content_type))
}

/// The digest of `bytes` (in the reference's algorithm when pushed by
/// digest, which must then match; sha256 for a tag).
fn content_digest(r: &ManifestRef, bytes: &[u8]) -> Result<Digest> {
    let alg = match r {
        ManifestRef::Digest(d) => d.algorithm(),
        ManifestRef::Tag(_) => Algorithm::Sha256,
    };
    let mut h = Hasher::new(alg);
    h.update(bytes);
    let digest = h.finish();
    if let ManifestRef::Digest(want) = r {
        if want != &digest {
            return Err(RegistryError::new(
                Code::DigestInvalid,
                format!("the manifest's content has digest {digest}, not {want}"),
            ));
        }
    }
    Ok(digest)
}

/// Children of an index become members of this repository too, so they
/// can be pulled by digest here even if pushed elsewhere.
async fn adopt_children(reg: &Registry, repo: &Repo, inspected: &Inspected) -> Result<()> {
    if !inspected.is_index {
        return Ok(());
    }
    for child in &inspected.children {
        if media::is_index(&child.media_type) || media::is_manifest(&child.media_type) {
            reg.store
                .adopt_manifest(&repo.name, &child.digest, &child.media_type)
                .await?;
        }
    }
    Ok(())
}

/// 201 with the stored manifest's location and digest, its subject, and
/// (for a push by digest) the tags applied.
fn stored(
    repo: &Repo,
    r: &ManifestRef,
    digest: &Digest,
    inspected: &Inspected,
    tags: &[&str],
) -> Result<Response> {
    let mut headers = vec![
        (header::LOCATION, repo.url(&format!("manifests/{digest}"))),
        (DOCKER_CONTENT_DIGEST, digest.to_string()),
        (header::CONTENT_LENGTH, "0".to_string()),
    ];
    if let Some(s) = &inspected.subject {
        headers.push((OCI_SUBJECT, s.digest.to_string()));
    }
    let mut resp = respond(StatusCode::CREATED, &headers, Body::empty())?;
    if matches!(r, ManifestRef::Digest(_)) {
        for t in tags {
            // A valid tag is always a valid header value.
            if let Ok(v) = HeaderValue::from_str(t) {
                resp.headers_mut().append(OCI_TAG, v);
            }
        }
    }
    Ok(resp)
}

/// `PUT /v2/<name>/manifests/<reference>`: read and check the document,
/// check its children are stored, adopt an index's children, store it
/// with its tags and referrer entry.
pub async fn put(
    reg: &Registry,
    repo: &Repo,
    reference: &str,
    query: &Query,
    req: Request,
) -> Result<Response> {
    let r = parse_reference(reference)?;
    let tags = push_tags(&r, query)?;
    let (bytes, content_type) = read_body(reg, req).await?;
    let inspected = inspect(&bytes, content_type.as_deref())?;
    let digest = content_digest(&r, &bytes)?;
    super::manifest_children::check(reg, &inspected).await?;
    adopt_children(reg, repo, &inspected).await?;
    let referrer = inspected.subject.as_ref().map(|s| {
        (
            s.digest.clone(),
            inspected.referrer_descriptor(&digest, bytes.len() as u64),
        )
    });
    // Checked again under the store's write lock: a garbage collection
    // may have deleted one since `check`.
    let blobs: Vec<Digest> = inspected
        .children
        .iter()
        .filter(|c| !c.extra.contains_key("urls"))
        .map(|c| c.digest.clone())
        .collect();
    reg.store
        .put_manifest_present(
            NewManifest {
                repo: &repo.name,
                tags: &tags,
                digest: &digest,
                bytes,
                media_type: &inspected.media_type,
                referrer,
            },
            &blobs,
        )
        .await?;
    tracing::info!(repository = %repo.name, reference, %digest, ?tags, "manifest stored");
    stored(repo, &r, &digest, &inspected, &tags)
}

pub async fn delete(reg: &Registry, repo: &Repo, reference: &str) -> Result<Response> {
    if !reg.allow_delete {
        return Err(deletes_disabled());
    }
    let removed = match parse_reference(reference)? {
        ManifestRef::Digest(d) => reg.store.delete_manifest(&repo.name, &d).await?,
        ManifestRef::Tag(t) => reg.store.delete_tag(&repo.name, &t).await?,
    };
    match removed {
        Removed::Yes => {
            tracing::info!(repository = %repo.name, reference, "deleted");
            respond(StatusCode::ACCEPTED, &[], Body::empty())
        }
        Removed::NotFound => Err(unknown(reg, repo, reference)),
        Removed::ReadOnly => Err(read_only(reference)),
    }
}
