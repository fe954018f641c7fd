//! A small FAT16/FAT32 writer for the EFI System Partition image.
//!
//! It only plans: boot sector(s), FATs and directory clusters come out as
//! byte blocks at offsets inside the image, and each file as an offset its
//! bytes are streamed to, so the ISO writer copies payloads exactly once.
//! Allocation is contiguous and in name order; all timestamps come from
//! the epoch; directories get `.`/`..` first, then 8.3 entries, with VFAT
//! long-name entries only for names that are not plain upper-case 8.3.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use super::encode::civil;

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

fn fat_date_time(epoch: i64) -> (u16, u16) {
    let c = civil(epoch);
    let (y, mo, d, h, mi, s) = if c.year < 1980 {
        (1980, 1, 1, 0, 0, 0)
    } else if c.year > 2107 {
        (2107, 12, 31, 23, 59, 58)
    } else {
        (c.year, c.month, c.day, c.hour, c.minute, c.second)
    };
    let date = (((y - 1980) as u16) << 9) | (u16::from(mo) << 5) | u16::from(d);
    let time = (u16::from(h) << 11) | (u16::from(mi) << 5) | u16::from(s / 2);
    (date, time)
}

fn valid_83_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || "_-~!#$%&'()@^`{}".contains(c)
}

/// The 11-byte short name if `name` is already a plain upper-case 8.3 name.
pub fn plain_83(name: &str) -> Option<[u8; 11]> {
    let (base, ext) = match name.split_once('.') {
        Some((b, e)) => (b, e),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || ext.contains('.') {
        return None;
    }
    if !base.chars().chain(ext.chars()).all(valid_83_char) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(out)
}

fn short_basis(name: &str) -> (String, String) {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| c.to_ascii_uppercase())
            .filter(|&c| c != ' ' && c != '.')
            .map(|c| if valid_83_char(c) { c } else { '_' })
            .collect()
    };
    match name.rfind('.') {
        Some(i) if i > 0 => (
            clean(&name[..i]),
            clean(&name[i + 1..]).chars().take(3).collect(),
        ),
        _ => (clean(name), String::new()),
    }
}

/// Short names for one directory's entries (in the given order): plain
/// 8.3 names as they are, upper-cased 8.3 names if unique, else `BASE~N`.
/// The bool says whether long-name entries are needed.
pub fn short_names(names: &[&str]) -> Vec<([u8; 11], bool)> {
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for name in names {
        if let Some(s) = plain_83(name) {
            used.insert(s);
            out.push((s, false));
            continue;
        }
        if let Some(s) = plain_83(&name.to_ascii_uppercase()) {
            if used.insert(s) {
                out.push((s, true));
                continue;
            }
        }
        let (base, ext) = short_basis(name);
        let base = if base.is_empty() {
            "_".to_string()
        } else {
            base
        };
        let mut n = 1;
        loop {
            let tail = format!("~{n}");
            let keep = (8 - tail.len()).min(base.len());
            let mut s = [b' '; 11];
            let b = format!("{}{}", &base[..keep], tail);
            s[..b.len()].copy_from_slice(b.as_bytes());
            s[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
            if used.insert(s) {
                out.push((s, true));
                break;
            }
            n += 1;
        }
    }
    out
}

/// The VFAT checksum of a short name.
pub fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short.iter().fold(0u8, |sum, &c| {
        ((sum & 1) << 7).wrapping_add(sum >> 1).wrapping_add(c)
    })
}

/// Long-name entries for `name`, in on-disk order (last piece first).
pub fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let count = units.len().div_ceil(13);
    let sum = lfn_checksum(short);
    let mut out = Vec::with_capacity(count);
    for seq in (1..=count).rev() {
        let mut chars = [0xFFFFu16; 13];
        for (i, slot) in chars.iter_mut().enumerate() {
            let idx = (seq - 1) * 13 + i;
            if idx < units.len() {
                *slot = units[idx];
            } else if idx == units.len() {
                *slot = 0;
            }
        }
        let mut e = [0u8; 32];
        e[0] = seq as u8 | if seq == count { 0x40 } else { 0 };
        e[11] = 0x0F;
        e[13] = sum;
        let put = |e: &mut [u8; 32], off: usize, cs: &[u16]| {
            for (i, c) in cs.iter().enumerate() {
                e[off + 2 * i..off + 2 * i + 2].copy_from_slice(&c.to_le_bytes());
            }
        };
        put(&mut e, 1, &chars[0..5]);
        put(&mut e, 14, &chars[5..11]);
        put(&mut e, 28, &chars[11..13]);
        out.push(e);
    }
    out
}

