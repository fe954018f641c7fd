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

use airlift_integration::tools;
use airlift_integration::vm::{self, Firmware, Media, Vm};

const LABEL: &str = "AIRLIFT_SMOKE";

/// The smoke ISO's config: built once per test process (`vm::built`).
const SMOKE: &str = "image-configs/smoke.yaml";

/// The smoke ISO with its El Torito record zeroed, made once per process.
fn no_el_torito() -> &'static Path {
    static COPY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &COPY
        .get_or_init(|| {
            let dir = tempfile::Builder::new()
                .prefix("airlift-boot-matrix-")
                .tempdir()
                .unwrap();
            let copy = dir.path().join("smoke-no-eltorito.iso");
            vm::without_el_torito(vm::built(SMOKE), &copy).unwrap();
            (dir, copy)
        })
        .1
}

/// Boots and checks the marker, the device and which boot path ran.
fn boot(firmware: Firmware, media: Media, image: &Path, dev_prefix: &str) {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let vm = Vm::new(firmware, media, image);
    let marker = format!("AIRLIFT-MEDIA-MOUNTED label={LABEL} dev=");
    let boot = match vm::boot_until(&vm, &marker) {
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
        vm::tail(&boot.serial, 40)
    );
    // isolinux passes BOOT_IMAGE=; systemd-boot (UEFI) does not.
    let via_isolinux = boot.serial.contains("BOOT_IMAGE=/boot/vmlinuz");
    match firmware {
        Firmware::Bios => assert!(via_isolinux, "BIOS boot did not go through isolinux"),
        Firmware::Uefi | Firmware::UefiSecureBootMs => {
            assert!(!via_isolinux, "UEFI boot went through isolinux?");
            assert!(
                boot.serial.contains("efi: EFI v"),
                "the kernel did not start under UEFI\n{}",
                vm::tail(&boot.serial, 40)
            );
        }
    }
    // `/init` listed the bundle it read from the media.
    assert!(
        boot.serial.contains("index.json") && boot.serial.contains("oci-layout"),
        "the bundle listing is missing from the serial log\n{}",
        vm::tail(&boot.serial, 40)
    );
}

#[test]
fn bios_cd() {
    boot(Firmware::Bios, Media::Cd, vm::built(SMOKE), "/dev/sr");
}

#[test]
fn uefi_cd() {
    boot(Firmware::Uefi, Media::Cd, vm::built(SMOKE), "/dev/sr");
}

#[test]
fn bios_disk() {
    boot(Firmware::Bios, Media::Disk, vm::built(SMOKE), "/dev/vd");
}

#[test]
fn uefi_disk() {
    boot(Firmware::Uefi, Media::Disk, vm::built(SMOKE), "/dev/vd");
}

#[test]
fn uefi_usb() {
    boot(Firmware::Uefi, Media::Usb, vm::built(SMOKE), "/dev/sd");
}

/// The GPT path alone: El Torito zeroed, booted as a UEFI disk.
#[test]
fn uefi_disk_without_el_torito() {
    boot(Firmware::Uefi, Media::Disk, no_el_torito(), "/dev/vd");
}

/// Same config, same `SOURCE_DATE_EPOCH`: the same ISO, byte for byte
/// (sorted trees, fixed timestamps, derived join token and GUIDs).
#[test]
fn smoke_iso_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let again = dir.path().join("again.iso");
    let config = tools::workspace_root().join(SMOKE);
    vm::build_image(&config, &again);
    let a = std::fs::read(vm::built(SMOKE)).unwrap();
    let b = std::fs::read(&again).unwrap();
    assert_eq!(a.len(), b.len(), "the two builds differ in size");
    assert!(a == b, "two builds of the same config differ");
}

/// splitmix64 bytes: the same `seed` always gives the same bytes, and they
/// do not compress (so a zstd initramfs holding them stays large).
fn seeded_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// What to change in image-configs/smoke.yaml for one test.
#[derive(Default)]
struct SmokeVariant<'a> {
    /// Another overlay folder, laid over `overlays/smoke`.
    overlay: Option<&'a Path>,
    /// `base.kernelArgs`.
    kernel_args: Vec<String>,
    /// `output.extraFiles`: ISO path → host file.
    extra_files: Vec<(&'a str, &'a Path)>,
}

