//! `airlift-firstboot status --server URL`: what the status page shows,
//! in a terminal. It reads the same endpoints as the page
//! (`/airlift/v1/status`, `/airlift/v1/images`, `/airlift/v1/nodes`);
//! the text rendering is pure and unit-tested.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::api::images::{ImageSource, ImagesReport};
use crate::services::netboot::nodes::NodeRecord;
use crate::services::status::{LoadState, Snapshot};

/// Show host0's state: the bundle load, the images and the nodes.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// host0's registry URL (`https://10.0.0.1:5000`; `HOST:PORT` means https).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The appliance's CA certificate (PEM) to verify the server with
    /// (`/var/lib/airlift/tls/ca.crt` on host0).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Print `{"status", "images", "nodes"}` as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What the three endpoints answered.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: Value,
    /// None: the server has no images endpoint.
    pub images: Option<Value>,
    /// None: no node table (netboot enabled but did not start).
    pub nodes: Option<Value>,
    /// host0's replica table (None: a server without one).
    pub replicas: Option<Value>,
}

/// Run the command.
pub fn run(args: StatusArgs) -> Result<()> {
    let base = base_url(&args.server)?;
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fetch(&base, &args))?;
    if args.json {
        let v = serde_json::json!({
            "status": report.status,
            "images": report.images,
            "nodes": report.nodes,
            "replicas": report.replicas,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&report, SystemTime::now())?);
    }
    Ok(())
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

fn client(args: &StatusArgs) -> Result<reqwest::Client> {
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

async fn fetch(base: &str, args: &StatusArgs) -> Result<Report> {
    let c = client(args)?;
    let hint = if base.starts_with("https://") && args.ca.is_none() && !args.insecure {
        " (a certificate error? pass --ca with the appliance's CA, /var/lib/airlift/tls/ca.crt on host0, or --insecure)"
    } else {
        ""
    };
    let status = get(&c, base, "/airlift/v1/status", hint)
        .await?
        .with_context(|| format!("{base} has no /airlift/v1/status: is it host0's registry?"))?;
    let (images, nodes, replicas) = tokio::join!(
        get(&c, base, crate::api::images::PATH, ""),
        get(&c, base, "/airlift/v1/nodes", ""),
        get(
            &c,
            base,
            crate::services::ha::replication::REPLICAS_PATH,
            ""
        )
    );
    Ok(Report {
        status,
        images: images?,
        nodes: nodes?,
        replicas: replicas?,
    })
}

/// Bytes in IEC units (`1.50 GiB`, `312.4 MiB`, `900 B`), as the page shows them.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v < 10.0 {
        format!("{v:.2} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Seconds as `1 h 04 min`, `3 min 12 s`, `42 s`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// A text progress bar of `width` cells: `[#######-------]`.
pub fn bar(percent: u64, width: usize) -> String {
    let filled = (percent.min(100) as usize * width) / 100;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", &hex[..hex.len().min(12)]),
        None => d.to_string(),
    }
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (what host0 writes).
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm, inverse).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

fn ago(iso: &str, now: SystemTime) -> String {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match parse_rfc3339(iso) {
        Some(t) if now >= t => format!("{} ago", human_duration(now - t)),
        Some(_) => "just now".to_string(),
        None => iso.to_string(),
    }
}

/// Left-aligned columns separated by two spaces; the last column unpadded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len() - 1;
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn state_word(s: LoadState) -> &'static str {
    match s {
        LoadState::Loading => "copying the bundle to disk",
        LoadState::Ready => "ready (bundle on disk, verified)",
        LoadState::MediaOnly => "serving from the media only",
        LoadState::Failed => "copy FAILED (still serving from the media)",
    }
}

