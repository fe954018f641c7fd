//! host0's data disk: find it, prepare it on first boot, mount it at
//! `/var/lib/airlift` before the registry and the loader start.
//!
//! * The disk is named by path (`/dev/vdb`, a `/dev/disk/by-id/…` link)
//!   or chosen by size: the first empty disk of at least `minSizeGiB`, in
//!   a stable order, skipping loop/RAM/optical, read-only, removable and
//!   in-use disks (the boot media is one of those, or not empty).
//! * A blank disk gets a GPT with one partition and a filesystem
//!   labelled `AIRLIFT_DATA`; airlift's own disk is mounted on later
//!   boots; a half-made one of its own is finished ([`plan`]).
//! * Anything else is never touched unless the config names that exact
//!   disk by path with `wipe: true`. The step then stops with a message
//!   naming the disk and what it holds, and host0 serves from the media.
//!
//! [`prepare`] never fails: every problem becomes [`Outcome::Stopped`].

pub mod blkid;
pub mod disks;
pub mod format;
pub mod mounts;
pub mod plan;
pub mod probe;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use plan::{Action, DiskState};
use probe::Finding;

pub use airlift_appliance::{DataDisk, Filesystem, Storage};

/// What the step relies on in the appliance file's `storage`: a data
/// disk names exactly one of `device` and `minSizeGiB`.
pub fn check(s: &Storage) -> Result<()> {
    if let Some(d) = &s.data_disk {
        if d.device.is_some() == d.min_size_gib.is_some() {
            bail!("storage.dataDisk needs exactly one of device and minSizeGiB");
        }
    }
    Ok(())
}

/// Where the step looks and what it may touch.
#[derive(Debug, Clone)]
pub struct Env {
    /// `/sys`.
    pub sysfs: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// The mount point (`/var/lib/airlift`).
    pub target: PathBuf,
    /// Only these kernel names may be selected, loop devices included
    /// (tests); None: any disk that is not virtual.
    pub candidates: Option<Vec<String>>,
    /// How long to wait for the named disk (or, with the selector, for a
    /// suitable one) to appear.
    pub device_wait: Duration,
    /// Ask `blkid -p`, the authority on whether a disk is blank
    /// ([`blkid`]); the byte probe alone only when false.
    pub blkid: bool,
}

impl Env {
    /// The running system, mounting at `target`.
    pub fn system(target: &Path) -> Env {
        Env {
            sysfs: "/sys".into(),
            dev: "/dev".into(),
            mountinfo: "/proc/self/mountinfo".into(),
            target: target.to_path_buf(),
            candidates: None,
            device_wait: Duration::from_secs(30),
            blkid: true,
        }
    }
}

/// What the step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The data disk is mounted at the target.
    Mounted {
        disk: PathBuf,
        partition: PathBuf,
        /// A filesystem was made this boot.
        formatted: bool,
    },
    /// No data disk is configured.
    NotConfigured,
    /// A data disk is configured but is not used; the message says why.
    Stopped {
        disk: Option<PathBuf>,
        message: String,
    },
}

/// Where pushed images and the loaded bundle live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// On the data disk: persistent.
    Disk,
    /// No data disk: the bundle is served from the media, pushes refused.
    MediaOnly,
    /// No data disk, `allowRamPush`: pushes go to RAM, lost at reboot.
    Ram,
}

/// The `storage` part of host0's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageStatus {
    pub mode: Mode,
    /// The data disk (or the one that was refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The registry's refusal of pushes without a data disk.
pub const NO_DISK_PUSH: &str = "this appliance has no data disk: pushes are disabled \
     (storage.allowRamPush: true accepts them into RAM, lost at reboot)";

