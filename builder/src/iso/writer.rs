//! Writes the hybrid image: plan ([`super::plan`]) -> layout
//! ([`super::layout`]) -> bytes ([`super::emit`]), with the I/O at this
//! edge: the boot inputs and SHA256SUMS are read here, metadata blocks
//! are written at their offsets, each payload is streamed once
//! ([`super::payload`]), and the image is renamed into place at the end.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::eltorito;
use super::emit::{self, BiosInputs, Block};
use super::encode::SECTOR;
use super::esp::FatType;
use super::layout::{self, Inputs, Layout};
use super::output::Output;
use super::payload::{copy_payloads, Checks};
use super::plan::{self, FilePlan, Plan};
use super::sums;
use super::tree::{Node, Tree};
use super::{hybrid, EspReport, IsoImage, UefiBoot, WriteReport};

/// Writes `image` to `out` (atomically). See the module docs for the layout.
pub fn write(image: &IsoImage, out: &Path) -> Result<WriteReport> {
    image.validate()?;
    let with_sums;
    let tree = if image.sha256sums {
        with_sums = plan::sums_placeholder(&image.tree)?;
        &with_sums
    } else {
        &image.tree
    };
    let mut plan = plan::plan_tree(&tree.root, image.epoch)?;
    let esp_files = match &image.uefi {
        Some(u) => Some(esp_sizes(u)?),
        None => None,
    };
    let inputs = Inputs {
        volume_id: &image.volume_id,
        epoch: image.epoch,
        boot: image.bios.is_some() || image.uefi.is_some(),
        esp_files: esp_files.as_deref(),
    };
    let layout = layout::layout(&mut plan, &inputs)?;
    let bios = bios_inputs(image, tree, &plan, &layout)?;
    let sums = sums_text(image, tree, &plan, bios.as_ref())?;

    let o = Output::create(out, layout.image_bytes)?;
    write_blocks(&o, emit::system_area(&layout, bios.as_ref())?)?;
    write_blocks(&o, emit::volume(image, &plan, &layout, bios.as_ref()))?;
    let t = std::time::Instant::now();
    // The payloads, then the rest and the fsync while the digest checker
    // finishes; renamed into place only when both succeeded.
    let payload_bytes = layout.payload_bytes;
    let ((), checks) = copy_payloads(&o, &plan.files, || {
        tracing::debug!(
            "iso: {payload_bytes} payload bytes copied in {:.2}s",
            t.elapsed().as_secs_f64()
        );
        write_blocks(&o, emit::patches(&layout, bios.as_ref(), sums.as_ref()))?;
        if let (Some(u), Some(sizes)) = (&image.uefi, &esp_files) {
            copy_esp_files(&o, &layout, u, sizes)?;
        }
        o.sync()?;
        tracing::debug!(
            "iso: everything written and fsynced at {:.2}s",
            t.elapsed().as_secs_f64()
        );
        Ok(())
    })?;
    tracing::debug!(
        "iso: payload digests checked at {:.2}s",
        t.elapsed().as_secs_f64()
    );
    o.persist()?;
    Ok(report(&layout, &plan, bios.as_ref(), checks))
}

/// `(FAT path, size)` of each ESP file.
fn esp_sizes(u: &UefiBoot) -> Result<Vec<(String, u64)>> {
    u.esp_files
        .iter()
        .map(|(p, s)| {
            Ok((
                p.clone(),
                s.len().with_context(|| format!("ESP file {p:?}"))?,
            ))
        })
        .collect()
}

fn write_blocks(o: &Output, blocks: Vec<Block>) -> Result<()> {
    for (offset, bytes) in blocks {
        o.write_at(offset, &bytes)?;
    }
    Ok(())
}

/// Streams each ESP file to the place the FAT plan gave it.
fn copy_esp_files(
    o: &Output,
    layout: &Layout,
    u: &UefiBoot,
    sizes: &[(String, u64)],
) -> Result<()> {
    let Some((esp_lba, fat)) = &layout.esp else {
        return Ok(());
    };
    let base = u64::from(*esp_lba) * SECTOR;
    for (off, idx) in &fat.files {
        let (path, src) = &u.esp_files[*idx];
        o.copy_in(src, base + off, sizes[*idx].1)
            .with_context(|| format!("ESP file {path:?}"))?;
    }
    Ok(())
}

