//! A small Docker registry v2 / OCI distribution client: GET manifests
//! and blobs for one repository, with token or Basic authentication on
//! demand and bounded retries.

use std::path::Path;

use airlift_oci::documents::media;
use airlift_oci::{Digest, Reference};
use anyhow::{bail, Context, Result};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use tokio::sync::Mutex;

use super::auth::{self, Challenge, Credentials};
use super::limits::{self, BodyError, MAX_MANIFEST};
use super::retry;

/// What we accept for manifests: OCI index and manifest, Docker list and manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// Tries for a manifest whose body broke off or stalled.
const MANIFEST_TRIES: u32 = 3;

/// The registry base URL for a reference: `docker.io` means
/// `https://registry-1.docker.io`.
pub fn default_base_url(r: &Reference) -> String {
    if r.registry() == airlift_oci::reference::DOCKER_HUB {
        "https://registry-1.docker.io".to_string()
    } else {
        format!("https://{}", r.registry())
    }
}

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The `Docker-Content-Digest` header, if sent.
    pub header_digest: Option<String>,
}

impl FetchedManifest {
    /// The digest of its bytes, checked against the registry's
    /// `Docker-Content-Digest` when sent (`url` names it in the error).
    pub fn checked_digest(&self, url: &str) -> anyhow::Result<Digest> {
        let digest = Digest::sha256_of(&self.bytes);
        if let Some(h) = &self.header_digest {
            if h != &digest.to_string() {
                anyhow::bail!(
                    "{url}: the registry says the manifest is {h} (Docker-Content-Digest) but its \
                     bytes hash to {digest}; refusing a manifest that does not match"
                );
            }
        }
        Ok(digest)
    }
}

/// A client for one repository.
pub struct Client {
    http: reqwest::Client,
    base: String,
    repository: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    /// The idle read timeout (see [`limits::idle_timeout`]).
    idle: std::time::Duration,
}

