//! Joining host0, for a node and for a replica (the [`crate::roles::node`]
//! and [`crate::roles::replica`] roles run these steps):
//!
//! 1. Learn host0's address and the token ([`params`]: kernel command
//!    line, `/etc/airlift/join.conf`).
//! 2. Ask host0's join endpoint for the node config, retrying with a
//!    capped backoff (250 ms doubling to 30 s) while host0 is unreachable,
//!    one log line per attempt ([`client`]).
//! 3. Check the CA it carries ([`trust`]: pinned by `airlift.ca=`, else
//!    trusted on first use and remembered).
//! 4. Write the runtimes' mirror config exactly as host0 writes its own
//!    ([`crate::services::mirrors::runtimes::configure`]: everything computed before
//!    anything is written, atomic per file, backups of replaced files,
//!    a marker so the same config is not re-applied).
//! 5. Prove it: resolve one image through the first mirror endpoint with
//!    only the received CA trusted.
//!
//! Milestones go to stdout (the console under the unit): `AIRLIFT-JOIN-*`.

pub mod client;
pub mod node_config;
pub mod params;
pub mod trust;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::sys::console::milestone;
use client::FetchError;
pub use node_config::NodeConfig;
use params::JoinParams;

/// The node config as received, in the state folder.
pub const NODE_CONFIG: &str = "node-config.json";

/// What `join` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The kernel command line's file.
    pub cmdline: PathBuf,
    /// The join settings file.
    pub conf: PathBuf,
    /// The root whose runtimes are configured.
    pub root: PathBuf,
    /// The state folder (marker, node config, remembered CA).
    pub data: PathBuf,
    /// The longest pause between attempts.
    pub max_backoff: Duration,
    /// Give up after this long without host0 (None: never).
    pub give_up_after: Option<Duration>,
    /// Skip resolving an image after configuring.
    pub no_verify: bool,
}

/// The pause after failed attempt number `attempt` (0-based): 250 ms
/// doubling, at most `max`. A node's join usually starts a moment before
/// its network is up, so the first retries come soon.
pub fn backoff(attempt: u32, max: Duration) -> Duration {
    Duration::from_millis(250u64 << attempt.min(20)).min(max)
}

/// Read the parameters from the command line and the file.
pub fn load_params(cmdline: &Path, conf: &Path) -> Result<JoinParams> {
    let line = std::fs::read_to_string(cmdline).unwrap_or_default();
    let file = match std::fs::read_to_string(conf) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", conf.display())),
    };
    let origin = conf.display().to_string();
    params::resolve(&line, file.as_deref().map(|t| (t, origin.as_str())))
}

