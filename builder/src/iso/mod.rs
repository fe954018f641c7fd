//! The hybrid ISO writer and reader, written by airlift itself (no external
//! tools, no root, no loop devices).
//!
//! # What [`write()`] produces
//!
//! One image that boots from CD and USB, BIOS and UEFI:
//!
//! * **ISO 9660** with **Rock Ridge** (SUSP/RRIP 1.10: `SP`+`ER` at the root
//!   `.`, `PX`, `TF`, `NM`, `SL`, continuation areas when a record is full)
//!   carrying the real names, modes and symlinks, and **Joliet** (UCS-2
//!   names, truncated to 64 characters deterministically). Primary names are
//!   level-2 d-character names (`NAME.EXT;1`); files of 4 GiB and more are
//!   written as several extents (multi-extent flag, each under 4 GiB).
//!   L and M path tables exist for both trees.
//! * **El Torito**: a BIOS no-emulation entry for `isolinux.bin` (4 sectors,
//!   boot info table patched into bytes 8..64) and a UEFI (0xEF) entry for
//!   the ESP image.
//! * **isohybrid MBR + GPT** in the 32 KiB system area: isohdpfx boot code,
//!   the isolinux LBA at byte 432, a deterministic disk signature, a
//!   protective 0xEE entry and an active dummy entry; a GPT with a
//!   basic-data partition over the ISO data and an ESP partition over the
//!   FAT image; the backup GPT after the volume.
//!
//! # Layout (2048-byte sectors)
//!
//! `0..16` system area, `16` PVD, `17` El Torito boot record, Joliet SVD,
//! terminator, boot catalog, path tables (L, M; then Joliet L, M), ISO
//! directories, Joliet directories, Rock Ridge continuation areas, file
//! data, and **the ESP as the last extent of the ISO volume**; then 9
//! sectors holding the backup GPT.
//!
//! # Why the ESP is the volume's last extent
//!
//! El Torito's sector count is 16 bits of 512-byte units (max ~32 MiB),
//! but an ESP holding a kernel and initramfs (systemd-boot, a unified
//! kernel image) is easily 100 MB+. (The default ESP, shim and GRUB, is a
//! few MB and gets its exact count.)
//! EDK2's `PartitionDxe/ElTorito.c` (OVMF) treats a sector count below 2 as
//! "from the boot image to the end of the volume" (`VolSpaceSize - Lba`,
//! using the PVD's volume space size). With the ESP as the last extent
//! inside the volume, that is exactly the ESP, so a large ESP gets count 0
//! and boots; small ones get their exact count. The "appended ESP"
//! (outside the volume space) cannot use this: the volume would end before
//! the ESP starts. On disks (USB), OVMF reads the GPT first, where the ESP
//! partition has its exact size. The basic-data partition ends right
//! before the ESP, so no partitions overlap and `sgdisk -v` is clean.
//!
//! # Streaming and reproducibility
//!
//! Metadata is planned in memory (its size depends on the number of files,
//! not their bytes); payloads are copied once with `copy_file_range` over
//! their data extents, so sparse inputs stay sparse; files given an
//! expected digest ([`Tree::expect_digest`]) are hashed back from the
//! output on a second thread and the image is not renamed into place
//! unless every one matches (unless a verification record vouches for
//! the unchanged source file: [`Expected::trusted`]); written data is flushed as the copies go
//! (fdatasync every 64 MiB on a third thread). Entries are sorted,
//! every timestamp is the caller's epoch, and GUIDs, the MBR signature and
//! the FAT serial derive from the volume id, epoch and file list: same
//! inputs, bit-identical image. The image is written to a temp file next
//! to the destination, fsynced and renamed; on error nothing is left.
//!
//! # Where things are
//!
//! Writing runs `plan` (the tree walked once) -> `layout` (every
//! LBA) -> `emit` (the metadata bytes), with the I/O in `writer` and the
//! payload streaming in `payload`; `dirs` encodes directories and path
//! tables, `records`, `susp`, `names`, `eltorito` and `hybrid` (MBR, and
//! the GPT through the `gpt` crate) the on-disk structures, `esp` the FAT
//! image. Reading is `read`; `verify` and `inspect` build on it.

