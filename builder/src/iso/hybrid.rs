//! The hybrid system area: an isohybrid MBR (boot code, isolinux LBA,
//! protective 0xEE entry, active dummy entry) and a GPT with a basic-data
//! partition over the ISO 9660 data and an EFI System Partition.

use super::encode::{crc32, put_padded};

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
/// Number of GPT entries (128 bytes each: 32 sectors).
pub const GPT_ENTRIES: u32 = 128;

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
    pub type_guid: [u8; 16],
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

/// The GPT partition entry array (128 entries of 128 bytes).
pub fn gpt_entries(parts: &[GptPart]) -> Vec<u8> {
    let mut a = vec![0u8; (GPT_ENTRIES * 128) as usize];
    for (i, p) in parts.iter().enumerate() {
        let e = &mut a[i * 128..(i + 1) * 128];
        e[0..16].copy_from_slice(&p.type_guid);
        e[16..32].copy_from_slice(&p.guid);
        e[32..40].copy_from_slice(&p.first.to_le_bytes());
        e[40..48].copy_from_slice(&p.last.to_le_bytes());
        let name: Vec<u8> = p
            .name
            .encode_utf16()
            .take(36)
            .flat_map(u16::to_le_bytes)
            .collect();
        put_padded(&mut e[56..128], &name, 0);
    }
    a
}

/// A GPT header sector. `primary` selects the LBA fields for LBA 1 or the
/// backup at the last sector.
pub fn gpt_header(
    primary: bool,
    total_sectors: u64,
    disk_guid: &[u8; 16],
    entries: &[u8],
) -> [u8; 512] {
    let last = total_sectors - 1;
    let entry_sectors = u64::from(GPT_ENTRIES) * 128 / 512;
    let (my, alt, entries_lba) = if primary {
        (1, last, 2)
    } else {
        (last, 1, last - entry_sectors)
    };
    let mut s = [0u8; 512];
    s[0..8].copy_from_slice(b"EFI PART");
    s[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
    s[12..16].copy_from_slice(&92u32.to_le_bytes());
    s[24..32].copy_from_slice(&my.to_le_bytes());
    s[32..40].copy_from_slice(&alt.to_le_bytes());
    s[40..48].copy_from_slice(&(2 + entry_sectors).to_le_bytes());
    s[48..56].copy_from_slice(&(last - entry_sectors - 1).to_le_bytes());
    s[56..72].copy_from_slice(disk_guid);
    s[72..80].copy_from_slice(&entries_lba.to_le_bytes());
    s[80..84].copy_from_slice(&GPT_ENTRIES.to_le_bytes());
    s[84..88].copy_from_slice(&128u32.to_le_bytes());
    s[88..92].copy_from_slice(&crc32(entries).to_le_bytes());
    let crc = crc32(&s[..92]);
    s[16..20].copy_from_slice(&crc.to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
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
            type_guid: ESP_TYPE,
            guid: [1; 16],
            first: 100,
            last: 199,
            name: "ESP".into(),
        }];
        let entries = gpt_entries(&parts);
        assert_eq!(&entries[32..40], &100u64.to_le_bytes());
        assert_eq!(&entries[56..62], &[b'E', 0, b'S', 0, b'P', 0]);
        let h = gpt_header(true, 1000, &[7; 16], &entries);
        let mut z = h;
        z[16..20].fill(0);
        assert_eq!(
            u32::from_le_bytes([h[16], h[17], h[18], h[19]]),
            crc32(&z[..92])
        );
        assert_eq!(u64::from_le_bytes(h[32..40].try_into().unwrap()), 999);
        assert_eq!(u64::from_le_bytes(h[40..48].try_into().unwrap()), 34);
        assert_eq!(u64::from_le_bytes(h[48..56].try_into().unwrap()), 966);
        let b = gpt_header(false, 1000, &[7; 16], &entries);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 999);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 967);
    }
}
