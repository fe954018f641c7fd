//! Step 2 of writing: the layout. Gives every descriptor, path table,
//! directory extent, continuation area, file and the ESP its LBA, in the
//! order the module docs list, and derives the deterministic identifiers.
//! Pure: sizes in, sector numbers out.

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

use super::dirs::{self, CeMap};
use super::encode::{blocks, SECTOR};
use super::esp::{self, FatPlan};
use super::hybrid;
use super::plan::Plan;

/// Where everything but the payloads goes (2048-byte LBAs).
pub struct Layout {
    pub pvd_lba: u32,
    pub boot_record_lba: Option<u32>,
    pub svd_lba: u32,
    pub catalog_lba: Option<u32>,
    pub path_tables: PathTables,
    /// First sector of the continuation areas and their bytes.
    pub ce_start: u32,
    pub ce_bytes: Vec<u8>,
    pub ce_map: CeMap,
    pub payload_bytes: u64,
    /// The ESP's LBA and FAT plan: the volume's last extent.
    pub esp: Option<(u32, FatPlan)>,
    pub volume_sectors: u32,
    /// The volume plus the backup GPT.
    pub image_bytes: u64,
    pub ids: Ids,
}

/// The four path tables: byte length of each tree's table and LBAs.
pub struct PathTables {
    pub iso_len: usize,
    pub jol_len: usize,
    pub l_iso: u32,
    pub m_iso: u32,
    pub l_jol: u32,
    pub m_jol: u32,
}

/// What the layout needs besides the plan.
pub struct Inputs<'a> {
    pub volume_id: &'a str,
    pub epoch: i64,
    /// Whether there is an El Torito catalog (any boot at all).
    pub boot: bool,
    /// `(FAT path, size)` of each ESP file, or None without UEFI boot.
    pub esp_files: Option<&'a [(String, u64)]>,
}

/// Lays out `plan` (filling in its LBAs and extent sizes).
pub fn layout(plan: &mut Plan, inputs: &Inputs) -> Result<Layout> {
    size_dirs(plan, inputs.epoch);
    let mut lba: u32 = 16;
    let mut take = |n: u32| {
        lba += n;
        lba - n
    };
    let pvd_lba = take(1);
    let boot_record_lba = inputs.boot.then(|| take(1));
    let svd_lba = take(2); // SVD + terminator
    let catalog_lba = inputs.boot.then(|| take(1));
    let iso_len = dirs::path_table(&plan.dirs, false, false).len();
    let jol_len = dirs::path_table(&plan.dirs, true, false).len();
    let pt_sectors = |len: usize| blocks(len as u64, SECTOR) as u32;
    let path_tables = PathTables {
        iso_len,
        jol_len,
        l_iso: take(pt_sectors(iso_len)),
        m_iso: take(pt_sectors(iso_len)),
        l_jol: take(pt_sectors(jol_len)),
        m_jol: take(pt_sectors(jol_len)),
    };
    for d in plan.dirs.iter_mut() {
        d.iso_lba = take(d.iso_size / 2048);
    }
    for d in plan.dirs.iter_mut() {
        d.jol_lba = take(d.jol_size / 2048);
    }
    let ce_start = lba;
    let (ce_map, ce_bytes) = continuation_areas(plan, ce_start);
    lba += (ce_bytes.len() / 2048) as u32;
    let (payload_bytes, data_end) = place_files(plan, lba)?;
    lba = data_end;
    let ids = Ids::new(inputs.volume_id, inputs.epoch, plan, lba);
    // The ESP: the last extent of the volume (see module docs).
    let esp = match inputs.esp_files {
        Some(files) => {
            let fat = esp::plan(files, inputs.epoch, ids.fat_serial)?;
            let esp_lba = lba;
            lba += (fat.total_bytes / SECTOR) as u32;
            Some((esp_lba, fat))
        }
        None => None,
    };
    let volume_sectors = lba;
    Ok(Layout {
        pvd_lba,
        boot_record_lba,
        svd_lba,
        catalog_lba,
        path_tables,
        ce_start,
        ce_bytes,
        ce_map,
        payload_bytes,
        esp,
        volume_sectors,
        // Backup GPT (33 sectors of 512) after the volume, image kept 2048-aligned.
        image_bytes: u64::from(volume_sectors) * SECTOR + 9 * SECTOR,
        ids,
    })
}