pub mod chain;
mod dirs;
mod eltorito;
mod emit;
mod encode;
mod esp;
mod hybrid;
pub mod inspect;
mod layout;
mod names;
mod output;
mod payload;
mod plan;
pub mod read;
mod records;
mod sums;
mod susp;
mod tree;
pub mod verify;
mod walk_guard;
mod writer;

use std::path::PathBuf;

use anyhow::{bail, Result};

pub use payload::{Checked, Checks};
pub use sums::SUMS_PATH;
pub use tree::{Expected, FileSource, Node, Tree};

/// BIOS boot via isolinux.
#[derive(Debug, Clone)]
pub struct BiosBoot {
    /// ISO path of `isolinux.bin`, already added to the tree.
    pub boot_file: String,
    /// Host path of syslinux's `isohdpfx.bin` (its first 432 bytes are used).
    pub mbr_code: PathBuf,
}

/// UEFI boot via an EFI System Partition image built from these files.
#[derive(Debug, Clone)]
pub struct UefiBoot {
    /// `(FAT path such as "EFI/BOOT/BOOTX64.EFI", content)`.
    pub esp_files: Vec<(String, FileSource)>,
}

/// Everything the writer needs.
#[derive(Debug, Clone)]
pub struct IsoImage {
    /// Volume label: 1..=32 characters of `[A-Z0-9_]`. Linux sees it as
    /// `/dev/disk/by-label/<volume_id>`.
    pub volume_id: String,
    /// Every timestamp (SOURCE_DATE_EPOCH).
    pub epoch: i64,
    pub tree: Tree,
    pub bios: Option<BiosBoot>,
    pub uefi: Option<UefiBoot>,
    /// Whether the writer adds `SHA256SUMS` at the root: every file but
    /// bundle blobs, hashed as the ISO holds it (isolinux.bin with its
    /// boot info table), so `airlift verify` can check it.
    pub sha256sums: bool,
}

impl IsoImage {
    /// Checks the volume id and boot settings.
    pub fn validate(&self) -> Result<()> {
        let v = &self.volume_id;
        if v.is_empty()
            || v.len() > 32
            || !v
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            bail!("volume id {v:?} must be 1 to 32 characters of A-Z, 0-9 and _");
        }
        if !matches!(self.tree.root, Node::Dir { .. }) {
            bail!("the tree root must be a directory");
        }
        if let Some(u) = &self.uefi {
            if u.esp_files.is_empty() {
                bail!("UEFI boot needs at least one ESP file (EFI/BOOT/BOOTX64.EFI)");
            }
        }
        Ok(())
    }
}

/// Where the ESP went.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EspReport {
    /// First 2048-byte sector of the FAT image.
    pub lba: u32,
    pub bytes: u64,
    pub fat32: bool,
    pub cluster_bytes: u64,
    /// The El Torito sector count written (0 = to the end of the volume).
    pub catalog_sector_count: u16,
}

/// What [`write()`] produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WriteReport {
    pub image_bytes: u64,
    /// ISO 9660 volume space size in 2048-byte sectors.
    pub volume_sectors: u32,
    pub boot_catalog_lba: Option<u32>,
    /// 2048-byte LBA of isolinux.bin.
    pub bios_boot_lba: Option<u32>,
    pub esp: Option<EspReport>,
    /// Number of regular files in the tree.
    pub files: usize,
    pub payload_bytes: u64,
    pub disk_guid: String,
    /// The digest checks: files hashed, files a verification record
    /// vouched for, and what a record may keep.
    pub checks: Checks,
}

/// Writes `image` atomically to `out`.
pub fn write(image: &IsoImage, out: &std::path::Path) -> Result<WriteReport> {
    writer::write(image, out)
}
