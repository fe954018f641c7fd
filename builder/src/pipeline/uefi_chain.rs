//! The UEFI boot chain on the ESP, signed with the keys servers already
//! trust: shim (signed by Microsoft's UEFI CA) as the removable-media
//! loader `EFI/BOOT/BOOTX64.EFI`, the distribution-signed GRUB beside it
//! (`grubx64.efi`, the name shim loads), MokManager (`mmx64.efi`, which
//! shim starts when a signature fails) when the base has it beside shim,
//! and one `grub.cfg` ([`boot_config::grub_cfg`]) in `EFI/BOOT/` (the
//! signed GRUB falls back to the config next to itself) and in
//! `EFI/debian/` (Debian's GRUB's built-in prefix).
//!
//! The kernel and initrd stay in the ISO 9660 volume: GRUB finds it by
//! its label and asks shim to verify the kernel, so the ESP holds only
//! the loaders (a few MB, well inside El Torito's 16-bit sector count).
//!
//! The same `grub.cfg` copies go into the ISO 9660 tree too
//! ([`GRUB_CFG_PATHS`]): booted from a CD, OVMF hands GRUB the El Torito
//! image, but GRUB names the drive `(cd0)` and reads ISO 9660 there, so
//! its `$cmdpath` is `(cd0)/EFI/BOOT` (seen under QEMU: without the
//! copies it stops at its prompt). From a disk it reads the ESP partition.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::boot_config;
use crate::config::{Appliance, Base};
use crate::iso::FileSource;

/// Where shim finds MokManager: beside itself, under this name.
pub const MOK_MANAGER: &str = "mmx64.efi";

/// Where `grub.cfg` goes, in the ESP and in the ISO 9660 tree alike.
pub const GRUB_CFG_PATHS: [&str; 2] = ["EFI/BOOT/grub.cfg", "EFI/debian/grub.cfg"];

/// The shim and GRUB files `base` names, checked to exist; an error names
/// the config, the field and the file, and says what to do.
pub fn loaders(app: &Appliance, base: &Base) -> Result<(PathBuf, PathBuf)> {
    let bl = &base.bootloader;
    let shim = required(
        app,
        "base.bootloader.shim",
        bl.shim.as_deref(),
        "shim signed by Microsoft's UEFI CA, e.g. the base's efi/shimx64.efi",
    )?;
    let grub = required(
        app,
        "base.bootloader.grub",
        bl.grub.as_deref(),
        "GRUB signed for shim, e.g. the base's efi/grubx64.efi",
    )?;
    Ok((shim, grub))
}

fn required(app: &Appliance, field: &str, path: Option<&Path>, what: &str) -> Result<PathBuf> {
    let config = app.origin.file.display();
    let Some(p) = path else {
        bail!("{config}: {field} is not set: the UEFI boot chain needs it ({what}); set it, or run `just base`");
    };
    if !p.is_file() {
        bail!(
            "{config}: {} does not exist (set by {field}: {what}); run `just base`?",
            p.display()
        );
    }
    Ok(p.to_path_buf())
}

/// The ESP's files: shim, GRUB, MokManager when present, and `grub.cfg`
/// booting the volume `label` with `cmdline`.
pub fn esp_files(
    app: &Appliance,
    base: &Base,
    label: &str,
    cmdline: &str,
) -> Result<Vec<(String, FileSource)>> {
    let (shim, grub) = loaders(app, base)?;
    let cfg = boot_config::grub_cfg(label, cmdline).into_bytes();
    let mut files = vec![
        (
            "EFI/BOOT/BOOTX64.EFI".to_string(),
            FileSource::Path(shim.clone()),
        ),
        ("EFI/BOOT/grubx64.efi".to_string(), FileSource::Path(grub)),
        (
            "EFI/BOOT/grub.cfg".to_string(),
            FileSource::Bytes(cfg.clone()),
        ),
        ("EFI/debian/grub.cfg".to_string(), FileSource::Bytes(cfg)),
    ];
    let mok = shim.with_file_name(MOK_MANAGER);
    if mok.is_file() {
        files.push((format!("EFI/BOOT/{MOK_MANAGER}"), FileSource::Path(mok)));
    }
    Ok(files)
}

/// `grub.cfg` at each of [`GRUB_CFG_PATHS`].
pub fn grub_cfgs(label: &str, cmdline: &str) -> Vec<(String, FileSource)> {
    let cfg = boot_config::grub_cfg(label, cmdline).into_bytes();
    GRUB_CFG_PATHS
        .iter()
        .map(|p| (p.to_string(), FileSource::Bytes(cfg.clone())))
        .collect()
}
