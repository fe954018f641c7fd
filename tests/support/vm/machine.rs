//! What a VM is made of: firmware, how the image is attached, memory and
//! vCPUs, and the QEMU command line for it.
//!
//! * Acceleration: TCG unless `AIRLIFT_QEMU_ACCEL` says otherwise (this
//!   machine's `/dev/kvm` is a software PVM that cannot boot a stock
//!   kernel). CPU `qemu64,+rdrand` so the guest RNG is ready at once.
//! * Drive options are the ones measured to work (FIELD-NOTES): IDE CD,
//!   virtio disk, xHCI + usb-storage; OVMF with a writable VARS copy.
//! * Secure Boot: OVMF's secure build with Microsoft's keys enrolled
//!   (Debian's `*.ms.fd`) needs q35 with SMM and the secure pflash
//!   (FIELD-NOTES), so [`Firmware::UefiSecureBoot`] VMs are q35; the IDE
//!   CD then sits on q35's AHCI controller.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// OVMF firmware code (4 MiB build, no Secure Boot).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF variable store template (copied per VM).
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// OVMF's Secure Boot build (SMM), for [`Firmware::UefiSecureBoot`].
pub const OVMF_CODE_SECURE: &str = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
/// Variables with Microsoft's keys enrolled and Secure Boot on.
pub const OVMF_VARS_MS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";

/// OVMF with Secure Boot enforcing and only Debian's test key
/// (`/usr/share/ovmf/PkKek-1-snakeoil.pem`) enrolled: boots what a site
/// signs with that key (`secureBoot: mode: sign`). Needs SMM (q35).
pub const OVMF_CODE_SNAKEOIL: &str = "/usr/share/OVMF/OVMF_CODE_4M.snakeoil.fd";
/// Its variable store template (copied per VM).
pub const OVMF_VARS_SNAKEOIL: &str = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd";

/// Default hard timeout of one boot under TCG.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Which firmware boots the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF (EDK II).
    Uefi,
    /// OVMF enforcing Secure Boot with Microsoft's keys enrolled, as a
    /// server from the shop is (q35 with SMM).
    UefiSecureBoot,
    /// OVMF enforcing Secure Boot with only Debian's test key enrolled
    /// (q35 with SMM): boots what a site signs with that key.
    UefiSnakeoil,
}

impl Firmware {
    /// OVMF's code, its variable store template, and whether it is a
    /// Secure Boot build (q35 with SMM, secure pflash); `None` for BIOS.
    pub fn ovmf(self) -> Option<(&'static str, &'static str, bool)> {
        match self {
            Firmware::Bios => None,
            Firmware::Uefi => Some((OVMF_CODE, OVMF_VARS, false)),
            Firmware::UefiSecureBoot => Some((OVMF_CODE_SECURE, OVMF_VARS_MS, true)),
            Firmware::UefiSnakeoil => Some((OVMF_CODE_SNAKEOIL, OVMF_VARS_SNAKEOIL, true)),
        }
    }

    /// A writable copy of the variable store in `dir`, for the UEFI kinds.
    pub fn vars_copy(self, dir: &Path) -> anyhow::Result<Option<PathBuf>> {
        use anyhow::Context;
        let Some((_, template, _)) = self.ovmf() else {
            return Ok(None);
        };
        let v = dir.join("OVMF_VARS.fd");
        std::fs::copy(template, &v)
            .with_context(|| format!("copying {template} (apt-get install ovmf)"))?;
        Ok(Some(v))
    }

    /// The variable store copied per VM (None: BIOS has none).
    pub fn vars_template(self) -> Option<&'static str> {
        self.ovmf().map(|(_, vars, _)| vars)
    }

    /// The QEMU arguments for this firmware, with `vars` the VM's copy
    /// of [`Firmware::vars_template`] (BIOS: none).
    pub fn args(self, vars: Option<&Path>) -> Vec<String> {
        let Some((code, _, secure)) = self.ovmf() else {
            return Vec::new();
        };
        let vars = vars.expect("UEFI VMs need a VARS copy");
        let mut a: Vec<String> = Vec::new();
        if secure {
            a.extend(
                [
                    "-machine",
                    "q35,smm=on",
                    "-global",
                    "driver=cfi.pflash01,property=secure,value=on",
                ]
                .map(String::from),
            );
        }
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,readonly=on,file={code}"));
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,file={}", vars.display()));
        a
    }
}

/// How the image is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// IDE CD-ROM (El Torito).
    Cd,
    /// virtio-blk hard disk (MBR/GPT).
    Disk,
    /// USB stick on an xHCI controller.
    Usb,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
            Firmware::UefiSecureBoot => "uefi-secureboot",
            Firmware::UefiSnakeoil => "uefi-secureboot-snakeoil",
        })
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Media::Cd => "cd",
            Media::Disk => "disk",
            Media::Usb => "usb",
        })
    }
}

