//! Finding the boot media by its ISO 9660 volume label and mounting it
//! read-only.
//!
//! `/dev/disk/by-label/<LABEL>` first (udev); when udev has not made the
//! link (or is not running), every block device in `/sys/class/block`
//! is probed by reading its Primary Volume Descriptor ourselves.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Byte offset of the Primary Volume Descriptor (sector 16 of 2048 bytes).
pub const PVD_OFFSET: u64 = 16 * 2048;
/// Offset of the volume identifier inside the PVD, and its length.
const LABEL_AT: usize = 40;
const LABEL_LEN: usize = 32;

/// Where host0 mounts the media.
pub const MOUNT_POINT: &str = "/run/airlift/media";

/// The bundle folder inside the media.
pub const BUNDLE_DIR: &str = "airlift/bundle";

/// The volume label in a PVD sector (type 1, `CD001`, version 1), with
/// the padding spaces removed; None if the buffer is not a PVD.
pub fn label_from_pvd(sector: &[u8]) -> Option<String> {
    if sector.len() < LABEL_AT + LABEL_LEN || sector[0] != 1 || &sector[1..6] != b"CD001" {
        return None;
    }
    let raw = &sector[LABEL_AT..LABEL_AT + LABEL_LEN];
    let text = std::str::from_utf8(raw).ok()?;
    Some(text.trim_end_matches([' ', '\0']).to_string())
}

/// Read the ISO 9660 label of a device or image file (None if it holds
/// no ISO 9660 volume or cannot be read).
pub fn read_label(device: &Path) -> Option<String> {
    let mut f = File::open(device).ok()?;
    f.seek(SeekFrom::Start(PVD_OFFSET)).ok()?;
    let mut sector = [0u8; 2048];
    f.read_exact(&mut sector).ok()?;
    label_from_pvd(&sector)
}

/// The device holding the volume `label`, if one is present now.
pub fn find_device(label: &str) -> Option<PathBuf> {
    let link = Path::new("/dev/disk/by-label").join(udev_escape(label));
    if let Ok(dev) = std::fs::canonicalize(&link) {
        return Some(dev);
    }
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("loop") && !n.starts_with("zram"))
        .collect();
    // CD drives first: the usual place for the media.
    names.sort_by_key(|n| (!n.starts_with("sr"), n.clone()));
    names
        .into_iter()
        .map(|n| Path::new("/dev").join(n))
        .find(|dev| read_label(dev).as_deref() == Some(label))
}

/// udev's escaping in by-label links (`\x20` for a space and so on).
pub fn udev_escape(label: &str) -> String {
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || "#+-.:=@_".contains(c) {
            out.push(c);
        } else {
            for b in c.to_string().bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out
}

/// Is `dir` a mount point (per `/proc/self/mountinfo`)?
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m == want)
}

/// Find the media labelled `label` (waiting up to `wait` for it to
/// appear) and mount it read-only at `mount_point`, unless something is
/// mounted there already. Returns the bundle folder inside it.
pub fn find_and_mount(label: &str, mount_point: &Path, wait: Duration) -> Result<PathBuf> {
    if !is_mounted(mount_point) {
        let start = Instant::now();
        let device = loop {
            if let Some(d) = find_device(label) {
                break d;
            }
            if start.elapsed() > wait {
                bail!(
                    "no device with the volume label {label:?} appeared within {}s (looked at \
                     /dev/disk/by-label and every device in /sys/class/block); is the airlift \
                     media attached? Pass --media DIR to use a bundle mounted elsewhere",
                    wait.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        mount_iso(&device, mount_point)?;
        tracing::info!(
            "mounted the media {label} ({}) at {}",
            device.display(),
            mount_point.display()
        );
    } else {
        tracing::info!("the media is already mounted at {}", mount_point.display());
    }
    bundle_dir(mount_point)
}

/// Mount an ISO 9660 device read-only.
fn mount_iso(device: &Path, mount_point: &Path) -> Result<()> {
    use nix::mount::{mount, MsFlags};
    std::fs::create_dir_all(mount_point)
        .with_context(|| format!("creating {}", mount_point.display()))?;
    mount(
        Some(device),
        mount_point,
        Some("iso9660"),
        MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
        None::<&str>,
    )
    .with_context(|| {
        format!(
            "mounting {} (iso9660, read-only) at {}",
            device.display(),
            mount_point.display()
        )
    })
}

/// The bundle folder of media mounted (or copied) at `root`: `root`
/// itself when it is an OCI layout, else `root/airlift/bundle`.
pub fn bundle_dir(root: &Path) -> Result<PathBuf> {
    if root.join("oci-layout").is_file() {
        return Ok(root.to_path_buf());
    }
    let dir = root.join(BUNDLE_DIR);
    if dir.join("oci-layout").is_file() {
        return Ok(dir);
    }
    bail!(
        "{} holds no bundle: neither {} nor {} is an OCI layout",
        root.display(),
        root.join("oci-layout").display(),
        dir.join("oci-layout").display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pvd(label: &str) -> Vec<u8> {
        let mut s = vec![0u8; 2048];
        s[0] = 1;
        s[1..6].copy_from_slice(b"CD001");
        s[6] = 1;
        let mut l = [b' '; 32];
        l[..label.len()].copy_from_slice(label.as_bytes());
        s[40..72].copy_from_slice(&l);
        s
    }

    #[test]
    fn reads_the_label_from_a_pvd() {
        assert_eq!(
            label_from_pvd(&pvd("AIRLIFT_DEMO")).as_deref(),
            Some("AIRLIFT_DEMO")
        );
        let full = "A".repeat(32);
        assert_eq!(label_from_pvd(&pvd(&full)), Some(full));
        let mut not = pvd("X");
        not[0] = 2; // a supplementary descriptor
        assert_eq!(label_from_pvd(&not), None);
        let mut not = pvd("X");
        not[1] = b'X';
        assert_eq!(label_from_pvd(&not), None);
        assert_eq!(label_from_pvd(&[1, b'C']), None);
    }

    #[test]
    fn reads_the_label_from_an_image_file() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("x.iso");
        let mut data = vec![0u8; PVD_OFFSET as usize];
        data.extend(pvd("AIRLIFT_T"));
        std::fs::write(&img, &data).unwrap();
        assert_eq!(read_label(&img).as_deref(), Some("AIRLIFT_T"));
        std::fs::write(&img, b"short").unwrap();
        assert_eq!(read_label(&img), None);
    }

    #[test]
    fn escapes_like_udev() {
        assert_eq!(udev_escape("AIRLIFT_DEMO"), "AIRLIFT_DEMO");
        assert_eq!(udev_escape("my disk/1"), "my\\x20disk\\x2f1");
    }

    #[test]
    fn finds_the_bundle_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert!(bundle_dir(dir.path()).is_err());
        let b = dir.path().join("airlift/bundle");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("oci-layout"), "{}").unwrap();
        assert_eq!(bundle_dir(dir.path()).unwrap(), b);
        assert_eq!(bundle_dir(&b).unwrap(), b);
    }
}
