//! The FAT boot sector (BIOS parameter block) and, on FAT32, the FSInfo
//! sector and the backup copies of both at sectors 6 and 7.

use super::{Allocation, Geometry};

/// The boot sector for `g` with volume serial `serial`.
fn boot_sector(g: &Geometry, serial: u32) -> [u8; 512] {
    let fat32 = g.fat32();
    let mut bs = [0u8; 512];
    bs[0..3].copy_from_slice(if fat32 {
        &[0xEB, 0x58, 0x90]
    } else {
        &[0xEB, 0x3C, 0x90]
    });
    bs[3..11].copy_from_slice(b"AIRLIFT ");
    bs[11..13].copy_from_slice(&512u16.to_le_bytes());
    bs[13] = g.sectors_per_cluster as u8;
    bs[14..16].copy_from_slice(&(g.reserved as u16).to_le_bytes());
    bs[16] = 2;
    bs[17..19].copy_from_slice(&(if fat32 { 0u16 } else { 512 }).to_le_bytes());
    if !fat32 && g.total_sectors < 65536 {
        bs[19..21].copy_from_slice(&(g.total_sectors as u16).to_le_bytes());
    } else {
        bs[32..36].copy_from_slice(&(g.total_sectors as u32).to_le_bytes());
    }
    bs[21] = 0xF8;
    bs[24..26].copy_from_slice(&32u16.to_le_bytes());
    bs[26..28].copy_from_slice(&64u16.to_le_bytes());
    let ext = if fat32 {
        bs[36..40].copy_from_slice(&(g.fat_sectors as u32).to_le_bytes());
        bs[44..48].copy_from_slice(&2u32.to_le_bytes());
        bs[48..50].copy_from_slice(&1u16.to_le_bytes());
        bs[50..52].copy_from_slice(&6u16.to_le_bytes());
        64
    } else {
        bs[22..24].copy_from_slice(&(g.fat_sectors as u16).to_le_bytes());
        36
    };
    bs[ext] = 0x80;
    bs[ext + 2] = 0x29;
    bs[ext + 3..ext + 7].copy_from_slice(&serial.to_le_bytes());
    bs[ext + 7..ext + 18].copy_from_slice(b"NO NAME    ");
    bs[ext + 18..ext + 26].copy_from_slice(if fat32 { b"FAT32   " } else { b"FAT16   " });
    bs[510] = 0x55;
    bs[511] = 0xAA;
    bs
}

/// FAT32's FSInfo: free cluster count and the next free cluster.
fn fsinfo(g: &Geometry, a: &Allocation) -> [u8; 512] {
    let used = a.next - 2;
    let mut fsi = [0u8; 512];
    fsi[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    fsi[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    fsi[488..492].copy_from_slice(&((g.clusters - used) as u32).to_le_bytes());
    fsi[492..496].copy_from_slice(&(a.next as u32).to_le_bytes());
    fsi[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    fsi
}

/// The boot sector, plus FSInfo and the backups on FAT32.
pub(super) fn blocks(g: &Geometry, a: &Allocation, serial: u32) -> Vec<(u64, Vec<u8>)> {
    let bs = boot_sector(g, serial).to_vec();
    if !g.fat32() {
        return vec![(0, bs)];
    }
    let fsi = fsinfo(g, a).to_vec();
    vec![
        (0, bs.clone()),
        (512, fsi.clone()),
        (6 * 512, bs),
        (7 * 512, fsi),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::FatType;
    use super::*;

    fn geometry(fat_type: FatType, total_sectors: u64) -> Geometry {
        Geometry {
            fat_type,
            sectors_per_cluster: 8,
            clusters: 70_000,
            fat_sectors: 547,
            reserved: 32,
            data_start: 1126,
            total_sectors,
        }
    }

    #[test]
    fn fat16_bpb_and_signature() {
        let g = geometry(FatType::Fat16, 40_000);
        let b = boot_sector(&g, 0x1234_5678);
        assert_eq!(b[13], 8);
        assert_eq!(&b[19..21], &40_000u16.to_le_bytes());
        assert_eq!(&b[22..24], &547u16.to_le_bytes());
        assert_eq!(&b[39..43], &0x1234_5678u32.to_le_bytes());
        assert_eq!(&b[54..62], b"FAT16   ");
        assert_eq!(&b[510..], &[0x55, 0xAA]);
        // Over 65535 sectors the count moves to the 32-bit field.
        let big = boot_sector(&geometry(FatType::Fat16, 70_000), 0);
        assert_eq!(&big[19..21], &[0, 0]);
        assert_eq!(&big[32..36], &70_000u32.to_le_bytes());
    }

    #[test]
    fn fat32_has_fsinfo_and_backups() {
        let g = geometry(FatType::Fat32, 600_000);
        let a = Allocation {
            fat: Vec::new(),
            next: 12,
            dir_clusters: Vec::new(),
            file_cluster: Vec::new(),
            placed: Vec::new(),
        };
        let blocks = blocks(&g, &a, 7);
        let offsets: Vec<u64> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(offsets, [0, 512, 3072, 3584]);
        assert_eq!(blocks[0].1, blocks[2].1);
        assert_eq!(&blocks[0].1[82..90], b"FAT32   ");
        let fsi = &blocks[1].1;
        assert_eq!(&fsi[488..492], &(70_000u32 - 10).to_le_bytes());
        assert_eq!(&fsi[492..496], &12u32.to_le_bytes());
    }
}
