//! The files [`super::locate`] found, put on the build host in
//! `scripts/make-base.sh`'s layout (`vmlinuz`, `modules/`, `isolinux/`,
//! `efi/*.efi`, `ipxe/`, `busybox`), so the rest of the pipeline reads
//! them as it reads a path base: the result is a [`Base`] of host paths.
//!
//! Files are hard-linked from the flattening store (copied when that
//! fails). Only regular files are written, under names taken from the
//! tree (already normalised: no `..`, no `/`); a symlink in the modules
//! folder is followed inside the tree, never recreated on the host.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::locate::{file_at, Found, Located};
use crate::config::{Base, Bootloader, ImageBase};
use crate::initramfs::{Data, Kind, Tree};

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
}

/// Writes what `located` names from `tree` into `dir` (made here, must
/// not exist) and returns the path base it makes, with `image`'s
/// settings (modules, kernel arguments, rootOn).
pub fn materialise(
    tree: &Tree,
    located: &Located,
    image: &ImageBase,
    dir: &Path,
) -> Result<(Base, Report)> {
    fs::create_dir(dir).with_context(|| format!("making {}", dir.display()))?;
    let mut w = Writer {
        report: Report::default(),
    };
    let kernel = dir.join("vmlinuz");
    w.put(&located.kernel, &kernel, None)?;
    let modules_dir = match &located.modules_dir {
        Some(m) => {
            let out = dir.join("modules");
            w.modules(tree, m, &out)?;
            Some(out)
        }
        None => None,
    };
    let isolinux = dir.join("isolinux");
    fs::create_dir(&isolinux).with_context(|| format!("making {}", isolinux.display()))?;
    for (f, name) in located
        .isolinux
        .iter()
        .zip(["isolinux.bin", "isohdpfx.bin", "ldlinux.c32"])
    {
        w.put(f, &isolinux.join(name), None)?;
    }
    let efi_dir = dir.join("efi");
    fs::create_dir(&efi_dir).with_context(|| format!("making {}", efi_dir.display()))?;
    let mut efi = |found: Option<&Found>, name: &str| -> Result<Option<PathBuf>> {
        match found {
            Some(f) => {
                let out = efi_dir.join(name);
                w.put(f, &out, None)?;
                Ok(Some(out))
            }
            None => Ok(None),
        }
    };
    let efi_loader = efi(Some(&located.efi), "systemd-bootx64.efi")?.unwrap_or_default();
    let stub = efi(located.stub.as_ref(), "linuxx64.efi.stub")?;
    let shim = efi(located.shim.as_ref(), "shimx64.efi")?;
    efi(
        located.mok_manager.as_ref(),
        crate::pipeline::uefi_chain::MOK_MANAGER,
    )?;
    let grub = efi(located.grub.as_ref(), "grubx64.efi")?;
    let grub_net = efi(located.grub_net.as_ref(), "grubnetx64.efi")?;
    let ipxe = match &located.ipxe {
        Some([kpxe, efi]) => {
            let out = dir.join("ipxe");
            fs::create_dir(&out).with_context(|| format!("making {}", out.display()))?;
            w.put(kpxe, &out.join("undionly.kpxe"), None)?;
            w.put(efi, &out.join("ipxe.efi"), None)?;
            Some(out)
        }
        None => None,
    };
    let busybox = match &located.busybox {
        Some(b) => {
            let out = dir.join("busybox");
            w.put(b, &out, Some(0o755))?;
            Some(out)
        }
        None => None,
    };
    let base = Base {
        kernel,
        // Unused: the root filesystem is the image's tree.
        rootfs: dir.to_path_buf(),
        modules_dir,
        modules: image.modules.clone(),
        extra_modules: image.extra_modules.clone(),
        bootloader: Bootloader {
            isolinux,
            efi: efi_loader,
            ipxe,
            shim,
            grub,
            grub_net,
            stub,
        },
        kernel_args: image.kernel_args.clone(),
        root_on: image.root_on,
        busybox,
    };
    Ok((base, w.report))
}

struct Writer {
    report: Report,
}

impl Writer {
    /// `found`'s bytes at `out`: a hard link to the store file (a copy
    /// when `mode` is to be set, or linking fails).
    fn put(&mut self, found: &Found, out: &Path, mode: Option<u32>) -> Result<()> {
        self.data(&found.data, out, mode).with_context(|| {
            format!(
                "writing {} (from {} in the image)",
                out.display(),
                found.path
            )
        })
    }

    fn data(&mut self, data: &Data, out: &Path, mode: Option<u32>) -> Result<()> {
        match data {
            Data::Bytes(b) => {
                fs::write(out, b)?;
                self.report.bytes += b.len() as u64;
            }
            Data::Path(p) => {
                let linked = mode.is_none() && fs::hard_link(p, out).is_ok();
                if !linked {
                    fs::copy(p, out)?;
                }
                self.report.bytes += fs::metadata(out)?.len();
            }
        }
        if let Some(mode) = mode {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(out, fs::Permissions::from_mode(mode))?;
        }
        self.report.files += 1;
        Ok(())
    }

