//! El Torito: the boot record volume descriptor, the boot catalog and the
//! isolinux boot info table.

use super::encode::put_padded;

/// Platform id of BIOS (x86) entries.
pub const PLATFORM_X86: u8 = 0x00;
/// Platform id of UEFI entries.
pub const PLATFORM_EFI: u8 = 0xEF;

/// One bootable catalog entry (no emulation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootEntry {
    /// 0x00 BIOS, 0xEF UEFI.
    pub platform: u8,
    /// Sectors (512 bytes) to load; 0 means "to the end of the volume" for OVMF.
    pub sector_count: u16,
    /// LBA (2048-byte units) of the image.
    pub lba: u32,
}

/// The boot record volume descriptor (sector 17) pointing at the catalog.
pub fn boot_record(catalog_lba: u32) -> [u8; 2048] {
    let mut s = [0u8; 2048];
    s[0] = 0;
    s[1..6].copy_from_slice(b"CD001");
    s[6] = 1;
    put_padded(&mut s[7..39], b"EL TORITO SPECIFICATION", 0);
    s[71..75].copy_from_slice(&catalog_lba.to_le_bytes());
    s
}

fn put_entry(e: &mut [u8], b: &BootEntry) {
    e[0] = 0x88;
    e[1] = 0; // no emulation
    e[2..4].copy_from_slice(&0u16.to_le_bytes()); // default load segment 0x7C0
    e[4] = 0;
    e[6..8].copy_from_slice(&b.sector_count.to_le_bytes());
    e[8..12].copy_from_slice(&b.lba.to_le_bytes());
}

/// The boot catalog sector: validation entry, default (first) entry, then
/// one section per further entry (the last section header marked final).
pub fn catalog(entries: &[BootEntry]) -> [u8; 2048] {
    let mut s = [0u8; 2048];
    let Some(first) = entries.first() else {
        return s;
    };
    s[0] = 1;
    s[1] = first.platform;
    put_padded(&mut s[4..28], b"AIRLIFT", 0);
    s[30] = 0x55;
    s[31] = 0xAA;
    let sum = s[..32].chunks(2).fold(0u16, |acc, w| {
        acc.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    s[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
    put_entry(&mut s[32..64], first);
    let mut off = 64;
    let rest = &entries[1..];
    for (i, e) in rest.iter().enumerate() {
        s[off] = if i + 1 == rest.len() { 0x91 } else { 0x90 };
        s[off + 1] = e.platform;
        s[off + 2..off + 4].copy_from_slice(&1u16.to_le_bytes());
        put_entry(&mut s[off + 32..off + 64], e);
        off += 64;
    }
    s
}

/// The 56-byte isolinux boot info table for bytes 8..64 of the boot file:
/// PVD LBA, file LBA, file length, checksum of bytes 64.. as LE u32 words.
pub fn boot_info_table(pvd_lba: u32, file_lba: u32, file: &[u8]) -> [u8; 56] {
    let mut sum = 0u32;
    for w in file.get(64..).unwrap_or(&[]).chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        sum = sum.wrapping_add(u32::from_le_bytes(b));
    }
    let mut t = [0u8; 56];
    t[0..4].copy_from_slice(&pvd_lba.to_le_bytes());
    t[4..8].copy_from_slice(&file_lba.to_le_bytes());
    t[8..12].copy_from_slice(&(file.len() as u32).to_le_bytes());
    t[12..16].copy_from_slice(&sum.to_le_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_checksum_and_entries() {
        let c = catalog(&[
            BootEntry {
                platform: PLATFORM_X86,
                sector_count: 4,
                lba: 40,
            },
            BootEntry {
                platform: PLATFORM_EFI,
                sector_count: 0,
                lba: 900,
            },
        ]);
        let sum = c[..32].chunks(2).fold(0u16, |a, w| {
            a.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(&c[30..32], &[0x55, 0xAA]);
        assert_eq!(c[32], 0x88);
        assert_eq!(u16::from_le_bytes([c[38], c[39]]), 4);
        assert_eq!(u32::from_le_bytes([c[40], c[41], c[42], c[43]]), 40);
        assert_eq!(c[64], 0x91);
        assert_eq!(c[65], 0xEF);
        assert_eq!(c[96], 0x88);
        assert_eq!(u32::from_le_bytes([c[104], c[105], c[106], c[107]]), 900);
    }

    #[test]
    fn boot_record_points_at_catalog() {
        let s = boot_record(19);
        assert_eq!(&s[1..6], b"CD001");
        assert_eq!(&s[7..30], b"EL TORITO SPECIFICATION");
        assert_eq!(u32::from_le_bytes([s[71], s[72], s[73], s[74]]), 19);
    }

    #[test]
    fn boot_info_table_sums_words_after_64() {
        let mut file = vec![0xFFu8; 64];
        file.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 3]);
        let t = boot_info_table(16, 30, &file);
        assert_eq!(&t[0..4], &16u32.to_le_bytes());
        assert_eq!(&t[4..8], &30u32.to_le_bytes());
        assert_eq!(&t[8..12], &73u32.to_le_bytes());
        assert_eq!(&t[12..16], &6u32.to_le_bytes());
        assert!(t[16..].iter().all(|&b| b == 0));
    }
}
