//! The data-disk probe: on byte buffers with hand-placed signatures, and
//! on sparse files formatted by the real tools (mkfs.ext4, mkfs.xfs,
//! mkfs.btrfs, mkfs.vfat, mkswap, sgdisk, cryptsetup, xorriso). The
//! tools are required: a missing one fails with the package to install.

use std::path::Path;
use std::process::Command;

use airlift_firstboot::datadisk::plan::{self, Action, DiskState, PART_PENDING, PART_READY};
use airlift_firstboot::datadisk::probe::{self, describe, Finding};

const MIB: u64 = 1 << 20;

fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).is_file()
        || Path::new("/sbin").join(tool).is_file();
    assert!(found, "{tool} is missing: apt-get install -y {package}");
}

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sparse(dir: &Path, name: &str, size: u64) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(size).unwrap();
    p
}

fn probe_file(p: &Path) -> Vec<Finding> {
    let f = std::fs::File::open(p).unwrap();
    let size = f.metadata().unwrap().len();
    probe::probe(&probe::Device { file: &f, size }).unwrap()
}

fn probe_buf(b: &[u8]) -> Vec<Finding> {
    probe::probe(b).unwrap()
}

/// Writes one signature into a zeroed device image.
type Maker = Box<dyn Fn(&mut Vec<u8>)>;

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

// ---- byte buffers ----

#[test]
fn zeros_are_blank() {
    assert_eq!(probe_buf(&vec![0u8; 4 << 20]), vec![]);
    assert_eq!(plan::classify(&[]), DiskState::Blank);
    // Tiny devices do not trip the probe.
    assert_eq!(probe_buf(&[0u8; 100]), vec![]);
}

#[test]
fn each_signature_alone_is_found() {
    let size = 4 << 20;
    let cases: Vec<(&str, Maker)> = vec![
        ("MBR", Box::new(|b| put(b, 510, &[0x55, 0xaa]))),
        ("GPT", Box::new(|b| put(b, 512, b"EFI PART"))),
        ("ext", Box::new(|b| put(b, 1080, &[0x53, 0xef]))),
        ("XFS", Box::new(|b| put(b, 0, b"XFSB"))),
        ("ISO", Box::new(|b| put(b, 32769, b"CD001"))),
        ("btrfs", Box::new(|b| put(b, 0x10040, b"_BHRfS_M"))),
        ("swap", Box::new(|b| put(b, 4086, b"SWAPSPACE2"))),
        (
            "FAT",
            Box::new(|b| {
                put(b, 82, b"FAT32   ");
                put(b, 510, &[0x55, 0xaa]);
            }),
        ),
        ("LUKS", Box::new(|b| put(b, 0, b"LUKS\xba\xbe\x00\x01"))),
        ("LVM", Box::new(|b| put(b, 512, b"LABELONE"))),
        (
            "MD 1.2",
            Box::new(|b| put(b, 4096, &0xa92b4efcu32.to_le_bytes())),
        ),
        (
            "MD 1.1",
            Box::new(|b| put(b, 0, &0xa92b4efcu32.to_le_bytes())),
        ),
        (
            "MD 1.0",
            Box::new(move |b| put(b, size - 8192, &0xa92b4efcu32.to_le_bytes())),
        ),
        (
            "MD 0.90",
            Box::new(move |b| put(b, size - 65536, &0xa92b4efcu32.to_le_bytes())),
        ),
        ("junk", Box::new(|b| put(b, 700_000, b"hello"))),
    ];
    for (what, make) in cases {
        let mut b = vec![0u8; size];
        make(&mut b);
        let found = probe_buf(&b);
        assert_eq!(found.len(), 1, "{what}: {found:?}");
        let text = describe(&found);
        let expect = match what {
            "MBR" => "MBR partition table",
            "GPT" => "GPT partition table",
            "ext" => "ext2 filesystem",
            "XFS" => "XFS filesystem",
            "ISO" => "ISO 9660 filesystem",
            "btrfs" => "btrfs filesystem",
            "swap" => "swap space",
            "FAT" => "FAT32 filesystem",
            "LUKS" => "LUKS",
            "LVM" => "LVM physical volume",
            "MD 1.2" => "metadata 1.2",
            "MD 1.1" => "metadata 1.1",
            "MD 1.0" => "metadata 1.0",
            "MD 0.90" => "metadata 0.90",
            _ => "matches no known signature",
        };
        assert!(text.contains(expect), "{what}: {text}");
        assert!(
            matches!(plan::classify(&found), DiskState::Foreign(_)),
            "{what} must not count as blank"
        );
    }
}

