//! [`locate`] on hand-built trees.

use std::path::PathBuf;

use super::*;
use crate::config::InImageBootloader;

const IMAGE: &str = "registry.test/base:1@sha256:abcd";

/// A bzImage whose header says `release`.
pub(crate) fn bzimage(release: &str) -> Vec<u8> {
    let mut img = vec![0u8; 0x400];
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let s = format!("{release} (test) #1 SMP\0");
    img[0x300..0x300 + s.len()].copy_from_slice(s.as_bytes());
    img
}

/// A 64-bit little-endian ELF with one program header: PT_INTERP (3) when
/// `dynamic`, else PT_LOAD (1).
pub(crate) fn elf(dynamic: bool) -> Vec<u8> {
    let mut b = vec![0u8; 0x40 + 0x38];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
    b[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
    b[0x38..0x3A].copy_from_slice(&1u16.to_le_bytes());
    let pt: u32 = if dynamic { 3 } else { 1 };
    b[0x40..0x44].copy_from_slice(&pt.to_le_bytes());
    b
}

fn file(tree: &mut Tree, path: &str, bytes: &[u8]) {
    tree.insert(path, Node::bytes(bytes.to_vec(), 0o644))
        .unwrap();
}

/// A merged-usr Debian-like image with everything in its default place,
/// the kernel bootc-style in /usr/lib/modules/<v>/vmlinuz.
fn full() -> Tree {
    let mut t = Tree::new();
    t.insert("usr/lib", Node::dir(0o755)).unwrap();
    t.insert("lib", Node::symlink("usr/lib")).unwrap();
    t.insert("bin", Node::symlink("usr/bin")).unwrap();
    file(
        &mut t,
        "usr/lib/modules/6.1.0-9-amd64/vmlinuz",
        &bzimage("6.1.0-9-amd64"),
    );
    file(&mut t, "usr/lib/modules/6.1.0-9-amd64/modules.dep", b"");
    file(&mut t, "boot/initrd.img-6.1.0-9-amd64", b"initrd");
    file(&mut t, "boot/config-6.1.0-9-amd64", b"config");
    for (_, path, _) in ISOLINUX {
        file(&mut t, path, path.as_bytes());
    }
    for p in [EFI, STUB, SHIM, GRUB, GRUB_NET] {
        file(&mut t, p, p.as_bytes());
    }
    file(&mut t, "usr/lib/shim/mmx64.efi.signed", b"mm");
    file(&mut t, "usr/lib/ipxe/undionly.kpxe", b"pxe");
    file(&mut t, "usr/lib/ipxe/ipxe.efi", b"efi");
    t.insert("usr/bin/busybox", Node::bytes(elf(false), 0o755))
        .unwrap();
    file(&mut t, "etc/hostname", b"base");
    t
}

fn base() -> ImageBase {
    ImageBase::for_tests()
}

const ALL: Needs = Needs {
    shim_chain: true,
    stub: false,
    netboot: true,
    busybox: true,
    modules: true,
};

fn err(tree: &Tree, base: &ImageBase, needs: Needs) -> String {
    format!("{:#}", locate(tree, base, needs, IMAGE).unwrap_err())
}

#[test]
fn every_default_is_found() {
    let l = locate(&full(), &base(), ALL, IMAGE).unwrap();
    assert_eq!(l.release, "6.1.0-9-amd64");
    assert_eq!(l.kernel.path, "/usr/lib/modules/6.1.0-9-amd64/vmlinuz");
    assert_eq!(
        l.modules_dir.as_deref(),
        Some("usr/lib/modules/6.1.0-9-amd64")
    );
    let iso: Vec<_> = l.isolinux.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        iso,
        [
            "/usr/lib/ISOLINUX/isolinux.bin",
            "/usr/lib/ISOLINUX/isohdpfx.bin",
            "/usr/lib/syslinux/modules/bios/ldlinux.c32"
        ]
    );
    assert_eq!(l.efi.path, EFI);
    assert_eq!(l.stub.unwrap().path, STUB);
    assert_eq!(l.shim.unwrap().path, SHIM);
    assert_eq!(
        l.mok_manager.unwrap().path,
        "/usr/lib/shim/mmx64.efi.signed"
    );
    assert_eq!(l.grub.unwrap().path, GRUB);
    assert_eq!(l.grub_net.unwrap().path, GRUB_NET);
    let ipxe = l.ipxe.unwrap();
    assert_eq!(ipxe[0].path, "/usr/lib/ipxe/undionly.kpxe");
    assert_eq!(ipxe[1].path, "/usr/lib/ipxe/ipxe.efi");
    assert_eq!(l.busybox.unwrap().path, "/usr/bin/busybox");
}

