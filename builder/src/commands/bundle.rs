//! `airlift bundle CONFIG -o DIR`: collect every image of the config into
//! one OCI image layout.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::bundler::{self, BundleOptions};
use crate::config;
use crate::sources::ImageRequest;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image config (YAML).
    pub config: PathBuf,
    /// The bundle folder to write (replaced atomically if it exists).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Blob downloads at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

pub fn run(args: Args) -> Result<()> {
    let (name, version, requests) = load(&args.config)?;
    bundler::write_bundle(
        &requests,
        &args.output,
        &BundleOptions {
            name,
            version,
            concurrency: args.concurrency,
            progress: true,
            ..BundleOptions::default()
        },
    )?;
    Ok(())
}

/// Read and validate the config: appliance name, version and the images.
fn load(path: &Path) -> Result<(String, String, Vec<ImageRequest>)> {
    let app = config::load_and_validate(path, config::Purpose::Bundle)?;
    let requests = app.images.iter().map(config::ImageEntry::request).collect();
    Ok((app.metadata.name, app.metadata.version, requests))
}
