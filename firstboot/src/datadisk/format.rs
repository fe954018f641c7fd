//! The commands that change a disk: wipe, partition, make the
//! filesystem, mark the partition finished. Each names the disk and the
//! tool in its error, with the tool's own output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::disks;
use super::plan::{FS_LABEL, PART_PENDING, PART_READY};
use super::Filesystem;

/// Run `tool args…`; fail with its output.
fn run(tool: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(tool).args(args).output().with_context(|| {
        format!("running {tool} (it must be in the appliance's root filesystem)")
    })?;
    if !out.status.success() {
        bail!(
            "{tool} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    Ok(())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Erase every signature and partition table on `disk` (only for
/// `wipe: true`).
pub fn wipe(disk: &Path) -> Result<()> {
    run("wipefs", &["--all", "--force", s(disk)])?;
    run("sgdisk", &["--zap-all", s(disk)])
}

/// A new GPT with one partition over the whole disk, type Linux
/// filesystem, named [`PART_PENDING`].
pub fn partition(disk: &Path) -> Result<()> {
    let name = format!("1:{PART_PENDING}");
    run(
        "sgdisk",
        &[
            "--clear",
            "--new=1:0:0",
            "--typecode=1:8300",
            "--change-name",
            &name,
            s(disk),
        ],
    )
}

/// Make the filesystem on `part`, labelled [`FS_LABEL`] (overwriting
/// whatever a cut-off earlier attempt left).
pub fn mkfs(part: &Path, fs: Filesystem) -> Result<()> {
    match fs {
        Filesystem::Ext4 => run("mkfs.ext4", &["-F", "-q", "-L", FS_LABEL, s(part)]),
        Filesystem::Xfs => run("mkfs.xfs", &["-f", "-q", "-L", FS_LABEL, s(part)]),
    }
    .with_context(|| format!("making the {fs} filesystem on {}", part.display()))
}

/// Rename partition 1 to [`PART_READY`]: the filesystem is complete.
pub fn mark_ready(disk: &Path) -> Result<()> {
    run("sync", &[])?;
    let name = format!("1:{PART_READY}");
    run("sgdisk", &["--change-name", &name, s(disk)])
}

/// The device node of partition 1 of `disk`, once the kernel shows it
/// (asking it to re-read the table if it does not). `dev` is `/dev`.
pub fn wait_partition(sysfs: &Path, dev: &Path, disk: &str, wait: Duration) -> Result<PathBuf> {
    let start = Instant::now();
    let mut asked = 0u64;
    loop {
        if let Some((_, name, _)) = disks::partitions(sysfs, disk)?
            .into_iter()
            .find(|(n, _, _)| *n == 1)
        {
            let node = dev.join(&name);
            if node.exists() {
                return Ok(node);
            }
        }
        // sgdisk asks the kernel to re-read the table; if no node shows,
        // add the partitions from user space (a kernel without the GPT
        // parser, or a busy re-read), and only then try the re-read.
        if start.elapsed() > Duration::from_secs(2 * (asked + 1)) {
            asked += 1;
            if run("partx", &["--update", s(&dev.join(disk))]).is_err() {
                let _ = run("blockdev", &["--rereadpt", s(&dev.join(disk))]);
            }
        }
        if start.elapsed() > wait {
            bail!(
                "partition 1 of {} did not appear within {wait:?} (a loop device needs \
                 `losetup --partscan`)",
                dev.join(disk).display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
