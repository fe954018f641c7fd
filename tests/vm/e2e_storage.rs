//! host0's data disk in a VM (image-configs/e2e-storage.yaml: the demo
//! appliance with `storage.dataDisk.minSizeGiB: 1` and pushes allowed
//! with a token), built with the real `airlift build`, booted under QEMU
//! (TCG, BIOS) with the registry port forwarded to the host:
//!
//! 1. A blank sparse disk is partitioned, formatted and mounted, the
//!    bundle is loaded onto it, an image is pushed from the host; after a
//!    power-off the VM boots again WITHOUT the ISO (kernel and initramfs
//!    taken from it and given to QEMU directly) and serves both the pushed
//!    image and the bundle from the disk.
//! 2. A disk holding an ext4 filesystem is left byte-for-byte alone, the
//!    console names it, host0 serves from the media and refuses pushes.
//! 3. No disk at all: served from the media, pushes refused with the
//!    message, the status endpoint says `media-only`.
//!
//! Needs `just base`; `just e2e-storage`. One VM at a time (2 cores).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::tools::{free_port, require, run_ok, workspace_root};
use airlift_integration::vm::{self, Running};

const TOKEN_FILE: &str = "image-configs/files/e2e-storage/etc/airlift/push-token";
const BOOT: Duration = Duration::from_secs(600);
const NO_DISK: &str = "this appliance has no data disk: pushes are disabled";

/// One VM at a time: the machine has 2 cores.
static ONE_VM: Mutex<()> = Mutex::new(());

/// The ISO, and its kernel, initramfs and kernel command line.
struct Image {
    _dir: tempfile::TempDir,
    iso: &'static Path,
    kernel: PathBuf,
    initrd: PathBuf,
    append: String,
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let xorriso = require("xorriso", "xorriso");
        let dir = tempfile::Builder::new()
            .prefix("airlift-e2e-storage-")
            .tempdir()
            .unwrap();
        let iso = vm::built("image-configs/e2e-storage.yaml");
        let (kernel, initrd, cfg) = (
            dir.path().join("vmlinuz"),
            dir.path().join("initrd.img"),
            dir.path().join("isolinux.cfg"),
        );
        run_ok(Command::new(xorriso).args([
            "-osirrox",
            "on",
            "-indev",
            iso.to_str().unwrap(),
            "-extract",
            "/boot/vmlinuz",
            kernel.to_str().unwrap(),
            "-extract",
            "/boot/initrd.img",
            initrd.to_str().unwrap(),
            "-extract",
            "/isolinux/isolinux.cfg",
            cfg.to_str().unwrap(),
        ]));
        let append = std::fs::read_to_string(&cfg)
            .unwrap()
            .lines()
            .find_map(|l| l.trim().strip_prefix("APPEND ").map(str::to_string))
            .expect("isolinux.cfg has an APPEND line");
        Image {
            _dir: dir,
            iso,
            kernel,
            initrd,
            append,
        }
    })
}

/// How the VM boots.
enum Boot<'a> {
    /// From the ISO as a CD.
    Iso,
    /// Kernel and initramfs given to QEMU, no ISO attached.
    Direct(&'a Image),
}

/// A running VM; killed (power cut) when dropped.
struct Vm {
    qemu: Running,
    serial: PathBuf,
    port: u16,
}

impl Vm {
    fn start(dir: &Path, name: &str, boot: Boot, disk: Option<&Path>) -> Vm {
        require("qemu-system-x86_64", "qemu-system-x86");
        let port = free_port();
        let serial = dir.join(format!("{name}.serial.log"));
        let mut a: Vec<String> = vec!["-m".into(), "2048".into(), "-net".into(), "none".into()];
        match boot {
            Boot::Iso => a.extend([
                "-drive".into(),
                format!(
                    "file={},media=cdrom,readonly=on,if=ide,index=2",
                    image().iso.display()
                ),
            ]),
            Boot::Direct(img) => a.extend([
                "-kernel".into(),
                img.kernel.display().to_string(),
                "-initrd".into(),
                img.initrd.display().to_string(),
                "-append".into(),
                img.append.clone(),
            ]),
        }
        if let Some(d) = disk {
            a.extend([
                "-drive".into(),
                format!("file={},format=raw,if=virtio", d.display()),
            ]);
        }
        a.extend([
            "-netdev".into(),
            format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:5000"),
            "-device".into(),
            "virtio-net-pci,netdev=n0".into(),
        ]);
        Vm {
            qemu: vm::start(2, &a, &serial),
            serial,
            port,
        }
    }

