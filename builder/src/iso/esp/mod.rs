//! A small FAT16/FAT32 writer for the EFI System Partition image.
//!
//! It only plans: boot sector(s), FATs and directory clusters come out as
//! byte blocks at offsets inside the image, and each file as an offset its
//! bytes are streamed to, so the ISO writer copies payloads exactly once.
//! Allocation is contiguous and in name order; all timestamps come from
//! the epoch; directories get `.`/`..` first, then 8.3 entries, with VFAT
//! long-name entries only for names that are not plain upper-case 8.3.
//!
//! Why not the `fatfs` crate: measured with fatfs 0.3.6 (the newest on
//! crates.io), `fsck.fat -n` flags every subdirectory it writes
//! (EFI, EFI/BOOT, loader, loader/entries: "Expected a valid '.' entry
//! in this slot"), and on FAT32 also the free-cluster summary; it would
//! also copy every payload through its own buffers instead of letting the
//! ISO writer stream them once. `builder/tests/esp_fsck.rs` keeps that
//! measurement on record against this writer's output.

mod boot_sector;
mod dirent;
pub mod read;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use dirent::{dir_entry, lfn_entries, short_names};

/// Which FAT variant the plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatType {
    Fat16,
    Fat32,
}

/// The planned image.
#[derive(Debug, Clone)]
pub struct FatPlan {
    /// Image size in bytes (a multiple of 2048).
    pub total_bytes: u64,
    /// Metadata blocks: (offset in the image, bytes).
    pub meta: Vec<(u64, Vec<u8>)>,
    /// File data placement: (offset in the image, index into the input list).
    pub files: Vec<(u64, usize)>,
    pub fat_type: FatType,
    pub cluster_bytes: u64,
}

#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, (usize, u64)>,
}

impl Dir {
    /// Subdirectory and file names, in entry order.
    fn names(&self) -> Vec<&str> {
        self.dirs
            .keys()
            .chain(self.files.keys())
            .map(String::as_str)
            .collect()
    }
}

/// The FAT geometry: variant, cluster size and count, and where the
/// regions start (in 512-byte sectors).
struct Geometry {
    fat_type: FatType,
    sectors_per_cluster: u64,
    clusters: u64,
    fat_sectors: u64,
    reserved: u64,
    data_start: u64,
    total_sectors: u64,
}

impl Geometry {
    fn fat32(&self) -> bool {
        self.fat_type == FatType::Fat32
    }

    fn cluster_bytes(&self) -> u64 {
        self.sectors_per_cluster * 512
    }

    /// Byte offset of cluster `cl` in the image.
    fn cluster_offset(&self, cl: u32) -> u64 {
        self.data_start * 512 + (u64::from(cl) - 2) * self.cluster_bytes()
    }
}

/// Number of 32-byte slots a directory's entries take.
fn dir_slots(d: &Dir, is_root: bool) -> u64 {
    let names = d.names();
    let shorts = short_names(&names);
    let mut n = if is_root { 0 } else { 2 };
    for (name, (_, lfn)) in names.iter().zip(&shorts) {
        n += 1 + if *lfn {
            name.encode_utf16().count().div_ceil(13) as u64
        } else {
            0
        };
    }
    n
}

fn walk_dirs<'a>(d: &'a Dir, out: &mut Vec<&'a Dir>) {
    out.push(d);
    for sub in d.dirs.values() {
        walk_dirs(sub, out);
    }
}