impl StorageStatus {
    /// The status an outcome gives (pure).
    pub fn from_outcome(outcome: &Outcome, allow_ram_push: bool) -> StorageStatus {
        let no_disk = if allow_ram_push {
            Mode::Ram
        } else {
            Mode::MediaOnly
        };
        let tail = if allow_ram_push {
            "pushes are accepted into RAM and lost at reboot"
        } else {
            "serving the bundle from the media, which must stay attached; pushes are disabled"
        };
        match outcome {
            Outcome::Mounted {
                disk, partition, ..
            } => StorageStatus {
                mode: Mode::Disk,
                device: Some(disk.display().to_string()),
                message: Some(format!("data on {}", partition.display())),
            },
            Outcome::NotConfigured => StorageStatus {
                mode: no_disk,
                device: None,
                message: Some(format!("no data disk is configured: {tail}")),
            },
            Outcome::Stopped { disk, message } => StorageStatus {
                mode: no_disk,
                device: disk.as_ref().map(|d| d.display().to_string()),
                message: Some(format!("{message} Meanwhile: {tail}.")),
            },
        }
    }

    /// Why the registry must refuse pushes (media-only mode), or None.
    pub fn push_disabled_reason(&self) -> Option<String> {
        (self.mode == Mode::MediaOnly).then(|| NO_DISK_PUSH.to_string())
    }

    /// The console line: `AIRLIFT-STORAGE mode=… device=… message`.
    pub fn marker(&self) -> String {
        let mode = match self.mode {
            Mode::Disk => "disk",
            Mode::MediaOnly => "media-only",
            Mode::Ram => "ram",
        };
        format!(
            "AIRLIFT-STORAGE mode={mode} device={} {}",
            self.device.as_deref().unwrap_or("-"),
            self.message.as_deref().unwrap_or("")
        )
    }
}

/// Prepare and mount the data disk, print the marker, and return the status.
pub fn run(cfg: &Storage, env: &Env) -> StorageStatus {
    let outcome = prepare(cfg, env);
    let status = StorageStatus::from_outcome(&outcome, cfg.allow_ram_push);
    let line = status.marker();
    println!("{line}");
    match status.mode {
        Mode::Disk => tracing::info!("{line}"),
        _ => tracing::warn!("{line}"),
    }
    status
}

/// [`run`] for the appliance file's `storage` on the running system,
/// mounting at `target`; a bad `storage` section stops the step too.
pub fn run_appliance(storage: &Storage, target: &Path) -> StorageStatus {
    match check(storage) {
        Ok(()) => run(storage, &Env::system(target)),
        Err(e) => {
            let outcome = Outcome::Stopped {
                disk: None,
                message: format!("storage: {e:#}; rebuild the ISO with a valid storage section."),
            };
            let status = StorageStatus::from_outcome(&outcome, storage.allow_ram_push);
            println!("{}", status.marker());
            tracing::error!("{}", status.marker());
            status
        }
    }
}

/// Prepare and mount the configured data disk (see the module doc).
pub fn prepare(cfg: &Storage, env: &Env) -> Outcome {
    let Some(dd) = &cfg.data_disk else {
        return Outcome::NotConfigured;
    };
    match try_prepare(dd, env) {
        Ok(o) => o,
        Err(e) => Outcome::Stopped {
            disk: dd.device.clone(),
            message: {
                let m = format!("storage: {e:#}");
                if m.ends_with('.') {
                    m
                } else {
                    m + "."
                }
            },
        },
    }
}

fn try_prepare(dd: &DataDisk, env: &Env) -> Result<Outcome> {
    let (disk, name, action) = match &dd.device {
        Some(path) => match named(path, dd.wipe, env)? {
            Ok(x) => x,
            Err(stop) => return Ok(stop),
        },
        None => match selected(dd.min_size_gib.unwrap_or(0), dd.wipe, env)? {
            Ok(x) => x,
            Err(stop) => return Ok(stop),
        },
    };
    act(&disk, &name, action, dd.filesystem, env)
}

type Chosen = std::result::Result<(PathBuf, String, Action), Outcome>;

