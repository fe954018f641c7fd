//! The hybrid system area: an isohybrid MBR (boot code, isolinux LBA,
//! protective 0xEE entry, active dummy entry) and a GPT with a basic-data
//! partition over the ISO 9660 data and an EFI System Partition.
//!
//! The MBR is ours: isohybrid puts boot code and the isolinux LBA in it
//! beside a protective entry, which no GPT library writes. The GPT (both
//! headers, both entry arrays, the CRCs) comes from the `gpt` crate, whose
//! standard layout (entries from LBA 2, backup array before the last
//! sector) is exactly the hybrid one; the partitions' GUIDs and LBAs are
//! given to it, so the bytes stay deterministic.

use std::collections::BTreeMap;
use std::io;

use anyhow::{bail, Context, Result};

/// GPT type of an EFI System Partition (C12A7328-F81F-11D2-BA4B-00A0C93EC93B).
pub const ESP_TYPE: [u8; 16] = guid_bytes(
    0xC12A7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// GPT type of a basic data partition (EBD0A0A2-B9E5-4433-87C0-68B6B72699C7).
pub const BASIC_DATA_TYPE: [u8; 16] = guid_bytes(
    0xEBD0A0A2,
    0xB9E5,
    0x4433,
    [0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7],
);
/// A GUID in its on-disk (mixed-endian) byte order.
pub const fn guid_bytes(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Formats on-disk GUID bytes as text.
pub fn guid_text(g: &[u8; 16]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

/// Makes 16 hash bytes a version-4-shaped GUID (deterministic, not random).
pub fn guid_from_hash(h: &[u8]) -> [u8; 16] {
    let mut g = [0u8; 16];
    g.copy_from_slice(&h[..16]);
    g[7] = (g[7] & 0x0F) | 0x40;
    g[8] = (g[8] & 0x3F) | 0x80;
    g
}

/// One GPT partition (LBAs in 512-byte sectors, inclusive end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPart {
    pub type_guid: gpt::partition_types::Type,
    pub guid: [u8; 16],
    pub first: u64,
    pub last: u64,
    pub name: String,
}

/// The MBR sector. `code` is isohdpfx.bin (first 432 bytes used), or
/// None for a plain protective MBR.
pub fn mbr(
    code: Option<&[u8]>,
    isolinux_lba512: u64,
    signature: u32,
    total_sectors: u64,
) -> [u8; 512] {
    let mut s = [0u8; 512];
    if let Some(code) = code {
        let n = code.len().min(432);
        s[..n].copy_from_slice(&code[..n]);
        s[432..440].copy_from_slice(&isolinux_lba512.to_le_bytes());
    }
    s[440..444].copy_from_slice(&signature.to_le_bytes());
    // Entry 1: protective 0xEE from LBA 1 over the whole disk.
    let e = &mut s[446..462];
    e[0] = 0;
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    let size = (total_sectors - 1).min(u64::from(u32::MAX)) as u32;
    e[12..16].copy_from_slice(&size.to_le_bytes());
    if code.is_some() {
        // Entry 2: an active dummy entry, for BIOSes that want one.
        let e = &mut s[462..478];
        e[0] = 0x80;
        e[12..16].copy_from_slice(&1u32.to_le_bytes());
    }
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// The GPT as written: header and entry array from LBA 1 (write at byte
/// 512), and the backup entry array and header (the disk's last 33
/// sectors).
pub struct Gpt {
    pub primary: Vec<u8>,
    pub backup: Vec<u8>,
}

/// Sectors of the GPT at each end: (protective MBR,) header, 32 of entries.
const HEAD_SECTORS: u64 = 34;
const TAIL_SECTORS: u64 = 33;

/// The GPT of a disk of `total_sectors` (512 bytes) with `parts`, made
/// by the `gpt` crate (headers, entry arrays, backup, CRCs). The crate
/// works on a device; it gets [`GptEnds`], so the gigabytes between the
/// two tables never exist in memory.
pub fn gpt(total_sectors: u64, disk_guid: &[u8; 16], parts: &[GptPart]) -> Result<Gpt> {
    let device = GptEnds::new(total_sectors)?;
    let guid = uuid::Uuid::from_bytes_le(*disk_guid);
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
        .create_from_device(device, Some(guid))
        .context("setting up the GPT")?;
    let entries: BTreeMap<u32, gpt::partition::Partition> = parts
        .iter()
        .zip(1u32..)
        .map(|(p, id)| {
            let part = gpt::partition::Partition {
                part_type_guid: p.type_guid.clone(),
                part_guid: uuid::Uuid::from_bytes_le(p.guid),
                first_lba: p.first,
                last_lba: p.last,
                flags: 0,
                name: p.name.clone(),
            };
            (id, part)
        })
        .collect();
    disk.update_partitions(entries)
        .context("adding the GPT partitions")?;
    let ends = disk.write().context("writing the GPT")?;
    Ok(Gpt {
        primary: ends.head[512..].to_vec(),
        backup: ends.tail,
    })
}

/// A disk device holding only the sectors a GPT occupies: the first 34
/// and the last 33 of a disk `len` bytes long. Reads and writes outside
/// them fail, so the crate cannot touch the ISO between them unnoticed.
#[derive(Debug)]
struct GptEnds {
    len: u64,
    pos: u64,
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl GptEnds {
    fn new(total_sectors: u64) -> Result<GptEnds> {
        if total_sectors < HEAD_SECTORS + TAIL_SECTORS {
            bail!("a disk of {total_sectors} sectors is too small for a GPT");
        }
        Ok(GptEnds {
            len: total_sectors * 512,
            pos: 0,
            head: vec![0; (HEAD_SECTORS * 512) as usize],
            tail: vec![0; (TAIL_SECTORS * 512) as usize],
        })
    }

    /// The buffer and offset holding `n` bytes at the current position.
    fn at(&mut self, n: usize) -> io::Result<(&mut Vec<u8>, usize)> {
        let tail_start = self.len - self.tail.len() as u64;
        let end = self.pos + n as u64;
        if end <= self.head.len() as u64 {
            Ok((&mut self.head, self.pos as usize))
        } else if self.pos >= tail_start && end <= self.len {
            Ok((&mut self.tail, (self.pos - tail_start) as usize))
        } else {
            Err(io::Error::other(format!(
                "the GPT writer reached byte {} outside the GPT areas",
                self.pos
            )))
        }
    }
}

impl io::Read for GptEnds {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len();
        let (b, off) = self.at(n)?;
        buf.copy_from_slice(&b[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Write for GptEnds {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        let (b, off) = self.at(n)?;
        b[off..off + n].copy_from_slice(buf);
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Seek for GptEnds {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let pos = match to {
            io::SeekFrom::Start(p) => Some(p),
            io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::other("seek before the start of the disk"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::super::encode::crc32;
    use super::*;

    #[test]
    fn guid_encoding() {
        assert_eq!(guid_text(&ESP_TYPE), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(&ESP_TYPE[..4], &[0x28, 0x73, 0x2A, 0xC1]);
        let g = guid_from_hash(&[0xFF; 32]);
        assert_eq!(g[7] >> 4, 4);
        assert_eq!(g[8] & 0xC0, 0x80);
    }

    #[test]
    fn mbr_fields() {
        let code = vec![0xAB; 512];
        let m = mbr(Some(&code), 0x1234, 0xDEADBEEF, 10_000);
        assert_eq!(m[431], 0xAB);
        assert_eq!(&m[432..440], &0x1234u64.to_le_bytes());
        assert_eq!(&m[440..444], &0xDEADBEEFu32.to_le_bytes());
        assert_eq!(m[446 + 4], 0xEE);
        assert_eq!(&m[446 + 8..446 + 12], &1u32.to_le_bytes());
        assert_eq!(&m[446 + 12..446 + 16], &9_999u32.to_le_bytes());
        assert_eq!(m[462], 0x80);
        assert_eq!(&m[510..], &[0x55, 0xAA]);
        let big = mbr(None, 0, 0, 1 << 40);
        assert_eq!(&big[446 + 12..446 + 16], &u32::MAX.to_le_bytes());
        assert_eq!(big[0], 0);
    }

    #[test]
    fn gpt_header_crcs_check() {
        let parts = [GptPart {
            type_guid: gpt::partition_types::EFI,
            guid: [1; 16],
            first: 100,
            last: 199,
            name: "ESP".into(),
        }];
        let g = gpt(1000, &[7; 16], &parts).unwrap();
        let (h, entries) = g.primary.split_at(512);
        assert_eq!(entries.len(), 128 * 128);
        assert_eq!(&entries[..16], &ESP_TYPE);
        assert_eq!(&entries[16..32], &[1; 16]);
        assert_eq!(&entries[32..40], &100u64.to_le_bytes());
        assert_eq!(&entries[40..48], &199u64.to_le_bytes());
        assert_eq!(&entries[56..62], &[b'E', 0, b'S', 0, b'P', 0]);
        assert!(entries[128..].iter().all(|&b| b == 0));
        assert_eq!(&h[..8], b"EFI PART");
        assert_eq!(&h[56..72], &[7; 16]);
        let mut z = h[..92].to_vec();
        z[16..20].fill(0);
        assert_eq!(
            u32::from_le_bytes([h[16], h[17], h[18], h[19]]),
            crc32(&z[..92])
        );
        assert_eq!(&h[88..92], &crc32(entries).to_le_bytes());
        assert_eq!(u64::from_le_bytes(h[24..32].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(h[32..40].try_into().unwrap()), 999);
        assert_eq!(u64::from_le_bytes(h[40..48].try_into().unwrap()), 34);
        assert_eq!(u64::from_le_bytes(h[48..56].try_into().unwrap()), 966);
        assert_eq!(u64::from_le_bytes(h[72..80].try_into().unwrap()), 2);
        assert!(h[92..].iter().all(|&b| b == 0));
        // The backup: the same entries, then its header in the last sector.
        let (backup_entries, b) = g.backup.split_at(32 * 512);
        assert_eq!(backup_entries, entries);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 999);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 967);
        let mut z = b[..92].to_vec();
        z[16..20].fill(0);
        assert_eq!(&b[16..20], &crc32(&z).to_le_bytes());
    }

    #[test]
    fn gpt_type_constants_match_the_crate() {
        assert_eq!(gpt::partition_types::EFI.guid.to_bytes_le(), ESP_TYPE);
        assert_eq!(
            gpt::partition_types::BASIC.guid.to_bytes_le(),
            BASIC_DATA_TYPE
        );
    }

    #[test]
    fn gpt_refuses_a_disk_too_small_for_both_tables() {
        assert!(gpt(66, &[0; 16], &[]).is_err());
        assert!(gpt(67, &[0; 16], &[]).is_err());
        assert!(gpt(68, &[0; 16], &[]).is_ok());
    }
}