/// The directory tree of `files` (`(path, size)`), refusing paths FAT
/// cannot hold or that clash once case is ignored.
fn tree_of(files: &[(String, u64)]) -> Result<Dir> {
    let mut root = Dir::default();
    let mut seen = std::collections::HashSet::new();
    for (i, (path, size)) in files.iter().enumerate() {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((name, dirs)) = parts.split_last() else {
            bail!("ESP path {path:?} is not a valid file path");
        };
        if parts
            .iter()
            .any(|p| *p == "." || *p == ".." || p.len() > 255)
        {
            bail!("ESP path {path:?} is not a valid file path");
        }
        if !seen.insert(path.to_ascii_uppercase()) {
            bail!("ESP path {path:?} is given twice (FAT names ignore case)");
        }
        if *size > u64::from(u32::MAX) {
            bail!("ESP file {path:?} is {size} bytes; FAT files must be under 4 GiB");
        }
        let mut cur = &mut root;
        for d in dirs {
            if cur.files.keys().any(|f| f.eq_ignore_ascii_case(d)) {
                bail!("ESP path {path:?}: {d:?} is both a file and a directory");
            }
            cur = cur.dirs.entry((*d).to_string()).or_default();
        }
        if cur.dirs.keys().any(|f| f.eq_ignore_ascii_case(name)) {
            bail!("ESP path {path:?} is both a file and a directory");
        }
        cur.files.insert((*name).to_string(), (i, *size));
    }
    Ok(root)
}

/// Picks FAT16 with the smallest cluster that fits (root directory
/// permitting), else FAT32 with 4 KiB clusters; either with 5% and 1 MiB
/// of slack.
fn geometry(all_dirs: &[&Dir], files: &[(String, u64)]) -> Result<Geometry> {
    let needed = |c: u64, fat32: bool| -> u64 {
        let mut n = 0;
        for (k, d) in all_dirs.iter().enumerate() {
            if k == 0 && !fat32 {
                continue;
            }
            n += (dir_slots(d, k == 0) * 32).div_ceil(c).max(1);
        }
        n + files.iter().map(|(_, s)| s.div_ceil(c)).sum::<u64>()
    };
    let with_slack = |need: u64, c: u64| need + need / 20 + (1 << 20) / c;
    let mut choice = None;
    if dir_slots(all_dirs[0], true) <= 512 {
        for spc in [1u64, 2, 4, 8, 16, 32, 64] {
            let c = spc * 512;
            let n = with_slack(needed(c, false), c).max(4200);
            if n <= 65000 {
                choice = Some((FatType::Fat16, spc, n));
                break;
            }
        }
    }
    let (fat_type, spc, clusters) = match choice {
        Some(c) => c,
        None => (
            FatType::Fat32,
            8,
            with_slack(needed(4096, true), 4096).max(66000),
        ),
    };
    if clusters > 0x0FFF_FFF0 {
        bail!("ESP content is too large for FAT32");
    }
    let fat32 = fat_type == FatType::Fat32;
    let entry_bytes = if fat32 { 4 } else { 2 };
    let fat_sectors = ((clusters + 2) * entry_bytes).div_ceil(512);
    let reserved = if fat32 { 32 } else { 1 };
    let root_sectors = if fat32 { 0 } else { 32 };
    let data_start = reserved + 2 * fat_sectors + root_sectors;
    Ok(Geometry {
        fat_type,
        sectors_per_cluster: spc,
        clusters,
        fat_sectors,
        reserved,
        data_start,
        total_sectors: data_start + clusters * spc,
    })
}

/// The cluster allocation: the FAT and where each directory and file went.
struct Allocation {
    fat: Vec<u32>,
    /// Next free cluster.
    next: u64,
    /// Per directory (walk order): first cluster and count (FAT16 root: 0).
    dir_clusters: Vec<(u32, u64)>,
    /// Per input file: first cluster (0 when empty).
    file_cluster: Vec<u32>,
    /// Per non-empty file: (offset in the image, input index).
    placed: Vec<(u64, usize)>,
}