#[test]
fn refusal_names_the_disk_what_it_holds_and_the_fix() {
    let found = vec![Finding::Filesystem {
        kind: "ext4",
        label: Some("old".into()),
        uuid: Some("0b1c".into()),
    }];
    let a = plan::decide("/dev/vdb", &plan::classify(&found), false);
    assert_eq!(
        a,
        Action::Refuse(
            "storage: /dev/vdb holds an ext4 filesystem (label \"old\", uuid 0b1c); not \
             touching it. Set storage.dataDisk.wipe: true for /dev/vdb to use it."
                .into()
        )
    );
    assert_eq!(
        plan::decide("/dev/vdb", &plan::classify(&found), true),
        Action::Format { wipe: true }
    );
    // wipe never re-formats airlift's own finished disk.
    assert_eq!(
        plan::decide("/dev/vdb", &DiskState::Ours { ready: true }, true),
        Action::Mount
    );
}

// ---- sparse files made by the real tools ----

#[test]
fn mkfs_ext4_on_a_file() {
    require("mkfs.ext4", "e2fsprogs");
    let dir = tempfile::tempdir().unwrap();
    let img = sparse(dir.path(), "ext4.img", 64 * MIB);
    sh(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-L",
            "old",
            "-U",
            "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
            img.to_str().unwrap(),
        ],
    );
    let found = probe_file(&img);
    assert_eq!(
        found,
        vec![Finding::Filesystem {
            kind: "ext4",
            label: Some("old".into()),
            uuid: Some("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0".into()),
        }]
    );
    // ext2 is told apart.
    sh("mkfs.ext2", &["-q", "-F", img.to_str().unwrap()]);
    assert!(describe(&probe_file(&img)).starts_with("an ext2 filesystem"));
}

#[test]
fn other_filesystems_on_files() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, u64, &[&str], &str); 5] = [
        ("mkfs.xfs", "xfsprogs", 320 * MIB, &["-q", "-f", "-L", "oldxfs"], "an XFS filesystem (label \"oldxfs\""),
        ("mkfs.btrfs", "btrfs-progs", 200 * MIB, &["-q", "-f", "-L", "oldbtr"], "a btrfs filesystem (label \"oldbtr\""),
        ("mkfs.vfat", "dosfstools", 64 * MIB, &["-F", "32", "-n", "OLDFAT"], "a FAT32 filesystem (label \"OLDFAT\""),
        ("mkswap", "util-linux", 64 * MIB, &["-L", "oldswap"], "swap space (label \"oldswap\""),
        ("mkfs.ext4", "e2fsprogs", 64 * MIB, &["-q", "-F", "-O", "^has_journal,^extent,^64bit,^flex_bg,^huge_file,^dir_nlink,^extra_isize,^metadata_csum"], "an ext2 filesystem"),
    ];
    for (tool, pkg, size, args, expect) in cases {
        require(tool, pkg);
        let img = sparse(dir.path(), &format!("{tool}.img"), size);
        let mut a: Vec<&str> = args.to_vec();
        a.push(img.to_str().unwrap());
        sh(tool, &a);
        let found = probe_file(&img);
        assert!(
            describe(&found).starts_with(expect),
            "{tool}: {}",
            describe(&found)
        );
        assert!(matches!(plan::classify(&found), DiskState::Foreign(_)));
    }
}

