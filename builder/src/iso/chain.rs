//! Which UEFI boot chain an ISO carries and who signed each part, for
//! `airlift inspect`: the ESP is found through the GPT (else El Torito),
//! read with [`super::esp::read`], and each PE file's Authenticode
//! signers named ([`crate::pe::authenticode`]).
//!
//! The chain is told by the ESP's files: `EFI/BOOT/grubx64.efi` beside
//! the loader is shim → GRUB → kernel (the kernel read from ISO 9660);
//! `EFI/Linux/*.efi` is systemd-boot → unified kernel image (sign mode);
//! otherwise systemd-boot → kernel, as ISOs before Secure Boot were.

use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::esp::read::Fat;
use super::read::{BootEntryInfo, GptPartInfo, Iso};
use crate::pe::authenticode::{signers_of_pe, Signer};

/// The kinds of chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainKind {
    /// shim (Microsoft-signed) → GRUB → kernel (distribution-signed).
    Shim,
    /// systemd-boot → unified kernel image, both signed by the site.
    SystemdBootUki,
    /// systemd-boot → kernel and initrd from the ESP.
    SystemdBoot,
}

impl ChainKind {
    pub fn describe(self) -> &'static str {
        match self {
            ChainKind::Shim => "shim -> GRUB -> kernel",
            ChainKind::SystemdBootUki => "systemd-boot -> unified kernel image",
            ChainKind::SystemdBoot => "systemd-boot -> kernel",
        }
    }
}

/// Where a part of the chain lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// A path in the ESP.
    Esp(String),
    /// A path in the ISO 9660 tree.
    Iso(String),
}

/// One part of the chain and who signed it (empty: unsigned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainPart {
    pub role: String,
    pub location: Location,
    pub signers: Vec<Signer>,
    /// Why the signers could not be read (file missing, not a PE image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The UEFI chain of an ISO.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UefiChain {
    pub kind: ChainKind,
    pub description: String,
    pub parts: Vec<ChainPart>,
}

const LOADER: &str = "EFI/BOOT/BOOTX64.EFI";

/// The chain the ESP's `paths` make (pure): its kind and its parts' roles
/// and locations, in boot order.
pub fn classify(paths: &[String]) -> (ChainKind, Vec<(String, Location)>) {
    let has = |p: &str| paths.iter().any(|x| x.eq_ignore_ascii_case(p));
    let esp = |p: &str| Location::Esp(p.to_string());
    if has("EFI/BOOT/grubx64.efi") {
        return (
            ChainKind::Shim,
            vec![
                ("shim".into(), esp(LOADER)),
                ("GRUB".into(), esp("EFI/BOOT/grubx64.efi")),
                ("kernel".into(), Location::Iso("boot/vmlinuz".into())),
            ],
        );
    }
    let ukis: Vec<&String> = paths
        .iter()
        .filter(|p| {
            let l = p.to_ascii_lowercase();
            l.starts_with("efi/linux/") && l.ends_with(".efi")
        })
        .collect();
    let mut parts = vec![("systemd-boot".to_string(), esp(LOADER))];
    if ukis.is_empty() {
        let kernel = if has("vmlinuz") {
            esp("vmlinuz")
        } else {
            Location::Iso("boot/vmlinuz".into())
        };
        parts.push(("kernel".into(), kernel));
        return (ChainKind::SystemdBoot, parts);
    }
    parts.extend(
        ukis.into_iter()
            .map(|p| ("unified kernel image".into(), esp(p))),
    );
    (ChainKind::SystemdBootUki, parts)
}

/// The ESP's byte range in the image: the GPT's EFI System partition,
/// else the El Torito UEFI entry.
fn esp_range(gpt: &Option<Vec<GptPartInfo>>, el_torito: &[BootEntryInfo]) -> Option<u64> {
    if let Some(p) = gpt.iter().flatten().find(|p| p.type_name == "EFI System") {
        return Some(p.first * 512);
    }
    el_torito
        .iter()
        .find(|e| e.platform == 0xef)
        .map(|e| u64::from(e.lba) * 2048)
}