/// Allocates directories (FAT32 root first), then files, contiguously.
fn allocate(g: &Geometry, all_dirs: &[&Dir], file_count: usize) -> Allocation {
    let fat32 = g.fat32();
    let eoc = if fat32 { 0x0FFF_FFFF } else { 0xFFFF };
    let mut a = Allocation {
        fat: vec![0u32; (g.clusters + 2) as usize],
        next: 2,
        dir_clusters: Vec::new(),
        file_cluster: vec![0u32; file_count],
        placed: Vec::new(),
    };
    a.fat[0] = if fat32 { 0x0FFF_FFF8 } else { 0xFFF8 };
    a.fat[1] = eoc;
    let alloc = |a: &mut Allocation, count: u64| -> u32 {
        if count == 0 {
            return 0;
        }
        let first = a.next;
        for k in 0..count {
            let cl = (first + k) as usize;
            a.fat[cl] = if k + 1 == count {
                eoc
            } else {
                (first + k + 1) as u32
            };
        }
        a.next += count;
        first as u32
    };
    let cb = g.cluster_bytes();
    for (k, d) in all_dirs.iter().enumerate() {
        if k == 0 && !fat32 {
            a.dir_clusters.push((0, 0));
            continue;
        }
        let n = (dir_slots(d, k == 0) * 32).div_ceil(cb).max(1);
        let first = alloc(&mut a, n);
        a.dir_clusters.push((first, n));
    }
    for d in all_dirs {
        for (idx, size) in d.files.values() {
            let cl = alloc(&mut a, size.div_ceil(cb));
            a.file_cluster[*idx] = cl;
            if *size > 0 {
                a.placed.push((g.cluster_offset(cl), *idx));
            }
        }
    }
    a
}

/// Every directory's entries, at its clusters (FAT16: the root in its
/// fixed region).
fn dir_blocks(g: &Geometry, all_dirs: &[&Dir], a: &Allocation, epoch: i64) -> Vec<(u64, Vec<u8>)> {
    let index_of = |d: &Dir| {
        all_dirs
            .iter()
            .position(|x| std::ptr::eq(*x, d))
            .expect("dir listed")
    };
    let mut meta = Vec::new();
    for (k, d) in all_dirs.iter().enumerate() {
        let mut bytes = Vec::new();
        let (own, _) = a.dir_clusters[k];
        if k != 0 {
            let parent = all_dirs
                .iter()
                .position(|p| p.dirs.values().any(|c| std::ptr::eq(c, *d)))
                .expect("parent");
            let parent_cluster = if parent == 0 {
                0
            } else {
                a.dir_clusters[parent].0
            };
            bytes.extend_from_slice(&dir_entry(b".          ", 0x10, own, 0, epoch));
            bytes.extend_from_slice(&dir_entry(b"..         ", 0x10, parent_cluster, 0, epoch));
        }
        let names = d.names();
        let shorts = short_names(&names);
        for (name, (short, lfn)) in names.iter().zip(&shorts) {
            if *lfn {
                for e in lfn_entries(name, short) {
                    bytes.extend_from_slice(&e);
                }
            }
            let e = if let Some(sub) = d.dirs.get(*name) {
                dir_entry(short, 0x10, a.dir_clusters[index_of(sub)].0, 0, epoch)
            } else {
                let (idx, size) = d.files[*name];
                dir_entry(short, 0x20, a.file_cluster[idx], size as u32, epoch)
            };
            bytes.extend_from_slice(&e);
        }
        if k == 0 && !g.fat32() {
            bytes.resize(32 * 512, 0);
            meta.push(((g.reserved + 2 * g.fat_sectors) * 512, bytes));
        } else {
            let (cl, n) = a.dir_clusters[k];
            bytes.resize((n * g.cluster_bytes()) as usize, 0);
            meta.push((g.cluster_offset(cl), bytes));
        }
    }
    meta
}

/// Both copies of the FAT.
fn fat_blocks(g: &Geometry, fat: &[u32]) -> Vec<(u64, Vec<u8>)> {
    let mut bytes: Vec<u8> = if g.fat32() {
        fat.iter().flat_map(|v| v.to_le_bytes()).collect()
    } else {
        fat.iter().flat_map(|v| (*v as u16).to_le_bytes()).collect()
    };
    bytes.resize((g.fat_sectors * 512) as usize, 0);
    vec![
        (g.reserved * 512, bytes.clone()),
        ((g.reserved + g.fat_sectors) * 512, bytes),
    ]
}

