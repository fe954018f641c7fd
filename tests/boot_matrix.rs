//! The boot matrix: the smoke ISO (image-configs/smoke.yaml), built with
//! the real `airlift build`, booted every way a machine can boot it, under
//! QEMU (TCG). Each boot must print
//! `AIRLIFT-MEDIA-MOUNTED label=AIRLIFT_SMOKE dev=<dev>`: the kernel and
//! initramfs came up, and `/init` found and mounted the ISO 9660 volume by
//! its label on the expected device.
//!
//! The `airlift` binary is taken from this workspace's target folder
//! (`support::tools::binary`, beside the test executable): `cargo test
//! --workspace` builds it; `just boot-matrix` builds it explicitly. The
//! base comes from `just base`; without it every test fails saying so.
//!
//! Timings are printed (`--nocapture`), never asserted.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use airlift_integration::qemu::{self, Firmware, Media, Vm};
use airlift_integration::tools;

const LABEL: &str = "AIRLIFT_SMOKE";

struct Images {
    _dir: tempfile::TempDir,
    iso: PathBuf,
    no_el_torito: PathBuf,
}

/// The smoke ISO, built once per test process.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("airlift-boot-matrix-")
            .tempdir()
            .unwrap();
        let iso = dir.path().join("smoke.iso");
        let config = tools::workspace_root().join("image-configs/smoke.yaml");
        let took = qemu::build_image(&config, &iso);
        eprintln!("built {} in {took:.1?}", iso.display());
        let no_el_torito = dir.path().join("smoke-no-eltorito.iso");
        qemu::without_el_torito(&iso, &no_el_torito).unwrap();
        Images {
            _dir: dir,
            iso,
            no_el_torito,
        }
    })
}

/// Boots and checks the marker, the device and which boot path ran.
fn boot(firmware: Firmware, media: Media, image: &Path, dev_prefix: &str) {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let vm = Vm::new(firmware, media, image);
    let marker = format!("AIRLIFT-MEDIA-MOUNTED label={LABEL} dev=");
    let boot = match qemu::boot_until(&vm, &marker) {
        Ok(b) => b,
        Err(e) => panic!("{e:#}"),
    };
    let name = image.file_stem().unwrap_or_default().to_string_lossy();
    eprintln!(
        "{firmware}+{media} ({name}): {} after {:.1?}",
        boot.marker_line, boot.elapsed
    );
    let dev = boot.marker_line.split("dev=").nth(1).unwrap_or("");
    assert!(
        dev.starts_with(dev_prefix),
        "{firmware}+{media}: mounted {dev:?}, expected a {dev_prefix}* device\n{}",
        qemu::tail(&boot.serial, 40)
    );
    // isolinux passes BOOT_IMAGE=; systemd-boot (UEFI) does not.
    let via_isolinux = boot.serial.contains("BOOT_IMAGE=/boot/vmlinuz");
    match firmware {
        Firmware::Bios => assert!(via_isolinux, "BIOS boot did not go through isolinux"),
        Firmware::Uefi => {
            assert!(!via_isolinux, "UEFI boot went through isolinux?");
            assert!(
                boot.serial.contains("efi: EFI v"),
                "the kernel did not start under UEFI\n{}",
                qemu::tail(&boot.serial, 40)
            );
        }
    }
    // `/init` listed the bundle it read from the media.
    assert!(
        boot.serial.contains("index.json") && boot.serial.contains("oci-layout"),
        "the bundle listing is missing from the serial log\n{}",
        qemu::tail(&boot.serial, 40)
    );
}

#[test]
fn bios_cd() {
    boot(Firmware::Bios, Media::Cd, &images().iso, "/dev/sr");
}

#[test]
fn uefi_cd() {
    boot(Firmware::Uefi, Media::Cd, &images().iso, "/dev/sr");
}

#[test]
fn bios_disk() {
    boot(Firmware::Bios, Media::Disk, &images().iso, "/dev/vd");
}

#[test]
fn uefi_disk() {
    boot(Firmware::Uefi, Media::Disk, &images().iso, "/dev/vd");
}

#[test]
fn uefi_usb() {
    boot(Firmware::Uefi, Media::Usb, &images().iso, "/dev/sd");
}

/// The GPT path alone: El Torito zeroed, booted as a UEFI disk.
#[test]
fn uefi_disk_without_el_torito() {
    boot(
        Firmware::Uefi,
        Media::Disk,
        &images().no_el_torito,
        "/dev/vd",
    );
}

/// Same config, same `SOURCE_DATE_EPOCH`: the same ISO, byte for byte
/// (sorted trees, fixed timestamps, derived join token and GUIDs).
#[test]
fn smoke_iso_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.iso");
    let config = tools::workspace_root().join("image-configs/smoke.yaml");
    qemu::build_image(&config, &again);
    let a = std::fs::read(&images().iso).unwrap();
    let b = std::fs::read(&again).unwrap();
    assert_eq!(a.len(), b.len(), "the two builds differ in size");
    assert!(a == b, "two builds of the same config differ");
}
