//! The unified kernel image: systemd's EFI stub with the os-release, the
//! kernel command line, the kernel and the initrd added as PE sections
//! (`.osrel`, `.cmdline`, `.linux`, `.initrd`), which systemd-boot lists
//! from `EFI/Linux/` and the stub boots (systemd 252, before `ukify`).
//!
//! The sections are added with binutils' `objcopy --add-section
//! --change-section-vma`, each at a virtual address past the stub's
//! image and the section before it; objcopy stamps the current time in
//! the COFF header, which is then set to the build's epoch (checksum
//! rewritten) so the same inputs give the same bytes.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::pe;

/// Where sections start: 64 KiB steps, as systemd's own tools place them.
const SECTION_STEP: u64 = 0x1_0000;

/// The sections of a UKI, in order: (name, file).
pub struct Parts<'a> {
    pub stub: &'a Path,
    pub os_release: &'a Path,
    pub cmdline: &'a Path,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
}

/// The virtual address of each section of `sizes`, placed in order after
/// `image_end` (the stub's end), each 64 KiB-aligned past the one before.
pub fn section_addresses(image_end: u64, sizes: &[u64]) -> Vec<u64> {
    let mut at = image_end.next_multiple_of(SECTION_STEP);
    sizes
        .iter()
        .map(|size| {
            let here = at;
            at = (here + size).next_multiple_of(SECTION_STEP);
            here
        })
        .collect()
}

/// `os-release` for the `.osrel` section: systemd-boot shows PRETTY_NAME.
pub fn os_release(name: &str, version: &str) -> String {
    let quote = |s: &str| {
        s.chars()
            .filter(|c| !c.is_control())
            .flat_map(|c| match c {
                '"' | '\\' | '$' | '`' => vec!['\\', c],
                c => vec![c],
            })
            .collect::<String>()
    };
    format!(
        "NAME=\"airlift\"\nID=airlift\nPRETTY_NAME=\"airlift {} {}\"\nVERSION_ID=\"{}\"\n",
        quote(name),
        quote(version),
        quote(version)
    )
}

/// Builds the UKI of `p` into `out` with its COFF timestamp set to `epoch`.
pub fn build(p: &Parts, out: &Path, epoch: i64) -> Result<()> {
    let stub = std::fs::read(p.stub).with_context(|| format!("reading {}", p.stub.display()))?;
    let headers = pe::Headers::parse(&stub)
        .with_context(|| format!("{} is not a UEFI stub (PE image)", p.stub.display()))?;
    let sections = [
        (".osrel", p.os_release),
        (".cmdline", p.cmdline),
        (".linux", p.kernel),
        (".initrd", p.initrd),
    ];
    let mut sizes = Vec::new();
    for (_, f) in &sections {
        let m = std::fs::metadata(f).with_context(|| format!("reading {}", f.display()))?;
        sizes.push(m.len());
    }
    let addresses = section_addresses(headers.end_of_sections(), &sizes);
    let mut cmd = Command::new("objcopy");
    for ((name, file), vma) in sections.iter().zip(&addresses) {
        cmd.arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}=0x{vma:x}"));
    }
    cmd.arg(p.stub).arg(out);
    let result = cmd.output();
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("`objcopy` is not installed (Debian: apt-get install binutils; `just deps`)")
        }
        Err(e) => return Err(e).context("running objcopy"),
    };
    if !output.status.success() {
        bail!(
            "objcopy could not build the unified kernel image from {} ({}): {}",
            p.stub.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let mut bytes = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
    pe::set_timestamp(&mut bytes, epoch.clamp(0, i64::from(u32::MAX)) as u32)?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_the_stub_64k_aligned() {
        let a = section_addresses(0x19300, &[13, 0x10000, 0x7d_d7c0, 5]);
        assert_eq!(a, [0x20000, 0x30000, 0x40000, 0x82_0000]);
        assert_eq!(section_addresses(0x20000, &[1]), [0x20000]);
    }

    #[test]
    fn os_release_quotes_what_the_shell_would_expand() {
        let o = os_release("demo", "1.0 \"x\" $HOME\n`id`");
        assert!(
            o.contains("PRETTY_NAME=\"airlift demo 1.0 \\\"x\\\" \\$HOME\\`id\\`\"\n"),
            "{o}"
        );
        assert!(o.starts_with("NAME=\"airlift\"\nID=airlift\n"), "{o}");
    }
}
