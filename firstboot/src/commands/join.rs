//! `airlift-firstboot join`: the arguments of a joining node's service
//! (run by `airlift-join.service`); the work is in [`crate::services::join`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

/// Fetch this node's config from host0 and point the runtimes at its registry.
#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    /// The kernel command line to read `airlift.server=`, `airlift.token=`, `airlift.ca=` from.
    #[arg(long, default_value = "/proc/cmdline")]
    pub cmdline: PathBuf,
    /// The join settings file (same keys; the command line wins).
    #[arg(long, default_value = crate::services::join::params::CONF_PATH)]
    pub conf: PathBuf,
    /// The root filesystem whose runtimes are configured.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// The state folder (marker, node config, remembered CA).
    #[arg(long, default_value = "/var/lib/airlift")]
    pub data: PathBuf,
    /// Longest pause between attempts to reach host0, in seconds.
    #[arg(long, default_value_t = 30)]
    pub max_backoff_secs: u64,
    /// Give up after this many seconds without host0 [default: never].
    #[arg(long)]
    pub give_up_after_secs: Option<u64>,
    /// Do not resolve an image through the new config afterwards.
    #[arg(long)]
    pub no_verify: bool,
    /// Re-fetch the node config once and apply it if it changed (run by
    /// airlift-join-refresh.timer); host0 being unreachable is not an error.
    #[arg(long)]
    pub refresh: bool,
}

impl JoinArgs {
    /// The join's options.
    pub fn options(&self) -> crate::services::join::Options {
        crate::services::join::Options {
            cmdline: self.cmdline.clone(),
            conf: self.conf.clone(),
            root: self.root.clone(),
            data: self.data.clone(),
            max_backoff: Duration::from_secs(self.max_backoff_secs.max(1)),
            give_up_after: self.give_up_after_secs.map(Duration::from_secs),
            no_verify: self.no_verify,
        }
    }
}

/// Run the join.
pub fn run(args: JoinArgs) -> Result<()> {
    crate::sys::logging::init();
    let opts = args.options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if args.refresh {
        rt.block_on(crate::roles::node::refresh(opts))
    } else {
        rt.block_on(crate::roles::node::run(opts))
    }
}
