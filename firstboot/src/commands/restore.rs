//! `airlift-firstboot restore PATH [--force]`: bring a backup back onto
//! a freshly installed host0 of the same appliance
//! ([`crate::services::backup`]): refused for another appliance's backup
//! or, without `--force`, a host0 that already holds pushed content;
//! everything verified before anything but inert blobs is written; then
//! host0 is restarted so it serves what was restored.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_appliance::ApplianceFile;
use anyhow::{bail, Context, Result};

use crate::services::backup::{collect, install, read, BackupInfo};
use crate::services::registry::REGISTRY_DIR;
use crate::sys::disk_space::mb;

/// The unit restarted after a restore.
pub const HOST0_UNIT: &str = "airlift-host0.service";

/// Restore a backup `airlift-firstboot backup` wrote onto this host0.
#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    /// The backup archive.
    #[arg(value_name = "PATH")]
    pub archive: PathBuf,
    /// Restore even though host0 already holds pushed content (restored
    /// files replace same-named ones; the rest stays).
    #[arg(long)]
    pub force: bool,
    /// The appliance file.
    #[arg(long, default_value = airlift_appliance::DEFAULT_PATH)]
    pub config: PathBuf,
    /// host0's state folder.
    #[arg(long, default_value = "/var/lib/airlift")]
    pub data: PathBuf,
    /// Do not restart airlift-host0.service; say that it must be.
    #[arg(long, hide = true)]
    pub no_restart: bool,
}

/// Run the command.
pub fn run(args: RestoreArgs) -> Result<()> {
    let file = ApplianceFile::load(&args.config)?;
    let registry = args.data.join(REGISTRY_DIR);
    let pushed = collect::pushed_manifests(&registry)?;
    let check = |info: &BackupInfo| refuse(info, &file.name, pushed, args.force);
    let restored = read::read(&args.archive, &registry, &check)?;
    let done = install::install(
        &args.data,
        &crate::api::admin::token_path(&args.data),
        &restored,
    )?;
    let i = &restored.info;
    println!(
        "restored {} images ({} manifests) of {} taken {}: {} blobs ({}) verified by digest, \
         {} metadata files, {} private files",
        i.images,
        i.manifests,
        i.appliance,
        i.created_at,
        restored.blobs,
        mb(restored.bytes),
        done.meta,
        done.private
    );
    for r in &done.releases {
        println!("release {r}: held");
    }
    for (r, missing) in &done.need_media {
        println!(
            "release {r} needs its medium ({missing} blobs absent): airlift-firstboot update \
             <its ISO or update medium>; left out of the releases state"
        );
    }
    if let Some(n) = done.nodes {
        println!("the backed-up node table ({n} machines) stays in the archive; host0 relearns its nodes as they boot and join");
    }
    restart(args.no_restart)
}

/// Refuse another appliance's backup, and a host0 with pushed content
/// (`pushed` manifests) unless `force`.
pub fn refuse(info: &BackupInfo, appliance: &str, pushed: usize, force: bool) -> Result<()> {
    if info.appliance != appliance {
        bail!(
            "another appliance's backup: it is for {:?}, this host0 is {appliance:?}; nothing was restored",
            info.appliance
        );
    }
    if pushed > 0 && !force {
        bail!(
            "host0 already holds pushed content ({pushed} manifests); restore onto a freshly \
             installed host0, or give --force to restore over it; nothing was restored"
        );
    }
    Ok(())
}

/// Restart host0 when systemd runs, else say it must be restarted.
fn restart(skip: bool) -> Result<()> {
    if skip || !Path::new("/run/systemd/system").exists() {
        println!("restart host0 ({HOST0_UNIT}) so it serves the restored content");
        return Ok(());
    }
    let status = Command::new("systemctl")
        .args(["restart", HOST0_UNIT])
        .status()
        .context("running systemctl")?;
    if !status.success() {
        bail!("systemctl restart {HOST0_UNIT} failed ({status}); restart it by hand");
    }
    println!("restarted {HOST0_UNIT}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(appliance: &str) -> BackupInfo {
        BackupInfo {
            schema: crate::services::backup::SCHEMA.into(),
            appliance: appliance.into(),
            created_at: "2026-12-07T00:00:00Z".into(),
            airlift_version: "0".into(),
            images: 0,
            manifests: 0,
            blobs: vec![],
            left_out_blobs: 0,
            left_out_bytes: 0,
            releases: vec![],
            files: vec![],
        }
    }

    #[test]
    fn refuses_another_appliance_and_pushed_content_without_force() {
        let e = refuse(&info("other"), "demo", 0, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"other\"") && e.contains("\"demo\""), "{e}");
        let e = refuse(&info("demo"), "demo", 3, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 manifests") && e.contains("--force"), "{e}");
        refuse(&info("demo"), "demo", 3, true).unwrap();
        refuse(&info("demo"), "demo", 0, false).unwrap();
    }
}