#[test]
fn the_debian_boot_kernel_and_bin_busybox_are_found() {
    // Not merged-usr: /lib/modules a real folder, the kernel in /boot,
    // busybox in /bin.
    let mut t = Tree::new();
    file(
        &mut t,
        "boot/vmlinuz-6.1.0-7-amd64",
        &bzimage("6.1.0-7-amd64"),
    );
    file(&mut t, "lib/modules/6.1.0-7-amd64/modules.dep", b"");
    for (_, path, _) in ISOLINUX {
        file(&mut t, path, b"x");
    }
    file(&mut t, EFI, b"x");
    t.insert("bin/busybox", Node::bytes(elf(false), 0o755))
        .unwrap();
    let needs = Needs {
        shim_chain: false,
        netboot: false,
        ..ALL
    };
    let l = locate(&t, &base(), needs, IMAGE).unwrap();
    assert_eq!(l.kernel.path, "/boot/vmlinuz-6.1.0-7-amd64");
    assert_eq!(l.modules_dir.as_deref(), Some("lib/modules/6.1.0-7-amd64"));
    assert_eq!(l.busybox.unwrap().path, "/bin/busybox");
    // What is not needed and not there is simply absent.
    assert!(l.shim.is_none() && l.grub.is_none() && l.ipxe.is_none());
}

#[test]
fn every_override_is_used() {
    let mut t = full();
    file(&mut t, "opt/k/kernel", &bzimage("6.9.0-custom"));
    file(&mut t, "opt/k/mods/modules.dep", b"");
    for name in ["isolinux.bin", "isohdpfx.bin", "ldlinux.c32"] {
        file(&mut t, &format!("opt/iso/{name}"), b"x");
    }
    for name in ["efi", "stub", "shim", "grub", "grubnet"] {
        file(&mut t, &format!("opt/efi/{name}"), b"x");
    }
    file(&mut t, "opt/ipxe/undionly.kpxe", b"x");
    file(&mut t, "opt/ipxe/ipxe.efi", b"x");
    t.insert("opt/bb", Node::bytes(elf(false), 0o755)).unwrap();
    let mut b = base();
    b.kernel = Some("/opt/k/kernel".into());
    b.modules_dir = Some("/opt/k/mods".into());
    b.busybox = Some("/opt/bb".into());
    let p = |s: &str| Some(PathBuf::from(s));
    b.bootloader = InImageBootloader {
        isolinux: p("/opt/iso"),
        efi: p("/opt/efi/efi"),
        ipxe: p("/opt/ipxe"),
        shim: p("/opt/efi/shim"),
        grub: p("/opt/efi/grub"),
        grub_net: p("/opt/efi/grubnet"),
        stub: p("/opt/efi/stub"),
    };
    let l = locate(&t, &b, ALL, IMAGE).unwrap();
    assert_eq!(l.release, "6.9.0-custom");
    assert_eq!(l.kernel.path, "/opt/k/kernel");
    assert_eq!(l.modules_dir.as_deref(), Some("opt/k/mods"));
    assert!(l.isolinux.iter().all(|f| f.path.starts_with("/opt/iso/")));
    assert_eq!(l.efi.path, "/opt/efi/efi");
    assert_eq!(l.stub.unwrap().path, "/opt/efi/stub");
    assert_eq!(l.shim.unwrap().path, "/opt/efi/shim");
    assert!(
        l.mok_manager.is_none(),
        "no mmx64.efi.signed beside the shim"
    );
    assert_eq!(l.grub.unwrap().path, "/opt/efi/grub");
    assert_eq!(l.grub_net.unwrap().path, "/opt/efi/grubnet");
    assert_eq!(l.ipxe.unwrap()[1].path, "/opt/ipxe/ipxe.efi");
    assert_eq!(l.busybox.unwrap().path, "/opt/bb");
}

#[test]
fn links_are_followed() {
    let mut t = full();
    // Debian's /vmlinuz-style link, and an absolute link to the efi loader.
    t.insert(
        "opt/kernel",
        Node::symlink("/usr/lib/modules/6.1.0-9-amd64/vmlinuz"),
    )
    .unwrap();
    let mut b = base();
    b.kernel = Some("/opt/kernel".into());
    let l = locate(&t, &b, ALL, IMAGE).unwrap();
    assert_eq!(l.kernel.path, "/usr/lib/modules/6.1.0-9-amd64/vmlinuz");
}

