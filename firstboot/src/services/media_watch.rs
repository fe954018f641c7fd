//! The media watcher: while host0 runs, every [`POLL`] it looks at the
//! block devices (`/sys/class/block`, whole disks and CD drives, not
//! partitions) for an ISO 9660 volume with the appliance's label that is
//! not the boot media (the device mounted at
//! [`MOUNT_POINT`](crate::services::media::MOUNT_POINT)) and not mounted
//! anywhere else (an `update PATH` loop mount). A new one is mounted
//! read-only at `/run/airlift/update/<dev>`, announced
//! (`AIRLIFT-UPDATE-FOUND <device> <label>`) and handed to the
//! [`OnFound`] callback (the releases loader). When the callback is done
//! the medium is unmounted (so a CD tray is not left locked) but
//! remembered by device and content fingerprint, so it is not loaded
//! again at each poll; once it goes (ejected, unplugged, or another disc
//! in the same drive) it is forgotten and a new medium there is seen.
//!
//! Deciding what to mount, unmount and forget is pure ([`plan`]); reading
//! sysfs, the devices and the mount table, and mounting, are the edges.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};

use crate::services::media::{label_from_pvd, PVD_OFFSET};
use crate::sys::console::milestone;

/// How often the devices are looked at.
pub const POLL: Duration = Duration::from_secs(5);

/// Where update media are mounted (`<this>/<dev>`).
pub const UPDATE_ROOT: &str = "/run/airlift/update";

/// Bytes from the PVD on that identify a medium's content (descriptors,
/// path tables and the first directories).
const FINGERPRINT_BYTES: usize = 256 << 10;

/// Called with a found medium's mounted folder and its device; the
/// future resolves when the folder is no longer needed (the load is done
/// or failed), and the medium is then unmounted.
pub type OnFound = Arc<dyn Fn(PathBuf, String) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// An ISO 9660 volume on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    pub label: String,
    /// sha256 (hex, 16 digits) of the first [`FINGERPRINT_BYTES`] from
    /// the PVD: another disc in the same drive differs.
    pub fingerprint: String,
}

/// A block device as one poll saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The kernel name (`sr1`, `sdb`, `loop3`).
    pub name: String,
    /// `major:minor`.
    pub dev_t: String,
    /// The volume on it, when it is the appliance's label (else None).
    pub medium: Option<Medium>,
}

/// One line of `/proc/self/mountinfo`: which device is mounted where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub dev_t: String,
    /// The mount source (`/dev/sr0`); btrfs, for one, reports another
    /// `dev_t` than its device's.
    pub source: String,
    pub target: PathBuf,
}

impl MountEntry {
    /// Is this a mount of `d`?
    fn of(&self, d: &Device) -> bool {
        self.dev_t == d.dev_t || self.source == format!("/dev/{}", d.name)
    }
}

