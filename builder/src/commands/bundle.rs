//! `airlift bundle CONFIG -o DIR`: collect every image of the config into
//! one OCI image layout.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::bundler::{self, BundleOptions};
use crate::config::{self, ImageSource};
use crate::sources::{ImageRequest, SourceSpec};

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
    let report = bundler::write_bundle(
        &requests,
        &args.output,
        &BundleOptions {
            name,
            version,
            concurrency: args.concurrency,
            progress: true,
        },
    )?;
    let t = &report.manifest.totals;
    eprintln!(
        "bundle {}: {} images, {} blobs, {} bytes ({} saved by sharing); fetched {} blobs, \
         reused {} from the previous bundle",
        args.output.display(),
        t.images,
        t.blobs,
        t.unique_bytes,
        t.saved_bytes,
        report.stats.fetched_blobs,
        report.stats.reused_blobs
    );
    Ok(())
}

/// Read the config: appliance name, version and the images to bundle.
fn load(path: &Path) -> Result<(String, String, Vec<ImageRequest>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading image config {}", path.display()))?;
    let cfg: config::Config = serde_yaml::from_str(&text)
        .with_context(|| format!("image config {} is malformed", path.display()))?;
    let dir = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let requests = requests_from_config(&cfg, &dir)
        .with_context(|| format!("image config {}", path.display()))?;
    Ok((cfg.metadata.name, cfg.metadata.version, requests))
}

/// The images of a config as bundle requests, relative paths resolved
/// against `dir` (the config file's folder).
pub fn requests_from_config(cfg: &config::Config, dir: &Path) -> Result<Vec<ImageRequest>> {
    cfg.images
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let reference = spec
                .reference
                .parse()
                .with_context(|| format!("images[{i}].ref"))?;
            let abs = |p: &Path| dir.join(p);
            let source = spec.from.clone().map(|s| match s {
                ImageSource::Registry(mut r) => {
                    r.credentials = r.credentials.as_deref().map(abs);
                    ImageSource::Registry(r)
                }
                ImageSource::OciLayout(mut l) => {
                    l.path = abs(&l.path);
                    ImageSource::OciLayout(l)
                }
                ImageSource::OciArchive(mut l) => {
                    l.path = abs(&l.path);
                    ImageSource::OciArchive(l)
                }
                ImageSource::DockerArchive(mut d) => {
                    d.path = abs(&d.path);
                    ImageSource::DockerArchive(d)
                }
            });
            Ok(ImageRequest {
                reference,
                source: SourceSpec::from_config(source.as_ref()),
                platforms: spec.platforms.clone(),
            })
        })
        .collect()
}
