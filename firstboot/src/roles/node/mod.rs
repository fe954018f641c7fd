//! `airlift-firstboot join`: a netbooted (or installed) node joins host0
//! and points its container runtimes at host0's registries, with the steps
//! of [`crate::services::join`]; `--refresh` re-applies a changed config.

use anyhow::Result;

use crate::services::join::client::{self, FetchError};
use crate::services::join::NodeConfig;
use crate::services::join::{
    accept_ca, configure, fetch_with_retry, load_params, Options, NODE_CONFIG,
};
use crate::sys::console::milestone;

/// Join: fetch, check, apply, verify.
pub async fn run(opts: Options) -> Result<()> {
    let p = load_params(&opts.cmdline, &opts.conf)?;
    crate::sys::secure_boot::announce();
    milestone(&format!(
        "AIRLIFT-JOIN-START server={} mac={}",
        p.server.url(),
        p.mac.as_deref().unwrap_or("-")
    ));
    let cfg = fetch_with_retry(&p, &opts, None).await?;
    accept_ca(&p, &cfg, &opts.data)?;
    configure(&cfg, &opts, "AIRLIFT-JOIN-CONFIGURED").await?;
    milestone("AIRLIFT-JOIN-DONE");
    Ok(())
}

/// Re-fetch the node config once (the replica list grows as replicas
/// join) and apply it if it changed. host0 being unreachable is not an
/// error: the config in place already lists every registry known.
pub async fn refresh(opts: Options) -> Result<()> {
    let p = load_params(&opts.cmdline, &opts.conf)?;
    let cfg = match client::fetch_config(&p.server, &p.token, p.mac.as_deref(), None).await {
        Ok(c) => c,
        Err(FetchError::Retry(e)) => {
            tracing::warn!("host0 unreachable, keeping the config in place: {e:#}");
            return Ok(());
        }
        Err(FetchError::Fatal(e)) => return Err(e),
    };
    let saved: Option<NodeConfig> = std::fs::read(opts.data.join(NODE_CONFIG))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if saved.as_ref() == Some(&cfg) {
        tracing::info!("the node config is unchanged");
        return Ok(());
    }
    accept_ca(&p, &cfg, &opts.data)?;
    let opts = Options {
        no_verify: true,
        ..opts
    };
    configure(&cfg, &opts, "AIRLIFT-JOIN-UPDATED").await
}
