//! `airlift-firstboot status`'s text: the load, the images, the nodes and
//! the replicas of a [`Report`], as the status page shows them (pure).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::Value;

use super::Report;
use crate::api::images::{ImageSource, ImagesReport};
use crate::services::mirrors::signatures::TrustStatus;
use crate::services::netboot::nodes::NodeRecord;
use crate::services::status::{LoadState, Snapshot};
use airlift_oci::civil_time::parse_rfc3339;

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
    let mut out = load_section(&s);
    out.push('\n');
    out.push_str(&images_section(r.images.as_ref())?);
    out.push('\n');
    out.push_str(&nodes_section(r.nodes.as_ref(), now)?);
    out.push_str(&replicas_section(r.replicas.as_ref()));
    if let Some(v) = &r.releases {
        out.push_str("\nReleases\n");
        out.push_str(&super::releases::render(v));
    }
    Ok(out)
}

/// The appliance, its registry and the bundle load.
fn load_section(s: &Snapshot) -> String {
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
        (
            "secure boot",
            s.secure_boot
                .map_or("not reported", |b| b.word())
                .to_string(),
        ),
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
    if let Some(d) = &s.disk {
        let _ = writeln!(
            out,
            "  {:<13}{} % used  {} free of {}  {} reserve  ({})",
            "data disk",
            d.used_percent,
            human_bytes(d.available),
            human_bytes(d.total),
            human_bytes(d.reserve),
            d.path
        );
        if let Some(w) = &d.warning {
            let _ = writeln!(out, "  {:<13}{w}", "WARNING");
        }
    }
    let _ = writeln!(
        out,
        "  {:<13}{}",
        "signatures",
        trust_line(s.trust.as_ref())
    );
    let _ = writeln!(out, "  {:<13}{}", "base", base_line(s.base.as_ref()));
    out
}

/// The base image the OS came from, in one line.
fn base_line(b: Option<&airlift_appliance::bundle_manifest::BaseImageRecord>) -> String {
    match b {
        None => "from host paths (no base image)".into(),
        Some(b) => format!(
            "{}, kernel {}, {}",
            b.pinned(),
            b.kernel_release,
            b.signed_by()
        ),
    }
}

/// The trusted keys and what enforces them, in one line.
fn trust_line(t: Option<&TrustStatus>) -> String {
    let Some(t) = t else {
        return "no trusted keys: signatures are not checked".into();
    };
    let keys: Vec<String> = t
        .keys
        .iter()
        .map(|k| format!("{} ({})", k.name, k.scopes.join(", ")))
        .collect();
    let how = if !t.enforce {
        "not enforced (keys written only)".to_string()
    } else if t.policy_json {
        "enforced by host0's registry and containers-policy.json".to_string()
    } else {
        format!(
            "enforced by host0's registry; containers-policy.json not written: {}",
            t.policy_json_reason
        )
    };
    format!("keys {}; {how}", keys.join("; "))
}

/// The images table, or why there is none.
fn images_section(images: Option<&Value>) -> Result<String> {
    let mut out = String::new();
    match images {
        None => out.push_str("Images: this server has no /airlift/v1/images\n"),
        Some(v) => {
            let rep: ImagesReport = serde_json::from_value((*v).clone()).context(
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
                        if i.signatures.is_empty() {
                            "unsigned".into()
                        } else {
                            i.signatures
                                .iter()
                                .map(|g| g.key.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        match i.source {
                            ImageSource::Bundle => "bundle".into(),
                            ImageSource::Registry => "pushed".into(),
                        },
                    ]
                })
                .collect();
            out.push_str(&table(
                &[
                    "REFERENCE",
                    "DIGEST",
                    "SIZE",
                    "PLATFORMS",
                    "SIGNED BY",
                    "SOURCE",
                ],
                &rows,
            ));
        }
    }

    Ok(out)
}

