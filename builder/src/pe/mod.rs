//! Reading and patching PE/COFF images (UEFI applications): the headers
//! airlift needs to lay out a unified kernel image, the PE checksum, and
//! the Authenticode certificate table that says who signed a boot file.
//!
//! Only what those jobs need is parsed; every offset is bounds-checked,
//! so a truncated or hostile file is an error, never a panic.

pub mod authenticode;
pub mod der;

use anyhow::{bail, Result};

/// Offset of `e_lfanew` (where the PE signature sits) in the DOS header.
const LFANEW_AT: usize = 0x3c;
/// The certificate table's index among the data directories.
const CERT_DIRECTORY: usize = 4;

/// One section header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub raw_size: u32,
    pub raw_offset: u32,
}

/// The headers of a PE image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers {
    /// Offset of the COFF file header (just past `PE\0\0`).
    pub coff_at: usize,
    /// Offset of the optional header.
    pub optional_at: usize,
    /// PE32+ (64-bit) rather than PE32.
    pub pe32_plus: bool,
    pub section_alignment: u32,
    pub size_of_image: u32,
    pub sections: Vec<Section>,
    /// The certificate table: (file offset, size); (0, 0) when unsigned.
    pub cert_table: (u32, u32),
}

fn u16_at(b: &[u8], at: usize) -> Result<u16> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_le_bytes([s[0], s[1]])),
        None => bail!("truncated PE header (offset {at})"),
    }
}

fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    match b.get(at..at + 4) {
        Some(s) => Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]])),
        None => bail!("truncated PE header (offset {at})"),
    }
}

impl Headers {
    /// Parses the headers of the PE image `b`.
    pub fn parse(b: &[u8]) -> Result<Headers> {
        if b.get(..2) != Some(b"MZ") {
            bail!("not a PE image (no MZ header)");
        }
        let pe = u32_at(b, LFANEW_AT)? as usize;
        if b.get(pe..pe + 4) != Some(b"PE\0\0") {
            bail!("not a PE image (no PE signature)");
        }
        let coff_at = pe + 4;
        let sections_count = u16_at(b, coff_at + 2)? as usize;
        let optional_size = u16_at(b, coff_at + 16)? as usize;
        let optional_at = coff_at + 20;
        let pe32_plus = match u16_at(b, optional_at)? {
            0x20b => true,
            0x10b => false,
            other => bail!("unknown PE optional header magic 0x{other:x}"),
        };
        let dirs_at = optional_at + if pe32_plus { 112 } else { 96 };
        let dirs_count = u32_at(b, dirs_at - 4)? as usize;
        let cert_table = if dirs_count > CERT_DIRECTORY {
            let at = dirs_at + CERT_DIRECTORY * 8;
            (u32_at(b, at)?, u32_at(b, at + 4)?)
        } else {
            (0, 0)
        };
        let mut sections = Vec::with_capacity(sections_count);
        let table = optional_at + optional_size;
        for k in 0..sections_count {
            let at = table + k * 40;
            let name = b.get(at..at + 8).map_or(String::new(), |n| {
                String::from_utf8_lossy(n)
                    .trim_end_matches('\0')
                    .to_string()
            });
            sections.push(Section {
                name,
                virtual_size: u32_at(b, at + 8)?,
                virtual_address: u32_at(b, at + 12)?,
                raw_size: u32_at(b, at + 16)?,
                raw_offset: u32_at(b, at + 20)?,
            });
        }
        Ok(Headers {
            coff_at,
            optional_at,
            pe32_plus,
            section_alignment: u32_at(b, optional_at + 32)?,
            size_of_image: u32_at(b, optional_at + 56)?,
            sections,
            cert_table,
        })
    }

    /// Offset of the `CheckSum` field.
    pub fn checksum_at(&self) -> usize {
        self.optional_at + 64
    }

    /// Offset of the COFF `TimeDateStamp` field.
    pub fn timestamp_at(&self) -> usize {
        self.coff_at + 4
    }

    /// The first virtual address past every section.
    pub fn end_of_sections(&self) -> u64 {
        self.sections
            .iter()
            .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.raw_size)))
            .max()
            .unwrap_or(0)
            .max(u64::from(self.size_of_image))
    }
}

/// The PE checksum of `b` (the Windows image-help algorithm: a folded
/// 16-bit sum of the file, its own field skipped, plus the file length).
pub fn checksum(b: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (k, pair) in b.chunks(2).enumerate() {
        let at = k * 2;
        if at == checksum_at || at == checksum_at + 2 {
            continue;
        }
        let word = u64::from(pair[0]) | (u64::from(*pair.get(1).unwrap_or(&0)) << 8);
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(b.len() as u32)
}

/// Sets the COFF timestamp of `b` to `stamp` and rewrites its checksum:
/// tools that stamp the build time (objcopy) stop making every build
/// differ.
pub fn set_timestamp(b: &mut [u8], stamp: u32) -> Result<()> {
    let h = Headers::parse(b)?;
    b[h.timestamp_at()..h.timestamp_at() + 4].copy_from_slice(&stamp.to_le_bytes());
    let sum = checksum(b, h.checksum_at());
    b[h.checksum_at()..h.checksum_at() + 4].copy_from_slice(&sum.to_le_bytes());
    Ok(())
}

/// The PKCS#7 blobs of the certificate table (`WIN_CERTIFICATE` entries
/// of type `PKCS_SIGNED_DATA`), in order; empty when the image is unsigned.
pub fn signatures(b: &[u8]) -> Result<Vec<&[u8]>> {
    let h = Headers::parse(b)?;
    let (start, size) = (h.cert_table.0 as usize, h.cert_table.1 as usize);
    if size == 0 {
        return Ok(Vec::new());
    }
    let Some(table) = b.get(start..start + size) else {
        bail!("the certificate table ({size} bytes at {start}) runs past the end of the file");
    };
    certificate_entries(table, start)
}

/// The `PKCS_SIGNED_DATA` blobs of the certificate table `table` (found
/// at file offset `start`, for messages).
pub fn certificate_entries(table: &[u8], start: usize) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= table.len() {
        let len = u32_at(table, at)? as usize;
        let kind = u16_at(table, at + 6)?;
        if len < 8 || at + len > table.len() {
            bail!(
                "a certificate table entry at {} has a bad length {len}",
                start + at
            );
        }
        if kind == 2 {
            out.push(&table[at + 8..at + len]);
        }
        at += len.div_ceil(8) * 8;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
