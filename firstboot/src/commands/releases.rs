//! `airlift-firstboot releases [--json]`: the releases host0 holds, as a
//! table (the current one marked `*`), then the load in progress or the
//! last failed one; from `GET /airlift/v1/releases` of the host0 on this
//! machine ([`AdminClient::local`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::api::client::admin::AdminClient;
use crate::sys::disk_space::mb;

/// Where host0's files are: every day-two command takes these.
#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// The appliance file (registry port and TLS mode).
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/airlift/appliance.json"
    )]
    pub config: PathBuf,
    /// host0's state folder (admin token, CA).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/airlift")]
    pub data: PathBuf,
}

impl HostArgs {
    /// The client of the host0 these name.
    pub fn client(&self) -> Result<AdminClient> {
        AdminClient::local(&self.config, &self.data)
    }
}

/// List host0's releases.
#[derive(Debug, Clone, clap::Args)]
pub struct ReleasesArgs {
    #[command(flatten)]
    pub host: HostArgs,
    /// Print the endpoint's JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Run `body` on a small runtime.
pub fn block_on<T>(body: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(body)
}

/// Run the command.
pub fn run(args: ReleasesArgs) -> Result<()> {
    let client = args.host.client()?;
    let view = block_on(async { client.get(crate::api::releases::PATH).await })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        print!("{}", render(&view));
    }
    Ok(())
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The table and the load line, from the endpoint's JSON.
pub fn render(view: &Value) -> String {
    let mut rows = vec![[
        "".to_string(),
        "NAME".into(),
        "VERSION".into(),
        "BUNDLE".into(),
        "IMAGES".into(),
        "SIZE".into(),
        "LOADED".into(),
        "SOURCE".into(),
    ]];
    for r in view["releases"].as_array().into_iter().flatten() {
        let id = &r["id"];
        let hex = s(id, "bundle").trim_start_matches("sha256:");
        rows.push([
            if r["current"] == true { "*" } else { "" }.into(),
            s(id, "name").into(),
            s(id, "version").into(),
            hex.chars().take(12).collect(),
            n(r, "images").to_string(),
            mb(n(r, "bytes")),
            s(r, "loadedAt").into(),
            s(r, "source").into(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join(" ").trim_end());
        out.push('\n');
    }
    if rows.len() == 1 {
        out.push_str("(no release loaded yet)\n");
    }
    out.push_str(&loading_line(&view["loading"]));
    out
}

/// `loading demo 2.0 from /x: 40% (…)`, `last load of /x failed: …`, or nothing.
pub fn loading_line(l: &Value) -> String {
    if l.is_null() {
        return String::new();
    }
    let release = match l.get("release").filter(|r| !r.is_null()) {
        Some(r) => format!("release {} {} ", s(r, "name"), s(r, "version")),
        None => String::new(),
    };
    if s(l, "state") == "failed" {
        let of = if release.is_empty() {
            String::new()
        } else {
            format!("of {release}")
        };
        return format!(
            "last load {of}from {} failed: {}\n",
            s(l, "from"),
            s(l, "error")
        );
    }
    let (done, total) = (n(l, "bytesDone"), n(l, "bytesTotal"));
    let percent = (done * 100).checked_div(total).unwrap_or(100).min(100);
    format!(
        "loading {release}from {}: {percent}% ({}/{} blobs, {} of {})\n",
        s(l, "from"),
        n(l, "blobsDone"),
        n(l, "blobsTotal"),
        mb(done),
        mb(total)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_the_current_release_marked_and_the_load() {
        let hex = "ab".repeat(32);
        let view = serde_json::json!({
            "current": format!("sha256:{hex}"),
            "keep": 2,
            "releases": [
                {"id": {"name": "demo", "version": "1.0", "bundle": format!("sha256:{}", "cd".repeat(32))},
                 "images": 3, "blobs": 9, "bytes": 12_000_000, "loadedAt": "2026-12-07T01:00:00Z",
                 "source": "media", "current": false, "kept": true},
                {"id": {"name": "demo", "version": "2.0", "bundle": format!("sha256:{hex}")},
                 "images": 4, "blobs": 11, "bytes": 15_000_000, "loadedAt": "2026-12-07T02:00:00Z",
                 "source": "update", "current": true, "kept": true}
            ],
            "loading": {"id": 2, "release": {"name": "demo", "version": "3.0", "bundle": "x"},
                        "from": "/mnt/u", "blobsDone": 1, "blobsTotal": 4, "bytesDone": 50,
                        "bytesTotal": 200, "state": "loading"}
        });
        let t = render(&view);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].trim_start().starts_with("NAME"), "{t}");
        assert!(
            lines[1].starts_with("  demo 1.0") && lines[1].contains("cdcdcdcdcdcd "),
            "{t}"
        );
        assert!(
            lines[2].starts_with("* demo 2.0") && lines[2].contains("15 MB"),
            "{t}"
        );
        assert!(lines[2].ends_with("update"), "{t}");
        assert_eq!(
            lines[3],
            "loading release demo 3.0 from /mnt/u: 25% (1/4 blobs, 1 kB of 1 kB)"
        );
        let failed = serde_json::json!({"releases": [], "loading": {"from": "/x", "state": "failed",
            "error": "another appliance's medium", "release": null}});
        let t = render(&failed);
        assert!(t.contains("(no release loaded yet)"), "{t}");
        assert!(
            t.ends_with("last load from /x failed: another appliance's medium\n"),
            "{t}"
        );
    }
}