/// The nodes table, or why there is none.
fn nodes_section(nodes: Option<&Value>, now: SystemTime) -> Result<String> {
    let mut out = String::new();
    match nodes {
        None => out.push_str(
            "Nodes: no node table on this appliance (netboot did not start; see host0's log)\n",
        ),
        Some(v) => {
            let nodes: Vec<NodeRecord> = serde_json::from_value((*v).clone()).context(
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
    Ok(out)
}

/// The replicas table, or "none".
fn replicas_section(replicas: Option<&Value>) -> String {
    let mut out = String::new();
    let replicas = replicas
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::Duration;

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
            "ca-fingerprint": "sha256:abcd", "secure-boot": "enabled"
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
                    "size": 2048, "source": "bundle",
                    "signatures": [{"key": "release", "identity": "quay.io/org/app:1.0",
                        "subject": format!("sha256:{}", "c".repeat(64))}]
                }, {
                    "reference": "quay.io/org/other:1",
                    "digest": format!("sha256:{}", "e".repeat(64)),
                    "media-type": "application/vnd.oci.image.manifest.v1+json",
                    "platforms": [], "size": 10, "source": "registry"
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
            releases: Some(serde_json::json!({
                "current": format!("sha256:{}", "d".repeat(64)), "keep": 2,
                "releases": [{"id": {"name": "demo", "version": "1.0",
                    "bundle": format!("sha256:{}", "d".repeat(64))},
                    "images": 1, "blobs": 3, "bytes": 2048, "loadedAt": "2026-11-22T12:00:00Z",
                    "source": "media", "current": true, "kept": true}],
                "loading": null
            })),
        };
        let now = UNIX_EPOCH
            + Duration::from_secs(
                airlift_oci::civil_time::parse_rfc3339("2026-11-22T12:01:00Z").unwrap(),
            );
        let text = render(&report, now).unwrap();
        assert!(text.starts_with("demo 1.0\n"), "{text}");
        assert!(text.contains("  secure boot  enabled\n"), "{text}");
        assert!(text.contains("copying the bundle to disk"), "{text}");
        assert!(
            text.contains("[#######-----------------------]  25 %  1.00 MiB / 4.00 MiB  1/4 blobs  1.00 MiB/s  3 s left"),
            "{text}"
        );
        assert!(text.contains("Images (2)"), "{text}");
        assert!(
            text.contains("quay.io/org/app:1.0  sha256:cccccccccccc  2.00 KiB  linux/amd64, linux/arm64  release    bundle"),
            "{text}"
        );
        assert!(
            text.contains("quay.io/org/other:1  sha256:eeeeeeeeeeee  10 B      -                         unsigned   pushed"),
            "{text}"
        );
        assert!(
            text.contains("  signatures   no trusted keys: signatures are not checked\n"),
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
        assert!(
            text.contains("\nReleases\n") && text.contains("* demo 1.0     dddddddddddd"),
            "{text}"
        );

        // Ready shows 100 %; no node table and no images endpoint are said so.
        let ready = Report {
            status: status("ready", 4 * 1024 * 1024, 0),
            images: None,
            nodes: None,
            replicas: None,
            releases: None,
        };
        let text = render(&ready, now).unwrap();
        assert!(text.contains("] 100 %"), "{text}");
        assert!(!text.contains(" left"), "{text}");
        assert!(text.contains("no node table"), "{text}");
        assert!(text.contains("no /airlift/v1/images"), "{text}");
        assert!(!text.contains("data disk"), "{text}");
        assert!(!text.contains("Releases"), "{text}");

        // The disk use, and its warning.
        let mut st = status("ready", 0, 0);
        st["disk"] = serde_json::json!({
            "path": "/var/lib/airlift/registry", "total": 10u64 << 30, "available": 1u64 << 30,
            "reserve": 512u64 << 20, "used-percent": 90, "warn-percent": 85,
            "warning": "the data disk is 90 % full"
        });
        let disk = Report {
            status: st,
            images: None,
            nodes: None,
            replicas: None,
            releases: None,
        };
        let text = render(&disk, now).unwrap();
        assert!(
            text.contains("  data disk    90 % used  1.00 GiB free of 10.0 GiB  512.0 MiB reserve  (/var/lib/airlift/registry)\n"),
            "{text}"
        );
        assert!(
            text.contains("  WARNING      the data disk is 90 % full\n"),
            "{text}"
        );

        // The trust state: keys, scopes, and why policy.json is not written.
        let mut st = status("ready", 0, 0);
        st["trust"] = serde_json::json!({
            "enforce": true,
            "keys": [{"name": "release", "scopes": ["quay.io/org", "ghcr.io"],
                "path": "/etc/airlift/keys/release.pub"}],
            "policy-json": false,
            "policy-json-reason": "built with sigstore disabled",
            "admission-policies": []
        });
        let trusted = Report {
            status: st,
            images: None,
            nodes: None,
            replicas: None,
            releases: None,
        };
        let text = render(&trusted, now).unwrap();
        assert!(
            text.contains("  signatures   keys release (quay.io/org, ghcr.io); enforced by host0's registry; containers-policy.json not written: built with sigstore disabled\n"),
            "{text}"
        );

        // The base image: pinned reference, kernel and signers; none
        // for a path base.
        assert!(
            text.contains("  base         from host paths (no base image)\n"),
            "{text}"
        );
        let mut st = status("ready", 0, 0);
        let (top, amd64, sig) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        st["base"] = serde_json::json!({
            "reference": "registry.airlift.test/base/demo:bookworm",
            "digest": format!("sha256:{top}"), "manifestDigest": format!("sha256:{amd64}"),
            "kernelRelease": "6.1.0-18-amd64",
            "signatures": [{"subject": format!("sha256:{top}"), "key": "ci",
                "identity": "registry.airlift.test/base/demo:bookworm",
                "signature": format!("sha256:{sig}")}]
        });
        let based = Report {
            status: st,
            images: None,
            nodes: None,
            replicas: None,
            releases: None,
        };
        let text = render(&based, now).unwrap();
        assert!(
            text.contains(&format!(
                "  base         registry.airlift.test/base/demo:bookworm@sha256:{top}, kernel \
                 6.1.0-18-amd64, signed by key ci\n"
            )),
            "{text}"
        );

        let bad = Report {
            status: serde_json::json!({"state": "weird"}),
            images: None,
            nodes: None,
            replicas: None,
            releases: None,
        };
        let err = format!("{:#}", render(&bad, now).unwrap_err());
        assert!(err.contains("/airlift/v1/status"), "{err}");
    }
}
