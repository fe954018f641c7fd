//! Integration tests of the ISO writer against real tools: xorriso/osirrox,
//! isoinfo, sgdisk, fsck.fat, mtools and blkid. Each test skips (with a
//! message) only if the tool it needs is not installed.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_builder::iso::{
    self, read::Iso, read::Kind, BiosBoot, FileSource, IsoImage, Tree, UefiBoot,
};
use sha2::{Digest, Sha256};

const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const ISOHDPFX: &str = "/usr/lib/ISOLINUX/isohdpfx.bin";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const SDBOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const EPOCH: i64 = 1_700_000_000;

/// The tools these checks run are required: a missing one fails with the
/// package to install (`just deps` installs them all); nothing skips.
fn need(tool: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: run `just deps` (apt-get install {package})"
    );
}

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn sha256_file(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).unwrap();
    hex::encode(h.finalize())
}

fn write_file(p: &Path, bytes: &[u8], mode: u32) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A host tree with the payload shapes airlift uses, plus edge cases.
fn sample_host_tree(dir: &Path) -> PathBuf {
    let root = dir.join("src");
    let blob = b"layer bytes";
    let hexd = hex::encode(Sha256::digest(blob));
    write_file(
        &root.join(format!("airlift/bundle/blobs/sha256/{hexd}")),
        blob,
        0o644,
    );
    write_file(
        &root.join("airlift/bundle/oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        0o644,
    );
    write_file(&root.join("boot/vmlinuz"), &vec![0x5A; 300_000], 0o644);
    write_file(&root.join("bin/run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
    let long = format!("{}.txt", "a-very-long-file-name-".repeat(10));
    write_file(&root.join("docs").join(&long), b"long name", 0o600);
    write_file(&root.join("docs/Mixed Case & spaces.md"), b"mixed", 0o644);
    write_file(&root.join("empty"), b"", 0o644);
    std::os::unix::fs::symlink("../boot/vmlinuz", root.join("bin/kernel")).unwrap();
    std::os::unix::fs::symlink(
        "/".to_string() + &"deep/".repeat(60) + "target",
        root.join("bin/longlink"),
    )
    .unwrap();
    root
}

fn sample_image(dir: &Path) -> IsoImage {
    let host = sample_host_tree(dir);
    let mut tree = Tree::new();
    tree.add_tree_from_dir("/", &host).unwrap();
    tree.add_file(
        "/isolinux/isolinux.bin",
        FileSource::Path(ISOLINUX.into()),
        0o644,
    )
    .unwrap();
    tree.add_file(
        "/isolinux/ldlinux.c32",
        FileSource::Path(LDLINUX.into()),
        0o644,
    )
    .unwrap();
    tree.add_file(
        "/isolinux/isolinux.cfg",
        FileSource::Bytes(b"DEFAULT linux\n".to_vec()),
        0o644,
    )
    .unwrap();
    IsoImage {
        volume_id: "AIRLIFT_TEST_LABEL_LONGER_THAN16".into(),
        epoch: EPOCH,
        tree,
        bios: isolinux_boot(),
        uefi: Some(UefiBoot {
            esp_files: {
                let mut files =
                    systemd_boot_files(FileSource::Bytes(b"title x\nlinux /vmlinuz\n".to_vec()));
                files.push(("vmlinuz".into(), FileSource::Bytes(vec![0xAB; 5000])));
                files
            },
        }),
        sha256sums: true,
    }
}

fn need_boot_files() {
    for p in [ISOLINUX, ISOHDPFX, LDLINUX, SDBOOT] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: run `just deps` (isolinux, syslinux-common, systemd-boot-efi)"
        );
    }
}

/// BIOS boot through isolinux, as every sample image here has it.
fn isolinux_boot() -> Option<BiosBoot> {
    Some(BiosBoot {
        boot_file: "/isolinux/isolinux.bin".into(),
        mbr_code: ISOHDPFX.into(),
    })
}

/// The ESP's systemd-boot files: the loader, its config and `entry` as
/// the one boot entry.
fn systemd_boot_files(entry: FileSource) -> Vec<(String, FileSource)> {
    vec![
        (
            "EFI/BOOT/BOOTX64.EFI".into(),
            FileSource::Path(SDBOOT.into()),
        ),
        (
            "loader/loader.conf".into(),
            FileSource::Bytes(b"default x.conf\ntimeout 0\n".to_vec()),
        ),
        ("loader/entries/x.conf".into(), entry),
    ]
}

#[test]
fn hybrid_image_checks_clean_with_real_tools() {
    need_boot_files();
    need("xorriso", "xorriso");
    let tmp = tempfile::tempdir().unwrap();
    let image = sample_image(tmp.path());
    let out = tmp.path().join("out.iso");
    let report = iso::write(&image, &out).unwrap();
    if let Ok(keep) = std::env::var("AIRLIFT_KEEP_ISO") {
        std::fs::copy(&out, keep).unwrap();
    }
    assert_eq!(std::fs::metadata(&out).unwrap().len(), report.image_bytes);

    // El Torito: both entries.
    let (ok, text) = run(Command::new("xorriso").args(["-indev"]).arg(&out).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert!(ok, "{text}");
    assert!(text.contains("El Torito boot img :   1  BIOS"), "{text}");
    assert!(text.contains("El Torito boot img :   2  UEFI"), "{text}");
    assert!(text.contains("GPT"), "{text}");

    // GPT.
    need("sgdisk", "gdisk");
    {
        let (ok, text) = run(Command::new("sgdisk").arg("-v").arg(&out));
        assert!(ok && text.contains("No problems found"), "{text}");
    }

    // Label as Linux sees it.
    need("blkid", "util-linux");
    {
        let (_, text) = run(Command::new("blkid")
            .args(["-p", "-o", "value", "-s", "LABEL"])
            .arg(&out));
        assert_eq!(text.trim(), image.volume_id, "blkid label");
    }

    // Our reader: partitions, boot entries, tree.
    let r = Iso::open(&out).unwrap();
    assert_eq!(r.volume_id, image.volume_id);
    let gpt = r.gpt().unwrap().expect("GPT");
    let esp = gpt
        .iter()
        .find(|p| p.type_name == "EFI System")
        .expect("ESP partition");
    let data = gpt
        .iter()
        .find(|p| p.type_name == "Basic data")
        .expect("data partition");
    assert_eq!(data.last + 1, esp.first);
    let boots = r.el_torito().unwrap();
    assert_eq!(boots.len(), 2);
    assert_eq!(u64::from(boots[1].lba) * 4, esp.first);
    assert_eq!(Some(boots[0].lba), report.bios_boot_lba);

    // ESP: fsck.fat clean, files byte-identical via mtools.
    let esp_img = tmp.path().join("esp.img");
    {
        let mut f = std::fs::File::open(&out).unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(esp.first * 512)).unwrap();
        let mut take = f.take((esp.last + 1 - esp.first) * 512);
        let mut o = std::fs::File::create(&esp_img).unwrap();
        std::io::copy(&mut take, &mut o).unwrap();
    }
    need("fsck.fat", "dosfstools");
    {
        let (ok, text) = run(Command::new("fsck.fat").arg("-n").arg("-v").arg(&esp_img));
        assert!(ok, "fsck.fat: {text}");
        let lower = text.to_lowercase();
        for bad in [
            "differ",
            "dirty",
            "invalid",
            "bad",
            "corrected",
            "free cluster summary",
            "lost",
        ] {
            assert!(!lower.contains(bad), "fsck.fat reported {bad:?}: {text}");
        }
    }
    need("mcopy", "mtools");
    {
        let got = tmp.path().join("BOOTX64.EFI");
        let (ok, text) = run(Command::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(&esp_img)
            .arg("::/EFI/BOOT/BOOTX64.EFI")
            .arg(&got));
        assert!(ok, "{text}");
        assert_eq!(sha256_file(&got), sha256_file(Path::new(SDBOOT)));
        let (ok, text) = run(Command::new("mdir")
            .arg("-/")
            .arg("-i")
            .arg(&esp_img)
            .arg("::/"));
        assert!(ok, "{text}");
        assert!(
            text.contains("loader.conf") && text.contains("x.conf"),
            "{text}"
        );
    }

    // Boot info table patched into isolinux.bin.
    let bin = r.read_file("isolinux/isolinux.bin").unwrap().unwrap();
    let orig = std::fs::read(ISOLINUX).unwrap();
    assert_eq!(bin.len(), orig.len());
    assert_eq!(&bin[64..], &orig[64..]);
    assert_eq!(u32::from_le_bytes(bin[8..12].try_into().unwrap()), 16);
    assert_eq!(
        u32::from_le_bytes(bin[12..16].try_into().unwrap()),
        report.bios_boot_lba.unwrap()
    );
    assert_eq!(
        u32::from_le_bytes(bin[16..20].try_into().unwrap()) as usize,
        orig.len()
    );

    // osirrox extracts byte-identical files with Rock Ridge names, modes, symlinks.
    let ext = tmp.path().join("extract");
    let (ok, text) = run(Command::new("osirrox")
        .arg("-indev")
        .arg(&out)
        .args(["-extract", "/"])
        .arg(&ext));
    assert!(ok, "{text}");
    let host = tmp.path().join("src");
    for (path, node) in image.tree.files() {
        let got = ext.join(&path);
        let iso::Node::File { src, mode, .. } = node else {
            unreachable!()
        };
        let want = match src {
            FileSource::Path(p) => sha256_file(p),
            FileSource::Bytes(b) => hex::encode(Sha256::digest(b)),
        };
        if path != "isolinux/isolinux.bin" {
            assert_eq!(sha256_file(&got), want, "{path}");
        }
        let m = std::fs::symlink_metadata(&got)
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        assert_eq!(m, *mode, "mode of {path}");
    }
    assert_eq!(
        std::fs::read_link(ext.join("bin/kernel")).unwrap(),
        Path::new("../boot/vmlinuz")
    );
    assert_eq!(
        std::fs::read_link(ext.join("bin/longlink")).unwrap(),
        std::fs::read_link(host.join("bin/longlink")).unwrap()
    );
    // And our reader sees the same.
    let link = r.lookup("bin/longlink").unwrap().unwrap();
    assert_eq!(
        link.kind,
        Kind::Symlink {
            target: std::fs::read_link(host.join("bin/longlink"))
                .unwrap()
                .to_str()
                .unwrap()
                .into()
        }
    );
    let walked = r.walk().unwrap();
    assert_eq!(
        walked.iter().filter(|(_, e)| e.kind == Kind::File).count(),
        image.tree.files().len() + 1, // SHA256SUMS, made by the writer
    );

    // Joliet names.
    need("isoinfo", "genisoimage");
    {
        let (ok, text) = run(Command::new("isoinfo").args(["-J", "-f", "-i"]).arg(&out));
        assert!(ok, "{text}");
        assert!(text.contains("/docs/Mixed Case & spaces.md"), "{text}");
        assert!(text.contains("/isolinux/isolinux.cfg"), "{text}");
        let blob_hex = hex::encode(Sha256::digest(b"layer bytes"));
        assert!(
            text.contains(&format!("/airlift/bundle/blobs/sha256/{blob_hex}")),
            "{text}"
        );
        // The 230-character name is truncated to 64 UCS-2 characters.
        let line = text
            .lines()
            .find(|l| l.starts_with("/docs/a-very"))
            .expect("long name listed");
        assert_eq!(
            line.trim_start_matches("/docs/").chars().count(),
            64,
            "{line}"
        );
    }
}

#[test]
fn same_inputs_give_identical_bytes() {
    need_boot_files();
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ia = sample_image(a.path());
    let ib = sample_image(b.path());
    iso::write(&ia, &a.path().join("x.iso")).unwrap();
    iso::write(&ib, &b.path().join("x.iso")).unwrap();
    assert_eq!(
        sha256_file(&a.path().join("x.iso")),
        sha256_file(&b.path().join("x.iso"))
    );
    // A different epoch changes the image.
    let mut ic = sample_image(&a.path().join("c"));
    ic.epoch += 1;
    iso::write(&ic, &a.path().join("c.iso")).unwrap();
    assert_ne!(
        sha256_file(&a.path().join("x.iso")),
        sha256_file(&a.path().join("c.iso"))
    );
}

#[test]
fn failed_write_leaves_nothing_at_the_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let mut tree = Tree::new();
    tree.add_file("/a", FileSource::Bytes(b"x".to_vec()), 0o644)
        .unwrap();
    let image = IsoImage {
        volume_id: "OK".into(),
        epoch: 0,
        tree,
        bios: Some(BiosBoot {
            boot_file: "/missing.bin".into(),
            mbr_code: ISOHDPFX.into(),
        }),
        uefi: None,
        sha256sums: false,
    };
    let out = tmp.path().join("x.iso");
    let err = iso::write(&image, &out).unwrap_err();
    assert!(format!("{err:#}").contains("/missing.bin"), "{err:#}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let bad = IsoImage {
        volume_id: "lower-case".into(),
        bios: None,
        ..image
    };
    assert!(format!("{:#}", iso::write(&bad, &out).unwrap_err()).contains("volume id"));
}

