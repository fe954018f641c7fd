//! `airlift build CONFIG -o ISO`, and with `--update-from PREVIOUS` an
//! update medium ([`crate::update`]).

use std::path::PathBuf;

use anyhow::Result;

use crate::pipeline::{self, BuildOptions};
use crate::update::{self, medium::Container, UpdateOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The image config (YAML).
    pub config: PathBuf,
    /// The ISO to write (replaced atomically). With --update-from, a name
    /// ending in .tar writes one OCI archive instead of an ISO.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Write an update medium for host0s that hold PREVIOUS: the new
    /// release's index.json and bundle.json, only the blobs PREVIOUS lacks,
    /// and update.json. PREVIOUS is the previous release's ISO (its exact
    /// blob set), its update medium, or its bundle.json (with its
    /// index.json beside it or in bundle/ beside it; then only images whose
    /// top digest is unchanged count as present, everything else is
    /// carried). The medium does not boot: base: and overlays: files are
    /// not needed.
    #[arg(long, value_name = "PREVIOUS")]
    pub update_from: Option<PathBuf>,
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
    /// Folder of the verification record: blob files of local OCI
    /// layouts that an earlier build hashed, keyed by device, inode,
    /// size, mtime and ctime, are copied without hashing while unchanged
    /// (default: $AIRLIFT_CACHE/build, else ~/.cache/airlift/build).
    #[arg(long, env = "AIRLIFT_BUILD_CACHE", conflicts_with = "no_cache")]
    pub cache: Option<PathBuf>,
    /// Hash every blob and keep no verification record.
    #[arg(long)]
    pub no_cache: bool,
}

/// The verification record's folder: `--cache`, else `build` under
/// `$AIRLIFT_CACHE`, `$XDG_CACHE_HOME/airlift` or `~/.cache/airlift`;
/// `None` with `--no-cache` or when none of those is set.
fn cache_dir(args: &Args, var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if args.no_cache {
        return None;
    }
    if let Some(dir) = &args.cache {
        return Some(dir.clone());
    }
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = set("AIRLIFT_CACHE")
        .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("airlift")))
        .or_else(|| set("HOME").map(|d| d.join(".cache/airlift")))?;
    Some(root.join("build"))
}

pub fn run(args: Args) -> Result<()> {
    let cache = cache_dir(&args, |name| std::env::var(name).ok());
    if let Some(previous) = args.update_from {
        return run_update(UpdateOptions {
            config: args.config,
            previous,
            output: args.output,
            concurrency: args.concurrency,
            progress: true,
            cache,
        });
    }
    let mut opts = BuildOptions::new(args.config, args.output);
    opts.cache = cache;
    opts.firstboot = args.firstboot;
    opts.zstd_level = args.zstd_level;
    opts.concurrency = args.concurrency;
    let r = pipeline::build(&opts)?;
    if let Some(b) = &r.base {
        eprintln!(
            "base image {} (linux/amd64 {}), {}",
            b.pinned(),
            b.manifest_digest,
            b.signed_by()
        );
    }
    let root = match &r.root_image {
        Some(i) => format!("root image {} bytes ({}); ", i.bytes, i.compression),
        None => "root filesystem in the initramfs; ".to_string(),
    };
    eprintln!(
        "wrote {}: {} bytes; {} images; {root}initramfs {} bytes ({} modules, kernel {}); \
         blobs hashed {} ({} bytes), {} unchanged since a recorded check ({} bytes); \
         bundle {:.1}s, initramfs {:.1}s, iso {:.1}s",
        opts.output.display(),
        r.iso.image_bytes,
        r.images,
        r.initramfs.compressed_bytes,
        r.initramfs.modules.len(),
        r.kernel_release,
        r.iso.checks.hashed_files,
        r.iso.checks.hashed_bytes,
        r.iso.checks.trusted_files,
        r.iso.checks.trusted_bytes,
        r.seconds_bundle,
        r.seconds_initramfs,
        r.seconds_iso
    );
    Ok(())
}

fn run_update(opts: UpdateOptions) -> Result<()> {
    let r = update::build(&opts)?;
    let m = &r.manifest;
    eprintln!(
        "wrote {} ({}): {} bytes; update to {} over {} (from a {}); carries {} of {} blobs \
         ({} of {} bytes); images: {} added, {} changed, {} removed; blobs hashed {} ({} bytes), \
         {} unchanged since a recorded check ({} bytes); bundle {:.1}s, medium {:.1}s",
        opts.output.display(),
        if r.container == Container::Archive {
            "OCI archive"
        } else {
            "ISO, data only"
        },
        r.output_bytes,
        m.release,
        m.base,
        r.previous_kind,
        m.carried.blobs,
        m.total.blobs,
        m.carried.bytes,
        m.total.bytes,
        m.added.len(),
        m.changed.len(),
        m.removed.len(),
        r.checks.hashed_files,
        r.checks.hashed_bytes,
        r.checks.trusted_files,
        r.checks.trusted_bytes,
        r.seconds_bundle,
        r.seconds_write
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cache: Option<&str>, no_cache: bool) -> Args {
        Args {
            config: "c.yaml".into(),
            output: "o.iso".into(),
            update_from: None,
            firstboot: None,
            zstd_level: 3,
            concurrency: 1,
            cache: cache.map(PathBuf::from),
            no_cache,
        }
    }

    #[test]
    fn the_record_goes_where_asked_else_in_the_user_cache() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let all = env(&[
            ("AIRLIFT_CACHE", "/ac"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(cache_dir(&args(Some("/d"), false), all), Some("/d".into()));
        assert_eq!(cache_dir(&args(None, true), all), None);
        assert_eq!(cache_dir(&args(None, false), all), Some("/ac/build".into()));
        let xdg = env(&[
            ("AIRLIFT_CACHE", ""),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ]);
        assert_eq!(
            cache_dir(&args(None, false), xdg),
            Some("/x/airlift/build".into())
        );
        let home = env(&[("HOME", "/h")]);
        assert_eq!(
            cache_dir(&args(None, false), home),
            Some("/h/.cache/airlift/build".into())
        );
        assert_eq!(cache_dir(&args(None, false), env(&[])), None);
    }
}
