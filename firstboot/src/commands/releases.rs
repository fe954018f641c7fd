//! `airlift-firstboot releases [--json]`: the releases host0 holds, as a
//! table (the current one marked `*`), then the load in progress or the
//! last failed one; from `GET /airlift/v1/releases` of the host0 on this
//! machine ([`AdminClient::local`]).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::api::client::admin::AdminClient;

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

pub use crate::api::client::releases::{loading_line, render};