/// Reads isolinux.bin (for its boot info table) and the MBR boot code.
fn bios_inputs(
    image: &IsoImage,
    tree: &Tree,
    plan: &Plan,
    layout: &Layout,
) -> Result<Option<BiosInputs>> {
    let Some(b) = &image.bios else {
        return Ok(None);
    };
    let Some(Node::File { src, size, .. }) = tree.get(&b.boot_file) else {
        bail!(
            "BIOS boot file {:?} is not a file in the ISO tree; add it first",
            b.boot_file
        );
    };
    if *size > 16 << 20 {
        bail!(
            "BIOS boot file {:?} is {size} bytes; isolinux.bin is far smaller",
            b.boot_file
        );
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut src.open()?, &mut bytes)?;
    if bytes.len() < 64 {
        bail!("BIOS boot file {:?} is shorter than 64 bytes", b.boot_file);
    }
    let f = plan
        .files
        .iter()
        .find(|f| std::ptr::eq(f.src, src))
        .expect("boot file planned");
    let mbr_code = std::fs::read(&b.mbr_code)
        .with_context(|| format!("reading the MBR boot code {}", b.mbr_code.display()))?;
    if mbr_code.len() < 432 {
        bail!(
            "MBR boot code {} is shorter than 432 bytes (expected isohdpfx.bin)",
            b.mbr_code.display()
        );
    }
    let table = eltorito::boot_info_table(layout.pvd_lba, f.lba, &bytes);
    Ok(Some(BiosInputs {
        file_lba: f.lba,
        table,
        mbr_code,
    }))
}

/// SHA256SUMS and its LBA: the bytes the ISO holds (the boot file patched).
fn sums_text(
    image: &IsoImage,
    tree: &Tree,
    plan: &Plan,
    bios: Option<&BiosInputs>,
) -> Result<Option<(u32, String)>> {
    if !image.sha256sums {
        return Ok(None);
    }
    let boot_path = image
        .bios
        .as_ref()
        .map(|b| super::tree::split_path(&b.boot_file).map(|p| p.join("/")))
        .transpose()?;
    let patch = match (bios, &boot_path) {
        (Some(b), Some(path)) => Some(sums::Patch {
            path,
            at: 8,
            bytes: &b.table,
        }),
        _ => None,
    };
    let text =
        sums::sha256sums(tree, patch.as_ref()).context("hashing the ISO's files for SHA256SUMS")?;
    let f: &FilePlan = plan
        .files
        .iter()
        .find(|f| f.path == sums::SUMS_PATH)
        .expect("SHA256SUMS planned");
    if text.len() as u64 != f.size {
        bail!(
            "SHA256SUMS is {} bytes, {} were reserved (a file changed while the ISO was written?)",
            text.len(),
            f.size
        );
    }
    Ok(Some((f.lba, text)))
}

fn report(layout: &Layout, plan: &Plan, bios: Option<&BiosInputs>, checks: Checks) -> WriteReport {
    let esp = layout.esp.as_ref().map(|(lba, fat)| EspReport {
        lba: *lba,
        bytes: fat.total_bytes,
        fat32: fat.fat_type == FatType::Fat32,
        cluster_bytes: fat.cluster_bytes,
        catalog_sector_count: emit::uefi_sector_count(fat.total_bytes),
    });
    WriteReport {
        image_bytes: layout.image_bytes,
        volume_sectors: layout.volume_sectors,
        boot_catalog_lba: layout.catalog_lba,
        bios_boot_lba: bios.map(|b| b.file_lba),
        esp,
        files: plan.files.len(),
        payload_bytes: layout.payload_bytes,
        disk_guid: hybrid::guid_text(&layout.ids.disk),
        checks,
    }
}