/// Plans a FAT image holding `files` (`(path, size)`, paths like
/// `EFI/BOOT/BOOTX64.EFI`), sized to fit with some free space.
pub fn plan(files: &[(String, u64)], epoch: i64, serial: u32) -> Result<FatPlan> {
    let root = tree_of(files)?;
    let mut all_dirs = Vec::new();
    walk_dirs(&root, &mut all_dirs);
    let g = geometry(&all_dirs, files)?;
    let mut a = allocate(&g, &all_dirs, files.len());
    let mut meta = dir_blocks(&g, &all_dirs, &a, epoch);
    meta.extend(fat_blocks(&g, &a.fat));
    meta.extend(boot_sector::blocks(&g, &a, serial));
    meta.sort_by_key(|(o, _)| *o);
    a.placed.sort();
    Ok(FatPlan {
        total_bytes: (g.total_sectors * 512).div_ceil(2048) * 2048,
        meta,
        files: a.placed,
        fat_type: g.fat_type,
        cluster_bytes: g.cluster_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_fat16_and_fat32() {
        let small = plan(&[("EFI/BOOT/BOOTX64.EFI".into(), 100_000)], 0, 1).unwrap();
        assert_eq!(small.fat_type, FatType::Fat16);
        assert_eq!(small.files.len(), 1);
        let mid = plan(&[("a".into(), 120 << 20)], 0, 1).unwrap();
        assert_eq!(mid.fat_type, FatType::Fat16);
        assert!(mid.total_bytes > 120 << 20);
        let big = plan(&[("a".into(), 3 << 30)], 0, 1).unwrap();
        assert_eq!(big.fat_type, FatType::Fat32);
    }

    #[test]
    fn refuses_paths_fat_cannot_hold() {
        let one = |p: &str| plan(&[(p.to_string(), 1)], 0, 1);
        assert!(one("").is_err());
        assert!(one("a/../b").is_err());
        assert!(one(&"x".repeat(256)).is_err());
        let two = |a: &str, b: &str| plan(&[(a.to_string(), 1), (b.to_string(), 1)], 0, 1);
        assert!(two("EFI/x", "efi/X").is_err(), "case-insensitive twice");
        assert!(two("a", "A/b").is_err(), "a file and a directory");
        assert!(two("a/b", "A").is_err(), "a directory and a file");
        assert!(plan(&[("a".into(), 1 << 32)], 0, 1).is_err());
    }

    #[test]
    fn directories_then_files_contiguous_in_name_order() {
        let files = [
            ("EFI/BOOT/BOOTX64.EFI".to_string(), 5000),
            ("vmlinuz".to_string(), 3000),
            ("loader/loader.conf".to_string(), 10),
        ];
        let root = tree_of(&files).unwrap();
        let mut all = Vec::new();
        walk_dirs(&root, &mut all);
        assert_eq!(all.len(), 4, "root, EFI, EFI/BOOT, loader");
        let g = geometry(&all, &files).unwrap();
        assert_eq!(g.fat_type, FatType::Fat16);
        let a = allocate(&g, &all, files.len());
        // FAT16 root is not in the data area; EFI, BOOT, loader get 2, 3, 4.
        let dirs: Vec<u32> = a.dir_clusters.iter().map(|d| d.0).collect();
        assert_eq!(dirs, [0, 2, 3, 4]);
        // Files follow in walk order: vmlinuz (root), BOOTX64.EFI, loader.conf.
        let cb = g.cluster_bytes();
        assert_eq!(a.file_cluster[1], 5);
        assert_eq!(u64::from(a.file_cluster[0]), 5 + 3000u64.div_ceil(cb));
        // Each chain ends its own file: BOOTX64.EFI's last cluster is EOC.
        let last = a.file_cluster[0] as usize + 5000usize.div_ceil(cb as usize) - 1;
        assert_eq!(a.fat[last], 0xFFFF);
        assert_eq!(a.fat[5], if cb >= 3000 { 0xFFFF } else { 6 });
    }
}
