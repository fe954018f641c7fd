//! `airlift bundle CONFIG -o DIR`: collect every image of the config into
//! one OCI image layout.

use std::path::PathBuf;

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
    let app = config::load_and_validate(&args.config, config::Purpose::Bundle)?;
    let requests: Vec<ImageRequest> = app.images.iter().map(config::ImageEntry::request).collect();
    let (name, version) = (app.metadata.name.clone(), app.metadata.version.clone());
    bundler::write_bundle(
        &requests,
        &args.output,
        &BundleOptions {
            attachments: app.attachment_filter(),
            name,
            version,
            concurrency: args.concurrency,
            progress: true,
            trust: app.trust,
        },
    )?;
    Ok(())
}
