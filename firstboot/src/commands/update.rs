//! `airlift-firstboot update PATH [--no-wait]`: hand a release medium
//! (a mounted folder, an ISO file or device, an OCI archive) to the
//! running host0 (`POST /airlift/v1/releases/load`), then by default
//! follow the load until the tags have moved (exit 0) or it failed
//! (exit 1 with host0's error).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::releases::{block_on, loading_line, HostArgs};
use crate::api::client::admin::AdminClient;

/// Load a release medium on host0.
#[derive(Debug, Clone, clap::Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub host: HostArgs,
    /// The medium: a mounted folder, an ISO file or block device, or an OCI archive (.tar).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Start the load and return at once (`airlift-firstboot releases` shows its progress).
    #[arg(long)]
    pub no_wait: bool,
}

/// Run the command.
pub fn run(args: UpdateArgs) -> Result<()> {
    // host0 opens the path itself: give it an absolute one.
    let path = std::fs::canonicalize(&args.path)
        .with_context(|| format!("{} does not exist", args.path.display()))?;
    let client = args.host.client()?;
    block_on(async {
        let started = client
            .post(
                crate::api::releases::LOAD_PATH,
                &serde_json::json!({ "path": path }),
            )
            .await?;
        let id = started["id"].as_u64().context("host0 gave no load id")?;
        println!("loading {} on host0", path.display());
        if args.no_wait {
            return Ok(());
        }
        follow(&client, id).await
    })
}

/// Poll until load `id` is done (loading gone: the tags moved) or failed.
async fn follow(client: &AdminClient, id: u64) -> Result<()> {
    let mut last = String::new();
    loop {
        let view = client.get(crate::api::releases::PATH).await?;
        let l = &view["loading"];
        if l.is_null() || l["id"].as_u64() != Some(id) {
            let current = current_release(&view);
            println!("loaded; serving {current}");
            return Ok(());
        }
        if l["state"] == "failed" {
            bail!("{}", l["error"].as_str().unwrap_or("the load failed"));
        }
        let line = loading_line(l);
        if line != last {
            print!("{line}");
            last = line;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `demo 2.0 (abcdef012345)` of the current release.
pub fn current_release(view: &Value) -> String {
    view["releases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["current"] == true)
        .map(|r| {
            let id = &r["id"];
            let hex = id["bundle"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches("sha256:");
            format!(
                "{} {} ({})",
                id["name"].as_str().unwrap_or(""),
                id["version"].as_str().unwrap_or(""),
                &hex[..hex.len().min(12)]
            )
        })
        .unwrap_or_else(|| "no release".into())
}
