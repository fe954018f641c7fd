//! `airlift-firstboot host0`: the arguments of the first machine's boot
//! service (run by `airlift-host0.service`); the work is in [`crate::roles::host0`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

/// Serve the bundle at once, copy it to disk in the background, set up
/// TLS, the local runtimes' mirror config and the join endpoint.
#[derive(Debug, Clone, clap::Args)]
pub struct Host0Args {
    /// The appliance file.
    #[arg(long, default_value = airlift_appliance::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Use this mounted media (or bundle folder) instead of finding the media by label.
    #[arg(long)]
    pub media: Option<PathBuf>,
    /// The root filesystem whose runtimes are configured.
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// host0's state folder (registry data, TLS files, progress).
    #[arg(long, default_value = "/var/lib/airlift")]
    pub data: PathBuf,
    /// The registry's address [default: 0.0.0.0 and the appliance file's port].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Another name (or address) for the certificate; repeatable.
    #[arg(long = "hostname", value_name = "NAME")]
    pub hostnames: Vec<String>,
    /// A HOST:PORT to give runtimes and joining nodes instead of the discovered addresses; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Vec<String>,
    /// Copy the bundle to the data folder even when it is in RAM.
    #[arg(long)]
    pub force_load: bool,
    /// Seconds to wait for the media to appear.
    #[arg(long, default_value_t = 120)]
    pub media_wait_secs: u64,
    /// Seconds to wait for a NIC that is coming up to get an IPv4 address
    /// (DHCP) before choosing the addresses to announce; not waited for
    /// with no NIC, with --advertise or with a specific --listen address.
    #[arg(long, default_value_t = 10)]
    pub address_wait_secs: u64,
}

/// Run host0 until stopped.
pub fn run(args: Host0Args) -> Result<()> {
    crate::sys::logging::init();
    let opts = crate::roles::host0::Options {
        config: args.config,
        media: args.media,
        root: args.root,
        data: args.data,
        listen: args.listen,
        hostnames: args.hostnames,
        advertise: args.advertise,
        force_load: args.force_load,
        media_wait: Duration::from_secs(args.media_wait_secs),
        address_wait: Duration::from_secs(args.address_wait_secs),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(crate::roles::host0::run(opts))
}