impl Client {
    /// A client for `reference`'s repository at `mirror` (or its registry).
    pub fn new(
        reference: &Reference,
        mirror: Option<&str>,
        credentials_file: Option<&Path>,
        insecure: bool,
    ) -> Result<Client> {
        let base = mirror
            .map(|m| m.trim_end_matches('/').to_string())
            .unwrap_or_else(|| default_base_url(reference));
        let host = base
            .strip_prefix("https://")
            .or_else(|| base.strip_prefix("http://"))
            .with_context(|| format!("registry URL {base:?} must start with https:// or http://"))?
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if base.starts_with("http://") && !insecure {
            bail!(
                "registry URL {base} is plain HTTP; set `insecure: true` on this source to allow it"
            );
        }
        let credentials = match credentials_file {
            Some(path) => {
                let c = auth::load_credentials(path, &[&host, reference.registry()])?;
                if c.is_none() {
                    tracing::warn!(
                        "credentials file {} has no entry for {host} or {}",
                        path.display(),
                        reference.registry()
                    );
                }
                c
            }
            None => None,
        };
        let idle = limits::idle_timeout(std::env::var(limits::IDLE_ENV).ok().as_deref())?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("airlift/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(idle)
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            http,
            base,
            repository: reference.repository().to_string(),
            credentials,
            authorization: Mutex::new(None),
            idle,
        })
    }

    /// `BASE/v2/REPO/blobs/DIGEST`: names a blob's source in errors.
    pub fn blob_url(&self, digest: &Digest) -> String {
        format!("{}/v2/{}/blobs/{digest}", self.base, self.repository)
    }

    /// `BASE/v2/REPO/manifests/REF`.
    pub fn manifest_url(&self, reference: &str) -> String {
        format!("{}/v2/{}/manifests/{reference}", self.base, self.repository)
    }

    /// GET a manifest by tag or digest: at most [`MAX_MANIFEST`] bytes,
    /// fetched again when the body breaks off or stalls.
    pub async fn manifest(&self, reference: &str) -> Result<FetchedManifest> {
        match self.fetch_manifest(reference, false).await? {
            Some(m) => Ok(m),
            None => bail!("GET {}: no manifest", self.manifest_url(reference)),
        }
    }

    /// [`Client::manifest`], but `None` when the registry answers 404:
    /// for tags that may or may not exist (cosign's `sha256-<hex>.sig`,
    /// the referrers tag schema's `sha256-<hex>`).
    pub async fn manifest_if_any(&self, reference: &str) -> Result<Option<FetchedManifest>> {
        self.fetch_manifest(reference, true).await
    }

    async fn fetch_manifest(
        &self,
        reference: &str,
        optional: bool,
    ) -> Result<Option<FetchedManifest>> {
        let url = self.manifest_url(reference);
        let absent: &[StatusCode] = if optional {
            &[StatusCode::NOT_FOUND]
        } else {
            &[]
        };
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(resp) = self.get_unless(&url, Some(MANIFEST_ACCEPT), absent).await? else {
                return Ok(None);
            };
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
            };
            let content_type = header("content-type");
            let header_digest = header("docker-content-digest");
            match limits::read_capped(resp, MAX_MANIFEST).await {
                Ok(bytes) => {
                    return Ok(Some(FetchedManifest {
                        bytes,
                        content_type,
                        header_digest,
                    }))
                }
                Err(BodyError::TooLarge) => bail!(
                    "{url}: the manifest is larger than {MAX_MANIFEST} bytes (4 MiB), the most \
                     accepted; is this really an image manifest?"
                ),
                Err(BodyError::Http(e)) if tries < MANIFEST_TRIES => {
                    tracing::warn!(
                        "manifest {url} broke off ({}); fetching it again",
                        limits::describe(&e, self.idle)
                    );
                }
                Err(BodyError::Http(e)) => bail!(
                    "reading {url} failed after {tries} tries: {}",
                    limits::describe(&e, self.idle)
                ),
            }
        }
    }

    /// The idle read timeout in force.
    pub fn idle(&self) -> std::time::Duration {
        self.idle
    }

    /// GET a blob; the body is streamed by the caller.
    pub async fn blob(&self, digest: &Digest) -> Result<Response> {
        self.get(&self.blob_url(digest), None).await
    }

    /// `BASE/v2/REPO/referrers/DIGEST`: the OCI 1.1 referrers API.
    pub fn referrers_url(&self, subject: &Digest) -> String {
        format!("{}/v2/{}/referrers/{subject}", self.base, self.repository)
    }

    /// One page of the referrers API for `url` (see
    /// [`Client::referrers_url`]; later pages come from the `Link`
    /// header): `None` when the registry lacks the API (it answers 404,
    /// 405 or 400, as the distribution spec says clients must expect).
    pub async fn referrers_page(&self, url: &str) -> Result<Option<ReferrersPage>> {
        let absent = [
            StatusCode::NOT_FOUND,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::BAD_REQUEST,
        ];
        let mut tries = 0;
        loop {
            tries += 1;
            let Some(resp) = self
                .get_unless(url, Some(media::OCI_INDEX), &absent)
                .await?
            else {
                return Ok(None);
            };
            let link = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match limits::read_capped(resp, MAX_MANIFEST).await {
                Ok(bytes) => return Ok(Some(ReferrersPage { bytes, link })),
                Err(BodyError::TooLarge) => bail!(
                    "{url}: the referrers list is larger than {MAX_MANIFEST} bytes (4 MiB), the \
                     most accepted"
                ),
                Err(BodyError::Http(e)) if tries < MANIFEST_TRIES => {
                    tracing::warn!(
                        "referrers {url} broke off ({}); fetching it again",
                        limits::describe(&e, self.idle)
                    );
                }
                Err(BodyError::Http(e)) => bail!(
                    "reading {url} failed after {tries} tries: {}",
                    limits::describe(&e, self.idle)
                ),
            }
        }
    }

    /// The base URL (`https://host[:port]`, or the mirror's), to resolve
    /// a relative `Link` against.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET with authentication on demand and retries.
    async fn get(&self, url: &str, accept: Option<&str>) -> Result<Response> {
        match self.get_unless(url, accept, &[]).await? {
            Some(r) => Ok(r),
            None => bail!("GET {url}: no answer"),
        }
    }

    /// [`Client::get`], but `None` when the answer's status is one of
    /// `absent` (after authentication: a 404 hidden behind a 401 is still
    /// a 404).
    async fn get_unless(
        &self,
        url: &str,
        accept: Option<&str>,
        absent: &[StatusCode],
    ) -> Result<Option<Response>> {
        let mut tried_auth = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(h) = self.authorization.lock().await.clone() {
                req = req.header(AUTHORIZATION, h);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < retry::MAX_TRIES && transient(&e) => {
                    tracing::debug!("GET {url}: {e}; retrying");
                    tokio::time::sleep(retry::backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e))
                        .with_context(|| format!("GET {url} failed after {attempt} tries"))
                }
            };
            let status = resp.status();
            if status.is_success() {
                return Ok(Some(resp));
            }
            if absent.contains(&status) {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED && !tried_auth {
                tried_auth = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(auth::parse_challenge);
                if let Some(c) = challenge {
                    self.authenticate(&c, url).await?;
                    attempt -= 1;
                    continue;
                }
            }
            if retry::retryable_status(status.as_u16()) && attempt < retry::MAX_TRIES {
                tracing::debug!("GET {url}: {status}; retrying");
                tokio::time::sleep(retry::backoff(attempt)).await;
                continue;
            }
            let body = match limits::read_capped(resp, limits::MAX_ERROR_BODY).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(_) => String::new(),
            };
            let hint = match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    " (check the `credentials` file for this registry)"
                }
                StatusCode::NOT_FOUND => " (check the image reference and the registry URL)",
                _ => "",
            };
            bail!(
                "GET {url}: {status}{hint}: {}",
                body.chars().take(300).collect::<String>()
            );
        }
    }

    /// Answer a challenge: fetch a token, or use Basic credentials.
    async fn authenticate(&self, challenge: &Challenge, url: &str) -> Result<()> {
        let header = match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => c.basic_header(),
                None => bail!(
                    "GET {url}: the registry wants a user name and password; \
                     set `credentials` on this source"
                ),
            },
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut req = self.http.get(realm).query(&[("scope", scope.as_str())]);
                if let Some(s) = service {
                    req = req.query(&[("service", s.as_str())]);
                }
                if let Some(c) = &self.credentials {
                    req = req.header(AUTHORIZATION, c.basic_header());
                }
                let resp = req
                    .send()
                    .await
                    .with_context(|| format!("getting a token from {realm}"))?;
                let status = resp.status();
                let body = match limits::read_capped(resp, limits::MAX_TOKEN_RESPONSE).await {
                    Ok(b) => b,
                    Err(BodyError::TooLarge) => bail!(
                        "token service {realm} answered more than {} bytes; refusing it",
                        limits::MAX_TOKEN_RESPONSE
                    ),
                    Err(BodyError::Http(e)) => bail!(
                        "reading the token from {realm}: {}",
                        limits::describe(&e, self.idle)
                    ),
                };
                if !status.is_success() {
                    bail!(
                        "token service {realm} answered {status}{}",
                        if self.credentials.is_none() {
                            " (no credentials were sent; set `credentials` on this source)"
                        } else {
                            " (check the credentials)"
                        }
                    );
                }
                let token = auth::parse_token_response(&body)
                    .with_context(|| format!("token from {realm}"))?;
                format!("Bearer {token}")
            }
        };
        HeaderValue::from_str(&header).context("the credentials hold characters HTTP forbids")?;
        *self.authorization.lock().await = Some(header);
        Ok(())
    }
}

/// One page of a referrers answer: the index's bytes and the `Link`
/// header naming the next page, if any.
#[derive(Debug, Clone)]
pub struct ReferrersPage {
    pub bytes: Vec<u8>,
    pub link: Option<String>,
}

/// Is `content_type` one of the manifest types we asked for?
pub fn is_manifest_type(content_type: &str) -> bool {
    media::is_index(content_type) || media::is_manifest(content_type)
}

/// Is a request error worth retrying? Timeouts and connections refused,
/// reset or cut are; TLS failures (a bad certificate) and the like are
/// not: they will fail the same way again.
fn transient(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return retry::transient_io(io.kind());
        }
        source = s.source();
    }
    e.is_connect()
}
