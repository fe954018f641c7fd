//! Kernel-module closures computed by airlift's initramfs writer from the
//! real Debian kernel in the base (`just base`), against the closures
//! measured with depmod/modprobe (FIELD-NOTES).

use std::collections::BTreeSet;

use airlift_builder::initramfs::modules;
use airlift_integration::qemu::airlift_base;

fn closure_of(names: &[&str]) -> BTreeSet<String> {
    let dir = airlift_base().join("modules");
    let index = modules::index(&dir).unwrap();
    let builtin = modules::builtin(&dir).unwrap();
    let wanted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let c = modules::closure(&wanted, &index, &builtin, |rel| {
        modules::read_modinfo(&dir.join(rel))
    })
    .unwrap();
    c.modules.keys().cloned().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cd_on_pc() {
    assert_eq!(
        closure_of(&["ata_piix", "sr_mod", "isofs"]),
        set(&[
            "ata_piix",
            "libata",
            "scsi_mod",
            "scsi_common",
            "sr_mod",
            "cdrom",
            "isofs"
        ])
    );
}

#[test]
fn virtio_disk() {
    assert_eq!(
        closure_of(&["virtio_pci", "virtio_blk"]),
        set(&[
            "virtio_pci",
            "virtio_pci_modern_dev",
            "virtio_pci_legacy_dev",
            "virtio",
            "virtio_ring",
            "virtio_blk"
        ])
    );
}

#[test]
fn usb_stick() {
    let got = closure_of(&["xhci_pci", "usb_storage", "sd_mod"]);
    let want = set(&[
        "xhci_pci",
        "xhci_hcd",
        "usbcore",
        "usb_common",
        "usb_storage",
        "sd_mod",
        "t10_pi",
        "crc_t10dif",
        "crct10dif_common",
        "crc64_rocksoft",
        "crc64",
    ]);
    assert!(
        got.is_superset(&want),
        "missing: {:?}",
        want.difference(&got)
    );
    // Softdeps (crct10dif_pclmul …) may add a few more; nothing unrelated.
    assert!(
        !got.contains("isofs") && !got.contains("virtio_blk"),
        "{got:?}"
    );
}

#[test]
fn net() {
    assert_eq!(
        closure_of(&["virtio_net"]),
        set(&[
            "virtio_net",
            "net_failover",
            "failover",
            "virtio",
            "virtio_ring"
        ])
    );
}

#[test]
fn unknown_module_is_an_error_naming_it() {
    let dir = airlift_base().join("modules");
    let index = modules::index(&dir).unwrap();
    let err = modules::closure(
        &["no_such_driver".into()],
        &index,
        &Default::default(),
        |rel| modules::read_modinfo(&dir.join(rel)),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no_such_driver"), "{err}");
}