#[test]
fn a_missing_kernel_names_the_image_paths_package_and_field() {
    let mut t = Tree::new();
    file(&mut t, "etc/hostname", b"x");
    let e = err(&t, &base(), ALL);
    assert!(e.contains(IMAGE), "{e}");
    assert!(e.contains("no kernel"), "{e}");
    assert!(e.contains("/usr/lib/modules/<version>/vmlinuz"), "{e}");
    assert!(e.contains("/boot/vmlinuz-<version>"), "{e}");
    assert!(e.contains("linux-image-amd64"), "{e}");
    assert!(e.contains("base.kernel"), "{e}");
    // A modules folder alone is no kernel.
    file(&mut t, "usr/lib/modules/6.1.0-9-amd64/modules.dep", b"");
    assert!(err(&t, &base(), ALL).contains("no kernel"));
    // An override that is not there names it.
    let mut b = base();
    b.kernel = Some("/opt/nope".into());
    let e = err(&full(), &b, ALL);
    assert!(e.contains("looked at /opt/nope"), "{e}");
}

#[test]
fn two_kernels_are_listed_unless_one_is_chosen() {
    let mut t = full();
    file(
        &mut t,
        "boot/vmlinuz-6.1.0-10-amd64",
        &bzimage("6.1.0-10-amd64"),
    );
    file(&mut t, "usr/lib/modules/6.1.0-10-amd64/modules.dep", b"");
    let e = err(&t, &base(), ALL);
    assert!(e.contains("more than one kernel"), "{e}");
    assert!(
        e.contains("6.1.0-10-amd64 (/boot/vmlinuz-6.1.0-10-amd64)"),
        "{e}"
    );
    assert!(
        e.contains("6.1.0-9-amd64 (/usr/lib/modules/6.1.0-9-amd64/vmlinuz)"),
        "{e}"
    );
    assert!(e.contains("base.kernel"), "{e}");
    let mut b = base();
    b.kernel = Some("/boot/vmlinuz-6.1.0-10-amd64".into());
    let l = locate(&t, &b, ALL, IMAGE).unwrap();
    assert_eq!(l.release, "6.1.0-10-amd64");
    assert_eq!(
        l.modules_dir.as_deref(),
        Some("usr/lib/modules/6.1.0-10-amd64")
    );
}

#[test]
fn a_kernel_whose_release_differs_from_its_folder_is_refused() {
    let mut t = Tree::new();
    file(
        &mut t,
        "boot/vmlinuz-6.1.0-9-amd64",
        &bzimage("6.1.0-99-amd64"),
    );
    let e = err(&t, &base(), ALL);
    assert!(e.contains("says it is release 6.1.0-99-amd64"), "{e}");
}

#[test]
fn missing_modules_are_an_error_only_when_modules_are_wanted() {
    let mut t = Tree::new();
    file(
        &mut t,
        "boot/vmlinuz-6.1.0-9-amd64",
        &bzimage("6.1.0-9-amd64"),
    );
    for (_, path, _) in ISOLINUX {
        file(&mut t, path, b"x");
    }
    file(&mut t, EFI, b"x");
    let none = Needs {
        shim_chain: false,
        stub: false,
        netboot: false,
        busybox: false,
        modules: false,
    };
    assert!(locate(&t, &base(), none, IMAGE)
        .unwrap()
        .modules_dir
        .is_none());
    let e = err(
        &t,
        &base(),
        Needs {
            modules: true,
            ..none
        },
    );
    assert!(
        e.contains("no modules folder for kernel 6.1.0-9-amd64"),
        "{e}"
    );
    assert!(
        e.contains("/usr/lib/modules/6.1.0-9-amd64, /lib/modules/6.1.0-9-amd64"),
        "{e}"
    );
    assert!(e.contains("base.modulesDir"), "{e}");
}

#[test]
fn a_dynamic_busybox_is_refused() {
    let mut t = full();
    t.insert("usr/bin/busybox", Node::bytes(elf(true), 0o755))
        .unwrap();
    let e = err(&t, &base(), ALL);
    assert!(e.contains("dynamically linked busybox"), "{e}");
    assert!(e.contains("install busybox-static"), "{e}");
    assert!(e.contains("/usr/bin/busybox"), "{e}");
    // Not needed with the root in the initramfs.
    let needs = Needs {
        busybox: false,
        ..ALL
    };
    assert!(locate(&t, &base(), needs, IMAGE).is_ok());
    // Missing altogether: both default paths named.
    let mut t = Tree::new();
    for (p, n) in full().iter() {
        if p != "usr/bin/busybox" {
            t.insert(p, n.clone()).unwrap();
        }
    }
    let e = err(&t, &base(), ALL);
    assert!(
        e.contains("looked at /usr/bin/busybox, /bin/busybox"),
        "{e}"
    );
    assert!(
        e.contains("busybox-static") && e.contains("base.busybox"),
        "{e}"
    );
}