/// The disk named by path: resolve links, check it, probe it.
fn named(path: &Path, wipe: bool, env: &Env) -> Result<Chosen> {
    let start = Instant::now();
    while !path.exists() && start.elapsed() < env.device_wait {
        std::thread::sleep(Duration::from_millis(250));
    }
    let real = std::fs::canonicalize(path).with_context(|| {
        format!(
            "{} does not exist (waited {:?}); check storage.dataDisk.device",
            path.display(),
            env.device_wait
        )
    })?;
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let shown = if real == path {
        path.display().to_string()
    } else {
        format!("{} ({})", path.display(), real.display())
    };
    if !env.sysfs.join("block").join(&name).exists() {
        bail!("{shown} is not a whole disk; name a disk, not a partition");
    }
    let disk = disks::read_disk(&env.sysfs, &name)?;
    let stop = |message: String| {
        Ok(Err(Outcome::Stopped {
            disk: Some(path.to_path_buf()),
            message,
        }))
    };
    if disk.read_only {
        return stop(format!("storage: {shown} is read-only; not using it."));
    }
    let mounts = mounts::read(&env.mountinfo)?;
    if let Some(done) = already_mounted(env, &name, &mounts, &real)? {
        return Ok(Err(done));
    }
    if let Some(why) = disks::in_use(&env.sysfs, &name, &mounts)? {
        return stop(format!(
            "storage: {shown} is in use ({why}); not touching it."
        ));
    }
    let state = plan::classify(&look(&real, disk.size, env)?);
    match plan::decide(&shown, &state, wipe) {
        Action::Refuse(m) => stop(m),
        a => Ok(Ok((real, name, a))),
    }
}

