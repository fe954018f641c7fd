//! A small but complete appliance base as a container image (`base.image`,
//! issue #21), made locally and deterministically: the same bytes, hence
//! the same digests, on every run. Three gzip layers hold what airlift
//! looks for at the Debian paths (kernel under `/usr/lib/modules/<v>/`, its
//! modules folder, isolinux, systemd-boot, shim, GRUB, a static busybox)
//! and what flattening must get right (a whiteout and an opaque folder, a
//! hard link, a file owned by uid 100, a `security.capability` xattr).
//!
//! Also builders of hostile images: the good base with one bad layer on
//! top (a `../` path, symlinks escaping the root, a whiteout of `/`, a
//! device node), and an image with no kernel.

use std::io::Write;
use std::path::{Path, PathBuf};

use airlift_oci::documents::{media, Descriptor};
use airlift_oci::{Digest, Layout};
use anyhow::{Context, Result};

/// The kernel release of the stand-in kernel.
pub const KERNEL_RELEASE: &str = "6.1.0-test";
/// The tag the fixture is written under (in the layout's `index.json`).
pub const TAG: &str = "bookworm";
/// The reference the tests give the base.
pub const REFERENCE: &str = "registry.airlift.test/base/demo:bookworm";

/// Where the kernel is in the image (bootc's convention).
pub fn kernel_path() -> String {
    format!("usr/lib/modules/{KERNEL_RELEASE}/vmlinuz")
}

/// One member of a layer tarball. Paths are written as they are (no
/// normalisation, no checks), so hostile layers can be described too.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        body: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        /// Extended attributes, written as PAX `SCHILY.xattr.*` records.
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Symlink {
        path: String,
        target: String,
    },
    HardLink {
        path: String,
        target: String,
    },
    /// A character device node.
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    pub fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.to_string(),
            mode: 0o755,
        }
    }

    /// A root-owned 0644 file.
    pub fn file(path: &str, body: &[u8]) -> Entry {
        Entry::File {
            path: path.to_string(),
            body: body.to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        }
    }

    /// A root-owned 0755 file.
    pub fn exe(path: &str, body: &[u8]) -> Entry {
        Entry::File {
            path: path.to_string(),
            body: body.to_vec(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            xattrs: Vec::new(),
        }
    }

    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    pub fn hard_link(path: &str, target: &str) -> Entry {
        Entry::HardLink {
            path: path.to_string(),
            target: target.to_string(),
        }
    }

    /// The whiteout of `name` in `dir` (`dir/.wh.name`).
    pub fn whiteout(dir: &str, name: &str) -> Entry {
        let path = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        Entry::file(&path, b"")
    }

    /// The opaque marker of `dir` (`dir/.wh..wh..opq`).
    pub fn opaque(dir: &str) -> Entry {
        Entry::file(&format!("{dir}/.wh..wh..opq"), b"")
    }
}

/// The uncompressed tar of `entries`: fixed mtimes, numeric owners, and
/// every name written byte for byte into the header (long names are not
/// needed here).
pub fn layer_tar(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        let (path, data): (&str, &[u8]) = match e {
            Entry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (path, &[])
            }
            Entry::File {
                path,
                body,
                mode,
                uid,
                gid,
                xattrs,
            } => {
                if !xattrs.is_empty() {
                    append_pax(&mut b, path, xattrs)?;
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(body.len() as u64);
                (path, body)
            }
            Entry::Symlink { path, target } | Entry::HardLink { path, target } => {
                h.set_entry_type(if matches!(e, Entry::Symlink { .. }) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                set_bytes(&mut h.as_old_mut().linkname, target)?;
                (path, &[])
            }
            Entry::CharDevice { path, major, minor } => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o600);
                h.set_device_major(*major)?;
                h.set_device_minor(*minor)?;
                (path, &[])
            }
        };
        set_bytes(&mut h.as_old_mut().name, path)?;
        h.set_cksum();
        b.append(&h, data)?;
    }
    Ok(b.into_inner()?)
}

