//! `airlift-firstboot status --server URL`: what the status page shows,
//! in a terminal. Arguments in, [`crate::api::client`] to fetch and
//! render, the text (or JSON) out.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::api::client::{self, Connect};

/// Show host0's state: the bundle load, the images and the nodes.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// host0's registry URL (`https://10.0.0.1:5000`; `HOST:PORT` means https).
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The appliance's CA certificate (PEM) to verify the server with
    /// (`/var/lib/airlift/tls/ca.crt` on host0).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server's certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Print `{"status", "images", "nodes"}` as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Run the command.
pub fn run(args: StatusArgs) -> Result<()> {
    let base = client::base_url(&args.server)?;
    let connect = Connect {
        ca: args.ca,
        insecure: args.insecure,
    };
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(client::fetch(&base, &connect))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", client::render::render(&report, SystemTime::now())?);
    }
    Ok(())
}
