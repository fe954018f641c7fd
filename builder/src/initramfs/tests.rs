//! Tests of the whole writer against the real `cpio` and `zstd` tools.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;

use super::*;

fn put(root: &Path, rel: &str, body: &str, mode: u32) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, body).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A base with merged /usr, an overlay that replaces a file and adds one
/// through the `lib -> usr/lib` link.
fn fixture(dir: &Path) -> Spec {
    let base = dir.join("base");
    put(&base, "usr/bin/tool", "#!/bin/sh\necho base\n", 0o755);
    put(&base, "etc/motd", "base motd\n", 0o644);
    put(&base, "usr/lib/x/keep", "keep\n", 0o600);
    symlink("usr/lib", base.join("lib")).unwrap();
    symlink("usr/bin", base.join("bin")).unwrap();
    let overlay = dir.join("overlay");
    put(&overlay, "etc/motd", "overlay motd\n", 0o644);
    put(&overlay, "lib/systemd/system/a.service", "[Unit]\n", 0o644);
    Spec {
        base: RootSource::Host(base),
        overlays: vec![overlay],
        files: vec![(
            "etc/airlift/appliance.json".into(),
            Node::bytes(b"{\"name\":\"t\"}\n".to_vec(), 0o644),
        )],
        modules: None,
        epoch: 1_700_000_000,
        level: 3,
    }
}

fn unpack(initrd: &Path, into: &Path) -> String {
    fs::create_dir_all(into).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | cpio -idm --no-absolute-filenames --quiet && zstd -dc '{}' | cpio -it --quiet",
            initrd.display(),
            initrd.display()
        ))
        .current_dir(into)
        .output()
        .expect("running zstd and cpio (just deps)");
    assert!(
        out.status.success(),
        "cpio failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cpio_tools_extract_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path());
    let initrd = dir.path().join("initrd.img");
    let report = write(&spec, &initrd).unwrap();
    assert_eq!(
        report.compressed_bytes,
        fs::metadata(&initrd).unwrap().len()
    );

    let x = dir.path().join("x");
    let listing = unpack(&initrd, &x);
    let names: Vec<&str> = listing.lines().collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "members are in sorted order");
    assert!(names.contains(&"dev/console"));

    assert_eq!(
        fs::read_to_string(x.join("etc/motd")).unwrap(),
        "overlay motd\n"
    );
    assert_eq!(
        fs::read_to_string(x.join("usr/lib/systemd/system/a.service")).unwrap(),
        "[Unit]\n"
    );
    assert!(!names.contains(&"lib/systemd"), "nothing below a symlink");
    assert_eq!(fs::read_link(x.join("lib")).unwrap(), Path::new("usr/lib"));
    let tool = fs::metadata(x.join("usr/bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
    let keep = fs::metadata(x.join("usr/lib/x/keep")).unwrap();
    assert_eq!(keep.permissions().mode() & 0o7777, 0o600);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(tool.mtime(), 1_700_000_000);
    assert_eq!(
        fs::read_to_string(x.join("etc/airlift/appliance.json")).unwrap(),
        "{\"name\":\"t\"}\n"
    );
}

#[test]
fn two_writes_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path());
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    let ra = write(&spec, &a).unwrap();
    // Touch a file's mtime: the output must not change.
    let motd = host_base(&spec).join("etc/motd");
    fs::write(&motd, fs::read(&motd).unwrap()).unwrap();
    let rb = write(&spec, &b).unwrap();
    assert_eq!(ra.sha256, rb.sha256);
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn a_tar_base_gives_the_same_tree_as_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path());
    let tar_path = dir.path().join("base.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&tar_path)
        .arg("-C")
        .arg(host_base(&spec))
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    let from_tar = Spec {
        base: RootSource::Host(tar_path),
        ..spec.clone()
    };
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    assert_eq!(
        write(&spec, &a).unwrap().sha256,
        write(&from_tar, &b).unwrap().sha256
    );
}

#[test]
fn a_missing_base_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = fixture(dir.path());
    spec.base = RootSource::Host(dir.path().join("no-such-rootfs"));
    let err = write(&spec, &dir.path().join("i.img")).unwrap_err();
    assert!(format!("{err:#}").contains("no-such-rootfs"), "{err:#}");
    assert!(!dir.path().join("i.img").exists());
}

#[test]
fn optional_modules_the_kernel_lacks_are_skipped_required_ones_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = fixture(dir.path());
    let mods = dir.path().join("modules");
    put(&mods, "modules.builtin", "kernel/net/unix/unix.ko\n", 0o644);
    spec.modules = Some(ModulesSpec {
        dir: mods.clone(),
        release: "6.1.0-test".into(),
        names: vec![],
        optional: vec!["unix".into(), "no_such_nic".into()],
    });
    let out = dir.path().join("initrd.img");
    let report = write(&spec, &out).unwrap();
    assert_eq!(report.skipped_modules, ["no_such_nic"]);
    assert!(report.modules.is_empty(), "{:?}", report.modules);
    let listing = unpack(&out, &dir.path().join("x"));
    assert!(
        listing.contains("lib/modules/6.1.0-test/modules.dep"),
        "{listing}"
    );

    // Named by the config, the same module is an error and nothing is written.
    let m = spec.modules.as_mut().unwrap();
    m.names = vec!["no_such_nic".into()];
    m.optional.clear();
    let out = dir.path().join("required.img");
    let err = format!("{:#}", write(&spec, &out).unwrap_err());
    assert!(err.contains("no_such_nic"), "{err}");
    assert!(err.contains(&mods.display().to_string()), "{err}");
    assert!(!out.exists());
}