    fn log(&self) -> String {
        vm::read_lossy(&self.serial)
    }

    /// The first serial line holding `marker`, waiting up to `timeout`.
    fn wait(&mut self, marker: &str, timeout: Duration) -> String {
        vm::wait_serial(&mut self.qemu, &self.serial, marker, timeout)
    }

    fn reference(&self, repo: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo}", self.port)
    }

    /// `skopeo inspect` of `repo` (retried while the guest network comes
    /// up); its digest.
    fn inspect(&self, repo: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = Command::new("skopeo")
                .args([
                    "inspect",
                    "--no-tags",
                    "--tls-verify=false",
                    &self.reference(repo),
                ])
                .output()
                .unwrap();
            if out.status.success() {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                return v["Digest"].as_str().unwrap().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "skopeo inspect {repo} kept failing: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                vm::tail(&self.log(), 60)
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// `skopeo copy` of the OCI layout `src` to `repo` with the push
    /// token; its output and the digest of the manifest it wrote.
    fn push(&self, src: &str, repo: &str) -> (std::process::Output, String) {
        let token = std::fs::read_to_string(workspace_root().join(TOKEN_FILE)).unwrap();
        let digest_file = tempfile::NamedTempFile::new().unwrap();
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &format!("push:{}", token.trim()),
                "--digestfile",
                digest_file.path().to_str().unwrap(),
                src,
                &self.reference(repo),
            ])
            .output()
            .unwrap();
        let digest = std::fs::read_to_string(digest_file.path()).unwrap_or_default();
        (out, digest.trim().to_string())
    }

    /// `GET /airlift/v1/status`.
    fn status(&self) -> serde_json::Value {
        let out = run_ok(Command::new(require("curl", "curl")).args([
            "-sfk",
            &format!("https://127.0.0.1:{}/airlift/v1/status", self.port),
        ]));
        serde_json::from_str(&out).unwrap()
    }
}

/// A local OCI layout with one small random image, as an `oci:` source.
fn pushable(dir: &Path, seed: u64) -> String {
    let layout = dir.join(format!("push-{seed}"));
    write_layout(&layout, &[TestImage::random("pushed", seed, 300_000)]).unwrap();
    format!("oci:{}:pushed", layout.display())
}

