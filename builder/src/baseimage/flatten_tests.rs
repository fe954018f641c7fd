//! Flattening layers built in memory with the `tar` crate; hostile
//! members written byte by byte (the crate refuses to write some of them).

use std::fs;
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tar::{EntryType, Header};

use super::*;

/// One layer under construction.
struct L(tar::Builder<Vec<u8>>);

impl L {
    fn new() -> L {
        L(tar::Builder::new(Vec::new()))
    }

    /// Appends a member whose name (and link name) are written raw, so
    /// `..`, non-UTF-8 names and any type can be made.
    fn raw(mut self, name: &[u8], kind: EntryType, mode: u32, link: &[u8], data: &[u8]) -> L {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    /// A member with an owner (a name the crate accepts).
    fn owned(
        mut self,
        name: &str,
        kind: EntryType,
        mode: u32,
        owner: (u64, u64),
        data: &[u8],
    ) -> L {
        let mut h = Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
        self
    }

    fn dir(self, name: &str, mode: u32) -> L {
        self.raw(name.as_bytes(), EntryType::Directory, mode, b"", b"")
    }

    fn file(self, name: &str, body: &str) -> L {
        self.raw(
            name.as_bytes(),
            EntryType::Regular,
            0o644,
            b"",
            body.as_bytes(),
        )
    }

    fn symlink(self, name: &str, target: &str) -> L {
        self.raw(
            name.as_bytes(),
            EntryType::Symlink,
            0o777,
            target.as_bytes(),
            b"",
        )
    }

    fn hardlink(self, name: &str, target: &str) -> L {
        self.raw(
            name.as_bytes(),
            EntryType::Link,
            0o644,
            target.as_bytes(),
            b"",
        )
    }

    /// A member with a name or link target of any length (GNU long
    /// name records), as the crate writes it.
    fn long(mut self, name: &str, kind: EntryType, link: Option<&str>) -> L {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        match link {
            Some(link) => self.0.append_link(&mut h, name, link).unwrap(),
            None => self.0.append_data(&mut h, name, io::empty()).unwrap(),
        }
        self
    }

    /// A GNU sparse member: one byte of data at `offset`, the rest holes.
    fn sparse(mut self, name: &str, offset: u64) -> L {
        let mut h = Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(EntryType::GNUSparse);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        let g = h.as_gnu_mut().unwrap();
        g.sparse[0]
            .offset
            .copy_from_slice(format!("{offset:011o}\0").as_bytes());
        g.sparse[0].numbytes.copy_from_slice(b"00000000001\0");
        g.realsize
            .copy_from_slice(format!("{:011o}\0", offset + 1).as_bytes());
        h.set_cksum();
        self.0.append(&h, &b"x"[..]).unwrap();
        self
    }

    fn pax(mut self, records: &[(&str, &[u8])]) -> L {
        self.0
            .append_pax_extensions(records.iter().copied())
            .unwrap();
        self
    }

    fn done(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn layers(bytes: Vec<Vec<u8>>) -> Vec<Result<Layer<'static>>> {
    bytes
        .into_iter()
        .enumerate()
        .map(|(i, b)| {
            Ok(Layer {
                digest: format!("sha256:layer{i}"),
                reader: Box::new(Cursor::new(b)) as Box<dyn Read>,
            })
        })
        .collect()
}

/// A work folder with an empty store, as the caller makes it.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("store")).unwrap();
        Work { dir }
    }

    fn store(&self) -> std::path::PathBuf {
        self.dir.path().join("store")
    }

    fn run(&self, l: Vec<Vec<u8>>) -> Result<Flattened> {
        flatten(layers(l), &self.store())
    }

    /// The work folder holds the store and nothing else, and the store
    /// holds only numbered regular files.
    fn assert_clean(&self) {
        let top: Vec<String> = fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(top, ["store"], "something was written beside the store");
        for folder in fs::read_dir(self.store()).unwrap() {
            let folder = folder.unwrap();
            let name = folder.file_name().into_string().unwrap();
            assert!(name.parse::<u64>().is_ok(), "store holds {name}");
            assert!(folder.file_type().unwrap().is_dir(), "store holds {name}");
            for e in fs::read_dir(folder.path()).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                assert!(name.parse::<u64>().is_ok(), "store holds {name}");
                assert!(e.file_type().unwrap().is_file(), "store holds {name}");
            }
        }
    }
}