#[test]
fn owners_go_into_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tree::new();
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
    let mut capped = Node::bytes(b"ping".to_vec(), 0o755);
    capped
        .meta
        .xattrs
        .insert("security.capability".into(), vec![1, 0, 0, 2]);
    t.insert("usr/bin/ping", capped).unwrap();
    let out = dir.path().join("initrd.img");
    write_tree(&t, Chosen::default(), 1_700_000_000, 3, &out).unwrap();
    let listing = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "zstd -dc '{}' | cpio -itv --numeric-uid-gid --quiet",
            out.display()
        ))
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let line = |path: &str| {
        listing
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{path} not listed:\n{listing}"))
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("var/mail"), "drwxrwsr-x 2 0 8");
    assert_eq!(line("home/u/notes"), "-rw------- 1 1000 1001");
    assert_eq!(line("home/u"), "drwxr-xr-x 2 0 0");
    assert_eq!(line("usr/bin/ping"), "-rwxr-xr-x 1 0 0");
}

#[test]
fn a_tree_base_gives_the_same_archive_as_the_folder() {
    // A base image's root arrives as a tree; the archive is the same.
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path());
    let mut base = Tree::new();
    base.add_host_dir(host_base(&spec), "").unwrap();
    let from_tree = Spec {
        base: RootSource::Tree(std::sync::Arc::new(base)),
        ..spec.clone()
    };
    let a = dir.path().join("a.img");
    let b = dir.path().join("b.img");
    assert_eq!(
        write(&spec, &a).unwrap().sha256,
        write(&from_tree, &b).unwrap().sha256
    );
}

/// The host folder of a path-base spec.
fn host_base(spec: &Spec) -> &Path {
    match &spec.base {
        RootSource::Host(p) => p,
        RootSource::Tree(_) => panic!("a host base"),
    }
}

#[test]
fn files_sharing_a_host_file_are_hard_links() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("perl");
    fs::write(&host, "#!perl\n").unwrap();
    let node = |perm: u32| Node {
        kind: Kind::File {
            data: Data::Path(host.clone()),
            size: 7,
        },
        perm,
        meta: Meta::default(),
    };
    let mut t = Tree::new();
    t.insert("usr/bin/perl", node(0o755)).unwrap();
    t.insert("usr/bin/perl5.36.0", node(0o755)).unwrap();
    t.insert("usr/bin/zz-perl", node(0o755)).unwrap();
    // Other permissions: another inode with its own copy.
    t.insert("usr/share/perl-copy", node(0o644)).unwrap();
    let out = dir.path().join("initrd.img");
    write_tree(&t, Chosen::default(), 1_700_000_000, 3, &out).unwrap();
    let x = dir.path().join("x");
    unpack(&out, &x);
    let meta = |p: &str| fs::metadata(x.join(p)).unwrap();
    let first = meta("usr/bin/perl");
    assert_eq!(first.nlink(), 3);
    for p in ["usr/bin/perl5.36.0", "usr/bin/zz-perl"] {
        assert_eq!(meta(p).ino(), first.ino(), "{p}");
        assert_eq!(fs::read_to_string(x.join(p)).unwrap(), "#!perl\n", "{p}");
    }
    assert_eq!(meta("usr/share/perl-copy").nlink(), 1);
    assert_eq!(
        fs::read_to_string(x.join("usr/share/perl-copy")).unwrap(),
        "#!perl\n"
    );
    // The bytes are in the archive once for the three names (and once for
    // the copy).
    let cpio = Command::new("zstd")
        .arg("-dc")
        .arg(&out)
        .output()
        .unwrap()
        .stdout;
    let count = cpio.windows(7).filter(|w| w == b"#!perl\n").count();
    assert_eq!(count, 2);
}

#[test]
fn extended_attributes_are_listed_in_the_root_and_an_overlay_file_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixture(dir.path());
    let mut base = Tree::new();
    let mut ping = Node::bytes(b"\x7fELF ping".to_vec(), 0o755);
    ping.meta.xattrs.insert(
        "security.capability".into(),
        vec![1, 0, 0, 2, 0, 0x20, 0, 0],
    );
    base.insert("usr/bin/ping", ping).unwrap();
    let mut motd = Node::bytes(b"base motd\n".to_vec(), 0o644);
    motd.meta
        .xattrs
        .insert("user.origin".into(), b"image".to_vec());
    base.insert("etc/motd", motd).unwrap();
    let from_tree = Spec {
        base: RootSource::Tree(std::sync::Arc::new(base)),
        ..spec.clone()
    };
    let (tree, _, _) = collect(&from_tree).unwrap();
    let node = tree
        .get(airlift_appliance::xattrs::MANIFEST_PATH)
        .expect("the list is in the root");
    let Kind::File {
        data: Data::Bytes(json),
        ..
    } = &node.kind
    else {
        panic!("{node:?}")
    };
    let list: airlift_appliance::xattrs::Manifest = serde_json::from_slice(json).unwrap();
    // The fixture's overlay replaces etc/motd: its attribute went with it.
    assert_eq!(
        list.entries(),
        vec![Ok(airlift_appliance::xattrs::Entry {
            path: "usr/bin/ping",
            name: "security.capability",
            value: vec![1, 0, 0, 2, 0, 0x20, 0, 0]
        })]
    );
    // A base without attributes gets no list.
    let (plain, _, _) = collect(&spec).unwrap();
    assert!(plain
        .get(airlift_appliance::xattrs::MANIFEST_PATH)
        .is_none());
}
