//! Step 3 of writing: the bytes. Turns the plan and layout into the
//! metadata blocks at their image offsets: the hybrid MBR and GPT, the
//! volume descriptors, the El Torito record and catalog, path tables,
//! directories and continuation areas, and (after the payloads) the
//! patches that land on payload extents and the ESP's FAT metadata.
//! Pure: the writer reads the inputs and writes the blocks.

use super::eltorito::{self, BootEntry, PLATFORM_EFI, PLATFORM_X86};
use super::encode::SECTOR;
use super::hybrid::{self, GptPart};
use super::layout::Layout;
use super::plan::Plan;
use super::records::{self, Descriptor, VolumeInfo, FLAG_DIR};
use super::{dirs, IsoImage};

/// A block of bytes at an offset of the image.
pub type Block = (u64, Vec<u8>);

/// The BIOS boot inputs the writer read: where isolinux.bin is, its boot
/// info table and the MBR boot code (isohdpfx.bin).
pub struct BiosInputs {
    pub file_lba: u32,
    pub table: [u8; 56],
    pub mbr_code: Vec<u8>,
}

/// The El Torito sector count of an ESP of `bytes`: exact when it fits in
/// 16 bits of 512-byte units, else 0, which OVMF reads as "to the end of
/// the volume", exactly the ESP since it is the volume's last extent.
pub fn uefi_sector_count(bytes: u64) -> u16 {
    u16::try_from(bytes / 512).unwrap_or(0)
}

/// The MBR and both GPTs.
pub fn system_area(layout: &Layout, bios: Option<&BiosInputs>) -> anyhow::Result<Vec<Block>> {
    let volume_bytes = u64::from(layout.volume_sectors) * SECTOR;
    let total_512 = layout.image_bytes / 512;
    let ids = &layout.ids;
    let data_last = match &layout.esp {
        Some((esp_lba, _)) => u64::from(*esp_lba) * 4 - 1,
        None => volume_bytes / 512 - 1,
    };
    let mut parts = vec![GptPart {
        type_guid: gpt::partition_types::BASIC,
        guid: ids.part1,
        first: 64,
        last: data_last,
        name: "ISO9660".into(),
    }];
    if let Some((esp_lba, fat)) = &layout.esp {
        parts.push(GptPart {
            type_guid: gpt::partition_types::EFI,
            guid: ids.part2,
            first: u64::from(*esp_lba) * 4,
            last: u64::from(*esp_lba) * 4 + fat.total_bytes / 512 - 1,
            name: "EFI System Partition".into(),
        });
    }
    let gpt = hybrid::gpt(total_512, &ids.disk, &parts)?;
    let mbr = hybrid::mbr(
        bios.map(|b| b.mbr_code.as_slice()),
        bios.map_or(0, |b| u64::from(b.file_lba) * 4),
        ids.mbr_signature,
        total_512,
    );
    Ok(vec![
        (0, mbr.to_vec()),
        (512, gpt.primary),
        ((total_512 - 33) * 512, gpt.backup),
    ])
}

/// The El Torito entries: BIOS (isolinux, 4 sectors) then UEFI (the ESP).
fn boot_entries(layout: &Layout, bios: Option<&BiosInputs>) -> Vec<BootEntry> {
    let mut entries = Vec::new();
    if let Some(b) = bios {
        entries.push(BootEntry {
            platform: PLATFORM_X86,
            sector_count: 4,
            lba: b.file_lba,
        });
    }
    if let Some((esp_lba, fat)) = &layout.esp {
        entries.push(BootEntry {
            platform: PLATFORM_EFI,
            sector_count: uefi_sector_count(fat.total_bytes),
            lba: *esp_lba,
        });
    }
    entries
}

