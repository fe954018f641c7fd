//! Facts read from a kernel image.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The release string (`6.1.0-56-amd64`) of an x86 bzImage, read from its
/// setup header: `kernel_version` at 0x20E points (minus 0x200) to a
/// NUL-ended string whose first word is the release.
pub fn bzimage_release(image: &[u8]) -> Result<String> {
    if image.len() < 0x210 || &image[0x202..0x206] != b"HdrS" {
        bail!("not an x86 bzImage (no HdrS setup header)");
    }
    let ptr = u16::from_le_bytes([image[0x20E], image[0x20F]]) as usize;
    if ptr == 0 {
        bail!("the bzImage header has no kernel_version string");
    }
    let start = ptr + 0x200;
    let tail = image
        .get(start..)
        .context("kernel_version points outside the image")?;
    let end = tail.iter().take(256).position(|b| *b == 0).unwrap_or(0);
    let text = std::str::from_utf8(&tail[..end]).context("kernel_version is not text")?;
    match text.split_whitespace().next() {
        Some(release) => Ok(release.to_string()),
        None => bail!("the bzImage kernel_version string is empty"),
    }
}

/// [`bzimage_release`] of a file.
pub fn release_of(path: &Path) -> Result<String> {
    let data = std::fs::read(path).with_context(|| format!("reading kernel {}", path.display()))?;
    bzimage_release(&data).with_context(|| format!("kernel {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_is_read_from_the_setup_header() {
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let s = b"6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        img[0x300..0x300 + s.len()].copy_from_slice(s);
        assert_eq!(bzimage_release(&img).unwrap(), "6.1.0-56-amd64");
    }

    #[test]
    fn non_kernels_are_refused() {
        assert!(bzimage_release(&[0u8; 0x400]).is_err());
    }
}