/// Copy `s` into a NUL-padded header field, unchecked (`../` allowed).
fn set_bytes(field: &mut [u8], s: &str) -> Result<()> {
    anyhow::ensure!(
        s.len() < field.len(),
        "{s:?} is too long for a tar header field"
    );
    field.fill(0);
    field[..s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

/// A PAX extended header carrying `xattrs` for the next member.
fn append_pax(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    xattrs: &[(String, Vec<u8>)],
) -> Result<()> {
    let mut records = Vec::new();
    for (name, value) in xattrs {
        let key = format!("SCHILY.xattr.{name}");
        // "LEN key=value\n", LEN counting its own digits.
        let rest = key.len() + value.len() + 3;
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        records.extend_from_slice(format!("{len} {key}=").as_bytes());
        records.extend_from_slice(value);
        records.push(b'\n');
    }
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_size(records.len() as u64);
    let name = format!("PaxHeaders/{}", path.rsplit('/').next().unwrap_or(path));
    set_bytes(&mut h.as_old_mut().name, &name)?;
    h.set_cksum();
    b.append(&h, records.as_slice())?;
    Ok(())
}

/// The stand-in kernel: a bzImage setup header whose version string says
/// [`KERNEL_RELEASE`] (as `fake_base` writes it).
pub fn stand_in_kernel() -> Vec<u8> {
    let mut kernel = vec![0u8; 0x400];
    kernel[0x202..0x206].copy_from_slice(b"HdrS");
    kernel[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
    let v = format!("{KERNEL_RELEASE} (t@t) #1 SMP\0");
    kernel[0x300..0x300 + v.len()].copy_from_slice(v.as_bytes());
    kernel
}

/// A minimal static x86-64 ELF executable: a header and one `PT_LOAD`
/// program header, no `PT_INTERP` (what "static" means to airlift). It is
/// never run.
pub fn static_elf() -> Vec<u8> {
    let mut e = vec![0u8; 64 + 56];
    e[..4].copy_from_slice(b"\x7fELF");
    e[4] = 2; // 64-bit
    e[5] = 1; // little endian
    e[6] = 1; // version
    e[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    e[20..24].copy_from_slice(&1u32.to_le_bytes());
    e[24..32].copy_from_slice(&0x40_0078u64.to_le_bytes()); // entry
    e[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
    e[52..54].copy_from_slice(&64u16.to_le_bytes()); // ehsize
    e[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
    e[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
    let ph = &mut e[64..];
    ph[..4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    ph[4..8].copy_from_slice(&5u32.to_le_bytes()); // R+X
    ph[16..24].copy_from_slice(&0x40_0000u64.to_le_bytes()); // vaddr
    ph[24..32].copy_from_slice(&0x40_0000u64.to_le_bytes()); // paddr
    ph[32..40].copy_from_slice(&120u64.to_le_bytes()); // filesz
    ph[40..48].copy_from_slice(&120u64.to_le_bytes()); // memsz
    ph[48..56].copy_from_slice(&0x1000u64.to_le_bytes()); // align
    e
}

/// What the base holds, for assertions.
pub mod paths {
    /// Removed by layer 2's whiteout.
    pub const WHITED_OUT: &str = "usr/share/doc/old-notes";
    /// Emptied by layer 3's opaque marker (its old file must be gone).
    pub const OPAQUE_OLD: &str = "opt/app/old.conf";
    pub const OPAQUE_NEW: &str = "opt/app/new.conf";
    /// Owned by uid 100, gid 101, mode 0640.
    pub const OWNED: &str = "srv/data/owned-by-100";
    /// Two names of one file (layer 3).
    pub const HARD_LINK: (&str, &str) = ("usr/local/bin/tool", "usr/local/bin/tool-alias");
    /// Carries `security.capability`.
    pub const CAPABILITY: &str = "usr/bin/ping";
    pub const OS_RELEASE: &str = "etc/os-release";
}

/// The value of [`paths::CAPABILITY`]'s `security.capability`
/// (VFS_CAP_REVISION_2 with CAP_NET_RAW permitted and effective).
pub const CAPABILITY_VALUE: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
];

/// Layer 1: a merged-usr Debian-like root with the kernel, its modules
/// folder (no modules; what stage 1 needs built in), the boot loaders at
/// their Debian package paths and a static busybox (`busybox`: its bytes,
/// default [`static_elf`]).
pub fn os_layer(busybox: Option<&[u8]>, with_kernel: bool) -> Vec<Entry> {
    let v = KERNEL_RELEASE;
    let mut e = vec![
        Entry::symlink("bin", "usr/bin"),
        Entry::symlink("lib", "usr/lib"),
        Entry::symlink("sbin", "usr/sbin"),
        Entry::dir("boot/"),
        Entry::dir("etc/"),
        Entry::dir("opt/"),
        Entry::dir("opt/app/"),
        Entry::dir("srv/"),
        Entry::dir("tmp/"),
        Entry::dir("usr/"),
        Entry::dir("usr/bin/"),
        Entry::dir("usr/sbin/"),
        Entry::dir("usr/lib/"),
        Entry::dir("usr/share/"),
        Entry::dir("usr/share/doc/"),
        Entry::dir("var/"),
        Entry::file(
            paths::OS_RELEASE,
            b"PRETTY_NAME=\"airlift test base\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        ),
        Entry::file("etc/hostname", b"appliance\n"),
        Entry::file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nsvc:x:100:101::/srv/data:/usr/sbin/nologin\n",
        ),
        Entry::file("etc/group", b"root:x:0:\nsvc:x:101:\n"),
        Entry::exe("usr/bin/busybox", busybox.unwrap_or(&static_elf())),
        Entry::file(paths::WHITED_OUT, b"removed by layer 2\n"),
        Entry::file(paths::OPAQUE_OLD, b"hidden by layer 3\n"),
        Entry::dir("usr/lib/ISOLINUX/"),
        Entry::file("usr/lib/ISOLINUX/isolinux.bin", &[0x90; 4096]),
        Entry::file("usr/lib/ISOLINUX/isohdpfx.bin", &[0x90; 432]),
        Entry::dir("usr/lib/syslinux/"),
        Entry::dir("usr/lib/syslinux/modules/"),
        Entry::dir("usr/lib/syslinux/modules/bios/"),
        Entry::file("usr/lib/syslinux/modules/bios/ldlinux.c32", &[0x90; 4096]),
        Entry::dir("usr/lib/systemd/"),
        Entry::dir("usr/lib/systemd/boot/"),
        Entry::dir("usr/lib/systemd/boot/efi/"),
        Entry::file(
            "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
            b"MZ stand-in systemd-boot",
        ),
        Entry::dir("usr/lib/shim/"),
        Entry::file("usr/lib/shim/shimx64.efi.signed", b"MZ stand-in shim"),
        Entry::dir("usr/lib/grub/"),
        Entry::dir("usr/lib/grub/x86_64-efi-signed/"),
        Entry::file(
            "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
            b"MZ stand-in grub",
        ),
        Entry::dir("usr/lib/modules/"),
    ];
    if with_kernel {
        let m = format!("usr/lib/modules/{v}");
        e.push(Entry::dir(&format!("{m}/")));
        e.push(Entry::file(&kernel_path(), &stand_in_kernel()));
        for f in ["modules.dep", "modules.order", "modules.builtin.modinfo"] {
            e.push(Entry::file(&format!("{m}/{f}"), b""));
        }
        // What a media root's stage 1 needs, built in: a config may then
        // keep airlift's server set (the rest is skipped with a warning).
        e.push(Entry::file(
            &format!("{m}/modules.builtin"),
            BUILTIN.as_bytes(),
        ));
        e.push(Entry::dir(&format!("{m}/kernel/")));
    }
    e
}

/// Layer 2: a whiteout, a file owned by uid 100, a file with a
/// capability.
pub fn site_layer() -> Vec<Entry> {
    vec![
        Entry::whiteout("usr/share/doc", "old-notes"),
        Entry::dir("srv/data/"),
        Entry::File {
            path: paths::OWNED.to_string(),
            body: b"belongs to svc\n".to_vec(),
            mode: 0o640,
            uid: 100,
            gid: 101,
            xattrs: Vec::new(),
        },
        Entry::File {
            path: paths::CAPABILITY.to_string(),
            body: static_elf(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            xattrs: vec![("security.capability".to_string(), CAPABILITY_VALUE.to_vec())],
        },
    ]
}

/// Layer 3: an opaque folder and a hard link.
pub fn app_layer() -> Vec<Entry> {
    vec![
        Entry::dir("opt/app/"),
        Entry::opaque("opt/app"),
        Entry::file(paths::OPAQUE_NEW, b"layer 3\n"),
        Entry::dir("usr/local/"),
        Entry::dir("usr/local/bin/"),
        Entry::exe(paths::HARD_LINK.0, b"#!/bin/sh\necho tool\n"),
        Entry::hard_link(paths::HARD_LINK.1, paths::HARD_LINK.0),
    ]
}

/// The stand-in kernel's `modules.builtin`.
pub const BUILTIN: &str = "kernel/fs/isofs/isofs.ko\nkernel/fs/squashfs/squashfs.ko\n\
    kernel/drivers/block/loop.ko\nkernel/fs/overlayfs/overlay.ko\n";

/// The good base's layers, bottom first.
pub fn good_layers(busybox: Option<&[u8]>) -> Vec<Vec<Entry>> {
    vec![os_layer(busybox, true), site_layer(), app_layer()]
}

/// The ways a base image can be hostile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    /// A member named `../…` (above the root).
    DotDot,
    /// A symlink `../../..` (relative, escaping the root) used as the
    /// parent of a file.
    RelativeSymlinkParent,
    /// An absolute symlink to a folder that does not exist, used as the
    /// parent of a file.
    AbsoluteSymlinkParent,
    /// A whiteout of the root itself (`.wh..`).
    WhiteoutRoot,
    /// A character device node.
    DeviceNode,
    /// No kernel anywhere (no `/usr/lib/modules/<v>/vmlinuz`, no `/boot/vmlinuz-*`).
    NoKernel,
}

impl Hostile {
    pub const ALL: [Hostile; 6] = [
        Hostile::DotDot,
        Hostile::RelativeSymlinkParent,
        Hostile::AbsoluteSymlinkParent,
        Hostile::WhiteoutRoot,
        Hostile::DeviceNode,
        Hostile::NoKernel,
    ];

    /// The layers of this hostile image. `outside` is a folder outside
    /// any work folder, which the escaping members aim at (the absolute
    /// symlink points at `outside/missing/deeper`, which does not exist).
    pub fn layers(self, outside: &Path) -> Vec<Vec<Entry>> {
        let outside = outside.display().to_string();
        let bad = match self {
            Hostile::NoKernel => return vec![os_layer(None, false), site_layer()],
            Hostile::DotDot => vec![Entry::file(
                &format!("../../../../../../../..{outside}/escaped-dotdot"),
                b"written above the root",
            )],
            Hostile::RelativeSymlinkParent => vec![
                Entry::symlink("usr/share/up", "../../../../../../../.."),
                Entry::file(
                    &format!("usr/share/up{outside}/escaped-relative"),
                    b"written through a symlink",
                ),
            ],
            Hostile::AbsoluteSymlinkParent => vec![
                Entry::symlink("etc/away", &format!("{outside}/missing/deeper")),
                Entry::file("etc/away/escaped-absolute", b"written through a symlink"),
            ],
            Hostile::WhiteoutRoot => vec![Entry::file(".wh..", b"")],
            Hostile::DeviceNode => vec![Entry::CharDevice {
                path: "dev/sda".to_string(),
                major: 8,
                minor: 0,
            }],
        };
        let mut layers = good_layers(None);
        layers.push(bad);
        layers
    }

    /// What the error should name (any one of these): the member path,
    /// or what is missing. An escaping relative symlink may be refused
    /// at the symlink or at the member written through it.
    pub fn named_in_error(self) -> &'static [&'static str] {
        match self {
            Hostile::DotDot => &["escaped-dotdot"],
            Hostile::RelativeSymlinkParent => &["usr/share/up", "escaped-relative"],
            Hostile::AbsoluteSymlinkParent => &["escaped-absolute"],
            Hostile::WhiteoutRoot => &[".wh.."],
            Hostile::DeviceNode => &["dev/sda"],
            Hostile::NoKernel => &["vmlinuz"],
        }
    }
}

/// What [`write_layout`] made.
#[derive(Debug, Clone)]
pub struct MadeBase {
    /// The image manifest's descriptor (linux/amd64).
    pub manifest: Descriptor,
    /// The compressed layers' digests, bottom first.
    pub layers: Vec<Digest>,
}

/// Write an image of `layers` (gzip, deterministic) into the OCI layout
/// at `dir` under the tag `tag`.
pub fn write_layout(dir: &Path, tag: &str, layers: &[Vec<Entry>]) -> Result<MadeBase> {
    let layout = Layout::create(dir)?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for entries in layers {
        let tar = layer_tar(entries)?;
        diff_ids.push(Digest::sha256_of(&tar).to_string());
        let gz = gzip(&tar)?;
        let (d, s) = layout.put_blob(&gz, None)?;
        descs.push(Descriptor::new(media::OCI_LAYER_GZIP, d, s));
    }
    let (manifest, _) =
        crate::images::put_manifest(&layout, &descs, diff_ids, "amd64", "/sbin/init")?;
    let desc = crate::images::tag(&layout, manifest, tag)?;
    Ok(MadeBase {
        manifest: desc,
        layers: descs.into_iter().map(|d| d.digest).collect(),
    })
}

/// The layout at `layout` as an oci-archive at `archive` (a tar of the
/// layout folder, as `skopeo copy oci-archive:` reads it; sorted names,
/// fixed times: the same bytes every run).
pub fn write_archive(layout: &Path, archive: &Path) -> Result<()> {
    let mut b = tar::Builder::new(
        std::fs::File::create(archive)
            .with_context(|| format!("creating {}", archive.display()))?,
    );
    b.mode(tar::HeaderMode::Deterministic);
    let mut files = Vec::new();
    collect(layout, layout, &mut files)?;
    files.sort();
    for rel in files {
        b.append_path_with_name(layout.join(&rel), &rel)?;
    }
    b.into_inner()?.sync_all()?;
    Ok(())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            collect(root, &p, out)?;
        } else {
            out.push(p.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// The good base as an OCI layout at `dir/layout` and an oci-archive at
/// `dir/base.oci.tar`, tag [`TAG`].
pub fn write_good(dir: &Path, busybox: Option<&[u8]>) -> Result<MadeBase> {
    let made = write_layout(&dir.join("layout"), TAG, &good_layers(busybox))?;
    write_archive(&dir.join("layout"), &dir.join("base.oci.tar"))?;
    Ok(made)
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::run_ok;
    use std::io::Read;
    use std::process::Command;

    #[test]
    fn the_base_is_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ma = write_good(a.path(), None).unwrap();
        let mb = write_good(b.path(), None).unwrap();
        assert_eq!(ma.manifest.digest, mb.manifest.digest);
        assert_eq!(ma.layers.len(), 3);
        assert_eq!(
            std::fs::read(a.path().join("base.oci.tar")).unwrap(),
            std::fs::read(b.path().join("base.oci.tar")).unwrap()
        );
    }

    /// The members read back as written: owners, the xattr record, the
    /// device, and `../` kept verbatim; GNU tar lists the layer too.
    #[test]
    fn layers_read_back_as_written() {
        let tar = layer_tar(&site_layer()).unwrap();
        let mut a = tar::Archive::new(tar.as_slice());
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mut xattrs = Vec::new();
            if let Some(ext) = e.pax_extensions().unwrap() {
                for x in ext {
                    let x = x.unwrap();
                    xattrs.push((x.key().unwrap().to_string(), x.value_bytes().to_vec()));
                }
            }
            let (uid, gid) = (e.header().uid().unwrap(), e.header().gid().unwrap());
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            seen.push((path, uid, gid, xattrs));
        }
        assert!(seen.contains(&("usr/share/doc/.wh.old-notes".to_string(), 0, 0, vec![])));
        assert!(seen.contains(&(paths::OWNED.to_string(), 100, 101, vec![])));
        assert!(seen.contains(&(
            paths::CAPABILITY.to_string(),
            0,
            0,
            vec![(
                "SCHILY.xattr.security.capability".to_string(),
                CAPABILITY_VALUE.to_vec()
            )]
        )));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("site.tar");
        std::fs::write(&file, &tar).unwrap();
        let listing = run_ok(
            Command::new("tar")
                .args(["--numeric-owner", "-tvf"])
                .arg(&file),
        );
        assert!(
            listing
                .lines()
                .any(|l| l.contains(" 100/101 ") && l.ends_with(paths::OWNED)),
            "{listing}"
        );
        let hostile = layer_tar(&Hostile::DotDot.layers(Path::new("/x"))[3]).unwrap();
        let mut a = tar::Archive::new(hostile.as_slice());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            &*e.path_bytes(),
            b"../../../../../../../../x/escaped-dotdot"
        );
        let dev = layer_tar(&Hostile::DeviceNode.layers(Path::new("/x"))[3]).unwrap();
        let mut a = tar::Archive::new(dev.as_slice());
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(e.header().entry_type(), tar::EntryType::Char);
        assert_eq!(e.header().device_major().unwrap(), Some(8));
    }

    #[test]
    fn the_stand_in_busybox_is_static_elf() {
        let elf = static_elf();
        assert_eq!(&elf[..4], b"\x7fELF");
        let phnum = u16::from_le_bytes([elf[56], elf[57]]);
        let types: Vec<u32> = (0..phnum as usize)
            .map(|i| {
                let o = 64 + i * 56;
                u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
            })
            .collect();
        assert_eq!(types, [1], "one PT_LOAD, no PT_INTERP (3)");
    }
}