#[test]
fn luks_and_iso_on_files() {
    require("cryptsetup", "cryptsetup-bin");
    require("xorriso", "xorriso");
    let dir = tempfile::tempdir().unwrap();
    let img = sparse(dir.path(), "luks.img", 32 * MIB);
    let key = dir.path().join("key");
    std::fs::write(&key, "0123456789abcdef").unwrap();
    sh(
        "cryptsetup",
        &[
            "luksFormat",
            "--batch-mode",
            "--type",
            "luks2",
            "--pbkdf",
            "pbkdf2",
            "--pbkdf-force-iterations",
            "1000",
            "--key-file",
            key.to_str().unwrap(),
            img.to_str().unwrap(),
        ],
    );
    let found = probe_file(&img);
    assert!(
        describe(&found).starts_with("an encrypted LUKS volume (uuid "),
        "{found:?}"
    );

    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    let iso = dir.path().join("x.iso");
    sh(
        "xorriso",
        &[
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "OLDISO",
            "-o",
            iso.to_str().unwrap(),
            src.to_str().unwrap(),
        ],
    );
    assert_eq!(
        describe(&probe_file(&iso)),
        "an ISO 9660 filesystem (label \"OLDISO\")"
    );
}

#[test]
fn sgdisk_tables_ours_and_foreign() {
    require("sgdisk", "gdisk");
    let dir = tempfile::tempdir().unwrap();
    let img = sparse(dir.path(), "gpt.img", 64 * MIB);
    let p = img.to_str().unwrap();
    // Our pending layout: exactly what format::partition writes.
    sh(
        "sgdisk",
        &[
            "--clear",
            "--new=1:0:0",
            "--typecode=1:8300",
            "--change-name",
            &format!("1:{PART_PENDING}"),
            p,
        ],
    );
    let found = probe_file(&img);
    assert_eq!(plan::classify(&found), DiskState::Ours { ready: false });
    assert_eq!(
        plan::decide(p, &plan::classify(&found), false),
        Action::FinishFormat
    );
    sh("sgdisk", &["--change-name", &format!("1:{PART_READY}"), p]);
    assert_eq!(
        plan::classify(&probe_file(&img)),
        DiskState::Ours { ready: true }
    );

    // Same name, other type: not ours.
    sh("sgdisk", &["--typecode=1:8e00", p]);
    assert!(matches!(
        plan::classify(&probe_file(&img)),
        DiskState::Foreign(_)
    ));
    // Two partitions: not ours, and the message lists them.
    sh(
        "sgdisk",
        &[
            "--clear",
            "--new=1:0:+8M",
            "--change-name=1:boot",
            "--new=2:0:0",
            "--change-name",
            &format!("2:{PART_READY}"),
            p,
        ],
    );
    let found = probe_file(&img);
    assert!(matches!(plan::classify(&found), DiskState::Foreign(_)));
    assert_eq!(
        describe(&found),
        format!("a GPT partition table (2 partitions: \"boot\", \"{PART_READY}\")")
    );
    // A filesystem on the whole disk beside our table is not ours either.
    sh(
        "sgdisk",
        &[
            "--clear",
            "--new=1:0:0",
            "--typecode=1:8300",
            "--change-name",
            &format!("1:{PART_READY}"),
            p,
        ],
    );
    let f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    std::os::unix::fs::FileExt::write_at(&f, b"XFSB", 0).unwrap();
    assert!(matches!(
        plan::classify(&probe_file(&img)),
        DiskState::Foreign(_)
    ));
}

#[test]
fn an_mbr_table_from_sfdisk() {
    require("sfdisk", "fdisk");
    let dir = tempfile::tempdir().unwrap();
    let img = sparse(dir.path(), "mbr.img", 64 * MIB);
    let mut child = Command::new("sfdisk")
        .args(["--quiet", img.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"label: dos\n,,83\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(probe_file(&img), vec![Finding::Mbr]);
}
