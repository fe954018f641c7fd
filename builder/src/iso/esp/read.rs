//! Reading files back from a FAT16/FAT32 image (an ISO's ESP), for
//! `airlift inspect`: the boot sector's geometry, directories with VFAT
//! long names, and cluster chains. Reads go through a `read_at` function,
//! so the image stays in the ISO file; chains and sizes are bounded, so a
//! damaged image is an error, not a hang.

use anyhow::{bail, Context, Result};

/// Reads `len` bytes at an offset of the FAT image.
pub type ReadAt<'a> = &'a dyn Fn(u64, usize) -> Result<Vec<u8>>;

/// Largest file read back (the UKI is kernel + initrd).
const MAX_FILE: u64 = 1 << 30;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The long name if there is one, else the 8.3 name.
    pub name: String,
    pub is_dir: bool,
    pub cluster: u32,
    pub size: u32,
}

/// An open FAT image.
pub struct Fat<'a> {
    read_at: ReadAt<'a>,
    fat32: bool,
    cluster_bytes: u64,
    fat: Vec<u32>,
    /// FAT16's fixed root directory: (offset, bytes).
    root_region: (u64, usize),
    root_cluster: u32,
    data_start: u64,
}

fn le16(b: &[u8], at: usize) -> u32 {
    u32::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Fat<'a> {
    /// Reads the boot sector and the first FAT.
    pub fn open(read_at: ReadAt<'a>) -> Result<Fat<'a>> {
        let bs = read_at(0, 512)?;
        if bs.len() < 512 || bs[510..512] != [0x55, 0xaa] {
            bail!("not a FAT image (no boot sector signature)");
        }
        let sector = le16(&bs, 11);
        let per_cluster = u32::from(bs[13]);
        let reserved = le16(&bs, 14);
        let fats = u32::from(bs[16]);
        let root_entries = le16(&bs, 17);
        let fat16_size = le16(&bs, 22);
        if !matches!(sector, 512 | 1024 | 2048 | 4096) || per_cluster == 0 || fats == 0 {
            bail!("not a FAT image (bad geometry)");
        }
        let fat32 = fat16_size == 0;
        let fat_sectors = if fat32 { le32(&bs, 36) } else { fat16_size };
        let s = u64::from(sector);
        let fat_at = u64::from(reserved) * s;
        let root_at = fat_at + u64::from(fats) * u64::from(fat_sectors) * s;
        let root_bytes = (root_entries as usize) * 32;
        let data_start = root_at + (root_bytes as u64).div_ceil(s) * s;
        let fat_bytes = (u64::from(fat_sectors) * s).min(64 << 20) as usize;
        let raw = read_at(fat_at, fat_bytes)?;
        let fat = if fat32 {
            raw.chunks_exact(4)
                .map(|c| le32(c, 0) & 0x0fff_ffff)
                .collect()
        } else {
            raw.chunks_exact(2).map(|c| le16(c, 0)).collect()
        };
        Ok(Fat {
            read_at,
            fat32,
            cluster_bytes: u64::from(per_cluster) * s,
            fat,
            root_region: (root_at, root_bytes),
            root_cluster: if fat32 { le32(&bs, 44) } else { 0 },
            data_start,
        })
    }

    /// The clusters of the chain starting at `first`.
    fn chain(&self, first: u32) -> Result<Vec<u32>> {
        let end = if self.fat32 { 0x0fff_fff8 } else { 0xfff8 };
        let mut out = Vec::new();
        let mut cl = first;
        while cl >= 2 && cl < end {
            if out.len() >= self.fat.len() {
                bail!("FAT: the cluster chain from {first} loops");
            }
            out.push(cl);
            cl = *self
                .fat
                .get(cl as usize)
                .with_context(|| format!("FAT: cluster {cl} is past the table"))?;
        }
        Ok(out)
    }

    /// The bytes of the chain from `first`, cut to `size` when given.
    fn read_chain(&self, first: u32, size: Option<u64>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for cl in self.chain(first)? {
            let at = self.data_start + u64::from(cl - 2) * self.cluster_bytes;
            out.extend(read_at_checked(
                self.read_at,
                at,
                self.cluster_bytes as usize,
            )?);
            if size.is_some_and(|s| out.len() as u64 >= s) || out.len() as u64 > MAX_FILE {
                break;
            }
        }
        if let Some(s) = size {
            if (out.len() as u64) < s {
                bail!(
                    "FAT: a file of {s} bytes has a chain of {} bytes",
                    out.len()
                );
            }
            out.truncate(s as usize);
        }
        Ok(out)
    }

    /// The entries of the root directory.
    pub fn root(&self) -> Result<Vec<DirEntry>> {
        let bytes = if self.fat32 {
            self.read_chain(self.root_cluster, None)?
        } else {
            read_at_checked(self.read_at, self.root_region.0, self.root_region.1)?
        };
        Ok(parse_dir(&bytes))
    }

    /// The entries of the directory `e`.
    pub fn read_dir(&self, e: &DirEntry) -> Result<Vec<DirEntry>> {
        Ok(parse_dir(&self.read_chain(e.cluster, None)?))
    }

    /// The entry at `path` (`EFI/BOOT/BOOTX64.EFI`, any case), if any.
    pub fn lookup(&self, path: &str) -> Result<Option<DirEntry>> {
        let mut entries = self.root()?;
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (k, part) in parts.iter().enumerate() {
            let Some(e) = entries
                .into_iter()
                .find(|e| e.name.eq_ignore_ascii_case(part))
            else {
                return Ok(None);
            };
            if k + 1 == parts.len() {
                return Ok(Some(e));
            }
            if !e.is_dir {
                return Ok(None);
            }
            entries = self.read_dir(&e)?;
        }
        Ok(None)
    }

    /// The bytes of the file `e`.
    pub fn read_file(&self, e: &DirEntry) -> Result<Vec<u8>> {
        if e.size == 0 {
            return Ok(Vec::new());
        }
        self.read_chain(e.cluster, Some(u64::from(e.size)))
    }
}

fn read_at_checked(read_at: ReadAt, at: u64, len: usize) -> Result<Vec<u8>> {
    let b = read_at(at, len)?;
    if b.len() != len {
        bail!("FAT: short read at {at}");
    }
    Ok(b)
}

/// The entries of a directory's bytes: long names gathered before their
/// short entry; `.`, `..`, deleted entries and volume labels skipped.
pub fn parse_dir(bytes: &[u8]) -> Vec<DirEntry> {
    let mut out = Vec::new();
    let mut long: Vec<(u8, Vec<u16>)> = Vec::new();
    for e in bytes.chunks_exact(32) {
        match e[0] {
            0 => break,
            0xe5 => {
                long.clear();
                continue;
            }
            _ => {}
        }
        let attr = e[11];
        if attr == 0x0f {
            let units = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
                .iter()
                .map(|&at| le16(e, at) as u16)
                .take_while(|u| *u != 0 && *u != 0xffff)
                .collect();
            long.push((e[0] & 0x1f, units));
            continue;
        }
        if attr & 0x08 != 0 || e[0] == b'.' {
            long.clear();
            continue;
        }
        let name = if long.is_empty() {
            short_name(e)
        } else {
            long.sort_by_key(|(seq, _)| *seq);
            let units: Vec<u16> = long.iter().flat_map(|(_, u)| u.iter().copied()).collect();
            String::from_utf16_lossy(&units)
        };
        long.clear();
        out.push(DirEntry {
            name,
            is_dir: attr & 0x10 != 0,
            cluster: (le16(e, 20) << 16) | le16(e, 26),
            size: le32(e, 28),
        });
    }
    out
}

/// The 8.3 name of an entry, with the lower-case flags of byte 12.
fn short_name(e: &[u8]) -> String {
    let part = |b: &[u8], lower: bool| {
        let s = String::from_utf8_lossy(b).trim_end().to_string();
        if lower {
            s.to_ascii_lowercase()
        } else {
            s
        }
    };
    let base = part(&e[..8], e[12] & 0x08 != 0);
    let ext = part(&e[8..11], e[12] & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FAT image planned by this crate's own writer, filled in memory.
    fn image(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let list: Vec<(String, u64)> = files
            .iter()
            .map(|(p, b)| (p.to_string(), b.len() as u64))
            .collect();
        let plan = super::super::plan(&list, 1_700_000_000, 7).unwrap();
        let mut img = vec![0u8; plan.total_bytes as usize];
        for (at, bytes) in &plan.meta {
            img[*at as usize..*at as usize + bytes.len()].copy_from_slice(bytes);
        }
        for (at, idx) in &plan.files {
            let b = &files[*idx].1;
            img[*at as usize..*at as usize + b.len()].copy_from_slice(b);
        }
        img
    }

    fn reader(img: &[u8]) -> impl Fn(u64, usize) -> Result<Vec<u8>> + '_ {
        move |at, len| {
            let at = at as usize;
            Ok(img
                .get(at..(at + len).min(img.len()))
                .unwrap_or(&[])
                .to_vec())
        }
    }

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let files = [
            ("EFI/BOOT/BOOTX64.EFI", b"MZ loader".to_vec()),
            ("EFI/Linux/airlift-1.0.efi", big.clone()),
            ("loader/loader.conf", b"timeout 0\n".to_vec()),
            ("empty", Vec::new()),
        ];
        let img = image(&files);
        let read = reader(&img);
        let fat = Fat::open(&read).unwrap();
        for (path, bytes) in &files {
            let e = fat
                .lookup(path)
                .unwrap()
                .unwrap_or_else(|| panic!("{path}"));
            assert_eq!(&fat.read_file(&e).unwrap(), bytes, "{path}");
        }
        let e = fat.lookup("efi/linux").unwrap().unwrap();
        assert!(e.is_dir);
        let names: Vec<String> = fat
            .read_dir(&e)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["airlift-1.0.efi"]);
        assert_eq!(fat.lookup("EFI/nope").unwrap(), None);
        assert_eq!(fat.lookup("loader/loader.conf/x").unwrap(), None);
    }

    #[test]
    fn damaged_images_are_errors() {
        let img = vec![0u8; 4096];
        assert!(Fat::open(&reader(&img)).is_err());
        let files = [("a.bin", vec![1u8; 5000])];
        let mut img = image(&files);
        let e = {
            let read = reader(&img);
            Fat::open(&read).unwrap().lookup("a.bin").unwrap().unwrap()
        };
        // Make the file's first cluster point at itself.
        let fat_at = 512 * le16(&img, 14) as usize;
        let c = e.cluster as usize;
        img[fat_at + 2 * c..fat_at + 2 * c + 2].copy_from_slice(&(c as u16).to_le_bytes());
        let read = reader(&img);
        let fat = Fat::open(&read).unwrap();
        let err = fat.read_file(&e).unwrap_err().to_string();
        assert!(err.contains("loops") || err.contains("chain"), "{err}");
    }
}
