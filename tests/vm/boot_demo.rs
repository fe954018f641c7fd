//! The demo appliance (image-configs/demo.yaml): the systemd Debian root
//! filesystem as the initramfs, overlays/base, two locally made images.
//! Built with the real `airlift build` and booted under QEMU (TCG) from a
//! CD with BIOS and with UEFI (shim and GRUB boot the kernel and the
//! ~60 MB initramfs from ISO 9660). The
//! `airlift-media.service` unit must mount the media by label and print
//! the marker. Needs `just base`; timings are printed, never asserted.

use airlift_integration::tools;
use airlift_integration::vm::{self, Firmware, Media, Vm};

/// The demo ISO, built once per test process (host0_qemu boots it too).
const CONFIG: &str = "image-configs/demo.yaml";

fn boot(firmware: Firmware) {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let mut vm = Vm::new(firmware, Media::Cd, vm::built(CONFIG));
    vm.memory_mib = 1536;
    vm.cpus = 1;
    vm.timeout = std::time::Duration::from_secs(300);
    let boot = vm::boot_until(&vm, "AIRLIFT-MEDIA-MOUNTED label=AIRLIFT_DEMO dev=/dev/sr")
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "demo {firmware}+cd: {} after {:.1?}",
        boot.marker_line, boot.elapsed
    );
    // systemd ran as PID 1 from the initramfs, and the unit (not a shell) printed it.
    assert!(
        boot.serial.contains("systemd[1]: systemd 252"),
        "systemd did not start"
    );
    assert!(
        boot.marker_line.contains("mount-media["),
        "the marker did not come from the mount-media unit: {}",
        boot.marker_line
    );
}

#[test]
fn demo_bios_cd() {
    boot(Firmware::Bios);
}

#[test]
fn demo_uefi_cd() {
    boot(Firmware::Uefi);
}