/// Volume descriptors, the El Torito record and catalog, path tables,
/// directories and continuation areas.
pub fn volume(
    image: &IsoImage,
    plan: &Plan,
    layout: &Layout,
    bios: Option<&BiosInputs>,
) -> Vec<Block> {
    let at = |lba: u32| u64::from(lba) * SECTOR;
    let mut out = descriptors(image, plan, layout);
    if let (Some(br), Some(cat)) = (layout.boot_record_lba, layout.catalog_lba) {
        out.push((at(br), eltorito::boot_record(cat).to_vec()));
        let catalog = eltorito::catalog(&boot_entries(layout, bios));
        out.push((at(cat), catalog.to_vec()));
    }
    let pt = &layout.path_tables;
    let dirs = &plan.dirs;
    out.push((at(pt.l_iso), dirs::path_table(dirs, false, false)));
    out.push((at(pt.m_iso), dirs::path_table(dirs, false, true)));
    out.push((at(pt.l_jol), dirs::path_table(dirs, true, false)));
    out.push((at(pt.m_jol), dirs::path_table(dirs, true, true)));
    let epoch = image.epoch;
    for (i, d) in dirs.iter().enumerate() {
        let b = dirs::iso_dir_bytes(dirs, &plan.files, i, epoch, &layout.ce_map);
        debug_assert_eq!(b.len() as u32, d.iso_size);
        out.push((at(d.iso_lba), b));
        let j = dirs::joliet_dir_bytes(dirs, &plan.files, i, epoch);
        out.push((at(d.jol_lba), j));
    }
    if !layout.ce_bytes.is_empty() {
        out.push((at(layout.ce_start), layout.ce_bytes.clone()));
    }
    out
}

/// The primary and Joliet descriptors and the terminator.
fn descriptors(image: &IsoImage, plan: &Plan, layout: &Layout) -> Vec<Block> {
    let epoch = image.epoch;
    let root = &plan.dirs[0];
    let iso_root = records::dir_record(&[0], root.iso_lba, root.iso_size, FLAG_DIR, epoch, &[]);
    let jol_root = records::dir_record(&[0], root.jol_lba, root.jol_size, FLAG_DIR, epoch, &[]);
    let pt = &layout.path_tables;
    let mut vi = VolumeInfo {
        volume_id: &image.volume_id,
        volume_sectors: layout.volume_sectors,
        path_table_size: pt.iso_len as u32,
        l_table_lba: pt.l_iso,
        m_table_lba: pt.m_iso,
        root_record: &iso_root,
        epoch,
    };
    let primary = records::volume_descriptor(Descriptor::Primary, &vi);
    vi.path_table_size = pt.jol_len as u32;
    vi.l_table_lba = pt.l_jol;
    vi.m_table_lba = pt.m_jol;
    vi.root_record = &jol_root;
    let jol_label: String = image.volume_id.chars().take(16).collect();
    vi.volume_id = &jol_label;
    let joliet = records::volume_descriptor(Descriptor::Joliet, &vi);
    vec![
        (u64::from(layout.pvd_lba) * SECTOR, primary.to_vec()),
        (u64::from(layout.svd_lba) * SECTOR, joliet.to_vec()),
        (
            u64::from(layout.svd_lba + 1) * SECTOR,
            records::terminator().to_vec(),
        ),
    ]
}

