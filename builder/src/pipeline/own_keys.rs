//! `secureBoot: mode: sign`, for sites that enroll their own keys: the
//! ESP holds systemd-boot signed with the site's key as
//! `EFI/BOOT/BOOTX64.EFI` and a unified kernel image signed with it at
//! `EFI/Linux/airlift-VERSION.efi` (a Boot Loader Specification type #2
//! entry, which systemd-boot finds by itself), and no shim.
//!
//! The boot loader is signed first, before the bundle is written, so a
//! key that does not match its certificate fails the build at once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::{Appliance, Base, SecureBootMode};
use crate::iso::FileSource;
use crate::signing::{self, uki, SigningKey};

/// systemd-boot signed with the site's key, and that key.
#[derive(Debug, Clone)]
pub struct SignedBoot {
    pub key: SigningKey,
    /// The signed `systemd-bootx64.efi`.
    pub loader: PathBuf,
}

/// In sign mode, signs `base.bootloader.efi` into `work`; `None` in
/// shim mode.
pub fn sign_loader(
    app: &Appliance,
    base: &Base,
    work: &Path,
    epoch: i64,
) -> Result<Option<SignedBoot>> {
    let sb = &app.secure_boot;
    if sb.mode != SecureBootMode::Sign {
        return Ok(None);
    }
    let file = app.origin.file.display();
    let key = SigningKey {
        key: sb
            .key
            .clone()
            .with_context(|| format!("{file}: secureBoot mode sign needs key"))?,
        certificate: sb
            .certificate
            .clone()
            .with_context(|| format!("{file}: secureBoot mode sign needs certificate"))?,
    };
    let loader = work.join("BOOTX64.EFI");
    signing::sign(&key, &base.bootloader.efi, &loader, epoch)
        .with_context(|| format!("{file}: signing {}", base.bootloader.efi.display()))?;
    Ok(Some(SignedBoot { key, loader }))
}

/// The UKI's name in the ESP: `EFI/Linux/airlift-VERSION.efi`, with any
/// character a file name should not have replaced by `_`.
pub fn uki_path(version: &str) -> String {
    let safe: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("EFI/Linux/airlift-{safe}.efi")
}

/// `loader/loader.conf` for the UKI: no menu, no editor (an editable
/// command line would undo Secure Boot).
pub fn loader_conf() -> String {
    "timeout 0\nconsole-mode keep\neditor no\n".to_string()
}

impl SignedBoot {
    /// Builds and signs the UKI (stub, os-release, `cmdline`, kernel,
    /// `initrd`) in `work`; returns the ESP's files.
    pub fn esp_files(
        &self,
        app: &Appliance,
        base: &Base,
        initrd: &Path,
        cmdline: &str,
        work: &Path,
        epoch: i64,
    ) -> Result<Vec<(String, FileSource)>> {
        let file = app.origin.file.display();
        let stub = base.bootloader.stub.clone().with_context(|| {
            format!("{file}: secureBoot mode sign needs base.bootloader.stub (linuxx64.efi.stub)")
        })?;
        let os_release = work.join("uki-os-release");
        let cmdline_file = work.join("uki-cmdline");
        let write = |p: &Path, s: &str| {
            std::fs::write(p, s).with_context(|| format!("writing {}", p.display()))
        };
        write(
            &os_release,
            &uki::os_release(&app.metadata.name, &app.metadata.version),
        )?;
        write(&cmdline_file, cmdline)?;
        let unsigned = work.join("uki-unsigned.efi");
        let parts = uki::Parts {
            stub: &stub,
            os_release: &os_release,
            cmdline: &cmdline_file,
            kernel: &base.kernel,
            initrd,
        };
        uki::build(&parts, &unsigned, epoch).context("building the unified kernel image")?;
        let signed = work.join("uki.efi");
        signing::sign(&self.key, &unsigned, &signed, epoch)
            .context("signing the unified kernel image")?;
        Ok(vec![
            (
                "EFI/BOOT/BOOTX64.EFI".to_string(),
                FileSource::Path(self.loader.clone()),
            ),
            (uki_path(&app.metadata.version), FileSource::Path(signed)),
            (
                "loader/loader.conf".to_string(),
                FileSource::Bytes(loader_conf().into_bytes()),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uki_name_is_a_safe_file_name() {
        assert_eq!(uki_path("1.2.3"), "EFI/Linux/airlift-1.2.3.efi");
        assert_eq!(uki_path("2024 r1/x"), "EFI/Linux/airlift-2024_r1_x.efi");
        assert!(loader_conf().contains("editor no\n"));
        assert!(
            !loader_conf().contains("default"),
            "the one UKI is the default"
        );
    }
}