fn dir_entry(short: &[u8; 11], attr: u8, cluster: u32, size: u32, epoch: i64) -> [u8; 32] {
    let (date, time) = fat_date_time(epoch);
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(short);
    e[11] = attr;
    e[14..16].copy_from_slice(&time.to_le_bytes());
    e[16..18].copy_from_slice(&date.to_le_bytes());
    e[18..20].copy_from_slice(&date.to_le_bytes());
    e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

/// Number of 32-byte slots a directory's entries take.
fn dir_slots(d: &Dir, is_root: bool) -> u64 {
    let names: Vec<&str> = d
        .dirs
        .keys()
        .chain(d.files.keys())
        .map(String::as_str)
        .collect();
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

/// Plans a FAT image holding `files` (`(path, size)`, paths like
/// `EFI/BOOT/BOOTX64.EFI`), sized to fit with some free space.
pub fn plan(files: &[(String, u64)], epoch: i64, serial: u32) -> Result<FatPlan> {
    let mut root = Dir::default();
    let mut seen = std::collections::HashSet::new();
    for (i, (path, size)) in files.iter().enumerate() {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.is_empty()
            || parts
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
        let (name, dirs) = parts.split_last().expect("non-empty");
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
    let mut all_dirs = Vec::new();
    walk_dirs(&root, &mut all_dirs);
    let root_slots = dir_slots(&root, true);

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
    if root_slots <= 512 {
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
    let cb = spc * 512;
    let fat32 = fat_type == FatType::Fat32;
    let entry_bytes = if fat32 { 4 } else { 2 };
    let fat_sectors = ((clusters + 2) * entry_bytes).div_ceil(512);
    let reserved = if fat32 { 32 } else { 1 };
    let root_sectors = if fat32 { 0 } else { 32 };
    let data_start = reserved + 2 * fat_sectors + root_sectors;
    let total_sectors = data_start + clusters * spc;

    // Allocate: dirs (FAT32 root first), then files, contiguously.
    let mut next = 2u64;
    let mut fat = vec![0u32; (clusters + 2) as usize];
    fat[0] = if fat32 { 0x0FFF_FFF8 } else { 0xFFF8 };
    fat[1] = if fat32 { 0x0FFF_FFFF } else { 0xFFFF };
    let eoc = if fat32 { 0x0FFF_FFFF } else { 0xFFFF };
    let mut alloc = |count: u64, fat: &mut Vec<u32>| -> u32 {
        if count == 0 {
            return 0;
        }
        let first = next;
        for k in 0..count {
            let cl = (first + k) as usize;
            fat[cl] = if k + 1 == count {
                eoc
            } else {
                (first + k + 1) as u32
            };
        }
        next += count;
        first as u32
    };
    let mut dir_clusters: Vec<(u32, u64)> = Vec::new();
    for (k, d) in all_dirs.iter().enumerate() {
        if k == 0 && !fat32 {
            dir_clusters.push((0, 0));
            continue;
        }
        let n = (dir_slots(d, k == 0) * 32).div_ceil(cb).max(1);
        dir_clusters.push((alloc(n, &mut fat), n));
    }
    let mut file_cluster = vec![0u32; files.len()];
    let mut placed = Vec::new();
    for d in &all_dirs {
        for (idx, size) in d.files.values() {
            let cl = alloc(size.div_ceil(cb), &mut fat);
            file_cluster[*idx] = cl;
            if *size > 0 {
                placed.push(((data_start * 512) + (u64::from(cl) - 2) * cb, *idx));
            }
        }
    }
    let used = next - 2;

    // Directory contents.
    let mut meta = Vec::new();
    let index_of = |d: &Dir| {
        all_dirs
            .iter()
            .position(|x| std::ptr::eq(*x, d))
            .expect("dir listed")
    };
    for (k, d) in all_dirs.iter().enumerate() {
        let mut bytes = Vec::new();
        let (own, _) = dir_clusters[k];
        if k != 0 {
            let parent = all_dirs
                .iter()
                .position(|p| p.dirs.values().any(|c| std::ptr::eq(c, *d)))
                .expect("parent");
            let parent_cluster = if parent == 0 {
                0
            } else {
                dir_clusters[parent].0
            };
            bytes.extend_from_slice(&dir_entry(b".          ", 0x10, own, 0, epoch));
            bytes.extend_from_slice(&dir_entry(b"..         ", 0x10, parent_cluster, 0, epoch));
        }
        let names: Vec<&str> = d
            .dirs
            .keys()
            .chain(d.files.keys())
            .map(String::as_str)
            .collect();
        let shorts = short_names(&names);
        for (name, (short, lfn)) in names.iter().zip(&shorts) {
            if *lfn {
                for e in lfn_entries(name, short) {
                    bytes.extend_from_slice(&e);
                }
            }
            let e = if let Some(sub) = d.dirs.get(*name) {
                dir_entry(short, 0x10, dir_clusters[index_of(sub)].0, 0, epoch)
            } else {
                let (idx, size) = d.files[*name];
                dir_entry(short, 0x20, file_cluster[idx], size as u32, epoch)
            };
            bytes.extend_from_slice(&e);
        }
        if k == 0 && !fat32 {
            bytes.resize(32 * 512, 0);
            meta.push(((reserved + 2 * fat_sectors) * 512, bytes));
        } else {
            let (cl, n) = dir_clusters[k];
            bytes.resize((n * cb) as usize, 0);
            meta.push(((data_start * 512) + (u64::from(cl) - 2) * cb, bytes));
        }
    }

    // FATs.
    let mut fat_bytes: Vec<u8> = if fat32 {
        fat.iter().flat_map(|v| v.to_le_bytes()).collect()
    } else {
        fat.iter().flat_map(|v| (*v as u16).to_le_bytes()).collect()
    };
    fat_bytes.resize((fat_sectors * 512) as usize, 0);
    meta.push((reserved * 512, fat_bytes.clone()));
    meta.push(((reserved + fat_sectors) * 512, fat_bytes));

    // Boot sector (and FAT32 FSInfo plus backups).
    let mut bs = [0u8; 512];
    bs[0..3].copy_from_slice(if fat32 {
        &[0xEB, 0x58, 0x90]
    } else {
        &[0xEB, 0x3C, 0x90]
    });
    bs[3..11].copy_from_slice(b"AIRLIFT ");
    bs[11..13].copy_from_slice(&512u16.to_le_bytes());
    bs[13] = spc as u8;
    bs[14..16].copy_from_slice(&(reserved as u16).to_le_bytes());
    bs[16] = 2;
    bs[17..19].copy_from_slice(&(if fat32 { 0u16 } else { 512 }).to_le_bytes());
    if !fat32 && total_sectors < 65536 {
        bs[19..21].copy_from_slice(&(total_sectors as u16).to_le_bytes());
    } else {
        bs[32..36].copy_from_slice(&(total_sectors as u32).to_le_bytes());
    }
    bs[21] = 0xF8;
    bs[24..26].copy_from_slice(&32u16.to_le_bytes());
    bs[26..28].copy_from_slice(&64u16.to_le_bytes());
    let ext = if fat32 {
        bs[36..40].copy_from_slice(&(fat_sectors as u32).to_le_bytes());
        bs[44..48].copy_from_slice(&2u32.to_le_bytes());
        bs[48..50].copy_from_slice(&1u16.to_le_bytes());
        bs[50..52].copy_from_slice(&6u16.to_le_bytes());
        64
    } else {
        bs[22..24].copy_from_slice(&(fat_sectors as u16).to_le_bytes());
        36
    };
    bs[ext] = 0x80;
    bs[ext + 2] = 0x29;
    bs[ext + 3..ext + 7].copy_from_slice(&serial.to_le_bytes());
    bs[ext + 7..ext + 18].copy_from_slice(b"NO NAME    ");
    bs[ext + 18..ext + 26].copy_from_slice(if fat32 { b"FAT32   " } else { b"FAT16   " });
    bs[510] = 0x55;
    bs[511] = 0xAA;
    meta.push((0, bs.to_vec()));
    if fat32 {
        let mut fsi = [0u8; 512];
        fsi[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
        fsi[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
        fsi[488..492].copy_from_slice(&((clusters - used) as u32).to_le_bytes());
        fsi[492..496].copy_from_slice(&(next as u32).to_le_bytes());
        fsi[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
        meta.push((512, fsi.to_vec()));
        meta.push((6 * 512, bs.to_vec()));
        meta.push((7 * 512, fsi.to_vec()));
    }
    meta.sort_by_key(|(o, _)| *o);
    placed.sort();
    Ok(FatPlan {
        total_bytes: (total_sectors * 512).div_ceil(2048) * 2048,
        meta,
        files: placed,
        fat_type,
        cluster_bytes: cb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_names() {
        assert_eq!(&plain_83("BOOTX64.EFI").unwrap(), b"BOOTX64 EFI");
        assert!(plain_83("loader").is_none());
        assert!(plain_83("a.b.c").is_none());
        let s = short_names(&[
            "loader",
            "LOADER.CONF",
            "entries",
            "systemd-bootx64.efi",
            "systemd-bootx64.efi2",
        ]);
        assert_eq!(&s[0].0, b"LOADER     ");
        assert!(s[0].1);
        assert_eq!(&s[1].0, b"LOADER~1CON");
        assert!(s[1].1);
        assert_eq!(&s[2].0, b"ENTRIES    ");
        assert_eq!(&s[3].0, b"SYSTEM~1EFI");
        assert_eq!(&s[4].0, b"SYSTEM~2EFI");
    }

    #[test]
    fn lfn_layout() {
        let short = *b"LOADER     ";
        let e = lfn_entries("loader.conf", &short);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0][0], 0x41);
        assert_eq!(e[0][11], 0x0F);
        assert_eq!(e[0][13], lfn_checksum(&short));
        assert_eq!(&e[0][1..3], &[b'l', 0]);
        // 11 chars, then a NUL, then 0xFFFF padding.
        assert_eq!(&e[0][28..30], &[0, 0]);
        assert_eq!(&e[0][30..32], &[0xFF, 0xFF]);
        assert_eq!(lfn_entries(&"x".repeat(26), &short).len(), 2);
    }

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
        assert_eq!(fat_date_time(0), ((1 << 5) | 1, 0));
    }
}
