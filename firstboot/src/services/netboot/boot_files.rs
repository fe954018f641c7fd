//! What netboot's plain-HTTP handlers serve from, fixed at start: the
//! netboot config, the media root and what the boot script must name.

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
    pub nodes: Nodes,
}

impl BootFiles {
    /// A served file's path on the media, by its URL name.
    pub fn file(&self, name: &str) -> Option<PathBuf> {
        let rel = match name {
            "vmlinuz" => "boot/vmlinuz",
            "initrd.img" => "boot/initrd.img",
            "undionly.kpxe" => "ipxe/undionly.kpxe",
            "ipxe.efi" => "ipxe/ipxe.efi",
            _ => return None,
        };
        Some(self.media_root.join(rel))
    }
}
