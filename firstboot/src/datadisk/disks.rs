//! Block devices as sysfs describes them (`/sys/block/*`), and choosing
//! the data disk. Functions take the sysfs root so tests use a temp dir.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::mounts::Mount;

/// One whole disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name (`vdb`, `sda`, `nvme0n1`).
    pub name: String,
    /// Size in bytes (`size` counts 512-byte sectors).
    pub size: u64,
    pub read_only: bool,
    pub removable: bool,
}

impl Disk {
    /// `/dev/NAME`.
    pub fn dev_path(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

const GIB: u64 = 1 << 30;

fn read_trim(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_string())
}

/// Is this a RAM, loop, optical, floppy or stacked device, never a data disk?
pub fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The disk `name` from sysfs.
pub fn read_disk(sysfs: &Path, name: &str) -> Result<Disk> {
    let dir = sysfs.join("block").join(name);
    let num = |f: &str| -> Result<u64> {
        let p = dir.join(f);
        read_trim(&p)?
            .parse()
            .with_context(|| format!("{} is not a number", p.display()))
    };
    Ok(Disk {
        name: name.to_string(),
        size: num("size")?.saturating_mul(512),
        read_only: num("ro")? != 0,
        removable: num("removable").unwrap_or(0) != 0,
    })
}

/// Every disk under `SYSFS/block`, in a stable order (shorter names
/// first, then by name: vda, vdb, …, sdz, sdaa). Hidden ones (`hidden`
/// is 1: the per-path nodes of NVMe multipath, `nvme0c0n1`, which have no
/// `/dev` entry; the disk is `nvme0n1`) are left out.
pub fn list(sysfs: &Path) -> Result<Vec<Disk>> {
    let dir = sysfs.join("block");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        if read_trim(&e.path().join("hidden")).is_ok_and(|h| h == "1") {
            continue;
        }
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
    names.iter().map(|n| read_disk(sysfs, n)).collect()
}

/// `MAJOR:MINOR` of a disk or partition.
fn dev_number(dir: &Path) -> Option<String> {
    read_trim(&dir.join("dev")).ok()
}

/// The disk's partitions: (number, kernel name, `MAJOR:MINOR`).
pub fn partitions(sysfs: &Path, disk: &str) -> Result<Vec<(u32, String, String)>> {
    let dir = sysfs.join("block").join(disk);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let p = e.path().join("partition");
        if let Ok(n) = read_trim(&p) {
            if let Ok(n) = n.parse() {
                let name = e.file_name().to_string_lossy().into_owned();
                out.push((n, name, dev_number(&e.path()).unwrap_or_default()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Why the disk is in use (a mounted filesystem or a holder such as
/// device-mapper or MD on it or its partitions), or None.
pub fn in_use(sysfs: &Path, disk: &str, mounts: &[Mount]) -> Result<Option<String>> {
    let dir = sysfs.join("block").join(disk);
    let mut nodes = vec![(disk.to_string(), dev_number(&dir).unwrap_or_default(), dir)];
    for (_, name, dev) in partitions(sysfs, disk)? {
        let d = sysfs.join("block").join(disk).join(&name);
        nodes.push((name, dev, d));
    }
    for (name, dev, d) in &nodes {
        if let Some(m) = mounts.iter().find(|m| !dev.is_empty() && &m.dev == dev) {
            return Ok(Some(format!(
                "/dev/{name} is mounted at {}",
                m.mount_point.display()
            )));
        }
        if let Ok(rd) = std::fs::read_dir(d.join("holders")) {
            if let Some(h) = rd.flatten().next() {
                return Ok(Some(format!(
                    "/dev/{name} is held by {}",
                    h.file_name().to_string_lossy()
                )));
            }
        }
    }
    Ok(None)
}

/// Why the selector skips `disk` without looking inside it, or None.
/// `listed`: the caller named the candidates, virtual ones are allowed.
pub fn skip_reason(disk: &Disk, min_size_gib: u64, listed: bool) -> Option<String> {
    if is_virtual(&disk.name) && !listed {
        Some("a loop, RAM, optical or stacked device".into())
    } else if disk.read_only {
        Some("read-only".into())
    } else if disk.removable {
        Some("removable".into())
    } else if disk.size < min_size_gib.saturating_mul(GIB) {
        Some(format!(
            "{:.1} GiB, smaller than {min_size_gib} GiB",
            disk.size as f64 / GIB as f64
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(sysfs: &Path, name: &str, sectors: u64, ro: u8, removable: u8) {
        let d = sysfs.join("block").join(name);
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("size"), format!("{sectors}\n")).unwrap();
        std::fs::write(d.join("ro"), format!("{ro}\n")).unwrap();
        std::fs::write(d.join("removable"), format!("{removable}\n")).unwrap();
        std::fs::write(d.join("dev"), "254:0\n").unwrap();
    }

    #[test]
    fn lists_in_a_stable_order_and_skips_what_is_not_a_data_disk() {
        let dir = tempfile::tempdir().unwrap();
        let gib = 2 * 1024 * 1024;
        for (n, size, ro, rm) in [
            ("sdaa", 20 * gib, 0, 0),
            ("vdb", 20 * gib, 0, 0),
            ("sdb", 20 * gib, 0, 1),
            ("vda", 4 * gib, 0, 0),
            ("zram0", 20 * gib, 0, 0),
            ("sr0", gib, 1, 1),
            ("sdz", 20 * gib, 1, 0),
        ] {
            fake(dir.path(), n, size, ro, rm);
        }
        // NVMe multipath: the disk, and its hidden per-path node.
        fake(dir.path(), "nvme0n1", 20 * gib, 0, 0);
        fake(dir.path(), "nvme0c0n1", 20 * gib, 0, 0);
        std::fs::write(dir.path().join("block/nvme0c0n1/hidden"), "1\n").unwrap();
        std::fs::write(dir.path().join("block/nvme0n1/hidden"), "0\n").unwrap();
        let disks = list(dir.path()).unwrap();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["sdb", "sdz", "sr0", "vda", "vdb", "sdaa", "zram0", "nvme0n1"]
        );
        let why: Vec<Option<String>> = disks.iter().map(|d| skip_reason(d, 10, false)).collect();
        assert_eq!(why[0].as_deref(), Some("removable"));
        assert_eq!(why[1].as_deref(), Some("read-only"));
        assert!(why[2].as_deref().unwrap().contains("optical"));
        assert_eq!(why[3].as_deref(), Some("4.0 GiB, smaller than 10 GiB"));
        assert_eq!(why[4], None);
        assert_eq!(why[5], None);
        assert!(why[6].is_some());
        // A named candidate list admits loop devices.
        fake(dir.path(), "loop3", 20 * gib, 0, 0);
        let l = read_disk(dir.path(), "loop3").unwrap();
        assert!(skip_reason(&l, 1, false).is_some());
        assert_eq!(skip_reason(&l, 1, true), None);
    }

    #[test]
    fn in_use_by_a_mounted_partition_or_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        fake(dir.path(), "vdb", 1 << 21, 0, 0);
        let p = dir.path().join("block/vdb/vdb1");
        std::fs::create_dir_all(p.join("holders")).unwrap();
        std::fs::write(p.join("partition"), "1\n").unwrap();
        std::fs::write(p.join("dev"), "254:17\n").unwrap();
        assert_eq!(
            partitions(dir.path(), "vdb").unwrap(),
            vec![(1, "vdb1".to_string(), "254:17".to_string())]
        );
        assert_eq!(in_use(dir.path(), "vdb", &[]).unwrap(), None);
        let m = super::super::mounts::parse("40 22 254:17 / /mnt rw - ext4 /dev/vdb1 rw\n");
        assert_eq!(
            in_use(dir.path(), "vdb", &m).unwrap().as_deref(),
            Some("/dev/vdb1 is mounted at /mnt")
        );
        std::fs::create_dir_all(p.join("holders/dm-0")).unwrap();
        assert_eq!(
            in_use(dir.path(), "vdb", &[]).unwrap().as_deref(),
            Some("/dev/vdb1 is held by dm-0")
        );
    }
}
