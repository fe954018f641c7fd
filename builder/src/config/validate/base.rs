//! The boot base (kernel, modules, rootfs, boot loaders) and overlays.

use std::fs;
use std::path::Path;

use super::images::looks_like_tar;
use super::Kind;
use super::{Purpose, Validator, ISOLINUX_FILES};
use crate::config::base_spec::{check_in_image_path, BASE_PLATFORM};
use crate::config::locate::{join_index, join_key};
use crate::config::{BaseSpec, ImageBase};

impl Validator<'_> {
    pub(super) fn base(&mut self, purpose: Purpose) {
        let b = match &self.app.base {
            None => {
                if purpose == Purpose::Build {
                    self.problem(
                        "base",
                        "is missing; airlift build needs base: with base.image (the OS as a container \
                         image), or kernel, rootfs and bootloader",
                    );
                }
                return;
            }
            Some(BaseSpec::Image(i)) => return self.base_image(i),
            Some(BaseSpec::Paths(b)) => b,
        };
        self.expect(
            "base.kernel",
            &b.kernel,
            Kind::File,
            "the kernel image (bzImage)",
        );
        self.rootfs(&b.rootfs);
        self.modules(b);
        match (&b.busybox, b.root_on) {
            (Some(bb), _) => {
                self.expect("base.busybox", bb, Kind::File, "a static busybox binary");
            }
            (None, crate::config::RootOn::Media) => self.problem(
                "base.busybox",
                "is not set, but base.rootOn is media (the default): stage 1 needs a static \
                 busybox (the boot base has one: ${AIRLIFT_BASE}/busybox), or set \
                 base.rootOn: initramfs",
            ),
            (None, crate::config::RootOn::Initramfs) => {}
        }
        let bl = &b.bootloader;
        let what = "a folder holding isolinux.bin, ldlinux.c32 and isohdpfx.bin (Debian: isolinux, syslinux-common)";
        if self.expect("base.bootloader.isolinux", &bl.isolinux, Kind::Dir, what) {
            for name in ISOLINUX_FILES {
                if !bl.isolinux.join(name).is_file() {
                    self.problem(
                        "base.bootloader.isolinux",
                        format!(
                            "{} has no {name}; copy it there (Debian: /usr/lib/ISOLINUX/isolinux.bin, \
                             /usr/lib/syslinux/modules/bios/ldlinux.c32, /usr/lib/ISOLINUX/isohdpfx.bin)",
                            bl.isolinux.display()
                        ),
                    );
                }
            }
        }
        self.expect(
            "base.bootloader.efi",
            &bl.efi,
            Kind::File,
            "the UEFI boot loader (e.g. systemd-bootx64.efi)",
        );
        for (field, path, what) in [
            (
                "base.bootloader.shim",
                &bl.shim,
                "shim signed by Microsoft's UEFI CA (Debian: shim-signed, shimx64.efi.signed)",
            ),
            (
                "base.bootloader.grub",
                &bl.grub,
                "GRUB signed for shim (Debian: grub-efi-amd64-signed, grubx64.efi.signed)",
            ),
            (
                "base.bootloader.grubNet",
                &bl.grub_net,
                "the network GRUB signed for shim (Debian: grubnetx64.efi.signed)",
            ),
            (
                "base.bootloader.stub",
                &bl.stub,
                "systemd's EFI stub for unified kernel images (Debian: systemd-boot-efi, linuxx64.efi.stub)",
            ),
        ] {
            if let Some(p) = path {
                self.expect(field, p, Kind::File, what);
            }
        }
        if let Some(ipxe) = &bl.ipxe {
            self.expect(
                "base.bootloader.ipxe",
                ipxe,
                Kind::Dir,
                "a folder holding iPXE binaries (undionly.kpxe, ipxe.efi)",
            );
        }
        self.kernel_args(&b.kernel_args);
    }

    /// `base.image`: its source as an image's (local ones opened, nothing
    /// pulled), linux/amd64 only, in-image paths absolute and plain, and
    /// module names well formed. What the image holds is checked after
    /// the pull, at build.
    fn base_image(&mut self, b: &ImageBase) {
        let field = ImageBase::FIELD;
        if self
            .app
            .config
            .base
            .as_ref()
            .is_some_and(|c| c.rootfs.is_some())
        {
            self.problem(
                "base.rootfs",
                "is set together with base.image; the image is the root filesystem: remove \
                 base.rootfs (or base.image to use host paths)",
            );
        }
        for (i, p) in b.image.platforms.iter().enumerate() {
            let f = join_index(&join_key(field, "platforms"), i);
            if p != BASE_PLATFORM {
                self.problem(
                    &f,
                    format!(
                        "{p:?}: a base image is taken for {BASE_PLATFORM} only; write \
                         platforms: [{BASE_PLATFORM}] or remove the field"
                    ),
                );
            }
        }
        self.image_source(field, &b.image);
        for (f, path) in b.overrides() {
            self.check(f, check_in_image_path(path));
        }
        self.module_names(b.modules.as_deref(), &b.extra_modules);
        self.kernel_args(&b.kernel_args);
    }

    /// The root filesystem: a folder, or a tar file (plain, gzip, zstd or xz).
    fn rootfs(&mut self, path: &Path) {
        const WHAT: &str =
            "a root filesystem folder or tar file (.tar, .tar.gz, .tar.zst, .tar.xz)";
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.is_file() => {
                if !looks_like_tar(path) {
                    self.problem(
                        "base.rootfs",
                        format!(
                            "{} is neither a tar file nor a gzip, zstd or xz one; point it at {WHAT}",
                            path.display()
                        ),
                    );
                }
            }
            _ => {
                self.expect("base.rootfs", path, Kind::Dir, WHAT);
            }
        }
    }

    pub(super) fn overlays(&mut self) {
        for (i, o) in self.app.overlays.iter().enumerate() {
            let what = "a folder laid over the root filesystem";
            self.expect(&join_index("overlays", i), o, Kind::Dir, what);
        }
    }
}
