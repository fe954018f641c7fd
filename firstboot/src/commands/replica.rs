//! `airlift-firstboot replica`: the arguments of a registry replica's
//! service (run by `airlift-replica.service`); the work is in
//! [`crate::roles::replica`].

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::join::JoinArgs;

/// Join as a registry replica and serve a copy of host0's registry.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplicaArgs {
    #[command(flatten)]
    pub join: JoinArgs,
    /// The appliance file (registry port, name).
    #[arg(long, default_value = airlift_appliance::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The registry's address [default: all addresses, the appliance's port].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

/// Run the replica.
pub fn run(args: ReplicaArgs) -> Result<()> {
    crate::sys::logging::init();
    let opts = crate::roles::replica::Options {
        join: args.join.options(),
        config: args.config,
        listen: args.listen,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(crate::roles::replica::run(opts))
}