#[test]
fn elf_headers_are_read_for_the_interpreter() {
    assert!(elf_is_static(&elf(false)).unwrap());
    assert!(!elf_is_static(&elf(true)).unwrap());
    assert!(elf_is_static(b"#!/bin/sh\n").is_err());
    let mut truncated = elf(true);
    truncated.truncate(0x42);
    assert!(elf_is_static(&truncated).is_err());
    // A 64-bit header whose program headers are at the end of the address
    // space: an error, not an overflow.
    let mut hostile = elf(true);
    hostile[4] = 2;
    hostile[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
    hostile[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
    hostile[0x38..0x3A].copy_from_slice(&2u16.to_le_bytes());
    assert!(elf_is_static(&hostile).is_err());
}

fn without(path: &str) -> Tree {
    let mut t = Tree::new();
    for (p, n) in full().iter() {
        if p != path && !p.starts_with(&format!("{path}/")) {
            t.insert(p, n.clone()).unwrap();
        }
    }
    t
}

#[test]
fn a_missing_shim_with_the_shim_chain_is_an_error() {
    let t = without("usr/lib/shim");
    let e = err(&t, &base(), ALL);
    assert!(e.contains("no shim signed by Microsoft's UEFI CA"), "{e}");
    assert!(e.contains(&format!("looked at {SHIM}")), "{e}");
    assert!(
        e.contains("shim-signed") && e.contains("base.bootloader.shim"),
        "{e}"
    );
    // Sign mode without netboot needs no shim, but the stub.
    let sign = Needs {
        shim_chain: false,
        stub: true,
        netboot: false,
        ..ALL
    };
    assert!(locate(&t, &base(), sign, IMAGE).is_ok());
    let e = err(
        &without("usr/lib/systemd/boot/efi/linuxx64.efi.stub"),
        &base(),
        sign,
    );
    assert!(
        e.contains("linuxx64.efi.stub") && e.contains("base.bootloader.stub"),
        "{e}"
    );
}

#[test]
fn a_missing_ipxe_with_netboot_is_an_error() {
    let t = without("usr/lib/ipxe");
    let e = err(&t, &base(), ALL);
    assert!(e.contains("iPXE's undionly.kpxe"), "{e}");
    assert!(e.contains("/usr/lib/ipxe/undionly.kpxe"), "{e}");
    assert!(
        e.contains("package ipxe") && e.contains("base.bootloader.ipxe"),
        "{e}"
    );
    let no_netboot = Needs {
        netboot: false,
        ..ALL
    };
    assert!(locate(&t, &base(), no_netboot, IMAGE)
        .unwrap()
        .ipxe
        .is_none());
}

#[test]
fn missing_isolinux_and_efi_name_their_packages() {
    let e = err(&without("usr/lib/syslinux"), &base(), ALL);
    assert!(
        e.contains("/usr/lib/syslinux/modules/bios/ldlinux.c32"),
        "{e}"
    );
    assert!(
        e.contains("syslinux-common") && e.contains("base.bootloader.isolinux"),
        "{e}"
    );
    let e = err(
        &without("usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
        &base(),
        ALL,
    );
    assert!(
        e.contains("systemd-boot-efi") && e.contains("base.bootloader.efi"),
        "{e}"
    );
}

#[test]
fn the_kernel_and_its_modules_leave_the_root_tree() {
    let mut t = full();
    let l = locate(&t, &base(), ALL, IMAGE).unwrap();
    let before = t.len();
    let removed = strip_kernel(&mut t, &l);
    // The modules folder, its vmlinuz and modules.dep, and the initrd.
    assert_eq!(removed, 4);
    assert_eq!(t.len(), before - removed);
    assert!(t.get("usr/lib/modules/6.1.0-9-amd64").is_none());
    assert!(t.get("usr/lib/modules/6.1.0-9-amd64/vmlinuz").is_none());
    assert!(t.get("boot/initrd.img-6.1.0-9-amd64").is_none());
    // The rest stays, the config of /boot included.
    assert!(t.get("boot/config-6.1.0-9-amd64").is_some());
    assert!(t.get("usr/lib/modules").is_some());
    assert!(t.get("etc/hostname").is_some());
    assert_eq!(t.get("lib"), Some(&Node::symlink("usr/lib")));
    assert!(file_at(&t, "/usr/bin/busybox").is_some());
}