/// A medium the watcher has taken.
#[derive(Debug)]
pub struct Known {
    pub name: String,
    pub fingerprint: String,
    /// Its mount point, while mounted.
    pub mounted: Option<PathBuf>,
    /// The callback's task (None in plans' tests, or once finished).
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Known {
    fn busy(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// What one poll does, in this order: unmount (and forget) the media that
/// went, unmount the media whose load is done, mount the new ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indexes into the known list of media gone (to unmount if mounted).
    pub forget: Vec<usize>,
    /// Indexes into the known list to unmount (their callback is done).
    pub unmount: Vec<usize>,
    /// New media: device name, fingerprint, mount point.
    pub mount: Vec<(String, String, PathBuf)>,
}

/// Decide (pure). `boot_mount` is the boot media's mount point,
/// `update_root` where update media are mounted.
pub fn plan(
    label: &str,
    devices: &[Device],
    mounts: &[MountEntry],
    known: &[Known],
    boot_mount: &Path,
    update_root: &Path,
) -> Plan {
    let mut p = Plan::default();
    let present = |k: &Known| {
        devices.iter().any(|d| {
            d.name == k.name
                && d.medium
                    .as_ref()
                    .is_some_and(|m| m.label == label && m.fingerprint == k.fingerprint)
        })
    };
    for (i, k) in known.iter().enumerate() {
        if !present(k) {
            p.forget.push(i);
        } else if k.mounted.is_some() && !k.busy() {
            p.unmount.push(i);
        }
    }
    let boot = mounts.iter().find(|m| m.target == boot_mount);
    for d in devices {
        let Some(m) = d.medium.as_ref().filter(|m| m.label == label) else {
            continue;
        };
        let is_boot = boot.is_some_and(|b| b.of(d));
        let elsewhere = mounts
            .iter()
            .any(|e| e.of(d) && !e.target.starts_with(update_root));
        let taken = known
            .iter()
            .enumerate()
            .any(|(i, k)| k.name == d.name && !p.forget.contains(&i));
        if !is_boot && !elsewhere && !taken {
            p.mount.push((
                d.name.clone(),
                m.fingerprint.clone(),
                update_root.join(&d.name),
            ));
        }
    }
    p
}

/// `/proc/self/mountinfo`'s device, source and mount point of each
/// line (pure).
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (head, tail) = l.split_once(" - ")?;
            let mut f = head.split(' ');
            let dev_t = f.nth(2)?.to_string();
            let target = PathBuf::from(unescape(f.nth(1)?));
            let source = unescape(tail.split(' ').nth(1)?);
            Some(MountEntry {
                dev_t,
                source,
                target,
            })
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(o)) => {
                out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the watcher looks and mounts (tests put the mounts elsewhere).
#[derive(Debug, Clone)]
pub struct Paths {
    pub sys_block: PathBuf,
    pub dev: PathBuf,
    pub mountinfo: PathBuf,
    pub boot_mount: PathBuf,
    pub update_root: PathBuf,
    /// The filesystem media are mounted as (`iso9660`; a test on a
    /// kernel without it stamps the label onto another filesystem).
    pub fstype: String,
}

impl Paths {
    /// The running system's.
    pub fn system() -> Paths {
        Paths {
            sys_block: "/sys/class/block".into(),
            dev: "/dev".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            boot_mount: crate::services::media::MOUNT_POINT.into(),
            update_root: UPDATE_ROOT.into(),
            fstype: "iso9660".into(),
        }
    }
}

/// Whole disks and drives with a medium, each with the appliance's volume
/// when it holds one. Devices mounted outside `update_root` are not read.
pub fn scan(paths: &Paths, label: &str, mounts: &[MountEntry]) -> Vec<Device> {
    let Ok(entries) = std::fs::read_dir(&paths.sys_block) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let sys = paths.sys_block.join(&name);
        let size = std::fs::read_to_string(sys.join("size")).unwrap_or_default();
        if name.starts_with("ram")
            || name.starts_with("zram")
            || sys.join("partition").exists()
            || size.trim().parse::<u64>().unwrap_or(0) == 0
        {
            continue;
        }
        let Ok(dev_t) = std::fs::read_to_string(sys.join("dev")) else {
            continue;
        };
        let mut d = Device {
            name,
            dev_t: dev_t.trim().to_string(),
            medium: None,
        };
        let elsewhere = mounts
            .iter()
            .any(|m| m.of(&d) && !m.target.starts_with(&paths.update_root));
        if !elsewhere {
            d.medium = read_medium(&paths.dev.join(&d.name), label);
        }
        out.push(d);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The volume on `device` when its label is `label`, with its fingerprint.
pub fn read_medium(device: &Path, label: &str) -> Option<Medium> {
    let mut f = File::open(device).ok()?;
    f.seek(SeekFrom::Start(PVD_OFFSET)).ok()?;
    let mut buf = Vec::with_capacity(FINGERPRINT_BYTES);
    f.take(FINGERPRINT_BYTES as u64)
        .read_to_end(&mut buf)
        .ok()?;
    let found = label_from_pvd(&buf)?;
    (found == label).then(|| Medium {
        label: found,
        fingerprint: hex::encode(&Sha256::digest(&buf)[..8]),
    })
}

/// The watcher's state across polls.
pub struct Watcher {
    label: String,
    paths: Paths,
    on_found: OnFound,
    known: Vec<Known>,
}

impl Watcher {
    pub fn new(label: &str, paths: Paths, on_found: OnFound) -> Watcher {
        Watcher {
            label: label.to_string(),
            paths,
            on_found,
            known: Vec::new(),
        }
    }

    /// The media taken and not yet gone: (device name, mount point while mounted).
    pub fn known(&self) -> Vec<(String, Option<PathBuf>)> {
        self.known
            .iter()
            .map(|k| (k.name.clone(), k.mounted.clone()))
            .collect()
    }

    /// One look at the devices, and what it calls for.
    pub async fn poll_once(&mut self) {
        let (paths, label) = (self.paths.clone(), self.label.clone());
        let seen = tokio::task::spawn_blocking(move || {
            let text = std::fs::read_to_string(&paths.mountinfo).unwrap_or_default();
            let mounts = parse_mountinfo(&text);
            let devices = scan(&paths, &label, &mounts);
            (mounts, devices)
        })
        .await;
        let Ok((mounts, devices)) = seen else {
            return;
        };
        let p = plan(
            &self.label,
            &devices,
            &mounts,
            &self.known,
            &self.paths.boot_mount,
            &self.paths.update_root,
        );
        for &i in &p.unmount {
            if let Some(at) = self.known[i].mounted.take() {
                unmount(&at);
            }
        }
        for &i in p.forget.iter().rev() {
            let k = self.known.remove(i);
            if let Some(at) = &k.mounted {
                unmount(at);
            }
            tracing::info!("update medium on /dev/{} is gone: forgotten", k.name);
        }
        for (name, fingerprint, at) in p.mount {
            self.take(name, fingerprint, at);
        }
    }

    /// Mount a new medium and start its callback.
    fn take(&mut self, name: String, fingerprint: String, at: PathBuf) {
        let device = self.paths.dev.join(&name);
        let mut known = Known {
            name,
            fingerprint,
            mounted: None,
            task: None,
        };
        match mount_ro(&device, &at, &self.paths.fstype) {
            Ok(()) => {
                milestone(&format!(
                    "AIRLIFT-UPDATE-FOUND {} {}",
                    device.display(),
                    self.label
                ));
                let fut = (self.on_found)(at.clone(), device.display().to_string());
                known.task = Some(tokio::spawn(async move {
                    if let Err(e) = fut.await {
                        tracing::error!("the update medium on {}: {e:#}", device.display());
                    }
                }));
                known.mounted = Some(at);
            }
            // Remembered all the same: not retried at every poll.
            Err(e) => tracing::error!("{e:#}"),
        }
        self.known.push(known);
    }

    /// Poll every `every`, for as long as the process runs.
    pub async fn run(mut self, every: Duration) {
        loop {
            self.poll_once().await;
            tokio::time::sleep(every).await;
        }
    }
}

/// Watch for update media labelled `label` on the running system (every
/// [`POLL`]); host0 spawns this with the loader as `on_found`.
pub fn spawn(label: &str, on_found: OnFound) -> tokio::task::JoinHandle<()> {
    tokio::spawn(Watcher::new(label, Paths::system(), on_found).run(POLL))
}

/// Mount a medium read-only (no devices, setuid or exec).
fn mount_ro(device: &Path, at: &Path, fstype: &str) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(at).with_context(|| format!("creating {}", at.display()))?;
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(Some(device), at, Some(fstype), flags, None::<&str>).with_context(|| {
        format!(
            "mounting the update medium {} ({fstype}, read-only) at {}",
            device.display(),
            at.display()
        )
    })
}

/// Unmount (lazily: a medium pulled out may still have readers) and
/// remove the mount point; failures are logged.
fn unmount(at: &Path) {
    use nix::mount::{umount2, MntFlags};
    if let Err(e) = umount2(at, MntFlags::MNT_DETACH) {
        tracing::warn!("unmounting {}: {e}", at.display());
    }
    let _ = std::fs::remove_dir(at);
}

#[cfg(test)]
mod tests;