/// The selector: airlift's own disk if one is present, else the first
/// empty disk of at least `min_gib` GiB.
fn selected(min_gib: u64, wipe: bool, env: &Env) -> Result<Chosen> {
    if wipe {
        tracing::warn!(
            "storage.dataDisk.wipe applies only to a disk named by device; the selector \
             takes empty disks only"
        );
    }
    let start = Instant::now();
    loop {
        let mounts = mounts::read(&env.mountinfo)?;
        let mut notes = Vec::new();
        let mut blank = None;
        for d in disks::list(&env.sysfs)? {
            if env
                .candidates
                .as_ref()
                .is_some_and(|c| !c.contains(&d.name))
            {
                continue;
            }
            let listed = env.candidates.is_some();
            if let Some(why) = disks::skip_reason(&d, min_gib, listed) {
                // Loop, RAM and optical devices are never candidates: not worth a note.
                if listed || !disks::is_virtual(&d.name) {
                    notes.push(format!("{} is {why}", d.name));
                }
                continue;
            }
            let path = env.dev.join(&d.name);
            if let Some(done) = already_mounted(env, &d.name, &mounts, &path)? {
                return Ok(Err(done));
            }
            if let Some(why) = disks::in_use(&env.sysfs, &d.name, &mounts)? {
                notes.push(format!("{} is in use ({why})", d.name));
                continue;
            }
            match plan::classify(&look(&path, d.size, env)?) {
                DiskState::Ours { ready } => {
                    let a = if ready {
                        Action::Mount
                    } else {
                        Action::FinishFormat
                    };
                    return Ok(Ok((path, d.name, a)));
                }
                DiskState::Blank => {
                    blank.get_or_insert((path, d.name));
                }
                DiskState::Foreign(f) => {
                    notes.push(format!("{} holds {}", d.name, probe::describe(&f)))
                }
            }
        }
        if let Some((path, name)) = blank {
            return Ok(Ok((path, name, Action::Format { wipe: false })));
        }
        if start.elapsed() >= env.device_wait {
            return Ok(Err(Outcome::Stopped {
                disk: None,
                message: format!(
                    "storage: no empty disk of at least {min_gib} GiB ({}); not touching any.",
                    if notes.is_empty() {
                        "no disks at all".to_string()
                    } else {
                        notes.join("; ")
                    }
                ),
            }));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// If partition 1 of `name` is already mounted at the target (host0
/// restarted), the finished outcome.
fn already_mounted(
    env: &Env,
    name: &str,
    mounts: &[mounts::Mount],
    disk: &Path,
) -> Result<Option<Outcome>> {
    let Some(m) = mounts::at(mounts, &env.target) else {
        return Ok(None);
    };
    for (n, part, dev) in disks::partitions(&env.sysfs, name)? {
        if n == 1 && dev == m.dev {
            return Ok(Some(Outcome::Mounted {
                disk: disk.to_path_buf(),
                partition: env.dev.join(part),
                formatted: false,
            }));
        }
    }
    Ok(None)
}

/// What `path` (size `size`) holds: the byte probe's findings, combined
/// with blkid's verdict, the authority ([`blkid::combine`]).
fn look(path: &Path, size: u64, env: &Env) -> Result<Vec<Finding>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let bytes = probe::probe(&probe::Device { file: &file, size })
        .with_context(|| format!("reading {}", path.display()))?;
    if !env.blkid {
        return Ok(bytes);
    }
    let verdict = blkid::ask(path);
    if bytes.is_empty() && verdict != blkid::Verdict::Blank {
        tracing::warn!(
            "{}: airlift's probe found nothing but blkid says {verdict:?}",
            path.display()
        );
    }
    Ok(blkid::combine(bytes, verdict))
}

/// Carry out `action` on `disk` and mount it.
fn act(disk: &Path, name: &str, action: Action, fs: Filesystem, env: &Env) -> Result<Outcome> {
    let wait = Duration::from_secs(15);
    let formatted = match action {
        Action::Refuse(m) => bail!("{}", m.trim_start_matches("storage: ")),
        Action::Mount => false,
        Action::Format { wipe } => {
            if wipe {
                tracing::warn!("storage: wiping {} as the config says", disk.display());
                format::wipe(disk)?;
            }
            format::partition(disk)?;
            true
        }
        Action::FinishFormat => {
            tracing::info!(
                "storage: {} holds airlift's partition without a finished filesystem \
                 (an earlier boot was cut off): making it again",
                disk.display()
            );
            true
        }
    };
    if formatted {
        let part = format::wait_partition(&env.sysfs, &env.dev, name, wait)?;
        format::mkfs(&part, fs)?;
        format::mark_ready(disk)?;
    }
    let part = format::wait_partition(&env.sysfs, &env.dev, name, wait)?;
    let fstype = {
        let size = disks::partitions(&env.sysfs, name)?
            .into_iter()
            .find(|(n, _, _)| *n == 1)
            .and_then(|(_, p, _)| {
                std::fs::read_to_string(env.sysfs.join("block").join(name).join(p).join("size"))
                    .ok()
            })
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 512;
        let file =
            std::fs::File::open(&part).with_context(|| format!("opening {}", part.display()))?;
        let found = probe::probe(&probe::Device { file: &file, size })?;
        plan::check_ready_partition(&part.display().to_string(), &found)
            .map_err(anyhow::Error::msg)?
    };
    mount(&part, &env.target, fstype)?;
    Ok(Outcome::Mounted {
        disk: disk.to_path_buf(),
        partition: part,
        formatted,
    })
}

/// Mount `part` (`fstype`) at `target`, creating it.
fn mount(part: &Path, target: &Path, fstype: &str) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    nix::mount::mount(
        Some(part),
        target,
        Some(fstype),
        nix::mount::MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "mounting {} ({fstype}) at {}",
            part.display(),
            target.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_disk_names_exactly_one_of_device_and_size() {
        let disk = |device: Option<&str>, min_size_gib| Storage {
            data_disk: Some(DataDisk {
                device: device.map(PathBuf::from),
                filesystem: Filesystem::Ext4,
                min_size_gib,
                wipe: false,
            }),
            allow_ram_push: false,
            ..Default::default()
        };
        assert!(check(&Storage::default()).is_ok());
        assert!(check(&disk(Some("/dev/vdb"), None)).is_ok());
        assert!(check(&disk(None, Some(8))).is_ok());
        for bad in [disk(None, None), disk(Some("/dev/vdb"), Some(8))] {
            let e = format!("{:#}", check(&bad).unwrap_err());
            assert!(
                e.contains("storage.dataDisk") && e.contains("minSizeGiB"),
                "{e}"
            );
            let status = run_appliance(&bad, Path::new("/nonexistent/airlift-test"));
            assert_eq!(status.mode, Mode::MediaOnly);
            assert!(status.message.unwrap_or_default().contains("exactly one"));
        }
    }
}