/// Sizes every directory extent (records do not change length once LBAs
/// are known, so placeholder LBAs and continuation areas do).
fn size_dirs(plan: &mut Plan, epoch: i64) {
    let ce0: CeMap = dirs::continuation_keys(&plan.dirs)
        .into_iter()
        .map(|k| (k, (0, 0, 0)))
        .collect();
    for i in 0..plan.dirs.len() {
        plan.dirs[i].iso_size =
            dirs::iso_dir_bytes(&plan.dirs, &plan.files, i, epoch, &ce0).len() as u32;
        plan.dirs[i].jol_size =
            dirs::joliet_dir_bytes(&plan.dirs, &plan.files, i, epoch).len() as u32;
    }
}

/// Packs the continuation areas from `start`, none crossing a sector;
/// the bytes are padded to whole sectors (empty when none is needed).
fn continuation_areas(plan: &Plan, start: u32) -> (CeMap, Vec<u8>) {
    let mut map = CeMap::new();
    let mut bytes: Vec<u8> = Vec::new();
    for key in dirs::continuation_keys(&plan.dirs) {
        let p = dirs::packed(&plan.dirs, key);
        let used = bytes.len() % 2048;
        if used + p.cont.len() > 2048 {
            bytes.resize(bytes.len() + 2048 - used, 0);
        }
        let pos = bytes.len() as u64;
        let at = (
            start + (pos / SECTOR) as u32,
            (pos % SECTOR) as u32,
            p.cont.len() as u32,
        );
        map.insert(key, at);
        bytes.extend_from_slice(&p.cont);
    }
    if !bytes.is_empty() {
        let n = bytes.len().div_ceil(2048) * 2048;
        bytes.resize(n, 0);
    }
    (map, bytes)
}

/// Places non-empty files contiguously from `lba`; returns the payload
/// bytes and the first sector after them.
fn place_files(plan: &mut Plan, mut lba: u32) -> Result<(u64, u32)> {
    let mut payload_bytes = 0u64;
    for f in plan.files.iter_mut() {
        if f.size > 0 {
            f.lba = lba;
            let sectors = blocks(f.size, SECTOR);
            if u64::from(lba) + sectors > u64::from(u32::MAX) {
                bail!("the ISO would exceed 8 TiB at {}", f.path);
            }
            lba += sectors as u32;
            payload_bytes += f.size;
        }
    }
    Ok((payload_bytes, lba))
}

/// Deterministic identifiers derived from the volume id, epoch and layout.
pub struct Ids {
    pub disk: [u8; 16],
    pub part1: [u8; 16],
    pub part2: [u8; 16],
    pub mbr_signature: u32,
    pub fat_serial: u32,
}

impl Ids {
    fn new(volume_id: &str, epoch: i64, plan: &Plan, data_end: u32) -> Ids {
        let mut h = Sha256::new();
        h.update(b"airlift-iso\0");
        h.update(volume_id.as_bytes());
        h.update(epoch.to_le_bytes());
        h.update(data_end.to_le_bytes());
        for f in &plan.files {
            h.update(f.path.as_bytes());
            h.update(f.size.to_le_bytes());
        }
        let seed = h.finalize();
        let derive = |what: &[u8]| {
            let mut h = Sha256::new();
            h.update(seed);
            h.update(what);
            h.finalize()
        };
        let m = derive(b"mbr");
        let f = derive(b"fat");
        Ids {
            disk: hybrid::guid_from_hash(&derive(b"disk")),
            part1: hybrid::guid_from_hash(&derive(b"part1")),
            part2: hybrid::guid_from_hash(&derive(b"part2")),
            mbr_signature: u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
            fat_serial: u32::from_le_bytes([f[0], f[1], f[2], f[3]]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::plan_tree;
    use super::super::tree::{FileSource, Tree};
    use super::*;

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.add_file("/a", FileSource::Bytes(vec![1; 3000]), 0o644)
            .unwrap();
        t.add_file("/empty", FileSource::Bytes(Vec::new()), 0o644)
            .unwrap();
        t.add_file("/b", FileSource::Bytes(vec![2; 10]), 0o644)
            .unwrap();
        t
    }

    fn inputs<'a>(esp: Option<&'a [(String, u64)]>) -> Inputs<'a> {
        Inputs {
            volume_id: "V",
            epoch: 0,
            boot: esp.is_some(),
            esp_files: esp,
        }
    }

