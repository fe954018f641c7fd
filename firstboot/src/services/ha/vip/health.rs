//! The registry health check keepalived runs: does this machine's
//! registry answer `GET /v2/` with 200 (open) or 401 (auth required)?
//!
//! HTTPS to the machine itself trusts the appliance's own CA when its
//! file is there; without it, a loopback URL is checked without
//! verifying the certificate (the question is "does it answer", and
//! nothing leaves the machine). Any other URL is always verified.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The URL checked by default.
pub const DEFAULT_URL: &str = "https://127.0.0.1:5000";
/// The CA file trusted by default (host0's, see [`crate::services::tls`]).
pub const DEFAULT_CA: &str = "/var/lib/airlift/tls/ca.crt";

/// Is `url`'s host this machine (`127.0.0.0/8`, `::1`, `localhost`)?
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `GET URL/v2/`; Ok with the status when it is 200 or 401, else an
/// error of one line saying why.
pub async fn check(base: &str, ca: &Path, timeout: Duration) -> Result<u16> {
    let base = base.trim().trim_end_matches('/');
    let url: reqwest::Url = format!("{base}/v2/")
        .parse()
        .with_context(|| format!("--url {base:?} is not a URL; write e.g. {DEFAULT_URL}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--url {base}: use an http:// or https:// URL");
    }
    let mut b = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy();
    if url.scheme() == "https" {
        match std::fs::read(ca) {
            Ok(pem) => {
                let cert = reqwest::Certificate::from_pem(&pem)
                    .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
                b = b.tls_built_in_root_certs(false).add_root_certificate(cert);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if is_loopback(&url) {
                    b = b.danger_accept_invalid_certs(true);
                }
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", ca.display())),
        }
    }
    let client = b.build().context("making the HTTP client")?;
    let res = client.get(url.clone()).send().await.map_err(|e| {
        let mut msg = format!("GET {url}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let _ = write!(msg, ": {s}");
            src = s.source();
        }
        anyhow::anyhow!("{}", one_line(&msg))
    })?;
    let code = res.status().as_u16();
    if code == 200 || code == 401 {
        Ok(code)
    } else {
        bail!("GET {url} answered {code}, not 200 or 401")
    }
}

/// `s` on one line (keepalived logs one line per failed check).
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for (u, yes) in [
            ("https://127.0.0.1:5000/v2/", true),
            ("https://127.1.2.3/v2/", true),
            ("https://[::1]:5000/v2/", true),
            ("https://LOCALHOST:5000/", true),
            ("https://10.77.0.50:5000/", false),
            ("https://registry.example/", false),
        ] {
            assert_eq!(is_loopback(&u.parse().unwrap()), yes, "{u}");
        }
    }

    #[test]
    fn bad_urls_are_named() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ca = Path::new("/nonexistent/ca.crt");
        let e = rt
            .block_on(check("ftp://127.0.0.1", ca, Duration::from_secs(1)))
            .unwrap_err();
        assert!(format!("{e:#}").contains("http:// or https://"), "{e:#}");
        let e = rt
            .block_on(check("not a url", ca, Duration::from_secs(1)))
            .unwrap_err();
        assert!(format!("{e:#}").contains("is not a URL"), "{e:#}");
        assert_eq!(one_line("a\n b\tc"), "a b c");
    }
}
