//! The day-two commands' client (`update`, `releases`, `rollback`,
//! `gc`): host0's API on its own machine, `https://127.0.0.1:PORT` (or
//! `http://` without TLS), trusting the appliance's CA, with the admin
//! token ([`crate::api::admin`]). Changes may take minutes (an update
//! load, a collection), so only connecting has a timeout.

use std::path::Path;
use std::time::Duration;

use airlift_appliance::{ApplianceFile, TlsMode};
use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::Connect;

/// A client of host0's day-two endpoints.
pub struct AdminClient {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl AdminClient {
    /// Talk to `base` (`https://HOST:PORT`) with `token`.
    pub fn new(base: &str, connect: &Connect, token: String) -> Result<AdminClient> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy();
        if connect.insecure {
            b = b.danger_accept_invalid_certs(true);
        }
        if let Some(ca) = &connect.ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
            b = b.tls_built_in_root_certs(false).add_root_certificate(cert);
        }
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: b.build().context("making the HTTP client")?,
        })
    }

    /// host0 on this machine: the port and TLS mode of `config`
    /// (`/etc/airlift/appliance.json`), the CA and admin token in `data`
    /// (`/var/lib/airlift`).
    pub fn local(config: &Path, data: &Path) -> Result<AdminClient> {
        let file = ApplianceFile::load(config)?;
        let port = file.registry.port;
        let (base, connect) = match file.registry.tls {
            TlsMode::Off => (format!("http://127.0.0.1:{port}"), Connect::default()),
            TlsMode::Generate => (
                format!("https://127.0.0.1:{port}"),
                Connect {
                    ca: Some(
                        data.join(crate::services::tls::TLS_DIR)
                            .join(crate::services::tls::CA_CERT),
                    ),
                    insecure: false,
                },
            ),
            // A site's own certificate need not name 127.0.0.1; the
            // connection stays on this machine and the token is checked.
            TlsMode::Provided => (
                format!("https://127.0.0.1:{port}"),
                Connect {
                    ca: None,
                    insecure: true,
                },
            ),
        };
        let token = crate::api::admin::read_token(data)?;
        AdminClient::new(&base, &connect, token)
    }

    /// GET `path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req, "GET", path).await
    }

    /// POST `body` to `path`; the JSON answer, or the server's `error`.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?);
        self.send(req, "POST", path).await
    }

    async fn send(&self, req: reqwest::RequestBuilder, method: &str, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let res = req
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("{method} {url}: is airlift-host0.service running?"))?;
        let code = res.status();
        let body = res
            .bytes()
            .await
            .with_context(|| format!("reading {url}"))?;
        let value: Option<Value> = serde_json::from_slice(&body).ok();
        if !code.is_success() {
            let msg = value
                .as_ref()
                .and_then(|v| v.get("error"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("{method} {url} answered {code}"));
            bail!("{msg}");
        }
        value.with_context(|| format!("{url} did not answer JSON"))
    }
}
