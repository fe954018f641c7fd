//! The folder dnsmasq's TFTP serves, filled when netboot starts:
//!
//! - `undionly.kpxe` (and `undionly.kpxe.0`, the name proxyDHCP asks for)
//!   and `ipxe.efi`, copied from the media's `/ipxe/`;
//! - `shimx64.efi` and `grubx64.efi` (the signed network GRUB), copied from
//!   the media's `/netboot/`: shim loads `grubx64.efi` from its own folder;
//! - `boot/vmlinuz` and `boot/initrd.img`, symlinks to the media's files
//!   (dnsmasq follows them): the network GRUB fetches them over TFTP, and a
//!   link costs no RAM where a copy in `/run` would cost the initrd's size;
//! - `grub/`: the GRUB configs ([`super::grub::files`]), rewritten whole.
//!
//! dnsmasq serves world-readable files only: everything is mode 0644.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::dnsmasq::{BIOS_FILE, EFI_FILE, GRUB_FILE, SHIM_FILE};
use super::grub;

/// Fill `tftp` from `media_root`, with the GRUB configs `grub_files`.
pub fn fill(media_root: &Path, tftp: &Path, grub_files: &[(String, String)]) -> Result<()> {
    std::fs::create_dir_all(tftp).with_context(|| format!("creating {}", tftp.display()))?;
    for (src, names) in [
        ("ipxe/undionly.kpxe", &[BIOS_FILE, "undionly.kpxe.0"][..]),
        ("ipxe/ipxe.efi", &[EFI_FILE][..]),
        ("netboot/shimx64.efi", &[SHIM_FILE][..]),
        ("netboot/grubx64.efi", &[GRUB_FILE][..]),
    ] {
        let from = media_root.join(src);
        let bytes = std::fs::read(&from).with_context(|| {
            format!(
                "reading {} (the ISO has /ipxe/ and /netboot/ only when built with \
                 netboot.enabled; rebuild it with this airlift)",
                from.display()
            )
        })?;
        for n in names {
            write_readable(&tftp.join(n), bytes.as_slice())?;
        }
    }
    let boot = tftp.join("boot");
    std::fs::create_dir_all(&boot).with_context(|| format!("creating {}", boot.display()))?;
    for rel in [grub::KERNEL, grub::INITRD] {
        link(&media_root.join(rel), &tftp.join(rel))?;
    }
    let folder = tftp.join(grub::FOLDER);
    if folder.exists() {
        // Configs of machines no longer listed go.
        std::fs::remove_dir_all(&folder)
            .with_context(|| format!("clearing {}", folder.display()))?;
    }
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    for (rel, text) in grub_files {
        write_readable(&tftp.join(rel), text.as_bytes())?;
    }
    Ok(())
}

fn write_readable(to: &Path, bytes: &[u8]) -> Result<()> {
    airlift_oci::atomic::write(to, bytes)?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("making {} readable", to.display()))
}

/// `at` becomes a symlink to `target`, replaced atomically.
fn link(target: &Path, at: &Path) -> Result<()> {
    let tmp = at.with_extension("link-tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("linking {} to {}", tmp.display(), target.display()))?;
    std::fs::rename(&tmp, at).with_context(|| format!("renaming to {}", at.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_the_folder_and_replaces_old_configs() {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path().join("media");
        for (p, body) in [
            ("ipxe/undionly.kpxe", "BIOS"),
            ("ipxe/ipxe.efi", "EFI"),
            ("netboot/shimx64.efi", "SHIM"),
            ("netboot/grubx64.efi", "GRUB"),
            ("boot/vmlinuz", "KERNEL"),
            ("boot/initrd.img", "INITRD"),
        ] {
            let f = media.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, body).unwrap();
        }
        let tftp = tmp.path().join("tftp");
        let old = vec![("grub/52:54:00:00:00:09.cfg".to_string(), "old".to_string())];
        fill(&media, &tftp, &old).unwrap();
        let new = vec![("grub/grub.cfg".to_string(), "top".to_string())];
        fill(&media, &tftp, &new).unwrap();
        for (p, body) in [
            ("undionly.kpxe.0", "BIOS"),
            ("ipxe.efi", "EFI"),
            ("shimx64.efi", "SHIM"),
            ("grubx64.efi", "GRUB"),
            ("boot/vmlinuz", "KERNEL"),
            ("boot/initrd.img", "INITRD"),
            ("grub/grub.cfg", "top"),
        ] {
            assert_eq!(std::fs::read_to_string(tftp.join(p)).unwrap(), body, "{p}");
            let mode = std::fs::metadata(tftp.join(p))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o444, 0o444, "{p} must be world-readable");
        }
        assert!(std::fs::symlink_metadata(tftp.join("boot/initrd.img"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(!tftp.join("grub/52:54:00:00:00:09.cfg").exists());
    }

    #[test]
    fn a_media_without_shim_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let media = tmp.path().join("media");
        std::fs::create_dir_all(media.join("ipxe")).unwrap();
        std::fs::write(media.join("ipxe/undionly.kpxe"), "B").unwrap();
        std::fs::write(media.join("ipxe/ipxe.efi"), "E").unwrap();
        let err = fill(&media, &tmp.path().join("tftp"), &[]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("netboot/shimx64.efi") && msg.contains("netboot.enabled"),
            "{msg}"
        );
    }
}
