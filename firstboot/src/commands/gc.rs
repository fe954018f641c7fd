//! `airlift-firstboot gc [--dry-run] [--keep N] [--json] [--offline]`:
//! collect garbage on host0, through its admin endpoint, or with
//! `--offline` on the files of a stopped host0 (a rescue shell, the
//! crash tests). Prints each blob that went (or would go) with its size
//! and the release(s) it came from, then the total.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::api::client::admin::AdminClient;
use crate::services::gc::{self, Report, Request};

/// Delete blobs no kept release and no pushed image references.
#[derive(Debug, Clone, clap::Args)]
pub struct GcArgs {
    /// List what would go and how many bytes; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Releases to keep: the current one and the most recently loaded
    /// others (default: the appliance's `storage.keepReleases`, 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Work on the files of `--data` directly; host0 must be stopped
    /// (`systemctl stop airlift-host0`).
    #[arg(long)]
    pub offline: bool,
    /// With --offline: blob files younger than this many seconds stay.
    #[arg(long, value_name = "SECS", default_value_t = gc::GRACE.as_secs(), requires = "offline")]
    pub grace_secs: u64,
    #[command(flatten)]
    pub host: super::releases::HostArgs,
}

/// The configured `storage.keepReleases` (the default without a config
/// file, as in a rescue shell).
fn configured_keep(config: &Path) -> Result<u32> {
    if !config.exists() {
        return Ok(airlift_appliance::Storage::default().keep_releases());
    }
    Ok(airlift_appliance::ApplianceFile::load(config)?
        .storage
        .keep_releases())
}

/// Run the command.
pub fn run(args: GcArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let keep = match args.keep {
        Some(k) => k,
        None => configured_keep(&args.host.config)?,
    };
    let report: Report = if args.offline {
        if !args.dry_run {
            refuse_if_serving(&args.host.config)?;
        }
        let req = Request {
            keep,
            dry_run: args.dry_run,
            grace: Duration::from_secs(args.grace_secs),
        };
        let r = rt.block_on(gc::collect_offline(&args.host.data, &req))?;
        if !r.dry_run {
            // On stderr: stdout carries the report (maybe JSON).
            eprintln!("{}", r.milestone());
        }
        r
    } else {
        let body = serde_json::json!({ "dryRun": args.dry_run, "keep": keep });
        let client = AdminClient::local(&args.host.config, &args.host.data)?;
        let v = rt.block_on(client.post(crate::api::gc::PATH, &body))?;
        report_from(v)?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// `--offline` deletes under a running host0's feet: refuse while
/// something answers on the configured registry port.
fn refuse_if_serving(config: &Path) -> Result<()> {
    if !config.exists() {
        return Ok(());
    }
    let port = airlift_appliance::ApplianceFile::load(config)?
        .registry
        .port;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        anyhow::bail!(
            "host0 answers on {addr}: stop it first (systemctl stop airlift-host0.service), \
             or run gc without --offline"
        );
    }
    Ok(())
}

fn report_from(v: serde_json::Value) -> Result<Report> {
    serde_json::from_value(v).context("host0 answered gc with an unexpected document")
}

/// The text report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for rel in &r.releases_dropped {
        let verb = if r.dry_run { "would drop" } else { "dropped" };
        out.push_str(&format!("{verb} release {rel}\n"));
    }
    for b in &r.blobs {
        let from = if b.releases.is_empty() {
            "unreferenced".to_string()
        } else {
            b.releases.join(", ")
        };
        out.push_str(&format!("{}  {:>12}  {from}\n", b.digest, b.size));
    }
    let verb = if r.dry_run { "would free" } else { "freed" };
    out.push_str(&format!(
        "{verb} {} blobs, {} bytes ({:.1} MB), keeping {} release(s)\n",
        r.blob_count,
        r.bytes,
        r.bytes as f64 / 1e6,
        r.keep
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::Digest;

    #[test]
    fn renders_each_blob_its_releases_and_the_total() {
        let r = Report {
            dry_run: true,
            keep: 1,
            releases_dropped: vec!["demo 1.0 (abc)".into()],
            blobs: vec![
                gc::plan::Doomed {
                    digest: Digest::sha256_of(b"a"),
                    size: 1500000,
                    releases: vec!["demo 1.0 (abc)".into()],
                },
                gc::plan::Doomed {
                    digest: Digest::sha256_of(b"b"),
                    size: 10,
                    releases: vec![],
                },
            ],
            blob_count: 2,
            bytes: 1500010,
        };
        let text = render(&r);
        assert!(text.contains("would drop release demo 1.0 (abc)"), "{text}");
        assert!(
            text.contains(&format!(
                "{}       1500000  demo 1.0 (abc)",
                Digest::sha256_of(b"a")
            )),
            "{text}"
        );
        assert!(text.contains("unreferenced"), "{text}");
        assert!(
            text.ends_with("would free 2 blobs, 1500010 bytes (1.5 MB), keeping 1 release(s)\n"),
            "{text}"
        );
        let back: Report = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