/// Fetch the node config (for `role`, e.g. `replica`), retrying while
/// host0 cannot be reached.
pub async fn fetch_with_retry(
    p: &JoinParams,
    opts: &Options,
    role: Option<&str>,
) -> Result<NodeConfig> {
    let start = std::time::Instant::now();
    let mut attempt = 0u32;
    loop {
        match client::fetch_config(&p.server, &p.token, p.mac.as_deref(), role).await {
            Ok(c) => return Ok(c),
            Err(FetchError::Fatal(e)) => return Err(e),
            Err(FetchError::Retry(e)) => {
                let pause = backoff(attempt, opts.max_backoff);
                attempt += 1;
                if let Some(limit) = opts.give_up_after {
                    if start.elapsed() + pause > limit {
                        return Err(e.context(format!(
                            "host0 at {} unreachable for {:?}; giving up",
                            p.server.url(),
                            start.elapsed()
                        )));
                    }
                }
                milestone(&format!(
                    "AIRLIFT-JOIN-WAITING host0 at {} not reachable (attempt {attempt}): {e:#}; \
                     retrying in {pause:?}",
                    p.server.url()
                ));
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Check the CA the config carries against the pin and the one
/// remembered, and remember it.
pub fn accept_ca(p: &JoinParams, cfg: &NodeConfig, data: &Path) -> Result<()> {
    let remembered = trust::remembered(data);
    let accepted = trust::decide(
        cfg.ca_pem.as_deref(),
        p.ca_pin.as_deref(),
        remembered.as_deref(),
        !p.server.is_http(),
    )?;
    match &accepted {
        trust::Accepted::Pinned(fp) => tracing::info!("host0's CA {fp} matches airlift.ca="),
        trust::Accepted::Remembered(fp) => {
            tracing::info!("host0's CA {fp} is the one accepted before")
        }
        trust::Accepted::FirstUse(fp) => tracing::warn!(
            "no airlift.ca= given: trusting host0's CA {fp} on first use (remembered from now on)"
        ),
        trust::Accepted::NoTls => tracing::warn!("host0 serves plain HTTP: no CA to check"),
    }
    if let trust::Accepted::Pinned(fp) | trust::Accepted::FirstUse(fp) = &accepted {
        trust::remember(data, fp)?;
    }
    Ok(())
}

/// Write the runtimes' config from `cfg` (an accepted config), save it,
/// verify unless told not to, then update the trust store.
pub async fn configure(cfg: &NodeConfig, opts: &Options, marker: &str) -> Result<()> {
    let runtimes = cfg.runtimes.clone();
    use crate::services::mirrors::runtimes::{self as rt, Written};
    let written = rt::write_files(&opts.root, &opts.data, &cfg.mirror, &runtimes)?;
    // The grant's private key stays out of the saved copy.
    let saved = NodeConfig {
        replica: None,
        ..cfg.clone()
    };
    let json = serde_json::to_vec_pretty(&saved).context("rendering the node config")?;
    airlift_oci::atomic::write(&opts.data.join(NODE_CONFIG), &json)?;
    let files = crate::services::mirrors::apply::plan_files(
        &cfg.mirror,
        &runtimes,
        &crate::services::mirrors::signature_probe::detect_for(&cfg.mirror),
    )?;
    milestone(&format!(
        "{marker} appliance={} {} registries={} runtimes={} files={} ({})",
        cfg.appliance.name,
        cfg.appliance.version,
        cfg.registries.join(","),
        runtimes
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(","),
        files.len(),
        match written {
            Written::AlreadyDone => "already in place",
            Written::Applied { changed: true, .. } => "written",
            Written::Applied { changed: false, .. } => "unchanged",
        }
    ));
    if !opts.no_verify {
        verify(cfg, opts).await?;
    }
    // Last (slow under emulation): the system trust store, then the
    // marker that says this config is fully applied.
    if let Written::Applied { update_trust, .. } = written {
        rt::finish(&opts.root, &opts.data, &cfg.mirror, &runtimes, update_trust)?;
    }
    Ok(())
}

/// Resolve one image through the first mirror endpoint with the CA received.
async fn verify(cfg: &NodeConfig, opts: &Options) -> Result<()> {
    let first = cfg
        .mirror
        .registries
        .first()
        .context("the node config names no registry")?;
    let mut attempt = 0;
    let image = loop {
        match client::resolve_one_image(first, cfg.mirror.ca_pem.as_deref()).await {
            Ok(i) => break i,
            Err(e) if attempt < 4 => {
                let pause = backoff(attempt, opts.max_backoff);
                attempt += 1;
                tracing::warn!(
                    "resolving an image at {} failed: {e:#}; retrying in {pause:?}",
                    first.url()
                );
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e.context(format!("checking the mirror {}", first.url()))),
        }
    };
    milestone(&format!("AIRLIFT-JOIN-VERIFIED {}/{image}", first.host));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped() {
        let max = Duration::from_secs(30);
        let s: Vec<u128> = (0..9).map(|a| backoff(a, max).as_millis()).collect();
        assert_eq!(s, [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        assert_eq!(backoff(99, max), max);
    }
}