/// A 4.5 GiB sparse file becomes a multi-extent file in a >4 GiB volume;
/// xorriso lists it with the right size and osirrox extracts the same bytes.
/// The output stays sparse (holes are seeked over, not written).
#[test]
fn sparse_file_over_4gib_reads_back() {
    need("xorriso", "xorriso");
    use std::os::unix::fs::{FileExt, MetadataExt};
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.bin");
    let size: u64 = (4 << 30) + (512 << 20) + 12_345;
    {
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(size).unwrap();
        f.write_all_at(b"start", 0).unwrap();
        // Straddles the first extent boundary (4 GiB - 2048).
        f.write_all_at(&[0xC3; 8192], 0xFFFF_F800 - 4096).unwrap();
        f.write_all_at(b"the end", size - 7).unwrap();
    }
    let mut tree = Tree::new();
    tree.add_file("/data/big.bin", FileSource::Path(big.clone()), 0o640)
        .unwrap();
    tree.add_file(
        "/small.txt",
        FileSource::Bytes(b"after the big one".to_vec()),
        0o644,
    )
    .unwrap();
    let image = IsoImage {
        volume_id: "BIG".into(),
        epoch: EPOCH,
        tree,
        bios: None,
        uefi: None,
        sha256sums: false,
    };
    let out = tmp.path().join("big.iso");
    let report = iso::write(&image, &out).unwrap();
    assert!(report.image_bytes > 4 << 30);
    let md = std::fs::metadata(&out).unwrap();
    assert!(
        md.blocks() * 512 < 64 << 20,
        "output is not sparse: {} bytes allocated",
        md.blocks() * 512
    );

    let (ok, text) = run(Command::new("xorriso")
        .arg("-indev")
        .arg(&out)
        .args(["-find", "/", "-exec", "lsdl"]));
    assert!(ok, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("big.bin"))
        .expect("big.bin listed");
    assert!(line.contains(&size.to_string()), "{line}");
    assert!(line.starts_with("-rw-r-----"), "{line}");

    let r = Iso::open(&out).unwrap();
    let e = r.lookup("data/big.bin").unwrap().unwrap();
    assert_eq!(e.size, size);
    assert_eq!(e.extents.len(), 2);
    let mut h = Sha256::new();
    std::io::copy(&mut r.open_file(&e).unwrap(), &mut h).unwrap();
    let want = sha256_file(&big);
    assert_eq!(hex::encode(h.finalize()), want);
    assert_eq!(
        r.read_file("small.txt").unwrap().unwrap(),
        b"after the big one"
    );

    let ext = tmp.path().join("extracted.bin");
    let (ok, text) = run(Command::new("osirrox")
        .arg("-indev")
        .arg(&out)
        .args(["-extract", "/data/big.bin"])
        .arg(&ext));
    assert!(ok, "{text}");
    assert_eq!(sha256_file(&ext), want);
}

