//! Secure Boot with the keys servers already trust: OVMF enforcing Secure
//! Boot with Microsoft's keys enrolled (q35, SMM) boots the demo ISO
//! (image-configs/demo.yaml) through shim -> Debian's signed GRUB -> the
//! Debian-signed kernel, from a CD and from a USB stick, to host0's ready
//! marker. The console shows GRUB's line, the kernel's Secure Boot and
//! lockdown lines and airlift's `AIRLIFT-SECUREBOOT enabled`, no module
//! refused under lockdown (the media and the network came up through
//! modules), and `/airlift/v1/status` through the forwarded registry port
//! says `secure-boot: enabled`. A copy of the ISO with one byte of the
//! kernel flipped is refused by GRUB (`bad shim signature`) and nothing
//! boots. The initramfs holds Debian's module files byte for byte, their
//! signatures included. Needs `just base`; `just secure-boot`. Timings
//! are printed, never asserted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use airlift_builder::iso::read::Iso;
use airlift_integration::tools::{free_port, require};
use airlift_integration::vm::{self, Firmware, Media, Vm};

/// The demo ISO, built once per test process (shared with boot_demo, host0_qemu).
const CONFIG: &str = "image-configs/demo.yaml";

/// What the console must show on a Secure Boot boot: GRUB ran our config,
/// the kernel's EFI stub, lockdown and Secure Boot lines, and airlift's.
const SECURE_BOOT_LINES: [&str; 5] = [
    "airlift: GRUB boots /boot/vmlinuz from volume AIRLIFT_DEMO",
    "EFI stub: UEFI Secure Boot is enabled.",
    "Kernel is locked down from EFI Secure Boot",
    "secureboot: Secure boot enabled",
    "AIRLIFT-SECUREBOOT enabled",
];

/// What the kernel prints when lockdown refuses a module (or would have
/// loaded an unsigned one): none may appear.
const MODULE_REFUSALS: [&str; 3] = [
    "module verification failed",
    "unsigned module loading is restricted",
    "Loading of unsigned module",
];

/// The magic Linux appends after a module's signature.
const MODULE_SIGNATURE_MAGIC: &[u8] = b"~Module signature appended~\n";

