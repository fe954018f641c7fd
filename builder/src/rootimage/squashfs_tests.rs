//! The squashfs writer against the reference tool, `unsquashfs`
//! (squashfs-tools, `just deps`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::*;

fn tree(dir: &Path) -> Tree {
    let host = dir.join("tool");
    fs::write(&host, "#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(&host, fs::Permissions::from_mode(0o700)).unwrap();
    let mut t = Tree::new();
    t.insert("dev", Node::dir(0o755)).unwrap();
    t.insert(
        "dev/console",
        Node {
            kind: Kind::CharDev { major: 5, minor: 1 },
            perm: 0o600,
            meta: Default::default(),
        },
    )
    .unwrap();
    t.insert("usr/bin", Node::dir(0o755)).unwrap();
    let mut tool = Node::from_host(&host).unwrap();
    tool.perm = 0o755;
    t.insert("usr/bin/tool", tool).unwrap();
    t.insert("bin", Node::symlink("usr/bin")).unwrap();
    t.insert("etc/secret", Node::bytes(b"s3cret\n".to_vec(), 0o600))
        .unwrap();
    // Incompressible and larger than a block, so data blocks and a
    // fragment are both written.
    let big: Vec<u8> = (0u32..300_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    t.insert("var/big", Node::bytes(big, 0o644)).unwrap();
    t
}

fn unsquashfs(args: &[&str], image: &Path) -> String {
    let out = Command::new("unsquashfs")
        .args(args)
        .arg(image)
        .output()
        .expect("running unsquashfs (squashfs-tools: just deps)");
    assert!(
        out.status.success(),
        "unsquashfs {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn image_lists_owners_modes_links_and_devices() {
    let dir = tempfile::tempdir().unwrap();
    let t = tree(dir.path());
    let image = dir.path().join("root.squashfs");
    let report = write(&t, 1_700_000_000, 3, &image).unwrap();
    assert_eq!(report.compression, "zstd-3");
    assert_eq!(report.bytes, fs::metadata(&image).unwrap().len());
    assert_eq!(report.sha256, hash_file(&image).unwrap().1);

    let sb = unsquashfs(&["-s"], &image);
    assert!(sb.contains("Compression zstd"), "{sb}");
    assert!(sb.contains("Block size 131072"), "{sb}");
    assert!(sb.contains("2023"), "the image time is the epoch: {sb}");

    let list = unsquashfs(&["-lls", "-d", "R"], &image);
    let line = |path: &str| -> String {
        list.lines()
            .find(|l| l.ends_with(path) || l.contains(&format!("{path} -> ")))
            .unwrap_or_else(|| panic!("{path} not listed:\n{list}"))
            .to_string()
    };
    assert!(
        line("R/dev/console").starts_with("crw------- root/root"),
        "{list}"
    );
    assert!(line("R/dev/console").contains("5,  1"), "{list}");
    assert!(
        line("R/usr/bin/tool").starts_with("-rwxr-xr-x root/root"),
        "{list}"
    );
    assert!(
        line("R/etc/secret").starts_with("-rw------- root/root"),
        "{list}"
    );
    assert!(line("R/bin").starts_with("lrwxrwxrwx root/root"), "{list}");
    assert!(line("R/bin").ends_with("R/bin -> usr/bin"), "{list}");
    assert!(
        line("R/var/big").contains(" 300000 2023-11-14 22:13 "),
        "{list}"
    );

    // The contents come back byte for byte.
    let out = dir.path().join("out");
    let status = Command::new("unsquashfs")
        .args(["-no-xattrs", "-q", "-d"])
        .arg(&out)
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success() || out.join("var/big").is_file());
    let Kind::File {
        data: Data::Bytes(big),
        ..
    } = &t.get("var/big").unwrap().kind
    else {
        panic!("var/big is bytes")
    };
    assert_eq!(&fs::read(out.join("var/big")).unwrap(), big);
    assert_eq!(
        fs::read_to_string(out.join("usr/bin/tool")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
}

#[test]
fn same_tree_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.squashfs");
    let b = dir.path().join("b.squashfs");
    let ra = write(&tree(dir.path()), 1_700_000_000, 3, &a).unwrap();
    let rb = write(&tree(dir.path()), 1_700_000_000, 3, &b).unwrap();
    assert_eq!(ra, rb);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
    // Another epoch is another image.
    let c = dir.path().join("c.squashfs");
    let rc = write(&tree(dir.path()), 1_700_000_001, 3, &c).unwrap();
    assert_ne!(ra.sha256, rc.sha256);
}

#[test]
fn owners_go_into_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tree(dir.path());
    let owned = |mut n: Node, uid: u32, gid: u32| {
        n.meta.uid = uid;
        n.meta.gid = gid;
        n
    };
    t.insert("var/mail", owned(Node::dir(0o2775), 0, 8))
        .unwrap();
    t.insert(
        "home/u/notes",
        owned(Node::bytes(b"hi\n".to_vec(), 0o600), 1000, 1001),
    )
    .unwrap();
    t.insert(
        "big-ids",
        owned(Node::symlink("home"), 3_000_000_000, 70_000),
    )
    .unwrap();
    let image = dir.path().join("root.squashfs");
    write(&t, 1_700_000_000, 3, &image).unwrap();
    let list = unsquashfs(&["-lln", "-d", "R"], &image);
    let owner = |path: &str| -> String {
        list.lines()
            .find(|l| l.ends_with(path) || l.contains(&format!("{path} -> ")))
            .unwrap_or_else(|| panic!("{path} not listed:\n{list}"))
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(owner("R/var/mail"), "drwxrwsr-x 0/8");
    assert_eq!(owner("R/home/u/notes"), "-rw------- 1000/1001");
    assert_eq!(owner("R/home"), "drwxr-xr-x 0/0");
    assert_eq!(owner("R/big-ids"), "lrwxrwxrwx 3000000000/70000");
    assert_eq!(owner("R/usr/bin/tool"), "-rwxr-xr-x 0/0");
    // The same tree gives the same bytes with ids beyond root too.
    let again = dir.path().join("again.squashfs");
    write(&t, 1_700_000_000, 3, &again).unwrap();
    assert_eq!(fs::read(&image).unwrap(), fs::read(&again).unwrap());
    // The contents still come back.
    let out = dir.path().join("out");
    let status = Command::new("unsquashfs")
        .args(["-no-xattrs", "-q", "-d"])
        .arg(&out)
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success() || out.join("home/u/notes").is_file());
    assert_eq!(fs::read(out.join("home/u/notes")).unwrap(), b"hi\n");
}