/// Writes the image for `tests/scripts/iso-smoke-boot.sh` (a manual QEMU
/// boot): kernel and initrd in ISO 9660 for isolinux and in the ESP for
/// systemd-boot. Needs AIRLIFT_SMOKE_KERNEL, AIRLIFT_SMOKE_INITRD and
/// AIRLIFT_SMOKE_OUT.
#[test]
#[ignore = "run by tests/scripts/iso-smoke-boot.sh"]
fn smoke_boot_image() {
    let var = |k: &str| PathBuf::from(std::env::var(k).unwrap_or_else(|_| panic!("set {k}")));
    let (kernel, initrd, out) = (
        var("AIRLIFT_SMOKE_KERNEL"),
        var("AIRLIFT_SMOKE_INITRD"),
        var("AIRLIFT_SMOKE_OUT"),
    );
    let cmdline = "console=ttyS0 panic=-1";
    let mut tree = Tree::new();
    tree.add_file("/boot/vmlinuz", FileSource::Path(kernel.clone()), 0o644)
        .unwrap();
    tree.add_file("/boot/initrd.img", FileSource::Path(initrd.clone()), 0o644)
        .unwrap();
    tree.add_file(
        "/isolinux/isolinux.bin",
        FileSource::Path(ISOLINUX.into()),
        0o644,
    )
    .unwrap();
    tree.add_file(
        "/isolinux/ldlinux.c32",
        FileSource::Path(LDLINUX.into()),
        0o644,
    )
    .unwrap();
    let cfg = format!("DEFAULT linux\nPROMPT 0\nLABEL linux\n  KERNEL /boot/vmlinuz\n  APPEND initrd=/boot/initrd.img {cmdline}\n");
    tree.add_file(
        "/isolinux/isolinux.cfg",
        FileSource::Bytes(cfg.into_bytes()),
        0o644,
    )
    .unwrap();
    let entry =
        format!("title airlift smoke\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n");
    let image = IsoImage {
        volume_id: "AIRLIFT_SMOKE".into(),
        epoch: EPOCH,
        tree,
        bios: isolinux_boot(),
        uefi: Some(UefiBoot {
            esp_files: {
                let mut files = systemd_boot_files(FileSource::Bytes(entry.into_bytes()));
                files.push(("vmlinuz".into(), FileSource::Path(kernel)));
                files.push(("initrd.img".into(), FileSource::Path(initrd)));
                files
            },
        }),
        sha256sums: false,
    };
    let report = iso::write(&image, &out).unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}

/// The real isolinux.bin gets its boot info table; SHA256SUMS, made by
/// the writer, matches every file's bytes as the ISO holds them.
#[test]
fn sha256sums_match_the_patched_isolinux() {
    need_boot_files();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sample.iso");
    iso::write(&sample_image(tmp.path()), &out).unwrap();
    let r = Iso::open(&out).unwrap();
    let sums = String::from_utf8(r.read_file("SHA256SUMS").unwrap().unwrap()).unwrap();
    let on_disc = r.read_file("isolinux/isolinux.bin").unwrap().unwrap();
    assert_ne!(on_disc, std::fs::read(ISOLINUX).unwrap(), "not patched");
    let mut checked = 0;
    for line in sums.lines() {
        let (want, path) = line.split_once("  ").unwrap();
        let bytes = r.read_file(path).unwrap().unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), want, "{path}");
        checked += 1;
    }
    assert!(sums.contains("  isolinux/isolinux.bin\n"), "{sums}");
    assert!(checked >= 5, "{sums}");
}