/// What lands on top of the payloads once they are copied: isolinux's
/// boot info table, the SHA256SUMS text and the ESP's FAT metadata.
pub fn patches(
    layout: &Layout,
    bios: Option<&BiosInputs>,
    sums: Option<&(u32, String)>,
) -> Vec<Block> {
    let mut out = Vec::new();
    if let Some(b) = bios {
        out.push((u64::from(b.file_lba) * SECTOR + 8, b.table.to_vec()));
    }
    if let Some((sums_lba, text)) = sums {
        if !text.is_empty() {
            out.push((u64::from(*sums_lba) * SECTOR, text.as_bytes().to_vec()));
        }
    }
    if let Some((esp_lba, fat)) = &layout.esp {
        let base = u64::from(*esp_lba) * SECTOR;
        out.extend(
            fat.meta
                .iter()
                .map(|(off, bytes)| (base + off, bytes.clone())),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::layout::{self, Inputs};
    use super::super::plan::plan_tree;
    use super::super::tree::{FileSource, Tree};
    use super::*;

    #[test]
    fn uefi_count_is_exact_below_32_mib_and_zero_above() {
        assert_eq!(uefi_sector_count(2048), 4);
        assert_eq!(uefi_sector_count(65535 * 512), 65535);
        assert_eq!(uefi_sector_count(65536 * 512), 0);
    }

    fn image() -> IsoImage {
        let mut tree = Tree::new();
        tree.add_file("/boot.bin", FileSource::Bytes(vec![1; 4096]), 0o644)
            .unwrap();
        IsoImage {
            volume_id: "A_LABEL_LONGER_THAN_SIXTEEN".into(),
            epoch: 0,
            tree,
            bios: None,
            uefi: None,
            sha256sums: false,
        }
    }

    #[test]
    fn blocks_sit_where_the_layout_says() {
        let img = image();
        let mut plan = plan_tree(&img.tree.root, 0).unwrap();
        let esp = [("EFI/BOOT/BOOTX64.EFI".to_string(), 1000u64)];
        let inputs = Inputs {
            volume_id: &img.volume_id,
            epoch: 0,
            boot: true,
            esp_files: Some(&esp),
        };
        let l = layout::layout(&mut plan, &inputs).unwrap();
        let bios = BiosInputs {
            file_lba: plan.files[0].lba,
            table: [9; 56],
            mbr_code: vec![0xAA; 432],
        };
        let sys = system_area(&l, Some(&bios)).unwrap();
        assert_eq!(sys[0].0, 0);
        assert_eq!(
            &sys[0].1[432..440],
            &u64::from(bios.file_lba * 4).to_le_bytes()
        );
        assert_eq!(sys[1].0, 512);
        assert_eq!(&sys[1].1[..8], b"EFI PART");
        assert_eq!(sys[2].0 + sys[2].1.len() as u64, l.image_bytes);
        // The ESP partition covers exactly the FAT image.
        let (esp_lba, fat) = l.esp.as_ref().unwrap();
        let entry = &sys[1].1[512 + 128..512 + 256];
        assert_eq!(&entry[32..40], &(u64::from(*esp_lba) * 4).to_le_bytes());
        let last = u64::from(*esp_lba) * 4 + fat.total_bytes / 512 - 1;
        assert_eq!(&entry[40..48], &last.to_le_bytes());

        let vol = volume(&img, &plan, &l, Some(&bios));
        let find = |off: u64| vol.iter().find(|b| b.0 == off).map(|b| &b.1);
        let pvd = find(u64::from(l.pvd_lba) * SECTOR).unwrap();
        assert_eq!(&pvd[..6], b"\x01CD001");
        let svd = find(u64::from(l.svd_lba) * SECTOR).unwrap();
        assert_eq!(&svd[..6], b"\x02CD001");
        // Joliet's label is cut to 16 characters (UCS-2).
        assert_eq!(&svd[40 + 30..40 + 32], &[0, b'T']);
        assert_eq!(&pvd[40..67], img.volume_id.as_bytes());
        let cat = find(u64::from(l.catalog_lba.unwrap()) * SECTOR).unwrap();
        assert_eq!(&cat[32 + 8..32 + 12], &bios.file_lba.to_le_bytes());
        assert_eq!(cat[65], PLATFORM_EFI);

        let sums = (7u32, "x".to_string());
        let p = patches(&l, Some(&bios), Some(&sums));
        assert_eq!(p[0], (u64::from(bios.file_lba) * SECTOR + 8, vec![9; 56]));
        assert_eq!(p[1], (7 * SECTOR, b"x".to_vec()));
        assert_eq!(p.len(), 2 + fat.meta.len());
        assert!(p[2..].iter().all(|b| b.0 >= u64::from(*esp_lba) * SECTOR));
    }
}
