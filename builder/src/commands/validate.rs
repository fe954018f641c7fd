//! `airlift validate`.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image config (YAML).
    pub config: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    anyhow::bail!(
        "airlift validate {}: not implemented yet",
        args.config.display()
    )
}
