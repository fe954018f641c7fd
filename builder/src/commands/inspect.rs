//! `airlift inspect`: print what [`crate::iso::inspect`] reads of an ISO
//! (volume, boot entries, partitions, bundled images), as JSON or as its
//! text rendering.

use std::path::PathBuf;

use anyhow::Result;

use crate::iso::inspect::{inspect, render};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image to read.
    pub iso: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let i = inspect(&args.iso)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&i)?);
    } else {
        print!("{}", render(&i));
    }
    Ok(())
}