fn paths(t: &Tree) -> Vec<&str> {
    t.iter().map(|(p, _)| p.as_str()).collect()
}

fn contents(t: &Tree, path: &str) -> String {
    match &t.get(path).unwrap_or_else(|| panic!("{path} missing")).kind {
        Kind::File {
            data: Data::Path(p),
            size,
        } => {
            let s = fs::read_to_string(p).unwrap();
            assert_eq!(s.len() as u64, *size);
            s
        }
        other => panic!("{path} is {other:?}"),
    }
}

fn store_file(t: &Tree, path: &str) -> std::path::PathBuf {
    match &t.get(path).unwrap().kind {
        Kind::File {
            data: Data::Path(p),
            ..
        } => p.clone(),
        other => panic!("{path} is {other:?}"),
    }
}

#[test]
fn a_whiteout_removes_a_lower_file() {
    let w = Work::new();
    let l1 = L::new()
        .dir("etc", 0o755)
        .file("etc/a", "a")
        .file("etc/b", "b")
        .done();
    let l2 = L::new().file("etc/.wh.a", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(paths(&f.tree), ["etc", "etc/b"]);
    assert_eq!(f.report.whiteouts, 1);
    assert_eq!(f.report.files, 1);
    assert_eq!(f.report.layers, 2);
}

#[test]
fn a_whiteout_removes_a_lower_dir_with_its_contents() {
    let w = Work::new();
    let l1 = L::new()
        .file("var/cache/apt/x", "x")
        .file("var/log", "l")
        .done();
    let l2 = L::new().file("var/.wh.cache", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(paths(&f.tree), ["var", "var/log"]);
}

#[test]
fn a_whiteout_leaves_the_same_layer_alone() {
    let w = Work::new();
    let l1 = L::new().file("a", "lower").done();
    // Written before its whiteout in the same layer: stays (the spec
    // applies whiteouts to lower layers only).
    let l2 = L::new().file("a", "upper").file(".wh.a", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(contents(&f.tree, "a"), "upper");
}

#[test]
fn an_opaque_dir_hides_lower_children_and_keeps_its_own_layers() {
    let w = Work::new();
    let l1 = L::new()
        .dir("d", 0o755)
        .file("d/old", "old")
        .file("d/sub/deep", "deep")
        .file("other", "o")
        .done();
    let l2 = L::new()
        .dir("d", 0o700)
        .file("d/sub/new", "new")
        .file("d/.wh..wh..opq", "")
        .file("d/late", "late")
        .done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(
        paths(&f.tree),
        ["d", "d/late", "d/sub", "d/sub/new", "other"]
    );
    assert_eq!(f.tree.get("d").unwrap().perm, 0o700);
    assert_eq!(f.report.whiteouts, 1);
}

#[test]
fn the_specs_opaque_example_gives_the_same_tree_in_either_order() {
    // image-spec layer.md: the marker applies first "regardless of the
    // ordering in which the whiteout file was encountered".
    let base = || {
        L::new()
            .dir("a", 0o755)
            .dir("a/b", 0o755)
            .dir("a/b/c", 0o755)
            .file("a/b/c/bar", "bar")
            .done()
    };
    // `a.txt` sorts between `a` and `a/`: it must not hide this layer's
    // own `a/…` entries from the marker.
    let first = L::new()
        .dir("a", 0o755)
        .file("a.txt", "t")
        .file("a/.wh..wh..opq", "")
        .dir("a/b", 0o755)
        .dir("a/b/c", 0o755)
        .file("a/b/c/foo", "foo")
        .done();
    let last = L::new()
        .dir("a", 0o755)
        .file("a.txt", "t")
        .dir("a/b", 0o755)
        .dir("a/b/c", 0o755)
        .file("a/b/c/foo", "foo")
        .file("a/.wh..wh..opq", "")
        .done();
    for upper in [first, last] {
        let f = Work::new().run(vec![base(), upper]).unwrap();
        assert_eq!(paths(&f.tree), ["a", "a.txt", "a/b", "a/b/c", "a/b/c/foo"]);
    }
}

#[test]
fn siblings_sorting_before_the_slash_do_not_hide_the_layers_own_entries() {
    // `a-old`, `a b` and `a.txt` sort between `a` and `a/`.
    let w = Work::new();
    let l1 = L::new().file("a/lower", "l").file("d/lower", "l").done();
    let l2 = L::new()
        .file("a b", "s")
        .file("a-old", "s")
        .file("a.txt", "s")
        .file("a/own", "own")
        .file(".wh.a", "")
        .file("d b", "s")
        .file("d/own", "own")
        .file("d/.wh..wh..opq", "")
        .done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(
        paths(&f.tree),
        ["a", "a b", "a-old", "a.txt", "a/own", "d", "d b", "d/own"]
    );
    assert_eq!(contents(&f.tree, "a/own"), "own");
    assert_eq!(contents(&f.tree, "d/own"), "own");
}

#[test]
fn an_opaque_marker_at_the_root_hides_every_lower_layer() {
    let w = Work::new();
    let l1 = L::new().file("a", "a").file("b/c", "c").done();
    let l2 = L::new().file("z", "z").file(".wh..wh..opq", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(paths(&f.tree), ["z"]);
}

#[test]
fn other_runtime_whiteout_names_are_skipped() {
    let w = Work::new();
    let l1 = L::new().file("a", "a").done();
    let l2 = L::new().file(".wh..wh.plnk", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(paths(&f.tree), ["a"]);
    assert_eq!(f.report.whiteouts, 0);
}

#[test]
fn a_hard_link_shares_the_store_file() {
    let w = Work::new();
    let l1 = L::new()
        .owned("usr/bin/perl", EntryType::Regular, 0o755, (0, 0), b"perl")
        .hardlink("usr/bin/perl5.36", "usr/bin/perl")
        .done();
    let f = w.run(vec![l1]).unwrap();
    assert_eq!(
        store_file(&f.tree, "usr/bin/perl"),
        store_file(&f.tree, "usr/bin/perl5.36")
    );
    assert_eq!(f.tree.get("usr/bin/perl5.36").unwrap().perm, 0o755);
    assert_eq!(f.report.files, 1);
    assert_eq!(f.report.bytes, 4);
    assert_eq!(f.report.hard_links, 1);
    // A later layer replacing the first name leaves the link on the old bytes.
    let l1 = L::new().file("a", "one").hardlink("b", "a").done();
    let l2 = L::new().file("a", "two").done();
    let w = Work::new();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(contents(&f.tree, "a"), "two");
    assert_eq!(contents(&f.tree, "b"), "one");
    assert_eq!(f.report.hard_links, 0);
}

#[test]
fn a_hard_link_must_name_a_regular_file_already_there() {
    let l = L::new().dir("d", 0o755).hardlink("x", "d").done();
    let err = Work::new().run(vec![l]).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("sha256:layer0") && msg.contains("member x"),
        "{msg}"
    );
    assert!(msg.contains("not a regular file"), "{msg}");
    let l = L::new().hardlink("x", "nowhere").done();
    let msg = format!("{:#}", Work::new().run(vec![l]).unwrap_err());
    assert!(msg.contains("not in the image"), "{msg}");
}

#[test]
fn owners_and_modes_are_kept() {
    let w = Work::new();
    let l1 = L::new()
        .owned("usr/bin/su", EntryType::Regular, 0o104755, (0, 0), b"su")
        .owned("var/mail", EntryType::Directory, 0o2775, (0, 8), b"")
        .owned("home/u/f", EntryType::Regular, 0o600, (1000, 1000), b"f")
        // PAX uid/gid override the header's (big ids).
        .pax(&[("uid", b"3000000000"), ("gid", b"70000")])
        .owned("big", EntryType::Regular, 0o644, (1, 1), b"")
        .done();
    let f = w.run(vec![l1]).unwrap();
    let su = f.tree.get("usr/bin/su").unwrap();
    assert_eq!((su.perm, su.meta.uid, su.meta.gid), (0o4755, 0, 0));
    let mail = f.tree.get("var/mail").unwrap();
    assert_eq!((mail.perm, mail.meta.gid), (0o2775, 8));
    let u = f.tree.get("home/u/f").unwrap();
    assert_eq!((u.meta.uid, u.meta.gid), (1000, 1000));
    let big = f.tree.get("big").unwrap();
    assert_eq!((big.meta.uid, big.meta.gid), (3_000_000_000, 70000));
    // Parents a layer implies are root's, 0755.
    let home = f.tree.get("home").unwrap();
    assert_eq!((home.perm, home.meta.uid), (0o755, 0));
}

#[test]
fn xattrs_are_kept() {
    let w = Work::new();
    let cap: &[u8] =
        b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let l1 = L::new()
        .pax(&[("SCHILY.xattr.security.capability", cap)])
        .file("usr/bin/ping", "ping")
        .file("usr/bin/ls", "ls")
        .done();
    let f = w.run(vec![l1]).unwrap();
    let ping = f.tree.get("usr/bin/ping").unwrap();
    assert_eq!(
        ping.meta
            .xattrs
            .get("security.capability")
            .map(Vec::as_slice),
        Some(cap)
    );
    assert!(f.tree.get("usr/bin/ls").unwrap().meta.xattrs.is_empty());
    assert_eq!(f.report.xattr_nodes, 1);
}

#[test]
fn merged_usr_parents_resolve_through_the_symlink() {
    let w = Work::new();
    let l1 = L::new()
        .dir("usr/lib", 0o755)
        .symlink("lib", "usr/lib")
        .symlink("lib64", "/usr/lib")
        .done();
    let l2 = L::new().file("lib/x", "x").file("lib64/y", "y").done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(
        paths(&f.tree),
        ["lib", "lib64", "usr", "usr/lib", "usr/lib/x", "usr/lib/y"]
    );
}

#[test]
fn a_file_replaces_a_dir_and_a_dir_replaces_a_file() {
    let w = Work::new();
    let l1 = L::new().file("d/x", "x").file("f", "f").done();
    let l2 = L::new().file("d", "now a file").dir("f", 0o750).done();
    let f = w.run(vec![l1, l2]).unwrap();
    assert_eq!(paths(&f.tree), ["d", "f"]);
    assert_eq!(contents(&f.tree, "d"), "now a file");
    assert_eq!(f.tree.get("f").unwrap().kind, Kind::Dir);
    // A directory over an existing directory only updates its metadata.
    let l3 = L::new().file("f/in", "in").done();
    let l4 = L::new().dir("f", 0o700).done();
    let l1 = L::new().dir("f", 0o755).done();
    let f = Work::new().run(vec![l1, l3, l4]).unwrap();
    assert_eq!(paths(&f.tree), ["f", "f/in"]);
    assert_eq!(f.tree.get("f").unwrap().perm, 0o700);
}

#[test]
fn leading_slash_and_dot_slash_are_stripped() {
    let w = Work::new();
    let l1 = L::new()
        .dir("./", 0o755)
        .dir("./etc/", 0o755)
        .file("./etc/a", "a")
        .file("/etc/b", "b")
        .file(".//etc/./c", "c")
        .done();
    let f = w.run(vec![l1]).unwrap();
    assert_eq!(paths(&f.tree), ["etc", "etc/a", "etc/b", "etc/c"]);
}

#[test]
fn fifos_and_symlinks_are_kept_verbatim() {
    let w = Work::new();
    let l1 = L::new()
        .raw(b"run/initctl", EntryType::Fifo, 0o600, b"", b"")
        .symlink("etc/mtab", "/proc/self/mounts")
        .symlink("etc/rel", "../usr/lib/os-release")
        .done();
    let f = w.run(vec![l1]).unwrap();
    assert_eq!(f.tree.get("run/initctl").unwrap().kind, Kind::Fifo);
    assert_eq!(
        f.tree.get("etc/mtab").unwrap().kind,
        Kind::Symlink("/proc/self/mounts".into())
    );
    assert_eq!(
        f.tree.get("etc/rel").unwrap().kind,
        Kind::Symlink("../usr/lib/os-release".into())
    );
}

#[test]
fn a_three_layer_image_flattens_to_the_expected_tree() {
    let w = Work::new();
    let base = L::new()
        .dir("./", 0o755)
        .dir("./usr/", 0o755)
        .dir("./usr/bin/", 0o755)
        .dir("./usr/lib/", 0o755)
        .symlink("./bin", "usr/bin")
        .symlink("./lib", "usr/lib")
        .file("./usr/bin/sh", "sh")
        .hardlink("./usr/bin/dash", "usr/bin/sh")
        .dir("./etc/", 0o755)
        .file("./etc/motd", "debian")
        .dir("./var/cache/apt/", 0o755)
        .file("./var/cache/apt/pkgcache.bin", "cache")
        .done();
    let apt = L::new()
        .dir("usr/lib/modules/6.1.0-28-amd64/", 0o755)
        .file("usr/lib/modules/6.1.0-28-amd64/vmlinuz", "kernel")
        .file("usr/bin/busybox", "bb")
        .file("var/cache/apt/.wh..wh..opq", "")
        .file("etc/motd", "appliance")
        .done();
    let cleanup = L::new()
        .file("var/cache/.wh.apt", "")
        .file("lib/.wh.nonexistent", "")
        .done();
    let f = w.run(vec![base, apt, cleanup]).unwrap();
    assert_eq!(
        paths(&f.tree),
        [
            "bin",
            "etc",
            "etc/motd",
            "lib",
            "usr",
            "usr/bin",
            "usr/bin/busybox",
            "usr/bin/dash",
            "usr/bin/sh",
            "usr/lib",
            "usr/lib/modules",
            "usr/lib/modules/6.1.0-28-amd64",
            "usr/lib/modules/6.1.0-28-amd64/vmlinuz",
            "var",
            "var/cache",
        ]
    );
    assert_eq!(contents(&f.tree, "etc/motd"), "appliance");
    assert_eq!(
        f.report,
        Report {
            layers: 3,
            files: 4,
            bytes: "sh".len() as u64 + "kernel".len() as u64 + 2 + "appliance".len() as u64,
            whiteouts: 3,
            hard_links: 1,
            xattr_nodes: 0,
        }
    );
    w.assert_clean();
}

/// A reader that counts the bytes taken from it.
struct Counting(Cursor<Vec<u8>>, Arc<AtomicU64>);

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

#[test]
fn each_layer_is_read_to_its_end() {
    let mut bytes = L::new().file("a", "a").done();
    // Extra zero blocks after the end-of-archive marker, as some tools write.
    bytes.extend(vec![0u8; 10 * 512]);
    let total = bytes.len() as u64;
    let seen = Arc::new(AtomicU64::new(0));
    let layer = Layer {
        digest: "sha256:x".into(),
        reader: Box::new(Counting(Cursor::new(bytes), seen.clone())),
    };
    let w = Work::new();
    flatten([Ok(layer)], &w.store()).unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), total);
}

#[test]
fn a_failing_layer_source_is_passed_on() {
    let w = Work::new();
    let err = flatten(
        [Err(anyhow!("layer sha256:q: digest mismatch"))],
        &w.store(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
}

// Hostile layers: each a clear error naming the layer and the member,
// nothing written outside the store.

/// Runs `layers`, expects an error mentioning the last layer's digest,
/// `member` and `reason`; checks the work folder and a canary folder.
fn refused(layers: Vec<Vec<u8>>, member: &str, reason: &str) {
    let w = Work::new();
    let digest = format!("sha256:layer{}", layers.len() - 1);
    let err = w.run(layers).expect_err("a hostile layer must be refused");
    let msg = format!("{err:#}");
    assert!(msg.contains(&digest), "no digest in: {msg}");
    assert!(msg.contains(member), "no member {member} in: {msg}");
    assert!(msg.contains(reason), "no {reason:?} in: {msg}");
    w.assert_clean();
}

#[test]
fn dotdot_in_a_member_path_is_refused() {
    refused(
        vec![L::new().file("../../etc/passwd", "x").done()],
        "../../etc/passwd",
        "`..`",
    );
    refused(
        vec![L::new().file("./usr/../../x", "x").done()],
        "./usr/../../x",
        "`..`",
    );
}

#[test]
fn dotdot_in_a_hard_link_target_is_refused() {
    refused(
        vec![L::new().file("a", "a").hardlink("b", "../a").done()],
        "member b",
        "hard link target ../a",
    );
}

#[test]
fn a_whiteout_of_the_root_is_refused() {
    for name in [".wh.", ".wh..", ".wh...", "./.wh..", "usr/.wh.."] {
        refused(
            vec![
                L::new().file("a", "a").done(),
                L::new().file(name, "").done(),
            ],
            name,
            "whiteout of the image root",
        );
    }
}

#[test]
fn a_whiteout_name_as_a_directory_is_refused() {
    for name in ["etc/.wh.passwd/x", ".wh..wh..opq/x", "a/.wh./b"] {
        refused(
            vec![
                L::new().file("etc/passwd", "p").done(),
                L::new().file(name, "").done(),
            ],
            name,
            "used as a directory",
        );
    }
}

#[test]
fn device_nodes_are_refused() {
    for kind in [EntryType::Char, EntryType::Block] {
        refused(
            vec![L::new().raw(b"dev/sda", kind, 0o660, b"", b"").done()],
            "dev/sda",
            "/dev is populated at boot",
        );
    }
}

#[test]
fn a_symlink_climbing_out_of_the_root_is_refused() {
    refused(
        vec![L::new().symlink("etc/x", "../../../etc/passwd").done()],
        "etc/x",
        "symlink escapes the image root",
    );
    refused(
        vec![L::new().symlink("x", "..").done()],
        "member x",
        "symlink escapes the image root",
    );
}

#[test]
fn a_member_below_a_symlink_to_outside_the_image_is_refused() {
    let canary = tempfile::tempdir().unwrap();
    let outside = canary.path().join("outside");
    let target = outside.to_str().unwrap().to_string();
    let l1 = L::new().symlink("evil", &target).done();
    let l2 = L::new().file("evil/owned", "pwned").done();
    let w = Work::new();
    let msg = format!("{:#}", w.run(vec![l1, l2]).unwrap_err());
    assert!(msg.contains("sha256:layer1"), "{msg}");
    assert!(msg.contains("evil/owned"), "{msg}");
    assert!(
        msg.contains(&format!("/evil is a symlink to {target}")),
        "{msg}"
    );
    assert!(
        msg.contains("does not resolve to a directory in the image"),
        "{msg}"
    );
    w.assert_clean();
    assert!(!outside.exists());
    assert_eq!(fs::read_dir(canary.path()).unwrap().count(), 0);
    // Same layer, and a symlink to a file.
    refused(
        vec![L::new().symlink("evil", "/tmp").file("evil/x", "x").done()],
        "evil/x",
        "/evil is a symlink to /tmp",
    );
    refused(
        vec![L::new()
            .file("f", "f")
            .symlink("s", "f")
            .file("s/x", "x")
            .done()],
        "s/x",
        "/s is a symlink to f",
    );
}

#[test]
fn a_name_that_is_not_utf8_is_refused() {
    refused(
        vec![L::new()
            .raw(b"etc/\xff\xfe", EntryType::Regular, 0o644, b"", b"x")
            .done()],
        "etc/\u{fffd}\u{fffd}",
        "not UTF-8",
    );
}

#[test]
fn a_stream_that_is_not_a_tar_is_refused() {
    let w = Work::new();
    let junk = b"{\"this\": \"is json, not a tar\"}".repeat(40);
    let msg = format!("{:#}", w.run(vec![junk]).unwrap_err());
    assert!(msg.contains("sha256:layer0"), "{msg}");
    assert!(msg.contains("not a valid tar stream"), "{msg}");
    w.assert_clean();
}

#[test]
fn a_truncated_tar_is_refused() {
    let bytes = L::new().file("big", &"x".repeat(5000)).done();
    let cut = bytes[..512 + 2048].to_vec();
    refused(vec![cut], "big", "sha256:layer0");
    let cut_header = bytes[..300].to_vec();
    let w = Work::new();
    let msg = format!("{:#}", w.run(vec![cut_header]).unwrap_err());
    assert!(msg.contains("sha256:layer0"), "{msg}");
}

#[test]
fn regular_files_land_in_numbered_store_files() {
    let w = Work::new();
    let l1 = L::new().file("a", "first").file("b/c", "second").done();
    let f = w.run(vec![l1]).unwrap();
    assert_eq!(store_file(&f.tree, "a"), w.store().join("0/1"));
    assert_eq!(store_file(&f.tree, "b/c"), w.store().join("0/2"));
    assert_eq!(fs::read_to_string(w.store().join("0/2")).unwrap(), "second");
    w.assert_clean();
}

#[test]
fn replaced_and_whited_out_files_leave_the_store() {
    let w = Work::new();
    let l1 = L::new().file("a", "1").file("b", "2").file("c", "3").done();
    let l2 = L::new().file("a", "4").file(".wh.b", "").done();
    let f = w.run(vec![l1, l2]).unwrap();
    let mut left: Vec<String> = fs::read_dir(w.store().join("0"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    // c (3) from the first layer, a (4) from the second.
    assert_eq!(left, ["3", "4"]);
    assert_eq!(contents(&f.tree, "a"), "4");
    assert_eq!(contents(&f.tree, "c"), "3");
}

/// Flattens the layers named by `AIRLIFT_FLATTEN_LAYERS` (uncompressed
/// tars, `:`-separated, bottom first) into a temp store, for time and
/// peak memory figures (run alone under `/usr/bin/time -v`); with
/// `AIRLIFT_FLATTEN_LIST` set, writes the tree's paths there, one a line.
#[test]
#[ignore = "measurement: needs large layers in AIRLIFT_FLATTEN_LAYERS"]
fn measure_flatten_of_large_layers() {
    let paths = std::env::var("AIRLIFT_FLATTEN_LAYERS").expect("AIRLIFT_FLATTEN_LAYERS");
    let layers: Vec<Result<Layer<'static>>> = paths
        .split(':')
        .map(|p| {
            Ok(Layer {
                digest: p.to_string(),
                reader: Box::new(fs::File::open(p).unwrap()) as Box<dyn Read>,
            })
        })
        .collect();
    let w = Work::new();
    let start = std::time::Instant::now();
    let f = flatten(layers, &w.store()).unwrap();
    eprintln!(
        "flattened in {:?}: {:?}, {} nodes",
        start.elapsed(),
        f.report,
        f.tree.len()
    );
    if let Ok(list) = std::env::var("AIRLIFT_FLATTEN_LIST") {
        let text: String = f
            .tree
            .iter()
            .map(|(p, n)| format!("{p} {:o} {}:{}\n", n.perm, n.meta.uid, n.meta.gid))
            .collect();
        fs::write(list, text).unwrap();
    }
}

#[test]
fn the_store_keeps_256_files_to_a_folder() {
    let w = Work::new();
    let mut l = L::new();
    for i in 0..300 {
        l = l.file(&format!("f/{i:03}"), "x");
    }
    let f = w.run(vec![l.done()]).unwrap();
    assert_eq!(store_file(&f.tree, "f/000"), w.store().join("0/1"));
    assert_eq!(store_file(&f.tree, "f/255"), w.store().join("0/256"));
    assert_eq!(store_file(&f.tree, "f/256"), w.store().join("1/257"));
    assert_eq!(fs::read_dir(w.store().join("0")).unwrap().count(), 256);
    assert_eq!(fs::read_dir(w.store().join("1")).unwrap().count(), 44);
    w.assert_clean();
}

#[test]
fn symlinks_naming_other_links_many_times_are_refused_quickly() {
    // `lk -> l(k-1)/../l(k-1)/../…` (20 times): counting nesting depth
    // only, resolving l10 would follow 20^10 links.
    let mut l = L::new().dir("l0", 0o755);
    for k in 1..=10 {
        let target = vec![format!("l{}/..", k - 1); 20].join("/");
        l = l.long(&format!("l{k}"), EntryType::Symlink, Some(&target));
    }
    refused(
        vec![l.file("l10/x", "x").done()],
        "member l10/x",
        "too many symbolic links resolving /l",
    );
}

#[test]
fn forty_symlinks_in_a_row_resolve_and_forty_one_do_not() {
    let chain = |n: usize| {
        let mut l = L::new().dir("d", 0o755).symlink("s1", "d");
        for k in 2..=n {
            l = l.symlink(&format!("s{k}"), &format!("s{}", k - 1));
        }
        l.file(&format!("s{n}/x"), "x").done()
    };
    let w = Work::new();
    let f = w.run(vec![chain(40)]).unwrap();
    assert_eq!(contents(&f.tree, "d/x"), "x");
    refused(
        vec![chain(41)],
        "member s41/x",
        "too many symbolic links resolving /s",
    );
}

#[test]
fn sparse_members_are_refused() {
    // One byte at 1 GiB - 1: tar would write the holes out in full.
    refused(
        vec![L::new().sparse("var/big", (1 << 30) - 1).done()],
        "member var/big",
        "sparse files are not supported in a base image layer",
    );
}

#[test]
fn names_and_link_targets_too_long_are_refused() {
    let long_path = format!("d/{}", "x/".repeat(2500));
    let long_part = format!("d/{}", "y".repeat(256));
    let cases = [
        (
            long_path.clone(),
            EntryType::Regular,
            None,
            "the name is 5002 bytes long",
        ),
        (
            long_part.clone(),
            EntryType::Regular,
            None,
            "the name has a component of 256 bytes",
        ),
        (
            "s".to_string(),
            EntryType::Symlink,
            Some(long_path.as_str()),
            "the symlink target is 5002 bytes long",
        ),
        (
            "s".to_string(),
            EntryType::Symlink,
            Some(long_part.as_str()),
            "the symlink target has a component of 256 bytes",
        ),
        (
            "h".to_string(),
            EntryType::Link,
            Some(long_path.as_str()),
            "the hard link target is 5002 bytes long",
        ),
    ];
    for (name, kind, link, reason) in cases {
        let l = L::new().long(&name, kind, link).done();
        let w = Work::new();
        let msg = format!("{:#}", w.run(vec![l]).unwrap_err());
        assert!(msg.contains("sha256:layer0"), "{msg}");
        let member: String = name.chars().take(50).collect();
        assert!(msg.contains(&format!("member {member}")), "{msg}");
        assert!(msg.contains(reason), "no {reason:?} in: {msg}");
        // The name is shown cut short, never whole.
        assert!(msg.len() < 1000, "{} bytes: {msg}", msg.len());
        w.assert_clean();
    }
    // At the limits: accepted.
    let part = "z".repeat(255);
    let f = Work::new()
        .run(vec![L::new().long(&part, EntryType::Regular, None).done()])
        .unwrap();
    assert_eq!(paths(&f.tree), [part.as_str()]);
}

#[test]
fn owners_that_do_not_fit_32_bits_are_refused() {
    refused(
        vec![L::new()
            .owned("x", EntryType::Regular, 0o644, (1 << 32, 0), b"x")
            .done()],
        "member x",
        "uid 4294967296 does not fit 32 bits",
    );
    refused(
        vec![L::new()
            .owned("x", EntryType::Regular, 0o644, (0, 1 << 40), b"x")
            .done()],
        "member x",
        "gid 1099511627776 does not fit 32 bits",
    );
    refused(
        vec![L::new()
            .pax(&[("uid", b"4294967296")])
            .file("y", "y")
            .done()],
        "member y",
        "uid 4294967296 does not fit 32 bits",
    );
}

#[test]
fn names_in_errors_are_escaped() {
    let l = L::new()
        .raw(b"etc/evil\n\x1b[31mOK", EntryType::Char, 0o644, b"", b"")
        .done();
    let msg = format!("{:#}", Work::new().run(vec![l]).unwrap_err());
    assert!(msg.contains(r"member etc/evil\n\u{1b}[31mOK"), "{msg}");
    assert!(!msg.contains('\n') && !msg.contains('\x1b'), "{msg:?}");
    let l = L::new()
        .symlink("s", "/no\nwhere\x1b[2J")
        .file("s/x", "x")
        .done();
    let msg = format!("{:#}", Work::new().run(vec![l]).unwrap_err());
    assert!(
        msg.contains(r"/s is a symlink to /no\nwhere\u{1b}[2J"),
        "{msg}"
    );
    assert!(!msg.contains('\n') && !msg.contains('\x1b'), "{msg:?}");
}
