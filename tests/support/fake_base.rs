//! Stand-ins for the boot base (`just base`) for tests that build an ISO
//! without booting it: a kernel with a setup header and version string,
//! an empty root filesystem, boot loader files.

use std::fs;
use std::path::Path;

/// Write `body` to `p`, creating its folders.
pub fn put(p: &Path, body: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

/// Fill `b` with the stand-in base.
pub fn write(b: &Path) {
    let mut kernel = vec![0u8; 0x400];
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    kernel[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let v = b"6.1.0-test (t@t) #1 SMP\0";
    kernel[0x300..0x300 + v.len()].copy_from_slice(v);
    put(&b.join("vmlinuz"), &kernel);
    fs::create_dir_all(b.join("rootfs/etc")).unwrap();
    for f in ["isolinux.bin", "ldlinux.c32"] {
        put(&b.join("isolinux").join(f), &[0x90; 4096]);
    }
    put(&b.join("isolinux/isohdpfx.bin"), &[0x90; 432]);
    for f in ["systemd-bootx64.efi", "shimx64.efi", "grubx64.efi"] {
        put(&b.join("efi").join(f), b"MZ stand-in");
    }
}
