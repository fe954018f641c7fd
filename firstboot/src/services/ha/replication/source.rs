//! The replica's client for host0: the state poll, manifests and blobs,
//! over TLS verified against the CA host0 sent (nothing else trusted).

use std::time::Duration;

use airlift_oci::digest::Hasher;
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};
use bytes::Bytes;

use super::{Feed, Report, STATE_PATH};
use crate::services::mirrors::Endpoint;
use crate::services::registry::manifest::MAX_MANIFEST_BYTES;

/// How long a poll may be held open by host0.
pub const POLL_WAIT: Duration = Duration::from_secs(25);

/// host0, as a replica sees it.
#[derive(Clone)]
pub struct Source {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Source {
    /// A client for `server` trusting only `ca_pem` (or plain HTTP).
    pub fn new(server: &Endpoint, token: &str, ca_pem: Option<&str>) -> Result<Source> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(POLL_WAIT + Duration::from_secs(30))
            .tls_built_in_root_certs(false)
            .no_proxy();
        if let Some(pem) = ca_pem {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(pem.as_bytes()).context("the CA host0 sent")?,
            );
        }
        Ok(Source {
            base: server.url(),
            token: token.to_string(),
            client: b.build().context("making the replication client")?,
        })
    }

    /// host0's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Ask for the state, held open up to `wait` when nothing changed.
    pub async fn poll(&self, report: &Report, wait: Duration) -> Result<Feed> {
        let url = format!("{}{STATE_PATH}?{}", self.base, report.query(wait.as_secs()));
        let res = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {}{STATE_PATH}", self.base))?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .with_context(|| format!("reading {}{STATE_PATH}", self.base))?;
        if !status.is_success() {
            bail!(
                "{}{STATE_PATH} answered {status}: {}",
                self.base,
                String::from_utf8_lossy(&body).trim()
            );
        }
        serde_json::from_slice(&body).with_context(|| {
            format!(
                "{}{STATE_PATH} sent a state this replica cannot read",
                self.base
            )
        })
    }

    /// A manifest's bytes, checked against `digest`. The join token goes
    /// with the request: host0's signature gate serves a replica
    /// everything (it gates its own pulls).
    pub async fn manifest(&self, repo: &str, digest: &Digest, media_type: &str) -> Result<Bytes> {
        let url = format!("{}/v2/{repo}/manifests/{digest}", self.base);
        let res = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, media_type)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !res.status().is_success() {
            bail!("GET {url} answered {}", res.status());
        }
        let bytes = res
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            bail!("{url}: manifest of {} bytes is over the limit", bytes.len());
        }
        check(digest, &bytes).with_context(|| format!("GET {url}"))?;
        Ok(bytes)
    }

    /// A blob's response, body not read yet (the caller streams and checks it).
    pub async fn blob(&self, repo: &str, digest: &Digest) -> Result<reqwest::Response> {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let res = self
            .client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !res.status().is_success() {
            bail!("GET {url} answered {}", res.status());
        }
        Ok(res)
    }
}

/// Do `bytes` have `digest`?
pub fn check(digest: &Digest, bytes: &[u8]) -> Result<()> {
    let mut h = Hasher::new(digest.algorithm());
    h.update(bytes);
    let got = h.finish();
    if &got != digest {
        bail!("content has digest {got}, not {digest}");
    }
    Ok(())
}
