//! Secure Boot with a site's own keys (`secureBoot: mode: sign`): the
//! smoke config signed with Debian's OVMF test key
//! (`/usr/share/ovmf/PkKek-1-snakeoil.key`, passphrase `snakeoil`,
//! decrypted into a temp folder as a site would keep its key) boots under
//! OVMF with only that key enrolled and Secure Boot enforcing, and the
//! firmware refuses the same ISO under Microsoft's keys: it carries no
//! shim. `airlift inspect` names the chain and its signers on that ISO,
//! on the default smoke ISO, and on an ISO holding the base's shim chain.
//!
//! Timings are printed (`--nocapture`), never asserted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use airlift_builder::iso::chain::{ChainKind, Location, UefiChain};
use airlift_builder::iso::{self, FileSource, IsoImage, Tree, UefiBoot};
use airlift_builder::pe::authenticode::signers_of_pe;
use airlift_integration::tools;
use airlift_integration::vm::{self, Firmware, Media, Vm};

const SNAKEOIL_CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";
const SNAKEOIL: &str = "C=US, ST=Colorado, L=Fort Collins, O=SnakeOil";
const MARKER: &str = "AIRLIFT-MEDIA-MOUNTED label=AIRLIFT_SMOKE dev=";

/// The smoke config with `secureBoot: mode: sign`, built once per process.
fn signed_iso() -> &'static Path {
    static ISO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ISO.get_or_init(|| {
        // Named like `vm::built`'s folders, which a later test process
        // removes once this one has ended (statics are never dropped).
        let dir = tempfile::Builder::new()
            .prefix(&format!("airlift-isos-{}-own-keys-", std::process::id()))
            .tempdir()
            .unwrap();
        let root = tools::workspace_root();
        let script = root.join("builder/src/signing/fixtures/test-keys.sh");
        let ok = Command::new("sh")
            .arg(&script)
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "{} failed", script.display());
        let key = dir.path().join("db.key");
        let smoke = std::fs::read_to_string(root.join("image-configs/smoke.yaml")).unwrap();
        let overlay = root.join("overlays/smoke");
        let config = smoke.replace("../overlays/smoke", overlay.to_str().unwrap())
            + &format!(
                "secureBoot:\n  mode: sign\n  key: {}\n  certificate: {SNAKEOIL_CERT}\n",
                key.display()
            );
        let file = dir.path().join("signed.yaml");
        std::fs::write(&file, config).unwrap();
        let iso = dir.path().join("signed.iso");
        let took = vm::build_image(&file, &iso);
        eprintln!("built {} in {took:.1?}", iso.display());
        (dir, iso)
    })
    .1
}

/// Same config, key and `SOURCE_DATE_EPOCH`: the same signed ISO, byte
/// for byte (sbsign's signing time is pinned, objcopy's stamp replaced).
#[test]
fn signed_iso_is_reproducible() {
    let first = signed_iso();
    let again = first.with_file_name("again.iso");
    vm::build_image(&first.with_file_name("signed.yaml"), &again);
    let same = std::fs::read(first).unwrap() == std::fs::read(&again).unwrap();
    std::fs::remove_file(&again).unwrap();
    assert!(same, "two builds of the signed smoke config differ");
}

#[test]
fn boots_under_its_own_keys_with_secure_boot_enforcing() {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let vm = Vm::new(Firmware::UefiSnakeoil, Media::Cd, signed_iso());
    let boot = vm::boot_until(&vm, MARKER).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "own keys, snakeoil firmware: {} after {:.1?}",
        boot.marker_line, boot.elapsed
    );
    for line in [
        "EFI stub: UEFI Secure Boot is enabled.",
        "secureboot: Secure boot enabled",
    ] {
        assert!(
            boot.serial.contains(line),
            "no {line:?} on the console\n{}",
            vm::tail(&boot.serial, 40)
        );
    }
}

#[test]
fn refused_under_microsoft_keys_without_shim() {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let vm = Vm::new(Firmware::UefiSecureBoot, Media::Cd, signed_iso());
    let boot = vm::boot_until(&vm, "Access Denied").unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "own keys, Microsoft firmware: refused after {:.1?}: {}",
        boot.elapsed, boot.marker_line
    );
    assert!(
        boot.marker_line.contains("failed to load"),
        "{}",
        boot.marker_line
    );
    assert!(
        !boot.serial.contains("Linux version"),
        "a kernel started\n{}",
        vm::tail(&boot.serial, 40)
    );
}