/// One VM to boot.
#[derive(Debug, Clone)]
pub struct Vm {
    pub firmware: Firmware,
    pub media: Media,
    /// The image to boot (attached read-only).
    pub image: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Extra QEMU arguments (network devices …).
    pub extra_args: Vec<String>,
}

impl Vm {
    /// 1 GiB, 1 vCPU, [`DEFAULT_TIMEOUT`].
    pub fn new(firmware: Firmware, media: Media, image: &Path) -> Vm {
        Vm {
            firmware,
            media,
            image: image.to_path_buf(),
            memory_mib: 1024,
            cpus: 1,
            timeout: DEFAULT_TIMEOUT,
            extra_args: Vec::new(),
        }
    }
}

/// `-accel` value: `AIRLIFT_QEMU_ACCEL`, else `tcg`.
pub fn accel() -> String {
    std::env::var("AIRLIFT_QEMU_ACCEL").unwrap_or_else(|_| "tcg".to_string())
}

/// The arguments every VM of the tests has: acceleration, CPU, `cpus`
/// vCPUs, no display, monitor or default devices, no reboot.
pub fn common_args(cpus: u32) -> Vec<String> {
    [
        "-accel",
        &accel(),
        "-cpu",
        "qemu64,+rdrand",
        "-smp",
        &cpus.to_string(),
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-nodefaults",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The QEMU arguments for `vm` past [`common_args`] and the serial path,
/// which [`crate::vm::start`] adds; `ovmf_vars` is the VARS copy UEFI needs.
pub fn qemu_args(vm: &Vm, ovmf_vars: Option<&Path>) -> Vec<String> {
    let image = vm.image.display().to_string();
    let mut a: Vec<String> = [
        "-m",
        &vm.memory_mib.to_string(),
        "-vga",
        "std",
        "-net",
        "none",
    ]
    .map(String::from)
    .into();
    a.extend(vm.firmware.args(ovmf_vars));
    match vm.media {
        Media::Cd => {
            a.push("-drive".into());
            a.push(format!(
                "file={image},media=cdrom,readonly=on,if=ide,index=2"
            ));
        }
        Media::Disk => {
            a.push("-drive".into());
            a.push(format!("file={image},format=raw,if=virtio,readonly=on"));
        }
        Media::Usb => {
            a.extend(["-device".into(), "qemu-xhci".into(), "-drive".into()]);
            a.push(format!("if=none,id=u0,file={image},format=raw,readonly=on"));
            a.extend(["-device".into(), "usb-storage,drive=u0,bootindex=0".into()]);
        }
    }
    a.extend(vm.extra_args.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_options_match_the_media() {
        let img = Path::new("/x.iso");
        let cd = qemu_args(&Vm::new(Firmware::Bios, Media::Cd, img), None).join(" ");
        assert!(
            cd.contains("file=/x.iso,media=cdrom,readonly=on,if=ide,index=2"),
            "{cd}"
        );
        assert!(!cd.contains("pflash"));
        let usb = qemu_args(
            &Vm::new(Firmware::Uefi, Media::Usb, img),
            Some(Path::new("/v.fd")),
        )
        .join(" ");
        assert!(
            usb.contains("qemu-xhci") && usb.contains("usb-storage,drive=u0"),
            "{usb}"
        );
        assert!(usb.contains("if=pflash,format=raw,file=/v.fd"), "{usb}");
        assert!(!usb.contains("smm=on"), "{usb}");
        let sb = qemu_args(
            &Vm::new(Firmware::UefiSnakeoil, Media::Cd, img),
            Some(Path::new("/v.fd")),
        )
        .join(" ");
        assert!(
            sb.contains("-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on"),
            "{sb}"
        );
        assert!(sb.contains(OVMF_CODE_SNAKEOIL), "{sb}");
        let disk = qemu_args(&Vm::new(Firmware::Bios, Media::Disk, img), None).join(" ");
        assert!(disk.contains("if=virtio"), "{disk}");
        assert!(!usb.contains("smm=on") && !usb.contains(".ms.fd"), "{usb}");
        let sb = qemu_args(
            &Vm::new(Firmware::UefiSecureBoot, Media::Cd, img),
            Some(Path::new("/v.fd")),
        )
        .join(" ");
        assert!(
            sb.contains("-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on"),
            "{sb}"
        );
        assert!(
            sb.contains(&format!("readonly=on,file={OVMF_CODE_SECURE}")),
            "{sb}"
        );
    }
}
