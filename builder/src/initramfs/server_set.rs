//! The server set: the kernel modules an initramfs gets when the image
//! config names none (`base.modules` absent), so that host0 boots on the
//! storage, network and console hardware of common rack servers as well
//! as on the usual hypervisors. `base.extraModules` adds to it;
//! `base.modules` replaces it. Each group below is one documented list;
//! their dependency closures are added by the initramfs writer.
//!
//! The initramfs is the whole root filesystem, so a module that is not
//! here (or in the config) cannot be loaded on the booted appliance.
//! udev loads each driver when its device shows up (from the
//! `modules.alias` written beside them); unused ones cost only bytes.
//!
//! A name of the set the kernel has built in is fine; one the kernel does
//! not have at all (a custom kernel without a NIC driver) is skipped with
//! a warning, whereas a name the config gives is an error.

/// Finding the boot media: CD drives on SATA/IDE (`ata_piix` for QEMU's
/// `pc` and older chipsets, `ahci` for every SATA controller since), SCSI
/// CD and disk, USB sticks and USB-attached drives (`uas`), and the
/// ISO 9660 filesystem.
pub const MEDIA: &[&str] = &[
    "ata_piix",
    "ahci",
    "sr_mod",
    "cdrom",
    "sd_mod",
    "usb_storage",
    "uas",
    "isofs",
];

/// Data disks behind the controllers servers ship with: NVMe, Broadcom
/// (LSI) MegaRAID and SAS HBAs, Microchip (Adaptec) SmartPQI, HPE Smart
/// Array, and the paravirtual disks of KVM (virtio) and VMware (PVSCSI).
pub const STORAGE: &[&str] = &[
    "nvme",
    "megaraid_sas",
    "mpt3sas",
    "smartpqi",
    "hpsa",
    "virtio_blk",
    "virtio_scsi",
    "vmw_pvscsi",
];

/// Network cards: Intel 1G (`e1000`, `e1000e`, `igb`, `igc`), 10/25/40/100G
/// (`ixgbe`, `i40e`, `ice`), Broadcom (`bnxt_en`, `tg3`), Mellanox/NVIDIA
/// ConnectX (`mlx5_core`), Realtek (`r8169`) and the paravirtual NICs of
/// KVM and VMware. host0 serves its registry and netboot through one of
/// them, and netbooted nodes boot the same initramfs.
pub const NETWORK: &[&str] = &[
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "ixgbe",
    "i40e",
    "ice",
    "bnxt_en",
    "tg3",
    "mlx5_core",
    "r8169",
    "virtio_net",
    "vmxnet3",
];

/// A keyboard at the console: USB host controllers (xHCI, EHCI, and the
/// OHCI/UHCI companions that older boards and BMC virtual keyboards sit
/// on) and USB HID. The PS/2 keyboard driver is built into Debian's kernel.
pub const CONSOLE: &[&str] = &[
    "xhci_pci",
    "ehci_pci",
    "ohci_pci",
    "uhci_hcd",
    "usbhid",
    "hid_generic",
];

/// The virtio PCI transport every virtio disk and NIC above sits on.
pub const BUS: &[&str] = &["virtio_pci"];

/// Filesystems airlift mounts: squashfs, loop and overlay (images and
/// container storage), FAT with the code page and character sets its
/// mount options default to (the EFI system partition), and the data
/// disk's filesystems, ext4 and XFS (`storage.dataDisk.filesystem`), with
/// ext4's `crc32c` softdep named by its providers (an alias is not a
/// module name; `crc32c_intel` needs SSE4.2, the generic one always loads),
/// and efivarfs, through which systemd and airlift read UEFI variables
/// (whether the firmware booted with Secure Boot).
pub const FILESYSTEMS: &[&str] = &[
    "efivarfs",
    "squashfs",
    "loop",
    "overlay",
    "vfat",
    "nls_cp437",
    "nls_ascii",
    "nls_utf8",
    "ext4",
    "crc32c_generic",
    "crc32c_intel",
    "xfs",
];

/// Container networking on the booted appliance: the bridge, its
/// netfilter hook (Kubernetes networking needs `br_netfilter`) and veth
/// pairs, which container runtimes create.
pub const CONTAINERS: &[&str] = &["bridge", "br_netfilter", "veth"];

/// Every group, in the order above, as (name, modules).
pub const GROUPS: &[(&str, &[&str])] = &[
    ("media", MEDIA),
    ("storage", STORAGE),
    ("network", NETWORK),
    ("console", CONSOLE),
    ("bus", BUS),
    ("filesystems", FILESYSTEMS),
    ("containers", CONTAINERS),
];

/// The whole server set, each name once, in group order.
pub fn names() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in GROUPS.iter().flat_map(|(_, g)| g.iter()) {
        if !out.iter().any(|n| n == name) {
            out.push((*name).to_string());
        }
    }
    out
}

/// Which modules go into an initramfs, from the config's `base.modules`
/// (`None` when absent) and `base.extraModules`: `required` must exist
/// (the config named them), `optional` are the server set's names, skipped
/// with a warning when the kernel lacks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub required: Vec<String>,
    pub optional: Vec<String>,
}

impl Selection {
    /// `modules` present replaces the server set ("exactly these");
    /// absent, the server set is in force. `extra` is added either way.
    pub fn new(modules: Option<&[String]>, extra: &[String]) -> Selection {
        let mut required: Vec<String> = Vec::new();
        for m in modules.unwrap_or_default().iter().chain(extra) {
            if !required.contains(m) {
                required.push(m.clone());
            }
        }
        let optional = match modules {
            Some(_) => Vec::new(),
            None => names()
                .into_iter()
                .filter(|n| !required.contains(n))
                .collect(),
        };
        Selection { required, optional }
    }

    /// No module at all (`modules: []` and no extras).
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.optional.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_set_holds_what_servers_need_once_each() {
        let all = names();
        for m in [
            "nvme",
            "megaraid_sas",
            "ahci",
            "igb",
            "e1000e",
            "mlx5_core",
            "xhci_pci",
            "usbhid",
            "isofs",
            "ext4",
            "xfs",
            "overlay",
        ] {
            assert!(all.iter().any(|n| n == m), "{m} missing from {all:?}");
        }
        let mut sorted = all.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a name is listed twice");
        for n in &all {
            assert!(!n.contains('-'), "{n}: write canonical names with '_'");
        }
    }

    #[test]
    fn absent_modules_mean_the_server_set_plus_extras() {
        let s = Selection::new(None, &strings(&["dm_mod", "nvme"]));
        assert_eq!(s.required, strings(&["dm_mod", "nvme"]));
        assert!(s.optional.iter().any(|n| n == "igb"));
        assert!(!s.optional.iter().any(|n| n == "nvme"), "named once");
        assert!(!s.is_empty());
    }

    #[test]
    fn listed_modules_replace_the_set_and_extras_add_to_them() {
        let s = Selection::new(Some(&strings(&["ata_piix", "isofs"])), &strings(&["igb"]));
        assert_eq!(s.required, strings(&["ata_piix", "isofs", "igb"]));
        assert!(s.optional.is_empty());
        assert!(Selection::new(Some(&[]), &[]).is_empty());
    }
}