fn inspect_chain(iso: &Path) -> UefiChain {
    let i = iso::inspect::inspect(iso).unwrap_or_else(|e| panic!("{e:#}"));
    i.uefi_chain.expect("an ESP")
}

fn signer_names(c: &UefiChain, role: &str) -> Vec<(String, String)> {
    let part = c
        .parts
        .iter()
        .find(|p| p.role == role)
        .unwrap_or_else(|| panic!("no {role} in {c:#?}"));
    part.signers
        .iter()
        .map(|s| (s.subject.clone(), s.issuer.clone()))
        .collect()
}

/// An ISO holding the base's shim chain: shim and GRUB in the ESP, the
/// kernel in ISO 9660, as the default (`mode: shim`) ESP is laid out.
fn shim_chain_iso(dir: &Path) -> PathBuf {
    let base = vm::airlift_base();
    let file = |p: &str| FileSource::Path(base.join(p));
    let mut tree = Tree::new();
    tree.add_file("boot/vmlinuz", file("vmlinuz"), 0o644)
        .unwrap();
    let esp_files = vec![
        ("EFI/BOOT/BOOTX64.EFI".to_string(), file("efi/shimx64.efi")),
        ("EFI/BOOT/grubx64.efi".to_string(), file("efi/grubx64.efi")),
        ("EFI/BOOT/mmx64.efi".to_string(), file("efi/mmx64.efi")),
    ];
    let image = IsoImage {
        volume_id: "SHIM_CHAIN".into(),
        epoch: 1_700_000_000,
        tree,
        bios: None,
        uefi: Some(UefiBoot { esp_files }),
        sha256sums: false,
    };
    let out = dir.join("shim.iso");
    iso::write(&image, &out).unwrap();
    out
}

#[test]
fn inspect_names_the_chain_and_its_signers() {
    let snakeoil = vec![(SNAKEOIL.to_string(), SNAKEOIL.to_string())];
    let debian = |who: &str| {
        vec![(
            format!("Debian Secure Boot Signer 2022 - {who}"),
            "Debian Secure Boot CA".to_string(),
        )]
    };
    // Sign mode: systemd-boot -> UKI, both signed with the site's key.
    let c = inspect_chain(signed_iso());
    assert_eq!(c.kind, ChainKind::SystemdBootUki, "{c:#?}");
    assert_eq!(
        c.parts[1].location,
        Location::Esp("EFI/Linux/airlift-0.1.0.efi".into())
    );
    assert_eq!(signer_names(&c, "systemd-boot"), snakeoil);
    assert_eq!(signer_names(&c, "unified kernel image"), snakeoil);
    let text = Command::new(tools::binary("airlift"))
        .arg("inspect")
        .arg(signed_iso())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("UEFI chain:  systemd-boot -> unified kernel image\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("signed by \"{SNAKEOIL}\"")),
        "{text}"
    );

    // The shim chain: Microsoft signed shim, Debian GRUB and the kernel.
    let dir = tempfile::tempdir().unwrap();
    let c = inspect_chain(&shim_chain_iso(dir.path()));
    assert_eq!(c.kind, ChainKind::Shim, "{c:#?}");
    assert_eq!(
        signer_names(&c, "shim")[0],
        (
            "Microsoft Windows UEFI Driver Publisher".to_string(),
            "Microsoft Corporation UEFI CA 2011".to_string()
        )
    );
    assert_eq!(signer_names(&c, "GRUB"), debian("grub2"));
    assert_eq!(signer_names(&c, "kernel"), debian("linux"));

    // The default smoke ISO: whatever loader it has, the kernel is Debian's.
    let c = inspect_chain(vm::built("image-configs/smoke.yaml"));
    assert_ne!(c.kind, ChainKind::SystemdBootUki, "{c:#?}");
    assert_eq!(signer_names(&c, "kernel"), debian("linux"));

    // The same names as sbverify --list, read from the base's files.
    let base = vm::airlift_base();
    let shim = signers_of_pe(&std::fs::read(base.join("efi/shimx64.efi")).unwrap()).unwrap();
    assert_eq!(shim[0].subject, "Microsoft Windows UEFI Driver Publisher");
    let unsigned =
        signers_of_pe(&std::fs::read(base.join("efi/systemd-bootx64.efi")).unwrap()).unwrap();
    assert!(unsigned.is_empty(), "{unsigned:?}");
}