/// Writes a copy of smoke.yaml into `dir` with the changes of `v` (paths
/// made absolute, since the copy lives elsewhere) and returns its path.
fn smoke_variant(dir: &Path, v: &SmokeVariant) -> PathBuf {
    let root = tools::workspace_root();
    let text = std::fs::read_to_string(root.join("image-configs/smoke.yaml")).unwrap();
    let mut edited = text.clone();
    let mut replace = |from: &str, to: String| {
        assert!(
            edited.contains(from),
            "image-configs/smoke.yaml no longer holds {from:?}: update smoke_variant"
        );
        edited = edited.replacen(from, &to, 1);
    };
    let mut overlays = format!("  - {}\n", root.join("overlays/smoke").display());
    if let Some(o) = v.overlay {
        overlays.push_str(&format!("  - {}\n", o.display()));
    }
    replace("  - ../overlays/smoke\n", overlays);
    if !v.kernel_args.is_empty() {
        let mut args = "base:\n  kernelArgs:\n".to_string();
        for a in &v.kernel_args {
            args.push_str(&format!("    - \"{a}\"\n"));
        }
        replace("base:\n", args);
    }
    if !v.extra_files.is_empty() {
        let mut out = format!("  volumeLabel: {LABEL}\n  extraFiles:\n");
        for (iso, host) in &v.extra_files {
            out.push_str(&format!("    \"{iso}\": \"{}\"\n", host.display()));
        }
        replace(&format!("  volumeLabel: {LABEL}\n"), out);
    }
    let path = dir.join("smoke-variant.yaml");
    std::fs::write(&path, edited).unwrap();
    path
}

/// dd block size the smoke init reads with (`airlift.smoke.blocks=`).
const CHECK_BLOCK: u64 = 64 << 10;

/// A >4 GiB sparse file on the ISO (two ISO 9660 extents, a volume past
/// 4 GiB) read by Linux's isofs: `/init` prints its size and the sha256
/// of three 64 KiB-block ranges read with dd (the start, across the
/// 4 GiB boundary and the first extent's end at 4 GiB - 2048, and the
/// tail), which must equal the host's. The rest is never read.
#[test]
fn large_file_over_4gib_mounts_in_linux() {
    use std::os::unix::fs::FileExt;
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let dir = tempfile::Builder::new()
        .prefix("airlift-big-file-")
        .tempdir()
        .unwrap();
    let big = dir.path().join("big.bin");
    let size: u64 = (4 << 30) + (256 << 20) + 12_345;
    let mib = 1u64 << 20;
    let markers = [0, (4 << 30) - mib / 2, size - mib];
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(size).unwrap();
        for (i, at) in markers.iter().enumerate() {
            f.write_all_at(&seeded_bytes(0xB16 + i as u64, mib as usize), *at)
                .unwrap();
        }
        f.sync_all().unwrap();
    }
    // Ranges in 64 KiB blocks covering each marker; the last runs to EOF.
    let ranges: Vec<(u64, u64)> = markers
        .iter()
        .map(|at| (at / CHECK_BLOCK, mib.div_ceil(CHECK_BLOCK) + 1))
        .collect();
    let expected: Vec<String> = ranges
        .iter()
        .map(|(skip, count)| {
            let from = skip * CHECK_BLOCK;
            let to = (from + count * CHECK_BLOCK).min(size);
            let mut buf = vec![0u8; (to - from) as usize];
            std::fs::File::open(&big)
                .unwrap()
                .read_exact_at(&mut buf, from)
                .unwrap();
            airlift_oci::Digest::sha256_of(&buf).hex().to_string()
        })
        .collect();
    let blocks = ranges
        .iter()
        .map(|(s, c)| format!("{s}+{c}"))
        .collect::<Vec<_>>()
        .join(",");

    let config = smoke_variant(
        dir.path(),
        &SmokeVariant {
            kernel_args: vec![
                "airlift.smoke.check=/big.bin".into(),
                format!("airlift.smoke.blocks={blocks}"),
            ],
            extra_files: vec![("big.bin", &big)],
            ..Default::default()
        },
    );
    let iso = dir.path().join("big.iso");
    let took = vm::build_image(&config, &iso);
    let iso_size = std::fs::metadata(&iso).unwrap().len();
    eprintln!("built {} ({iso_size} bytes) in {took:.1?}", iso.display());
    assert!(
        iso_size > size,
        "the ISO ({iso_size} bytes) is smaller than big.bin"
    );

    let mut vm = Vm::new(Firmware::Bios, Media::Cd, &iso);
    vm.timeout = std::time::Duration::from_secs(420);
    let boot = vm::boot_until(&vm, "AIRLIFT-CHECK-DONE").unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("bios+cd (big file): checked after {:.1?}", boot.elapsed);
    let log = &boot.serial;
    for line in log.lines().filter(|l| l.starts_with("AIRLIFT-CHECK")) {
        eprintln!("  {}", line.trim_end());
    }
    let context = || vm::tail(log, 40);
    assert!(
        log.contains(&format!("AIRLIFT-MEDIA-MOUNTED label={LABEL} dev=/dev/sr")),
        "the media was not mounted from the CD\n{}",
        context()
    );
    assert!(
        log.contains(&format!("AIRLIFT-CHECK size={size}\n"))
            || log.contains(&format!("AIRLIFT-CHECK size={size}\r")),
        "Linux reports another size for /big.bin (expected {size})\n{}",
        context()
    );
    for ((skip, count), hash) in ranges.iter().zip(&expected) {
        let line = format!("AIRLIFT-CHECK blocks={skip}+{count} sha256=");
        let got = log
            .lines()
            .find_map(|l| l.trim_end().split(&line).nth(1))
            .unwrap_or_else(|| panic!("no {line:?} on the serial console\n{}", context()));
        assert_eq!(
            got,
            hash,
            "/big.bin blocks {skip}+{count} (64 KiB) read back differently in Linux\n{}",
            context()
        );
    }
}

