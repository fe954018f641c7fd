//! What netboot's plain-HTTP handlers serve from, fixed at start: the
//! netboot config, the media root and what the boot script must name,
//! including the root filesystem image and its SHA-256 (from the media's
//! `SHA256SUMS`: the image cannot carry its own digest) when the root
//! filesystem is read from the media.

use std::path::PathBuf;

use crate::services::netboot::config::Netboot;
use crate::services::netboot::nodes::Nodes;

/// What the handlers serve from, fixed at start.
#[derive(Debug)]
pub struct BootFiles {
    pub config: Netboot,
    /// The media's root (holds `boot/` and `ipxe/`).
    pub media_root: PathBuf,
    /// host0's registry port and scheme (for `airlift.server=`).
    pub registry_port: u16,
    pub registry_scheme: crate::services::mirrors::Scheme,
    pub token: String,
    pub ca_fingerprint: Option<String>,
    /// SHA-256 (hex) of the media's root filesystem image, when it has one.
    pub root_sha256: Option<String>,
    pub nodes: Nodes,
}

/// Where the root filesystem image sits on the media.
pub const ROOT_IMAGE: &str = "airlift/rootfs.squashfs";

/// The SHA-256 that a `SHA256SUMS` text (`<hex>  <path>` lines) gives
/// for `path`.
pub fn sum_for(sums: &str, path: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (hex, p) = l.split_once("  ")?;
        let ok = p == path && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| hex.to_ascii_lowercase())
    })
}

/// The SHA-256 of the root filesystem image on the media at
/// `media_root`, read from its `SHA256SUMS`; None when the media has no
/// image (its root filesystem is in the initramfs) or no sums.
pub fn root_image_sha256(media_root: &std::path::Path) -> Option<String> {
    if !media_root.join(ROOT_IMAGE).is_file() {
        return None;
    }
    let sums = std::fs::read_to_string(media_root.join("SHA256SUMS")).ok()?;
    sum_for(&sums, ROOT_IMAGE)
}

impl BootFiles {
    /// A served file's path on the media, by its URL name.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let rel = match name {
            "vmlinuz" => "boot/vmlinuz",
            "initrd.img" => "boot/initrd.img",
            "undionly.kpxe" => "ipxe/undionly.kpxe",
            "ipxe.efi" => "ipxe/ipxe.efi",
            "rootfs.squashfs" => ROOT_IMAGE,
            _ => return None,
        };
        Some(self.media_root.join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_image_sum_is_read_from_sha256sums() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let sums = format!("{a}  boot/vmlinuz\n{b}  airlift/rootfs.squashfs\nxyz  airlift/x\n");
        assert_eq!(sum_for(&sums, ROOT_IMAGE), Some("b".repeat(64)));
        assert_eq!(sum_for(&sums, "airlift/x"), None);
        assert_eq!(sum_for(&sums, "nope"), None);

        let dir = tempfile::tempdir().unwrap();
        assert_eq!(root_image_sha256(dir.path()), None);
        std::fs::create_dir_all(dir.path().join("airlift")).unwrap();
        std::fs::write(dir.path().join(ROOT_IMAGE), b"img").unwrap();
        assert_eq!(root_image_sha256(dir.path()), None, "no SHA256SUMS");
        std::fs::write(dir.path().join("SHA256SUMS"), sums).unwrap();
        assert_eq!(root_image_sha256(dir.path()), Some("b".repeat(64)));
    }
}