    #[test]
    fn descriptors_tables_dirs_then_files_in_order() {
        let t = tree();
        let mut plan = plan_tree(&t.root, 0).unwrap();
        let l = layout(&mut plan, &inputs(None)).unwrap();
        assert_eq!(l.pvd_lba, 16);
        assert_eq!(l.boot_record_lba, None);
        assert_eq!(l.catalog_lba, None);
        assert_eq!(l.svd_lba, 17);
        let pt = &l.path_tables;
        assert_eq!((pt.l_iso, pt.m_iso, pt.l_jol, pt.m_jol), (19, 20, 21, 22));
        assert_eq!(plan.dirs[0].iso_lba, 23);
        assert_eq!(plan.dirs[0].jol_lba, 24);
        // The root's `.` (SP, PX, TF, ER) overflows into one area.
        assert_eq!(l.ce_start, 25);
        assert_eq!(l.ce_bytes.len(), 2048);
        assert_eq!(
            l.ce_map[&(0, 0)],
            (25, 0, plan.dirs[0].dot.cont.len() as u32)
        );
        // a (2 sectors), b (1 sector), empty (no extent).
        let lbas: Vec<u32> = plan.files.iter().map(|f| f.lba).collect();
        assert_eq!(lbas, [26, 28, 0]);
        assert_eq!(l.payload_bytes, 3010);
        assert_eq!(l.volume_sectors, 29);
        assert_eq!(l.image_bytes, (29 + 9) * SECTOR);
        assert!(l.esp.is_none());
    }

    #[test]
    fn boot_adds_record_and_catalog_and_the_esp_ends_the_volume() {
        let t = tree();
        let mut plan = plan_tree(&t.root, 0).unwrap();
        let esp = [("EFI/BOOT/BOOTX64.EFI".to_string(), 5000u64)];
        let l = layout(&mut plan, &inputs(Some(&esp))).unwrap();
        assert_eq!(l.boot_record_lba, Some(17));
        assert_eq!(l.svd_lba, 18);
        assert_eq!(l.catalog_lba, Some(20));
        let (esp_lba, fat) = l.esp.as_ref().unwrap();
        assert_eq!(*esp_lba, plan.files[1].lba + 1);
        assert_eq!(
            l.volume_sectors,
            esp_lba + (fat.total_bytes / SECTOR) as u32
        );
    }

    #[test]
    fn continuation_areas_never_cross_a_sector() {
        let mut t = Tree::new();
        // Long names and symlink targets overflow the records' System Use.
        for i in 0..40 {
            let name = format!("/{}{i}", "n".repeat(200));
            t.add_symlink(&name, &"t/".repeat(60)).unwrap();
        }
        let mut plan = plan_tree(&t.root, 0).unwrap();
        let l = layout(&mut plan, &inputs(None)).unwrap();
        assert!(l.ce_bytes.len() > 2048, "several sectors of areas");
        assert_eq!(l.ce_bytes.len() % 2048, 0);
        for (lba, off, len) in l.ce_map.values() {
            assert!(*lba >= l.ce_start);
            assert!(off + len <= 2048, "area at {lba}:{off} crosses a sector");
        }
    }

    #[test]
    fn ids_depend_on_the_inputs() {
        let t = tree();
        let plan = plan_tree(&t.root, 0).unwrap();
        let a = Ids::new("V", 0, &plan, 10);
        let b = Ids::new("V", 0, &plan, 10);
        assert_eq!(a.disk, b.disk);
        assert_eq!(a.fat_serial, b.fat_serial);
        assert_ne!(a.disk, Ids::new("V", 1, &plan, 10).disk);
        assert_ne!(a.disk, Ids::new("W", 0, &plan, 10).disk);
        assert_ne!(a.part1, a.part2);
    }
}
