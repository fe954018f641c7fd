//! `airlift build CONFIG -o ISO`.

use std::path::PathBuf;

use anyhow::Result;

use crate::pipeline::{self, BuildOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image config (YAML).
    pub config: PathBuf,
    /// The ISO to write (replaced atomically).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The airlift-firstboot binary to put in the image (default: the one
    /// beside this airlift binary).
    #[arg(long, env = "AIRLIFT_FIRSTBOOT")]
    pub firstboot: Option<PathBuf>,
    /// zstd compression level of the initramfs (1-19).
    #[arg(long, default_value_t = crate::initramfs::DEFAULT_LEVEL,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// Blob downloads at once while bundling.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

pub fn run(args: Args) -> Result<()> {
    let mut opts = BuildOptions::new(args.config, args.output);
    opts.firstboot = args.firstboot;
    opts.zstd_level = args.zstd_level;
    opts.concurrency = args.concurrency;
    let r = pipeline::build(&opts)?;
    let root = match &r.root_image {
        Some(i) => format!("root image {} bytes ({}); ", i.bytes, i.compression),
        None => "root filesystem in the initramfs; ".to_string(),
    };
    eprintln!(
        "wrote {}: {} bytes; {} images; {root}initramfs {} bytes ({} modules, kernel {}); \
         bundle {:.1}s, initramfs {:.1}s, iso {:.1}s",
        opts.output.display(),
        r.iso.image_bytes,
        r.images,
        r.initramfs.compressed_bytes,
        r.initramfs.modules.len(),
        r.kernel_release,
        r.seconds_bundle,
        r.seconds_initramfs,
        r.seconds_iso
    );
    Ok(())
}