/// Every file path in the ESP (`EFI/BOOT/BOOTX64.EFI`), walking at most
/// a few levels.
fn esp_paths(fat: &Fat) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), fat.root()?, 0)];
    while let Some((prefix, entries, depth)) = todo.pop() {
        for e in entries {
            let path = format!("{prefix}{}", e.name);
            if e.is_dir && depth < 4 {
                todo.push((format!("{path}/"), fat.read_dir(&e)?, depth + 1));
            } else if !e.is_dir {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The UEFI chain of the ISO at `path` (`None` without an ESP).
pub fn uefi_chain(
    path: &Path,
    iso: &Iso,
    gpt: &Option<Vec<GptPartInfo>>,
    el_torito: &[BootEntryInfo],
) -> Result<Option<UefiChain>> {
    let Some(start) = esp_range(gpt, el_torito) else {
        return Ok(None);
    };
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let read_at = |at: u64, len: usize| -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, start + at).with_context(|| {
            format!("{}: reading the ESP at byte {}", path.display(), start + at)
        })?;
        Ok(buf)
    };
    let fat =
        Fat::open(&read_at).with_context(|| format!("{}: reading the ESP", path.display()))?;
    let (kind, parts) = classify(&esp_paths(&fat)?);
    let mut out = Vec::new();
    for (role, location) in parts {
        let bytes = match &location {
            Location::Esp(p) => match fat.lookup(p)? {
                Some(e) => Some(fat.read_file(&e)?),
                None => None,
            },
            Location::Iso(p) => iso.read_file(p)?,
        };
        let (signers, problem) = match bytes.map(|b| signers_of_pe(&b)) {
            Some(Ok(s)) => (s, None),
            Some(Err(e)) => (Vec::new(), Some(format!("{e:#}"))),
            None => (Vec::new(), Some("missing".to_string())),
        };
        out.push(ChainPart {
            role,
            location,
            signers,
            problem,
        });
    }
    Ok(Some(UefiChain {
        kind,
        description: kind.describe().to_string(),
        parts: out,
    }))
}

/// The chain as `inspect` prints it.
pub fn render(c: &UefiChain) -> String {
    let mut s = format!("UEFI chain:  {}\n", c.description);
    for p in &c.parts {
        let at = match &p.location {
            Location::Esp(x) => format!("ESP /{x}"),
            Location::Iso(x) => format!("ISO /{x}"),
        };
        if let Some(problem) = &p.problem {
            s.push_str(&format!("  {} ({at}): {problem}\n", p.role));
        } else if p.signers.is_empty() {
            s.push_str(&format!("  {} ({at}): unsigned\n", p.role));
        }
        for sg in &p.signers {
            s.push_str(&format!(
                "  {} ({at}): signed by \"{}\", issued by \"{}\"\n",
                p.role, sg.subject, sg.issuer
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tells_the_three_chains_apart() {
        let (k, parts) = classify(&paths(&[
            "EFI/BOOT/BOOTX64.EFI",
            "EFI/BOOT/grubx64.efi",
            "EFI/BOOT/mmx64.efi",
            "EFI/BOOT/grub.cfg",
        ]));
        assert_eq!(k, ChainKind::Shim);
        assert_eq!(
            parts[2],
            ("kernel".into(), Location::Iso("boot/vmlinuz".into()))
        );
        let (k, parts) = classify(&paths(&[
            "EFI/BOOT/BOOTX64.EFI",
            "EFI/Linux/airlift-1.efi",
            "loader/loader.conf",
        ]));
        assert_eq!(k, ChainKind::SystemdBootUki);
        assert_eq!(parts[1].1, Location::Esp("EFI/Linux/airlift-1.efi".into()));
        let (k, parts) = classify(&paths(&["EFI/BOOT/BOOTX64.EFI", "vmlinuz", "initrd.img"]));
        assert_eq!(k, ChainKind::SystemdBoot);
        assert_eq!(parts[1].1, Location::Esp("vmlinuz".into()));
    }

    #[test]
    fn renders_signers_and_unsigned_parts() {
        let c = UefiChain {
            kind: ChainKind::SystemdBoot,
            description: ChainKind::SystemdBoot.describe().into(),
            parts: vec![
                ChainPart {
                    role: "systemd-boot".into(),
                    location: Location::Esp(LOADER.into()),
                    signers: vec![],
                    problem: None,
                },
                ChainPart {
                    role: "GRUB".into(),
                    location: Location::Esp("EFI/BOOT/grubx64.efi".into()),
                    signers: vec![],
                    problem: Some("not a PE image (no MZ header)".into()),
                },
                ChainPart {
                    role: "kernel".into(),
                    location: Location::Esp("vmlinuz".into()),
                    signers: vec![Signer {
                        subject: "S".into(),
                        issuer: "I".into(),
                    }],
                    problem: None,
                },
            ],
        };
        assert_eq!(
            render(&c),
            "UEFI chain:  systemd-boot -> kernel\n  systemd-boot (ESP /EFI/BOOT/BOOTX64.EFI): unsigned\n  GRUB (ESP /EFI/BOOT/grubx64.efi): not a PE image (no MZ header)\n  kernel (ESP /vmlinuz): signed by \"S\", issued by \"I\"\n"
        );
    }
}
