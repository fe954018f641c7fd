//! Whether the firmware booted this machine with Secure Boot on, from
//! the UEFI global variable `SecureBoot` as efivarfs shows it (4 bytes of
//! attributes, then the value: 1 on, 0 off). No `/sys/firmware/efi`
//! means a BIOS boot, where Secure Boot does not exist. Parsing is pure;
//! [`detect`] is the I/O edge and [`announce`] prints the milestone.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::console::milestone;

/// The firmware folder Linux creates on a UEFI boot.
pub const FIRMWARE_EFI: &str = "/sys/firmware/efi";
/// The `SecureBoot` variable under `efivars/`: efivarfs names a variable
/// `NAME-GUID`, here EFI_GLOBAL_VARIABLE, 8BE4DF61-93CA-11D2-AA0D-00E098032B8C
/// in the UEFI specification (read on a booted OVMF: `11d2`, not `11d0`).
pub const VARIABLE: &str = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// What the firmware says about Secure Boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureBoot {
    /// UEFI with Secure Boot enforcing.
    Enabled,
    /// UEFI with Secure Boot off (or firmware without it).
    Disabled,
    /// A BIOS (legacy) boot: no Secure Boot at all.
    Unsupported,
    /// UEFI, but the variable could not be read or made no sense.
    Unknown,
}

impl SecureBoot {
    /// One word for the console and the status.
    pub fn word(self) -> &'static str {
        match self {
            SecureBoot::Enabled => "enabled",
            SecureBoot::Disabled => "disabled",
            SecureBoot::Unsupported => "unsupported (BIOS)",
            SecureBoot::Unknown => "unknown",
        }
    }
}

/// The state from the variable's bytes as efivarfs gives them.
pub fn parse(bytes: &[u8]) -> SecureBoot {
    match bytes {
        [_, _, _, _, 1] => SecureBoot::Enabled,
        [_, _, _, _, 0] => SecureBoot::Disabled,
        _ => SecureBoot::Unknown,
    }
}

/// The state on the machine whose firmware folder is `firmware_efi`
/// ([`FIRMWARE_EFI`] in production): no folder is BIOS; a UEFI firmware
/// without the variable has no Secure Boot to turn on (UEFI 2.3.1 makes
/// the variable mandatory where it exists).
pub fn detect(firmware_efi: &Path) -> SecureBoot {
    if !firmware_efi.is_dir() {
        return SecureBoot::Unsupported;
    }
    let efivars = firmware_efi.join("efivars");
    match std::fs::read(efivars.join(VARIABLE)) {
        Ok(bytes) => parse(&bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && has_entries(&efivars) => {
            SecureBoot::Disabled
        }
        Err(e) => {
            tracing::warn!(
                "reading {}/{VARIABLE}: {e}: efivarfs is not mounted there; \
                 add the efivarfs module to base.modules",
                efivars.display()
            );
            SecureBoot::Unknown
        }
    }
}

/// Whether efivarfs is mounted there (an unmounted folder is empty).
fn has_entries(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// The console line for `state`.
pub fn milestone_line(state: SecureBoot) -> String {
    format!("AIRLIFT-SECUREBOOT {}", state.word())
}

/// Detects the state on this machine and prints its milestone.
pub fn announce() -> SecureBoot {
    let state = detect(Path::new(FIRMWARE_EFI));
    milestone(&milestone_line(state));
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_value_after_the_attributes() {
        assert_eq!(parse(&[6, 0, 0, 0, 1]), SecureBoot::Enabled);
        assert_eq!(parse(&[6, 0, 0, 0, 0]), SecureBoot::Disabled);
        assert_eq!(parse(&[6, 0, 0, 0, 2]), SecureBoot::Unknown);
        assert_eq!(parse(&[6, 0, 0, 0]), SecureBoot::Unknown);
        assert_eq!(parse(&[6, 0, 0, 0, 1, 0]), SecureBoot::Unknown);
        assert_eq!(parse(&[]), SecureBoot::Unknown);
    }

    #[test]
    fn detects_bios_uefi_and_an_unmounted_efivarfs() {
        let dir = tempfile::tempdir().unwrap();
        let efi = dir.path().join("efi");
        assert_eq!(detect(&efi), SecureBoot::Unsupported);
        let vars = efi.join("efivars");
        std::fs::create_dir_all(&vars).unwrap();
        assert_eq!(detect(&efi), SecureBoot::Unknown, "efivarfs not mounted");
        std::fs::write(
            vars.join("Boot0000-8be4df61-93ca-11d2-aa0d-00e098032b8c"),
            b"x",
        )
        .unwrap();
        assert_eq!(
            detect(&efi),
            SecureBoot::Disabled,
            "no variable: no Secure Boot"
        );
        std::fs::write(vars.join(VARIABLE), [6, 0, 0, 0, 1]).unwrap();
        assert_eq!(detect(&efi), SecureBoot::Enabled);
        std::fs::write(vars.join(VARIABLE), [6, 0, 0, 0, 0]).unwrap();
        assert_eq!(detect(&efi), SecureBoot::Disabled);
    }

    #[test]
    fn milestone_and_json_words() {
        assert_eq!(
            milestone_line(SecureBoot::Enabled),
            "AIRLIFT-SECUREBOOT enabled"
        );
        assert_eq!(
            milestone_line(SecureBoot::Unsupported),
            "AIRLIFT-SECUREBOOT unsupported (BIOS)"
        );
        assert_eq!(
            serde_json::to_value(SecureBoot::Enabled).unwrap(),
            "enabled"
        );
        assert_eq!(
            serde_json::to_value(SecureBoot::Unsupported).unwrap(),
            "unsupported"
        );
    }
}
