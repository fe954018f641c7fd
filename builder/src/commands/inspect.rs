//! `airlift inspect`.

use std::path::PathBuf;

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image to read.
    pub iso: PathBuf,
}

pub fn run(args: Args) -> Result<()> {
    anyhow::bail!(
        "airlift inspect {}: not implemented yet",
        args.iso.display()
    )
}