/// The ESP partition's size in bytes, from `airlift inspect --json`.
fn esp_bytes(iso: &Path) -> (u64, serde_json::Value) {
    let out = tools::run_ok(
        std::process::Command::new(tools::binary("airlift"))
            .arg("inspect")
            .arg("--json")
            .arg(iso),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let esp = v["gpt"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["type_name"] == "EFI System")
        .unwrap_or_else(|| panic!("no EFI System partition in the GPT:\n{out}"));
    let sectors = esp["last"].as_u64().unwrap() - esp["first"].as_u64().unwrap() + 1;
    (sectors * 512, v)
}

/// A 110 MB incompressible file in the initramfs makes the ESP (kernel
/// and initramfs inside, for systemd-boot) larger than El Torito's 16-bit
/// sector count can describe (65535 x 512 bytes); OVMF must still boot it
/// from a CD and reach the media.
#[test]
fn uefi_boots_an_initramfs_over_100_mb() {
    tools::require("qemu-system-x86_64", "qemu-system-x86");
    let dir = tempfile::Builder::new()
        .prefix("airlift-big-initramfs-")
        .tempdir()
        .unwrap();
    let overlay = dir.path().join("ballast");
    std::fs::create_dir_all(overlay.join("opt")).unwrap();
    std::fs::write(
        overlay.join("opt/ballast.bin"),
        seeded_bytes(0xBA11A57, 110_000_000),
    )
    .unwrap();
    let config = smoke_variant(
        dir.path(),
        &SmokeVariant {
            overlay: Some(&overlay),
            ..Default::default()
        },
    );
    let iso = dir.path().join("big-initramfs.iso");
    let took = vm::build_image(&config, &iso);
    let (esp, inspection) = esp_bytes(&iso);
    let uefi_entry = inspection["el_torito"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["platform"] == 0xEF)
        .cloned()
        .unwrap_or_default();
    eprintln!(
        "built {} in {took:.1?}: ESP {esp} bytes, El Torito UEFI entry {uefi_entry}",
        iso.display()
    );
    assert!(
        esp > 32 << 20,
        "the ESP is only {esp} bytes: the initramfs did not grow it past 32 MiB"
    );

    let mut vm = Vm::new(Firmware::Uefi, Media::Cd, &iso);
    vm.timeout = std::time::Duration::from_secs(600);
    let marker = format!("AIRLIFT-MEDIA-MOUNTED label={LABEL} dev=/dev/sr");
    let boot = vm::boot_until(&vm, &marker).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "uefi+cd (big initramfs): {} after {:.1?}",
        boot.marker_line, boot.elapsed
    );
    let log = &boot.serial;
    assert!(
        log.contains("efi: EFI v"),
        "the kernel did not start under UEFI\n{}",
        vm::tail(log, 40)
    );
    assert!(
        !log.contains("Initramfs unpacking failed"),
        "the kernel could not unpack the whole initramfs\n{}",
        vm::tail(log, 40)
    );
}