/// The whole report as text (pure; `now` for the "ago" column).
pub fn render(r: &Report, now: SystemTime) -> Result<String> {
    let s: Snapshot = serde_json::from_value(r.status.clone())
        .context("the server's /airlift/v1/status is not what this airlift-firstboot reads")?;
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", s.appliance.name, s.appliance.version);
    let facts = [
        ("registry", s.registry.clone()),
        (
            "CA",
            s.ca_fingerprint
                .clone()
                .unwrap_or_else(|| "none (plain HTTP or a trusted certificate)".into()),
        ),
        ("state", state_word(s.state).to_string()),
        ("serving from", s.serving_from.clone()),
        ("up since", s.started_at.clone()),
    ];
    for (k, v) in facts {
        let _ = writeln!(out, "  {k:<13}{v}");
    }
    let pct = if s.state == LoadState::Ready {
        100
    } else {
        s.bytes_done
            .saturating_mul(100)
            .checked_div(s.bytes_total)
            .unwrap_or(0)
            .min(100)
    };
    let mut load = format!(
        "{} {pct:>3} %  {} / {}  {}/{} blobs",
        bar(pct, 30),
        human_bytes(s.bytes_done),
        human_bytes(s.bytes_total),
        s.blobs_done,
        s.blobs_total
    );
    if s.state == LoadState::Loading && s.rate > 0 {
        let left = s.bytes_total.saturating_sub(s.bytes_done) / s.rate;
        let _ = write!(
            load,
            "  {}/s  {} left",
            human_bytes(s.rate),
            human_duration(left)
        );
    }
    let _ = writeln!(out, "  {:<13}{load}", "load");
    if let Some(m) = &s.message {
        let _ = writeln!(out, "  {:<13}{m}", "note");
    }

    out.push('\n');
    match &r.images {
        None => out.push_str("Images: this server has no /airlift/v1/images\n"),
        Some(v) => {
            let rep: ImagesReport = serde_json::from_value(v.clone()).context(
                "the server's /airlift/v1/images is not what this airlift-firstboot reads",
            )?;
            let _ = writeln!(out, "Images ({})", rep.images.len());
            let rows: Vec<Vec<String>> = rep
                .images
                .iter()
                .map(|i| {
                    vec![
                        i.reference.clone(),
                        short_digest(&i.digest),
                        human_bytes(i.size),
                        if i.platforms.is_empty() {
                            "-".into()
                        } else {
                            i.platforms.join(", ")
                        },
                        match i.source {
                            ImageSource::Bundle => "bundle".into(),
                            ImageSource::Registry => "pushed".into(),
                        },
                    ]
                })
                .collect();
            out.push_str(&table(
                &["REFERENCE", "DIGEST", "SIZE", "PLATFORMS", "SOURCE"],
                &rows,
            ));
        }
    }

    out.push('\n');
    match &r.nodes {
        None => out.push_str(
            "Nodes: no node table on this appliance (netboot did not start; see host0's log)\n",
        ),
        Some(v) => {
            let nodes: Vec<NodeRecord> = serde_json::from_value(v.clone()).context(
                "the server's /airlift/v1/nodes is not what this airlift-firstboot reads",
            )?;
            let _ = writeln!(out, "Nodes ({})", nodes.len());
            if nodes.is_empty() {
                out.push_str("  no machine has netbooted or joined yet\n");
            } else {
                let rows: Vec<Vec<String>> = nodes
                    .iter()
                    .map(|n| {
                        let dash = || "-".to_string();
                        vec![
                            n.mac.clone(),
                            n.ip.map_or_else(dash, |ip| ip.to_string()),
                            n.profile.clone().unwrap_or_else(dash),
                            n.role.clone().unwrap_or_else(dash),
                            serde_json::to_value(n.state)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_string))
                                .unwrap_or_default(),
                            ago(&n.last_seen, now),
                        ]
                    })
                    .collect();
                out.push_str(&table(
                    &["MAC", "IP", "PROFILE", "ROLE", "STATE", "LAST SEEN"],
                    &rows,
                ));
            }
        }
    }
    let replicas = r
        .replicas
        .as_ref()
        .and_then(|v| v.as_array())
        .filter(|a| !a.is_empty());
    match replicas {
        None => out.push_str("\nReplicas: none\n"),
        Some(list) => {
            let _ = writeln!(out, "\nReplicas ({})", list.len());
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|v| {
                    let s = |k: &str| v[k].as_str().unwrap_or("-").to_string();
                    vec![
                        s("name"),
                        s("url"),
                        s("state"),
                        format!("{:.1} s", v["lag-seconds"].as_f64().unwrap_or(0.0)),
                        format!(
                            "{}/{}",
                            v["applied-generation"].as_u64().unwrap_or(0),
                            v["source-generation"].as_u64().unwrap_or(0)
                        ),
                    ]
                })
                .collect();
            out.push_str(&table(
                &["NAME", "URL", "STATE", "LAG", "GENERATION"],
                &rows,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_bars() {
        assert_eq!(human_bytes(900), "900 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(300 * 1024 * 1024), "300.0 MiB");
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(192), "3 min 12 s");
        assert_eq!(human_duration(3840), "1 h 04 min");
        assert_eq!(bar(0, 10), "[----------]");
        assert_eq!(bar(55, 10), "[#####-----]");
        assert_eq!(bar(100, 10), "[##########]");
        assert_eq!(bar(250, 4), "[####]");
        assert_eq!(
            short_digest(&format!("sha256:{}", "ab".repeat(32))),
            "sha256:abababababab"
        );
    }

    #[test]
    fn urls() {
        assert_eq!(base_url("10.0.0.1:5000").unwrap(), "https://10.0.0.1:5000");
        assert_eq!(base_url("http://h:5000/").unwrap(), "http://h:5000");
        assert!(base_url("ftp://h").is_err());
        assert!(base_url(" ").is_err());
    }

    #[test]
    fn rfc3339_round_trips_with_the_status_writer() {
        for secs in [0u64, 951_782_400, 1_795_264_538, 4_102_444_800] {
            let t = UNIX_EPOCH + Duration::from_secs(secs);
            assert_eq!(
                parse_rfc3339(&crate::services::status::rfc3339(t)),
                Some(secs)
            );
        }
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "LONGER"],
            &[
                vec!["xxxx".into(), "1".into()],
                vec!["y".into(), "2".into()],
            ],
        );
        assert_eq!(t, "A     LONGER\nxxxx  1\ny     2\n");
    }

    fn status(state: &str, done: u64, rate: u64) -> Value {
        serde_json::json!({
            "state": state, "serving-from": "media",
            "blobs-done": 1, "blobs-total": 4,
            "bytes-done": done, "bytes-total": 4 * 1024 * 1024,
            "rate": rate, "started-at": "2026-11-22T12:00:00Z",
            "appliance": {"name": "demo", "version": "1.0"},
            "registry": "https://10.0.0.1:5000",
            "ca-fingerprint": "sha256:abcd"
        })
    }

    #[test]
    fn renders_the_load_images_and_nodes() {
        let report = Report {
            status: status("loading", 1024 * 1024, 1024 * 1024),
            images: Some(serde_json::json!({
                "bundle": null,
                "images": [{
                    "reference": "quay.io/org/app:1.0",
                    "digest": format!("sha256:{}", "c".repeat(64)),
                    "media-type": "application/vnd.oci.image.index.v1+json",
                    "platforms": ["linux/amd64", "linux/arm64"],
                    "size": 2048, "source": "bundle"
                }]
            })),
            nodes: Some(serde_json::json!([{
                "mac": "52:54:00:a1:00:01", "ip": "10.0.0.9", "profile": "default",
                "role": "join", "state": "joined", "boots": 1,
                "first-seen": "2026-11-22T12:00:00Z", "last-seen": "2026-11-22T12:00:30Z"
            }])),
            replicas: Some(serde_json::json!([{
                "name": "52:54:00:a1:00:02", "url": "https://10.0.0.10:5000", "state": "behind",
                "applied-generation": 3, "source-generation": 5, "lag-seconds": 2.34,
                "first-seen": "2026-11-22T12:00:00Z", "last-seen": "2026-11-22T12:00:59Z"
            }])),
        };
        let now = UNIX_EPOCH + Duration::from_secs(parse_rfc3339("2026-11-22T12:01:00Z").unwrap());
        let text = render(&report, now).unwrap();
        assert!(text.starts_with("demo 1.0\n"), "{text}");
        assert!(text.contains("copying the bundle to disk"), "{text}");
        assert!(
            text.contains("[#######-----------------------]  25 %  1.00 MiB / 4.00 MiB  1/4 blobs  1.00 MiB/s  3 s left"),
            "{text}"
        );
        assert!(text.contains("Images (1)"), "{text}");
        assert!(
            text.contains("quay.io/org/app:1.0  sha256:cccccccccccc  2.00 KiB  linux/amd64, linux/arm64  bundle"),
            "{text}"
        );
        assert!(
            text.contains("52:54:00:a1:00:01  10.0.0.9  default  join  joined  30 s ago"),
            "{text}"
        );
        assert!(
            text.contains("52:54:00:a1:00:02  https://10.0.0.10:5000  behind  2.3 s  3/5"),
            "{text}"
        );

        // Ready shows 100 %; no node table and no images endpoint are said so.
        let ready = Report {
            status: status("ready", 4 * 1024 * 1024, 0),
            images: None,
            nodes: None,
            replicas: None,
        };
        let text = render(&ready, now).unwrap();
        assert!(text.contains("] 100 %"), "{text}");
        assert!(!text.contains(" left"), "{text}");
        assert!(text.contains("no node table"), "{text}");
        assert!(text.contains("no /airlift/v1/images"), "{text}");

        let bad = Report {
            status: serde_json::json!({"state": "weird"}),
            images: None,
            nodes: None,
            replicas: None,
        };
        let err = format!("{:#}", render(&bad, now).unwrap_err());
        assert!(err.contains("/airlift/v1/status"), "{err}");
    }
}
