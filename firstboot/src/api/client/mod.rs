//! A client of host0's API: what `airlift-firstboot status` reads from
//! the endpoints the status page reads (`/airlift/v1/status`,
//! `/airlift/v1/images`, `/airlift/v1/nodes`, the replica table) into a
//! [`Report`], and the report as text ([`render`], pure and unit-tested).

pub mod admin;
pub mod render;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// What the endpoints answered.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Value,
    /// None: the server has no images endpoint.
    pub images: Option<Value>,
    /// None: no node table (netboot enabled but did not start).
    pub nodes: Option<Value>,
    /// host0's replica table (None: a server without one).
    pub replicas: Option<Value>,
    /// host0's releases (None: a server without them, a replica).
    pub releases: Option<Value>,
}

impl Report {
    /// `{"status", "images", "nodes", "replicas"}`, as `status --json` prints it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "status": self.status,
            "images": self.images,
            "nodes": self.nodes,
            "replicas": self.replicas,
            "releases": self.releases,
        })
    }
}

/// How to trust the server.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// The appliance's CA certificate (PEM) to verify the server with.
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate.
    pub insecure: bool,
}

/// `https://HOST:PORT` from what the user typed (no trailing slash).
pub fn base_url(server: &str) -> Result<String> {
    let s = server.trim().trim_end_matches('/');
    if s.is_empty() {
        bail!("--server is empty; give host0's registry URL, e.g. https://10.0.0.1:5000");
    }
    let url = if s.contains("://") {
        s.to_string()
    } else {
        format!("https://{s}")
    };
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("--server {server}: use an http:// or https:// URL");
    }
    Ok(url)
}

pub(crate) fn client(args: &Connect) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .no_proxy();
    if args.insecure {
        b = b.danger_accept_invalid_certs(true);
    }
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading --ca {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("--ca {} is not a PEM certificate", ca.display()))?;
        b = b.tls_built_in_root_certs(false).add_root_certificate(cert);
    }
    b.build().context("making the HTTP client")
}

/// GET `path` as JSON; Ok(None) on 404.
async fn get(c: &reqwest::Client, base: &str, path: &str, hint: &str) -> Result<Option<Value>> {
    let url = format!("{base}{path}");
    let res = c.get(&url).send().await.map_err(|e| {
        let mut msg = format!("GET {url}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let _ = write!(msg, ": {s}");
            src = s.source();
        }
        anyhow::anyhow!("{msg}{hint}")
    })?;
    let code = res.status();
    if code == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body = res
        .bytes()
        .await
        .with_context(|| format!("reading {url}"))?;
    if !code.is_success() {
        bail!(
            "{url} answered {code}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    serde_json::from_slice(&body)
        .map(Some)
        .with_context(|| format!("{url} did not answer JSON"))
}

/// Read the status, images, nodes and replicas endpoints of the server
/// at `base` (from [`base_url`]).
pub async fn fetch(base: &str, args: &Connect) -> Result<Report> {
    let c = client(args)?;
    let hint = if base.starts_with("https://") && args.ca.is_none() && !args.insecure {
        " (a certificate error? pass --ca with the appliance's CA, /var/lib/airlift/tls/ca.crt on host0, or --insecure)"
    } else {
        ""
    };
    let status = get(&c, base, crate::api::status::PATH, hint)
        .await?
        .with_context(|| format!("{base} has no /airlift/v1/status: is it host0's registry?"))?;
    let (images, nodes, replicas, releases) = tokio::join!(
        get(&c, base, crate::api::images::PATH, ""),
        get(&c, base, "/airlift/v1/nodes", ""),
        get(
            &c,
            base,
            crate::services::ha::replication::REPLICAS_PATH,
            ""
        ),
        get(&c, base, crate::api::releases::PATH, "")
    );
    Ok(Report {
        status,
        images: images?,
        nodes: nodes?,
        replicas: replicas?,
        releases: releases?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(base_url("10.0.0.1:5000").unwrap(), "https://10.0.0.1:5000");
        assert_eq!(base_url("http://h:5000/").unwrap(), "http://h:5000");
        assert!(base_url("ftp://h").is_err());
        assert!(base_url(" ").is_err());
    }

    #[test]
    fn report_json_has_the_five_parts() {
        let r = Report {
            status: serde_json::json!({"state": "ready"}),
            images: None,
            nodes: Some(serde_json::json!([])),
            replicas: None,
            releases: Some(serde_json::json!({"releases": []})),
        };
        assert_eq!(
            r.to_json(),
            serde_json::json!({"status": {"state": "ready"}, "images": null, "nodes": [],
                "replicas": null, "releases": {"releases": []}})
        );
    }
}
