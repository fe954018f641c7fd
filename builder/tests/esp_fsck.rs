//! The ESP writer against `fsck.fat -n`, beside the `fatfs` crate writing
//! the same files: the measurement behind keeping airlift's own FAT
//! writer (see `builder/src/iso/esp/mod.rs`). Ours must check clean;
//! fatfs 0.3.6 is flagged on every subdirectory. When that stops being
//! true this test fails on purpose: re-measure and consider fatfs.

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

use airlift_builder::iso::{self, FileSource, IsoImage, Tree, UefiBoot};

/// The ESP's files: subdirectories as systemd-boot needs them.
fn esp_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("EFI/BOOT/BOOTX64.EFI", vec![0xAB; 120_000]),
        (
            "loader/loader.conf",
            b"default airlift.conf\ntimeout 0\n".to_vec(),
        ),
        (
            "loader/entries/airlift.conf",
            b"title x\nlinux /vmlinuz\n".to_vec(),
        ),
        ("vmlinuz", vec![0xCD; 3_000_000]),
    ]
}

/// `fsck.fat -n` on `image`: None when fsck.fat is not installed, else
/// (clean, its output).
fn fsck(image: &Path) -> Option<(bool, String)> {
    let o = match Command::new("fsck.fat").arg("-n").arg(image).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running fsck.fat: {e}"),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    Some((o.status.success(), text))
}

/// airlift's ESP, cut out of a UEFI-only ISO.
fn ours(dir: &Path) -> std::path::PathBuf {
    let image = IsoImage {
        volume_id: "ESP_FSCK".into(),
        epoch: 1_700_000_000,
        tree: Tree::new(),
        bios: None,
        uefi: Some(UefiBoot {
            esp_files: esp_files()
                .into_iter()
                .map(|(p, b)| (p.to_string(), FileSource::Bytes(b)))
                .collect(),
        }),
        sha256sums: false,
    };
    let iso_path = dir.join("esp.iso");
    let report = iso::write(&image, &iso_path).unwrap();
    let esp = report.esp.expect("an ESP");
    let mut f = std::fs::File::open(&iso_path).unwrap();
    f.seek(SeekFrom::Start(u64::from(esp.lba) * 2048)).unwrap();
    let mut bytes = vec![0; esp.bytes as usize];
    f.read_exact(&mut bytes).unwrap();
    let out = dir.join("ours.img");
    std::fs::write(&out, bytes).unwrap();
    out
}

/// The same files written by the fatfs crate into a freshly formatted
/// 16 MiB image.
fn with_fatfs(dir: &Path) -> std::path::PathBuf {
    let mut disk = Cursor::new(vec![0u8; 16 << 20]);
    let opts = fatfs::FormatVolumeOptions::new().volume_id(0x1234_5678);
    fatfs::format_volume(&mut disk, opts).unwrap();
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).unwrap();
        let root = fs.root_dir();
        for d in ["EFI", "EFI/BOOT", "loader", "loader/entries"] {
            root.create_dir(d).unwrap();
        }
        for (path, bytes) in esp_files() {
            root.create_file(path).unwrap().write_all(&bytes).unwrap();
        }
        drop(root);
        fs.unmount().unwrap();
    }
    let out = dir.join("fatfs.img");
    std::fs::write(&out, disk.into_inner()).unwrap();
    out
}

#[test]
fn our_esp_checks_clean_and_fatfs_subdirectories_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let Some((clean, text)) = fsck(&ours(dir.path())) else {
        eprintln!(
            "SKIPPED: fsck.fat is not installed (apt-get install dosfstools, or `just deps`)"
        );
        return;
    };
    assert!(clean, "fsck.fat flags airlift's ESP:\n{text}");
    let (clean, text) = fsck(&with_fatfs(dir.path())).expect("fsck.fat ran once already");
    assert!(
        !clean,
        "fsck.fat now passes the fatfs crate's ESP: re-measure and consider using fatfs \
         for the ESP (issue 16)\n{text}"
    );
    assert!(
        text.contains("/EFI/BOOT") && text.contains("Expected a valid '.' entry"),
        "fsck.fat flags fatfs's ESP for another reason than its subdirectories:\n{text}"
    );
}
