//! Kernel-module closures computed by airlift's initramfs writer from the
//! real Debian kernel in the base (`just base`), against the closures
//! measured with depmod/modprobe (FIELD-NOTES).

use std::collections::BTreeSet;

use airlift_builder::initramfs::modules;
use airlift_integration::vm::airlift_base;

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

/// kmod's own `modprobe` (from the base's root filesystem, the one the
/// appliance runs) resolves names, `-`/`_` spellings, filesystem aliases,
/// PCI/USB modaliases and built-ins from the indexes airlift writes,
/// without `depmod` ever running.
#[test]
fn kmod_modprobe_reads_the_generated_indexes() {
    use airlift_builder::initramfs::{self, ModulesSpec, Spec};
    use std::process::Command;

    let base = airlift_base();
    let release = std::fs::read_to_string(base.join("kernel-version")).unwrap();
    let release = release.trim();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let initrd = dir.path().join("initrd.img");
    let spec = Spec {
        base: airlift_builder::initramfs::RootSource::Host(empty),
        overlays: vec![],
        files: vec![],
        modules: Some(ModulesSpec {
            dir: base.join("modules"),
            release: release.to_string(),
            names: ["ata_piix", "sr_mod", "isofs", "usb_storage", "virtio_pci"]
                .map(String::from)
                .to_vec(),
            optional: vec![],
        }),
        epoch: 0,
        level: 3,
    };
    initramfs::write(&spec, &initrd).unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    airlift_integration::tools::run_ok(
        Command::new("bash")
            .arg("-c")
            .arg(format!(
                "zstd -dc '{}' | cpio -id --quiet",
                initrd.display()
            ))
            .current_dir(&root),
    );

    // Run the root filesystem's kmod as `modprobe` with its own libraries.
    let rootfs = base.join("rootfs");
    let modprobe = dir.path().join("modprobe");
    std::os::unix::fs::symlink(rootfs.join("usr/bin/kmod"), &modprobe).unwrap();
    let show = |name: &str| -> String {
        let out = Command::new(&modprobe)
            .env("LD_LIBRARY_PATH", rootfs.join("usr/lib/x86_64-linux-gnu"))
            .args(["-d"])
            .arg(&root)
            .args(["-S", release, "--show-depends", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "modprobe --show-depends {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let sr = show("sr_mod");
    let pos = |s: &str, m: &str| s.find(m).unwrap_or_else(|| panic!("{m} not in {s}"));
    assert!(pos(&sr, "/scsi_mod.ko") < pos(&sr, "/sr_mod.ko"), "{sr}");
    assert!(pos(&sr, "/cdrom.ko") < pos(&sr, "/sr_mod.ko"), "{sr}");
    assert!(show("usb-storage").contains("/usb-storage.ko"));
    assert!(show("fs-iso9660").contains("/isofs.ko"));
    // The PIIX3 IDE controller of QEMU's `pc` machine, as udev asks for it.
    assert!(show("pci:v00008086d00007010sv00001AF4sd00001100bc01sc01i80").contains("/ata_piix.ko"));
    assert!(show("unix").starts_with("builtin unix"));
}