    /// Every regular file under the tree folder `dir` (links to files
    /// followed inside the tree) into the host folder `out`.
    fn modules(&mut self, tree: &Tree, dir: &str, out: &Path) -> Result<()> {
        fs::create_dir(out).with_context(|| format!("making {}", out.display()))?;
        let prefix = format!("{dir}/");
        for (path, node) in tree.iter() {
            let Some(rel) = path.strip_prefix(&prefix) else {
                continue;
            };
            if rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
            {
                bail!("/{path}: not a plain path in the image's modules folder");
            }
            let host = out.join(rel);
            match &node.kind {
                Kind::Dir => {
                    fs::create_dir(&host).with_context(|| format!("making {}", host.display()))?
                }
                Kind::File { data, .. } => self.data(data, &host, None).with_context(|| {
                    format!("writing {} (from /{path} in the image)", host.display())
                })?,
                Kind::Symlink(_) => {
                    // A link to a file inside the image counts as that
                    // file; links to folders or out of the image are
                    // dropped (modules.dep names files, not links).
                    if let Some(f) = file_at(tree, path) {
                        self.put(&f, &host, None)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseimage::locate::{locate, Needs};
    use crate::config::RootOn;
    use crate::initramfs::Node;

    fn image_base() -> ImageBase {
        ImageBase {
            modules: Some(vec!["virtio_blk".into()]),
            kernel_args: vec!["quiet".into()],
            root_on: RootOn::Initramfs,
            ..ImageBase::for_tests()
        }
    }

    #[test]
    fn boot_files_land_in_make_base_layout_and_links_stay_in_the_image() {
        let dir = tempfile::tempdir().unwrap();
        // A store file, as flatten writes them.
        let store = dir.path().join("store");
        fs::create_dir(&store).unwrap();
        fs::write(store.join("0"), b"MZ shim from the store").unwrap();
        let k = crate::baseimage::locate::tests::bzimage("6.1.0-9-amd64");
        let mut t = Tree::new();
        let file =
            |t: &mut Tree, p: &str, b: &[u8]| t.insert(p, Node::bytes(b.to_vec(), 0o644)).unwrap();
        file(&mut t, "boot/vmlinuz-6.1.0-9-amd64", &k);
        let m = "usr/lib/modules/6.1.0-9-amd64";
        file(
            &mut t,
            &format!("{m}/kernel/drivers/block/virtio_blk.ko"),
            b"\x7fELF",
        );
        file(
            &mut t,
            &format!("{m}/modules.dep"),
            b"kernel/drivers/block/virtio_blk.ko:\n",
        );
        // A link to a file in the image counts as that file; one that
        // names a host path is resolved in the image (where it is absent).
        t.insert(&format!("{m}/modules.alias"), Node::symlink("modules.dep"))
            .unwrap();
        t.insert(&format!("{m}/shadow.ko"), Node::symlink("/etc/shadow"))
            .unwrap();
        t.insert(&format!("{m}/build"), Node::symlink("/usr/src/linux"))
            .unwrap();
        for p in [
            "usr/lib/ISOLINUX/isolinux.bin",
            "usr/lib/ISOLINUX/isohdpfx.bin",
            "usr/lib/syslinux/modules/bios/ldlinux.c32",
            "usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        ] {
            file(&mut t, p, p.as_bytes());
        }
        let mut shim = Node::bytes(Vec::new(), 0o644);
        shim.kind = Kind::File {
            data: Data::Path(store.join("0")),
            size: 22,
        };
        t.insert("usr/lib/shim/shimx64.efi.signed", shim).unwrap();
        let b = image_base();
        let needs = Needs {
            shim_chain: false,
            stub: false,
            netboot: false,
            busybox: false,
            modules: true,
        };
        let located = locate(&t, &b, needs, "registry.test/base:1@sha256:x").unwrap();
        let out = dir.path().join("base");
        let (base, report) = materialise(&t, &located, &b, &out).unwrap();
        assert_eq!(base.kernel, out.join("vmlinuz"));
        assert_eq!(fs::read(&base.kernel).unwrap(), k);
        let mods = base.modules_dir.clone().unwrap();
        assert_eq!(mods, out.join("modules"));
        assert!(mods.join("kernel/drivers/block/virtio_blk.ko").is_file());
        assert_eq!(
            fs::read(mods.join("modules.alias")).unwrap(),
            fs::read(mods.join("modules.dep")).unwrap()
        );
        // Nothing of the host came in, and no link was made.
        assert!(!mods.join("shadow.ko").exists());
        assert!(fs::symlink_metadata(mods.join("build")).is_err());
        for f in ["isolinux.bin", "isohdpfx.bin", "ldlinux.c32"] {
            assert!(base.bootloader.isolinux.join(f).is_file(), "{f}");
        }
        assert_eq!(base.bootloader.efi, out.join("efi/systemd-bootx64.efi"));
        // The store file is hard-linked, not copied.
        let shim = base.bootloader.shim.clone().unwrap();
        assert_eq!(shim, out.join("efi/shimx64.efi"));
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            fs::metadata(&shim).unwrap().ino(),
            fs::metadata(store.join("0")).unwrap().ino()
        );
        assert!(base.bootloader.grub.is_none() && base.busybox.is_none());
        assert_eq!(
            base.modules.as_deref(),
            Some(&["virtio_blk".to_string()][..])
        );
        assert_eq!(base.kernel_args, ["quiet"]);
        assert_eq!(base.root_on, RootOn::Initramfs);
        assert!(report.files >= 9, "{report:?}");
        // The folder must be new: a second run refuses to mix files.
        assert!(materialise(&t, &located, &b, &out).is_err());
    }
}
