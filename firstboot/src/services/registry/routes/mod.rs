//! The HTTP surface: one fallback handler parses the path by hand
//! (repository names contain `/`) and dispatches to thin handlers, one
//! file per endpoint group.

mod blobs;
mod discovery;
mod manifest_children;
mod manifests;
mod range;
mod uploads;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use super::error::{Code, RegistryError, Result};
use super::route::{parse_path, query_params, resolve_name, Target};
use super::Registry;
use airlift_oci::reference::DOCKER_HUB;

pub use manifests::MAX_TAG_PARAMS;
pub use range::parse_range;

/// `Docker-Content-Digest`.
pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// `Docker-Upload-UUID`.
pub const DOCKER_UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
/// `OCI-Tag` (one per tag a push by digest applied).
pub const OCI_TAG: HeaderName = HeaderName::from_static("oci-tag");
/// `OCI-Subject`.
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
/// `OCI-Filters-Applied`.
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");

/// The registry's router; every request goes to one dispatcher.
pub fn router(state: Arc<Registry>) -> Router {
    Router::new().fallback(dispatch).with_state(state)
}

/// The repository a request addresses, as the client named it and as stored.
pub struct Repo {
    /// The name in the URL (`org/app` or `quay.io/org/app`).
    pub url_name: String,
    /// The `ns` query parameter, if any.
    pub ns: Option<String>,
    /// The stored name (`quay.io/org/app`).
    pub name: String,
}

impl Repo {
    fn new(url_name: &str, ns: Option<String>) -> Result<Repo> {
        let name = resolve_name(url_name, ns.as_deref())?;
        Ok(Repo {
            url_name: url_name.to_string(),
            ns,
            name,
        })
    }

    /// For reads: a bare name (no registry host, no `ns`) that the local
    /// namespace does not hold is Docker Hub's. That is what Docker's
    /// `registry-mirrors` sends (`/v2/library/busybox/...`): it allows no
    /// path on a mirror URL and sends no `ns`.
    fn for_read(reg: &Registry, url_name: &str, ns: Option<String>) -> Result<Repo> {
        let mut repo = Repo::new(url_name, ns)?;
        if repo.ns.is_none() && !reg.store.repo_exists(&repo.name) {
            if let Ok(hub) = resolve_name(url_name, Some(DOCKER_HUB)) {
                if hub != repo.name && reg.store.repo_exists(&hub) {
                    repo.name = hub;
                }
            }
        }
        Ok(repo)
    }

    /// A URL under this repository as the client addressed it
    /// (`/v2/<url_name>/<tail>`, keeping `ns`).
    pub fn url(&self, tail: &str) -> String {
        match &self.ns {
            Some(ns) => format!("/v2/{}/{tail}?ns={ns}", self.url_name),
            None => format!("/v2/{}/{tail}", self.url_name),
        }
    }
}

/// A request's decoded query parameters.
pub struct Query(Vec<(String, String)>);

impl Query {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in request order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

async fn dispatch(State(reg): State<Arc<Registry>>, req: Request) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = match handle(&reg, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %uri, "{e}");
            e.into_response()
        }
    };
    tracing::debug!(%method, %uri, status = resp.status().as_u16(), "request");
    resp.headers_mut()
        .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
    resp
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn unsupported(method: &Method) -> RegistryError {
    RegistryError::new(Code::Unsupported, format!("{method} is not supported here"))
}

async fn handle(reg: &Registry, req: Request) -> Result<Response> {
    let target = parse_path(req.uri().path()).ok_or_else(|| {
        RegistryError::new(
            Code::NameUnknown,
            format!("no such endpoint: {}", req.uri().path()),
        )
        .with_status(StatusCode::NOT_FOUND)
    })?;
    let query = Query(query_params(req.uri().query()));
    let method = req.method().clone();
    let is_read = method == Method::GET || method == Method::HEAD;
    let is_push = !is_read || matches!(target, Target::Upload(..));
    if is_push && target != Target::Base {
        reg.auth.require_push(authorization(req.headers())).await?;
    }
    let ns = query.get("ns").map(str::to_string);
    match target {
        Target::Base if is_read => discovery::base(reg, req.headers()).await,
        Target::Catalog if method == Method::GET => discovery::catalog(reg, &query),
        Target::Tags(n) if method == Method::GET => {
            discovery::tags(reg, &Repo::for_read(reg, &n, ns)?, &query)
        }
        Target::Referrers(n, d) if method == Method::GET => {
            discovery::referrers(reg, &Repo::for_read(reg, &n, ns)?, &d, &query)
        }
        Target::Manifest(n, r) => {
            let repo = if is_read {
                Repo::for_read(reg, &n, ns)?
            } else {
                Repo::new(&n, ns)?
            };
            match method {
                Method::GET | Method::HEAD => {
                    let auth = authorization(req.headers());
                    manifests::get(reg, &repo, &r, method == Method::HEAD, auth).await
                }
                Method::PUT => manifests::put(reg, &repo, &r, &query, req).await,
                Method::DELETE => manifests::delete(reg, &repo, &r).await,
                m => Err(unsupported(&m)),
            }
        }
        Target::Blob(n, d) => {
            let repo = if is_read {
                Repo::for_read(reg, &n, ns)?
            } else {
                Repo::new(&n, ns)?
            };
            match method {
                Method::GET | Method::HEAD => {
                    blobs::get(reg, &repo.name, &d, req.headers(), method == Method::HEAD).await
                }
                Method::DELETE => blobs::delete(reg, &repo.name, &d).await,
                m => Err(unsupported(&m)),
            }
        }
        Target::Upload(n, None) if method == Method::POST => {
            uploads::start(reg, &Repo::new(&n, ns)?, &query, req).await
        }
        Target::Upload(n, Some(id)) => {
            let repo = Repo::new(&n, ns)?;
            match method {
                Method::GET => uploads::status(reg, &repo, &id).await,
                Method::PATCH => uploads::patch(reg, &repo, &id, req).await,
                Method::PUT => uploads::put(reg, &repo, &id, &query, req).await,
                Method::DELETE => uploads::cancel(reg, &repo, &id).await,
                m => Err(unsupported(&m)),
            }
        }
        _ => Err(unsupported(&method)),
    }
}

/// A response with headers and a body.
pub fn respond(
    status: StatusCode,
    headers: &[(HeaderName, String)],
    body: Body,
) -> Result<Response> {
    let mut resp = (status, body).into_response();
    for (k, v) in headers {
        let v = HeaderValue::from_str(v)
            .map_err(|e| RegistryError::internal(anyhow::anyhow!("header {k}: {e}")))?;
        resp.headers_mut().insert(k.clone(), v);
    }
    Ok(resp)
}
