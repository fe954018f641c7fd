//! `airlift-firstboot backup -o PATH`: write what cannot be rebuilt from
//! the release media into one tar ([`crate::services::backup`]). It reads
//! host0's files directly, so it runs while host0 serves; the node table,
//! kept in host0's memory, is asked of the running host0 when it answers.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlift_appliance::ApplianceFile;
use anyhow::{Context, Result};

use crate::services::backup::{collect, plan, write};
use crate::services::registry::REGISTRY_DIR;
use crate::sys::disk_space::mb;

/// The name prefix of the archives a folder output gets.
pub const NAME_PREFIX: &str = "airlift-backup-";

/// Back up host0: pushed images, tags, releases state, TLS files and the
/// admin token, the node table. Blobs release media carry are left out.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The archive to write; a folder (existing, or ending in `/`) gets
    /// `airlift-backup-<date>.tar` inside.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: PathBuf,
    /// Then keep only the newest N `airlift-backup-*.tar` in that folder.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: Option<u32>,
    /// The appliance file.
    #[arg(long, default_value = airlift_appliance::DEFAULT_PATH)]
    pub config: PathBuf,
    /// host0's state folder.
    #[arg(long, default_value = "/var/lib/airlift")]
    pub data: PathBuf,
}

/// Run the command.
pub fn run(args: BackupArgs) -> Result<()> {
    let file = ApplianceFile::load(&args.config)?;
    let now = SystemTime::now();
    let stamp = airlift_oci::civil_time::rfc3339_of(now);
    let out = output_path(&args.output, &stamp);
    if let Some(dir) = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let nodes = match node_table(&args.config, &args.data) {
        Ok(n) => Some(n),
        Err(e) => {
            println!("node table not recorded: host0 did not answer ({e:#})");
            None
        }
    };
    let inputs = collect::collect(
        &args.data,
        &crate::api::admin::token_path(&args.data),
        &file.name,
        &stamp,
        nodes,
    )?;
    let plan = plan::plan(&inputs, env!("CARGO_PKG_VERSION"))?;
    let size = write::write(&out, &args.data.join(REGISTRY_DIR), &plan)?;
    let i = &plan.info;
    println!(
        "wrote {}: {} images ({} manifests), {} blobs ({}), archive {}",
        out.display(),
        i.images,
        i.manifests,
        i.blobs.len(),
        mb(i.blob_bytes()),
        mb(size)
    );
    println!(
        "left out {} blobs ({}) that release media carry; {} releases recorded",
        i.left_out_blobs,
        mb(i.left_out_bytes),
        i.releases.len()
    );
    println!("the archive holds the appliance's CA key and admin token: keep it like a password");
    if let Some(n) = args.keep_last {
        let dir = out.parent().unwrap_or(Path::new("."));
        for old in prune(dir, n as usize)? {
            println!("removed old backup {}", old.display());
        }
    }
    Ok(())
}

/// The output file: `PATH`, or `PATH/airlift-backup-<YYYY-MM-DD>.tar`
/// when PATH is a folder.
pub fn output_path(output: &Path, stamp: &str) -> PathBuf {
    let is_dir = output.is_dir() || output.as_os_str().to_string_lossy().ends_with('/');
    if is_dir {
        let date = stamp.get(..10).unwrap_or(stamp);
        output.join(format!("{NAME_PREFIX}{date}.tar"))
    } else {
        output.to_path_buf()
    }
}

/// Remove all but the newest `keep` `airlift-backup-*.tar` in `dir` (by
/// name, which sorts by date). Returns the removed paths.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(NAME_PREFIX) && n.ends_with(".tar"))
        .collect();
    names.sort();
    let drop = names.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for n in &names[..drop] {
        let p = dir.join(n);
        std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        removed.push(p);
    }
    if !removed.is_empty() {
        airlift_oci::atomic::sync_dir(dir)?;
    }
    Ok(removed)
}

/// The node table from the running host0 (`GET /airlift/v1/nodes`).
fn node_table(config: &Path, data: &Path) -> Result<Vec<u8>> {
    let client = crate::api::client::admin::AdminClient::local(config, data)?;
    let nodes = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(10), client.get("/airlift/v1/nodes")).await
        })
        .context("no answer within 10 s")??;
    let mut bytes = serde_json::to_vec_pretty(&nodes)?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_output_gets_a_dated_name_and_prune_keeps_the_newest() {
        let t = tempfile::tempdir().unwrap();
        let stamp = "2026-12-07T04:00:00Z";
        assert_eq!(
            output_path(t.path(), stamp),
            t.path().join("airlift-backup-2026-12-07.tar")
        );
        assert_eq!(
            output_path(Path::new("/x/new/"), stamp),
            Path::new("/x/new/airlift-backup-2026-12-07.tar")
        );
        assert_eq!(
            output_path(Path::new("/x/b.tar"), stamp),
            Path::new("/x/b.tar")
        );
        for d in 1..=9 {
            std::fs::write(
                t.path().join(format!("airlift-backup-2026-12-0{d}.tar")),
                b"",
            )
            .unwrap();
        }
        std::fs::write(t.path().join("other.tar"), b"").unwrap();
        let removed = prune(t.path(), 7).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(!t.path().join("airlift-backup-2026-12-02.tar").exists());
        assert!(t.path().join("airlift-backup-2026-12-03.tar").exists());
        assert!(t.path().join("other.tar").exists());
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 8);
    }
}
