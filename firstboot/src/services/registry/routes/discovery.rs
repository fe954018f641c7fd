//! `/v2/`, `_catalog`, `tags/list` and the referrers API.

use airlift_oci::documents::media;
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::{authorization, respond, Query, Repo, OCI_FILTERS_APPLIED};
use crate::services::registry::auth::Decision;
use crate::services::registry::error::{Code, RegistryError, Result};
use crate::services::registry::route::parse_digest;
use crate::services::registry::store::index::paginate;
use crate::services::registry::Registry;

/// `GET /v2/`: 200 `{}`. When pushing is enabled, a request without
/// valid credentials gets the Basic challenge, so clients learn to send
/// them; pulls themselves stay anonymous.
pub async fn base(reg: &Registry, headers: &HeaderMap) -> Result<Response> {
    if reg.auth.check(authorization(headers)).await == Decision::Challenge {
        return Err(RegistryError::new(
            Code::Unauthorized,
            "credentials are needed to push; pulling is anonymous",
        ));
    }
    json_response(StatusCode::OK, &json!({}), Vec::new())
}

fn json_response(
    status: StatusCode,
    v: &serde_json::Value,
    mut headers: Vec<(axum::http::HeaderName, String)>,
) -> Result<Response> {
    headers.push((header::CONTENT_TYPE, "application/json".to_string()));
    respond(
        status,
        &headers,
        Body::from(serde_json::to_vec(v).unwrap_or_default()),
    )
}

fn page_size(q: &Query) -> Result<Option<usize>> {
    q.get("n")
        .map(|n| {
            n.parse::<usize>().map_err(|_| {
                RegistryError::new(Code::Unsupported, format!("n={n:?} is not a number"))
                    .with_status(StatusCode::BAD_REQUEST)
            })
        })
        .transpose()
}

/// `GET /v2/_catalog?n=&last=`.
pub fn catalog(reg: &Registry, q: &Query) -> Result<Response> {
    let n = page_size(q)?;
    let (page, more) = paginate(reg.store.catalog(), n, q.get("last"));
    let mut headers = Vec::new();
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        headers.push((
            header::LINK,
            format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""),
        ));
    }
    json_response(StatusCode::OK, &json!({ "repositories": page }), headers)
}

/// `GET /v2/<name>/tags/list?n=&last=`.
pub fn tags(reg: &Registry, repo: &Repo, q: &Query) -> Result<Response> {
    let all = reg.store.tags(&repo.name).ok_or_else(|| {
        RegistryError::new(
            Code::NameUnknown,
            format!("repository {} is not known", repo.name),
        )
    })?;
    let n = page_size(q)?;
    let (page, more) = paginate(all, n, q.get("last"));
    let mut headers = Vec::new();
    if let (true, Some(n), Some(last)) = (more, n, page.last()) {
        let sep = if repo.ns.is_some() { '&' } else { '?' };
        headers.push((
            header::LINK,
            format!(
                "<{}{sep}n={n}&last={last}>; rel=\"next\"",
                repo.url("tags/list")
            ),
        ));
    }
    json_response(
        StatusCode::OK,
        &json!({ "name": repo.url_name, "tags": page }),
        headers,
    )
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: an OCI index,
/// empty for an unknown subject.
pub fn referrers(reg: &Registry, repo: &Repo, digest: &str, q: &Query) -> Result<Response> {
    let subject = parse_digest(digest)?;
    let mut list = reg.store.referrers(&repo.name, &subject);
    let mut headers = vec![(header::CONTENT_TYPE, media::OCI_INDEX.to_string())];
    if let Some(t) = q.get("artifactType") {
        list.retain(|d| d.artifact_type.as_deref() == Some(t));
        headers.push((OCI_FILTERS_APPLIED, "artifactType".to_string()));
    }
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": list,
    });
    respond(
        StatusCode::OK,
        &headers,
        Body::from(serde_json::to_vec(&body).unwrap_or_default()),
    )
}
