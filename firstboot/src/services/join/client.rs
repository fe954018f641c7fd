//! Talking to host0: the join request (bootstrap TLS, see [`super::trust`])
//! and the check that an image resolves through the new config (TLS
//! verified against the CA received, nothing else trusted).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;

use crate::services::join::NodeConfig;
use crate::services::mirrors::Endpoint;

/// Why a join request failed: worth retrying or not.
#[derive(Debug)]
pub enum FetchError {
    /// host0 unreachable, restarting, or answering 5xx.
    Retry(anyhow::Error),
    /// host0 refused the token, or answered nonsense.
    Fatal(anyhow::Error),
}

fn client(ca_pem: Option<&str>, verify: bool) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(false)
        .no_proxy();
    if !verify {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(pem) = ca_pem {
        b = b.add_root_certificate(
            reqwest::Certificate::from_pem(pem.as_bytes()).context("the CA host0 sent")?,
        );
    }
    b.build().context("making the HTTP client")
}

/// `POST /airlift/v1/join` with the token; the body also says the MAC.
pub async fn fetch_config(
    server: &Endpoint,
    token: &str,
    mac: Option<&str>,
    role: Option<&str>,
) -> std::result::Result<NodeConfig, FetchError> {
    let url = format!("{}/airlift/v1/join", server.url());
    let c = client(None, false).map_err(FetchError::Fatal)?;
    let res = c
        .post(&url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::json!({ "mac": mac, "role": role }).to_string())
        .send()
        .await
        .map_err(|e| FetchError::Retry(anyhow::Error::new(e).context(format!("POST {url}"))))?;
    let status = res.status();
    let body = res
        .bytes()
        .await
        .map_err(|e| FetchError::Retry(anyhow::Error::new(e).context(format!("reading {url}"))))?;
    let text = String::from_utf8_lossy(&body);
    if status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED {
        return Err(FetchError::Fatal(anyhow::anyhow!(
            "{url} refused the join token ({status}): {}; check airlift.token=",
            text.trim()
        )));
    }
    if !status.is_success() {
        return Err(FetchError::Retry(anyhow::anyhow!(
            "{url} answered {status}: {}",
            text.trim()
        )));
    }
    let cfg: NodeConfig = serde_json::from_slice(&body)
        .with_context(|| format!("{url} sent a node config this node cannot read"))
        .map_err(FetchError::Fatal)?;
    cfg.mirror
        .validate()
        .with_context(|| format!("the mirror spec from {url}"))
        .map_err(FetchError::Fatal)?;
    Ok(cfg)
}

/// Resolve one image through `endpoint` with only `ca_pem` trusted:
/// `_catalog`, its first repository's first tag, a manifest HEAD.
/// Returns `repo:tag@digest`.
pub async fn resolve_one_image(endpoint: &Endpoint, ca_pem: Option<&str>) -> Result<String> {
    let c = client(ca_pem, true)?;
    let base = endpoint.url();
    let get_json = |url: String| {
        let c = c.clone();
        async move {
            let res = c
                .get(&url)
                .send()
                .await
                .with_context(|| format!("GET {url} (TLS checked against host0's CA)"))?;
            if !res.status().is_success() {
                bail!("GET {url}: {}", res.status());
            }
            let v: serde_json::Value = res.json_bytes().await?;
            Ok::<_, anyhow::Error>(v)
        }
    };
    let cat = get_json(format!("{base}/v2/_catalog")).await?;
    let repo = cat["repositories"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|r| r.as_str())
        .with_context(|| format!("{base}/v2/_catalog lists no repository"))?
        .to_string();
    let tags = get_json(format!("{base}/v2/{repo}/tags/list")).await?;
    let tag = tags["tags"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|t| t.as_str())
        .with_context(|| format!("{repo} has no tags at {base}"))?
        .to_string();
    let url = format!("{base}/v2/{repo}/manifests/{tag}");
    let res = c
        .head(&url)
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.list.v2+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .with_context(|| format!("HEAD {url}"))?;
    if !res.status().is_success() {
        bail!("HEAD {url}: {}", res.status());
    }
    let digest = res
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    Ok(format!("{repo}:{tag}@{digest}"))
}

/// `reqwest::Response::json` without reqwest's `json` feature.
trait JsonBytes {
    async fn json_bytes(self) -> Result<serde_json::Value>;
}

impl JsonBytes for reqwest::Response {
    async fn json_bytes(self) -> Result<serde_json::Value> {
        let url = self.url().to_string();
        let b = self
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?;
        serde_json::from_slice(&b).with_context(|| format!("{url} did not answer JSON"))
    }
}
