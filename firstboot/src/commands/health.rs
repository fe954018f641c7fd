//! `airlift-firstboot health`: the registry check keepalived runs for the
//! virtual IP ([`crate::services::ha::vip::health`]). Exit 0 when the registry answers
//! `GET /v2/` with 200 or 401; exit 1 with one line on stderr otherwise.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::services::ha::vip::health::{self, DEFAULT_CA, DEFAULT_URL};

/// Check that a registry answers `GET /v2/` (200 or 401): exit 0 if so, 1
/// otherwise. keepalived runs it to decide who holds the virtual IP.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The registry's base URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_URL)]
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 2)]
    pub timeout_secs: u64,
    /// The CA certificate (PEM) to verify HTTPS with, when the file exists;
    /// without it a loopback URL is checked unverified.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CA)]
    pub ca: PathBuf,
}

/// Run the check; an error is the one line keepalived logs.
pub fn run(args: HealthArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(health::check(&args.url, &args.ca, timeout))
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{}", health::one_line(&format!("{e:#}"))))
}