/// host0 from `media` under Secure Boot: ready, the lines above, the
/// media on `dev_prefix`, and the status endpoint saying enabled.
fn host0_under_secure_boot(media: Media, dev_prefix: &str) {
    require("qemu-system-x86_64", "qemu-system-x86");
    let curl = require("curl", "curl");
    let iso = vm::built(CONFIG);
    let tmp = tempfile::Builder::new()
        .prefix("airlift-secure-boot-")
        .tempdir()
        .unwrap();
    let port = free_port();
    let mut vm = Vm::new(Firmware::UefiSecureBoot, media, iso);
    vm.memory_mib = 2048;
    vm.cpus = 2;
    vm.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:5000"),
        "-device".into(),
        "virtio-net-pci,netdev=n0".into(),
    ];
    let vars = vm.firmware.vars_copy(tmp.path()).unwrap();
    let serial = tmp.path().join("serial.log");
    let mut running = vm::start(vm.cpus, &vm::qemu_args(&vm, vars.as_deref()), &serial);
    let start = Instant::now();
    let ready = vm::wait_serial(
        &mut running,
        &serial,
        "AIRLIFT-HOST0-READY",
        Duration::from_secs(480),
    );
    eprintln!("secure boot {media}: {ready} after {:.1?}", start.elapsed());
    let log = vm::read_lossy(&serial);
    for line in SECURE_BOOT_LINES {
        assert!(
            log.contains(line),
            "{media}: no {line:?} on the console\n{}",
            vm::tail(&log, 60)
        );
    }
    for refusal in MODULE_REFUSALS {
        let hit = log.lines().find(|l| l.contains(refusal));
        assert!(hit.is_none(), "{media}: a module was refused: {hit:?}");
    }
    // isofs, the CD or USB drivers and the filesystem all load as modules.
    let mounted = format!("AIRLIFT-MEDIA-MOUNTED label=AIRLIFT_DEMO dev={dev_prefix}");
    assert!(
        log.contains(&mounted),
        "{media}: no {mounted:?}\n{}",
        vm::tail(&log, 60)
    );

    // virtio_net is a module too: the status comes through the network.
    let url = format!("https://127.0.0.1:{port}/airlift/v1/status");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status: serde_json::Value = loop {
        let out = Command::new(&curl)
            .args(["-sSk", "--max-time", "30", &url])
            .output()
            .unwrap();
        if let Ok(v) = serde_json::from_slice(&out.stdout) {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "{url}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            vm::tail(&vm::read_lossy(&serial), 40)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert_eq!(status["secure-boot"], "enabled", "{status}");
    assert_eq!(status["appliance"]["name"], "demo", "{status}");
    eprintln!(
        "secure boot {media}: status says secure-boot {} after {:.1?}",
        status["secure-boot"],
        start.elapsed()
    );
}

#[test]
fn demo_boots_from_a_cd_under_secure_boot_with_microsoft_keys() {
    host0_under_secure_boot(Media::Cd, "/dev/sr");
}

#[test]
fn demo_boots_from_a_usb_stick_under_secure_boot_with_microsoft_keys() {
    host0_under_secure_boot(Media::Usb, "/dev/sd");
}

/// Where the Authenticode signature (PE certificate table) starts in a
/// PE32+ image.
fn pe_certificate_offset(pe: &[u8]) -> u64 {
    let u32_at = |o: usize| u32::from_le_bytes(pe[o..o + 4].try_into().unwrap());
    let nt = u32_at(0x3c) as usize;
    assert_eq!(&pe[nt..nt + 4], b"PE\0\0", "the kernel is not a PE image");
    let optional = nt + 24;
    assert_eq!(&pe[optional..optional + 2], &[0x0b, 0x02], "not PE32+");
    // Data directory 4 (certificate table): file offset and size.
    let dir = optional + 112 + 4 * 8;
    let (offset, size) = (u32_at(dir), u32_at(dir + 4));
    assert!(size > 0, "the kernel carries no signature");
    u64::from(offset)
}

#[test]
fn a_kernel_with_one_byte_flipped_is_refused() {
    use std::os::unix::fs::FileExt;
    require("qemu-system-x86_64", "qemu-system-x86");
    let tmp = tempfile::Builder::new()
        .prefix("airlift-secure-boot-flip-")
        .tempdir()
        .unwrap();
    let copy = tmp.path().join("demo-flipped.iso");
    std::fs::copy(vm::built(CONFIG), &copy).unwrap();
    let kernel = Iso::open(&copy)
        .unwrap()
        .lookup("boot/vmlinuz")
        .unwrap()
        .expect("/boot/vmlinuz in the ISO");
    let (lba, len) = kernel.extents[0];
    let at = u64::from(lba) * 2048;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let mut pe = vec![0u8; len as usize];
    f.read_exact_at(&mut pe, at).unwrap();
    // A byte in the middle of the signed image, well before the signature.
    let flip = u64::from(len) / 2;
    assert!(flip < pe_certificate_offset(&pe));
    f.write_all_at(&[pe[flip as usize] ^ 0xff], at + flip)
        .unwrap();
    f.sync_all().unwrap();
    drop(f);

    let mut vm = Vm::new(Firmware::UefiSecureBoot, Media::Cd, &copy);
    vm.timeout = Duration::from_secs(300);
    let boot = vm::boot_until(&vm, "bad shim signature").unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!(
        "secure boot, flipped kernel: refused ({}) after {:.1?}",
        boot.marker_line, boot.elapsed
    );
    assert!(
        boot.serial.contains("airlift: GRUB boots /boot/vmlinuz"),
        "the refusal did not come from our GRUB\n{}",
        vm::tail(&boot.serial, 30)
    );
    assert!(
        !boot.serial.contains("EFI stub:") && !boot.serial.contains("Linux version"),
        "the flipped kernel started\n{}",
        vm::tail(&boot.serial, 30)
    );
}

/// Every `.ko` in the demo's initramfs is the base's file byte for byte,
/// with its appended signature (lockdown loads no other).
#[test]
fn initramfs_modules_are_debians_signed_files() {
    let zstd = require("zstd", "zstd");
    let cpio = require("cpio", "cpio");
    let tmp = tempfile::Builder::new()
        .prefix("airlift-secure-boot-ko-")
        .tempdir()
        .unwrap();
    let initrd = Iso::open(vm::built(CONFIG))
        .unwrap()
        .read_file("boot/initrd.img")
        .unwrap()
        .expect("/boot/initrd.img in the ISO");
    let packed = tmp.path().join("initrd.img");
    std::fs::write(&packed, initrd).unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let status = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' -dc '{}' | '{}' -id --quiet --no-absolute-filenames 'lib/modules/*' 'usr/lib/modules/*'",
            zstd.display(),
            packed.display(),
            cpio.display()
        ))
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "unpacking the initramfs");
    let base_modules = vm::airlift_base().join("modules");
    let mut checked = 0;
    for (path, rel) in ko_files(&root) {
        let ours = std::fs::read(&path).unwrap();
        let theirs = std::fs::read(base_modules.join(&rel))
            .unwrap_or_else(|e| panic!("{rel}: not in the base's modules: {e}"));
        assert!(ours == theirs, "{rel} differs from the base's file");
        assert!(
            ours.ends_with(MODULE_SIGNATURE_MAGIC),
            "{rel} carries no module signature"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "only {checked} modules found in the initramfs"
    );
    eprintln!("initramfs: {checked} modules, each Debian's signed file byte for byte");
}

/// `(path, path below lib/modules/RELEASE/)` of every `.ko` under `root`.
fn ko_files(root: &Path) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() && p.extension().is_some_and(|x| x == "ko") {
                let s = p.to_string_lossy().to_string();
                let after = s.split("/modules/").nth(1).expect("under lib/modules");
                let rel = after.split_once('/').expect("below the release").1;
                out.push((p.clone(), rel.to_string()));
            }
        }
    }
    out
}