fn sparse(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

fn sha256_file(path: &Path) -> String {
    run_ok(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

const BUSYBOX: &str = "registry.airlift.test/demo/busybox:1.35";

#[test]
fn blank_disk_is_formatted_loaded_and_serves_pushes_after_a_reboot_without_the_iso() {
    require("skopeo", "skopeo");
    let img = image();
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("data.raw");
    sparse(&disk, 2 << 30);

    // First boot, from the ISO: the disk is prepared, the bundle loaded.
    let start = Instant::now();
    let mut vm = Vm::start(tmp.path(), "first", Boot::Iso, Some(&disk));
    let st = vm.wait("AIRLIFT-STORAGE ", BOOT);
    eprintln!("{st} after {:.1?}", start.elapsed());
    assert!(st.contains("mode=disk device=/dev/vda"), "{st}");
    let loaded = vm.wait("AIRLIFT-HOST0-LOADED", BOOT);
    eprintln!("{loaded} after {:.1?}", start.elapsed());
    let bundle_digest = vm.inspect(BUSYBOX);
    let src = pushable(tmp.path(), 7);
    let (out, pushed_digest) = vm.push(&src, "e2e/pushed:1");
    assert!(
        out.status.success(),
        "push failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pushed_digest.starts_with("sha256:"), "{pushed_digest:?}");
    assert_eq!(vm.inspect("e2e/pushed:1"), pushed_digest);
    let s = vm.status();
    assert_eq!(s["storage"]["mode"], "disk", "{s}");
    assert_eq!(s["storage"]["device"], "/dev/vda", "{s}");
    drop(vm); // power cut

    // The disk has airlift's finished partition.
    let gpt =
        run_ok(Command::new(require("sgdisk", "gdisk")).args(["--info=1", disk.to_str().unwrap()]));
    assert!(gpt.contains("Partition name: 'AIRLIFT_DATA'"), "{gpt}");

    // Second boot without the ISO: everything comes from the disk.
    let start = Instant::now();
    let mut vm = Vm::start(tmp.path(), "second", Boot::Direct(img), Some(&disk));
    let st = vm.wait("AIRLIFT-STORAGE ", BOOT);
    assert!(st.contains("mode=disk device=/dev/vda"), "{st}");
    let no_media = vm.wait("AIRLIFT-HOST0-NO-MEDIA", BOOT);
    eprintln!("{no_media}");
    let ready = vm.wait("AIRLIFT-HOST0-READY", BOOT);
    eprintln!("{ready} after {:.1?}", start.elapsed());
    assert!(ready.contains("state=ready"), "{ready}");
    assert!(
        !vm.log().contains("mkfs"),
        "the second boot must not format"
    );
    assert_eq!(vm.inspect("e2e/pushed:1"), pushed_digest);
    assert_eq!(vm.inspect(BUSYBOX), bundle_digest);
    let s = vm.status();
    assert_eq!(s["serving-from"], "disk", "{s}");
    assert_eq!(s["storage"]["mode"], "disk", "{s}");
}

#[test]
fn a_disk_holding_a_filesystem_is_left_alone_and_pushes_are_refused() {
    require("skopeo", "skopeo");
    let mkfs = require("mkfs.ext4", "e2fsprogs");
    let _ = image();
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("old.raw");
    sparse(&disk, 1 << 30);
    run_ok(Command::new(mkfs).args(["-q", "-F", "-L", "old", disk.to_str().unwrap()]));
    let before = sha256_file(&disk);

    let mut vm = Vm::start(tmp.path(), "old", Boot::Iso, Some(&disk));
    let st = vm.wait("AIRLIFT-STORAGE ", BOOT);
    eprintln!("{st}");
    assert!(st.contains("mode=media-only"), "{st}");
    assert!(
        st.contains("vda holds an ext4 filesystem (label \"old\", uuid "),
        "the console must name the disk and what it holds: {st}"
    );
    let ready = vm.wait("AIRLIFT-HOST0-READY", BOOT);
    assert!(ready.contains("state=media-only"), "{ready}");
    vm.inspect(BUSYBOX);
    let (out, _) = vm.push(&pushable(tmp.path(), 8), "e2e/pushed:1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(NO_DISK), "{err}");
    let s = vm.status();
    assert_eq!(s["storage"]["mode"], "media-only", "{s}");
    drop(vm);
    assert_eq!(sha256_file(&disk), before, "the disk was written to");
}

#[test]
fn without_a_disk_the_media_is_served_and_pushes_are_refused() {
    require("skopeo", "skopeo");
    let _ = image();
    let _one = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let mut vm = Vm::start(tmp.path(), "nodisk", Boot::Iso, None);
    let st = vm.wait("AIRLIFT-STORAGE ", BOOT);
    eprintln!("{st}");
    assert!(
        st.contains("mode=media-only") && st.contains("no empty disk of at least 1 GiB"),
        "{st}"
    );
    let ready = vm.wait("AIRLIFT-HOST0-READY", BOOT);
    assert!(ready.contains("state=media-only"), "{ready}");
    assert!(vm.inspect(BUSYBOX).starts_with("sha256:"));
    let (out, _) = vm.push(&pushable(tmp.path(), 9), "e2e/pushed:1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(NO_DISK), "{err}");
    let s = vm.status();
    assert_eq!(s["storage"]["mode"], "media-only", "{s}");
    assert!(
        s["storage"]["message"]
            .as_str()
            .unwrap()
            .contains("pushes are disabled"),
        "{s}"
    );
    assert_eq!(s["serving-from"], "media", "{s}");
}
