//! What a block device holds, decided from its bytes alone (pure logic
//! over [`ReadAt`], unit-tested on byte buffers and sparse files): the
//! second opinion beside libblkid's ([`super::blkid`]), and the one that
//! recognises airlift's own partition.
//!
//! A disk is blank when none of these is found: an MBR or GPT partition
//! table, a filesystem (ext2/3/4, XFS, btrfs, ISO 9660, FAT, NTFS), swap,
//! LUKS, an LVM physical volume, an MD RAID superblock (0.90, 1.0, 1.1,
//! 1.2), or, failing all of those, any non-zero byte in the first MiB.

use std::fmt;
use std::io;
use std::os::unix::fs::FileExt;

/// Positional reads of a device, a file or a buffer.
pub trait ReadAt {
    /// The size in bytes.
    fn size(&self) -> u64;
    /// Read up to `buf.len()` bytes at `offset`; short only at the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
}

/// A file or block device with its size (block devices report 0 in
/// `metadata().len()`, so the size is passed in).
pub struct Device<'a> {
    pub file: &'a std::fs::File,
    pub size: u64,
}

impl ReadAt for Device<'_> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

/// `len` bytes at `offset` (zero-filled past the end).
fn bytes(dev: &(impl ReadAt + ?Sized), offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    if offset < dev.size() {
        dev.read_at(offset, &mut buf)?;
    }
    Ok(buf)
}

/// GPT type GUID "Linux filesystem data" (0FC63DAF-8483-4772-8E79-3D69D8477DE4) as stored.
pub const LINUX_FS_TYPE: [u8; 16] = [
    0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
];

/// One GPT partition entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// 1-based entry number.
    pub number: u32,
    pub type_guid: [u8; 16],
    pub first_lba: u64,
    pub last_lba: u64,
    /// The partition name (UTF-16LE in the entry).
    pub name: String,
}

/// Something found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// An MBR partition table (0x55AA at 510, not a FAT/NTFS boot sector).
    Mbr,
    /// A GPT partition table ("EFI PART" at LBA 1), with its partitions.
    Gpt {
        sector_size: u64,
        partitions: Vec<GptPartition>,
    },
    /// A filesystem (or swap, LUKS) with what identifies it.
    Filesystem {
        kind: &'static str,
        label: Option<String>,
        uuid: Option<String>,
    },
    /// An LVM physical volume label.
    Lvm,
    /// An MD RAID superblock of this metadata version.
    Md { version: &'static str },
    /// Non-zero bytes in the first MiB and no known signature.
    Unrecognised,
    /// What `blkid -p` reported when this probe found nothing it could
    /// name ([`super::blkid`]).
    Blkid(String),
    /// This probe found nothing, but blkid gave no verdict (missing,
    /// failed): the disk is not known to be blank.
    NoBlkidVerdict(String),
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Mbr => f.write_str("an MBR partition table"),
            Finding::Gpt { partitions, .. } => {
                write!(f, "a GPT partition table ({} partitions", partitions.len())?;
                let names: Vec<String> = partitions
                    .iter()
                    .filter(|p| !p.name.is_empty())
                    .map(|p| format!("{:?}", p.name))
                    .collect();
                if !names.is_empty() {
                    write!(f, ": {}", names.join(", "))?;
                }
                f.write_str(")")
            }
            Finding::Filesystem { kind, label, uuid } => {
                let article =
                    if kind.starts_with(['a', 'e', 'i', 'o', 'u', 'E', 'I', 'L', 'M', 'N', 'X']) {
                        "an"
                    } else {
                        "a"
                    };
                let what = match *kind {
                    "swap" => "swap space".to_string(),
                    "LUKS" => "an encrypted LUKS volume".to_string(),
                    k => format!("{article} {k} filesystem"),
                };
                f.write_str(&what)?;
                let mut extra = Vec::new();
                if let Some(l) = label {
                    extra.push(format!("label {l:?}"));
                }
                if let Some(u) = uuid {
                    extra.push(format!("uuid {u}"));
                }
                if !extra.is_empty() {
                    write!(f, " ({})", extra.join(", "))?;
                }
                Ok(())
            }
            Finding::Lvm => f.write_str("an LVM physical volume"),
            Finding::Md { version } => write!(f, "an MD RAID member (metadata {version})"),
            Finding::Unrecognised => {
                f.write_str("data in its first MiB that matches no known signature")
            }
            Finding::Blkid(s) => write!(f, "{s} (reported by blkid)"),
            Finding::NoBlkidVerdict(why) => write!(
                f,
                "nothing airlift's byte probe knows, but blkid could not confirm it is blank \
                 ({why})"
            ),
        }
    }
}

/// Join findings for a message: "a, b and c".
pub fn describe(findings: &[Finding]) -> String {
    let parts: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    match parts.as_slice() {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A NUL- or space-padded text field, None when empty.
fn text(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let s = String::from_utf8_lossy(&b[..end]).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// A big-endian (RFC 4122 byte order) UUID, None when all zero.
fn uuid(b: &[u8]) -> Option<String> {
    if b.iter().all(|&c| c == 0) {
        return None;
    }
    let h: String = b.iter().map(|c| format!("{c:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

/// Everything found on `dev`, in a fixed order; empty means blank.
pub fn probe(dev: &(impl ReadAt + ?Sized)) -> io::Result<Vec<Finding>> {
    let mut found = Vec::new();
    let head = bytes(dev, 0, 8192)?;

    // Filesystems and volume signatures.
    let fat = fat(&head);
    let is_fat = fat.is_some();
    let ntfs = &head[3..11] == b"NTFS    ";
    if let Some(f) = ext(&bytes(dev, 1024, 1024)?) {
        found.push(f);
    }
    if &head[0..4] == b"XFSB" {
        found.push(Finding::Filesystem {
            kind: "XFS",
            label: text(&head[108..120]),
            uuid: uuid(&head[32..48]),
        });
    }
    let btrfs = bytes(dev, 0x10000, 0x200)?;
    if &btrfs[0x40..0x48] == b"_BHRfS_M" {
        found.push(Finding::Filesystem {
            kind: "btrfs",
            label: text(&btrfs[0x12b..0x1ab.min(btrfs.len())]),
            uuid: uuid(&btrfs[0x20..0x30]),
        });
    }
    let iso = bytes(dev, 0x8000, 2048)?;
    if &iso[1..6] == b"CD001" {
        found.push(Finding::Filesystem {
            kind: "ISO 9660",
            label: text(&iso[40..72]),
            uuid: None,
        });
    }
    if let Some(f) = fat {
        found.push(f);
    }
    if ntfs {
        found.push(Finding::Filesystem {
            kind: "NTFS",
            label: None,
            uuid: None,
        });
    }
    if &head[0..6] == b"LUKS\xba\xbe" {
        found.push(Finding::Filesystem {
            kind: "LUKS",
            label: text(&head[24..72]).filter(|_| le16(&head, 6) == 2),
            uuid: text(&head[168..208]),
        });
    }
    for page in [4096usize, 8192, 16384, 65536] {
        let sig = bytes(dev, page as u64 - 10, 10)?;
        if sig == b"SWAPSPACE2" || sig == b"SWAP-SPACE" {
            found.push(Finding::Filesystem {
                kind: "swap",
                label: text(&head[1052..1068]),
                uuid: uuid(&head[1036..1052]),
            });
            break;
        }
    }
    if (0..4).any(|s| &head[s * 512..s * 512 + 8] == b"LABELONE") {
        found.push(Finding::Lvm);
    }
    if let Some(v) = md(dev, &head)? {
        found.push(Finding::Md { version: v });
    }

    // Partition tables.
    let gpt = gpt(dev)?;
    let boot_sig = head[510] == 0x55 && head[511] == 0xaa;
    if boot_sig && gpt.is_none() && !is_fat && !ntfs {
        found.push(Finding::Mbr);
    }
    if let Some(g) = gpt {
        found.push(g);
    }

    if found.is_empty() && !all_zero(dev, 0, 1 << 20)? {
        found.push(Finding::Unrecognised);
    }
    Ok(found)
}

/// ext2/3/4: magic 0xEF53 at byte 56 of the superblock (which starts at 1024).
fn ext(sb: &[u8]) -> Option<Finding> {
    if le16(sb, 0x38) != 0xef53 {
        return None;
    }
    let compat = le32(sb, 0x5c);
    let incompat = le32(sb, 0x60);
    let ro_compat = le32(sb, 0x64);
    // extents, 64bit, flex_bg, huge_file / dir_nlink / extra_isize: ext4.
    let kind = if incompat & (0x40 | 0x80 | 0x200) != 0 || ro_compat & (0x8 | 0x20 | 0x40) != 0 {
        "ext4"
    } else if compat & 0x4 != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Finding::Filesystem {
        kind,
        label: text(&sb[0x78..0x88]),
        uuid: uuid(&sb[0x68..0x78]),
    })
}

/// FAT12/16 ("FAT" at 54) or FAT32 ("FAT32" at 82) boot sector.
fn fat(head: &[u8]) -> Option<Finding> {
    let boot_sig = head[510] == 0x55 && head[511] == 0xaa;
    if !boot_sig {
        return None;
    }
    if &head[82..87] == b"FAT32" {
        return Some(Finding::Filesystem {
            kind: "FAT32",
            label: text(&head[71..82]).filter(|l| l != "NO NAME"),
            uuid: Some(format!("{:08X}", le32(head, 67))),
        });
    }
    if &head[54..57] == b"FAT" {
        return Some(Finding::Filesystem {
            kind: "FAT",
            label: text(&head[43..54]).filter(|l| l != "NO NAME"),
            uuid: Some(format!("{:08X}", le32(head, 39))),
        });
    }
    None
}

const MD_MAGIC: u32 = 0xa92b_4efc;

/// The MD superblock version, if any: 1.1 at 0, 1.2 at 4 KiB, 1.0 at
/// 8 KiB before the end (4 KiB aligned), 0.90 at the last 64 KiB boundary
/// minus 64 KiB.
fn md(dev: &(impl ReadAt + ?Sized), head: &[u8]) -> io::Result<Option<&'static str>> {
    if le32(head, 0) == MD_MAGIC {
        return Ok(Some("1.1"));
    }
    if le32(head, 4096) == MD_MAGIC {
        return Ok(Some("1.2"));
    }
    let size = dev.size();
    if size >= 8192 {
        let at = (size - 8192) & !4095;
        if le32(&bytes(dev, at, 4)?, 0) == MD_MAGIC {
            return Ok(Some("1.0"));
        }
    }
    if size >= 0x20000 {
        let at = (size & !0xffff) - 0x10000;
        if le32(&bytes(dev, at, 4)?, 0) == MD_MAGIC {
            return Ok(Some("0.90"));
        }
    }
    Ok(None)
}

/// The GPT at LBA 1 with 512- or 4096-byte sectors.
fn gpt(dev: &(impl ReadAt + ?Sized)) -> io::Result<Option<Finding>> {
    for sector in [512u64, 4096] {
        let hdr = bytes(dev, sector, 512)?;
        if &hdr[0..8] != b"EFI PART" {
            continue;
        }
        let entries_lba = le64(&hdr, 72);
        let count = le32(&hdr, 80).min(1024);
        let entry_size = le32(&hdr, 84).clamp(128, 4096) as usize;
        let table = bytes(
            dev,
            entries_lba.saturating_mul(sector),
            count as usize * entry_size,
        )?;
        let mut partitions = Vec::new();
        for n in 0..count as usize {
            let e = &table[n * entry_size..n * entry_size + 128];
            let type_guid: [u8; 16] = e[0..16].try_into().expect("16 bytes");
            if type_guid == [0u8; 16] {
                continue;
            }
            let units: Vec<u16> = (0..36)
                .map(|i| le16(e, 56 + 2 * i))
                .take_while(|&u| u != 0)
                .collect();
            partitions.push(GptPartition {
                number: n as u32 + 1,
                type_guid,
                first_lba: le64(e, 32),
                last_lba: le64(e, 40),
                name: String::from_utf16_lossy(&units),
            });
        }
        return Ok(Some(Finding::Gpt {
            sector_size: sector,
            partitions,
        }));
    }
    Ok(None)
}

fn all_zero(dev: &(impl ReadAt + ?Sized), offset: u64, len: usize) -> io::Result<bool> {
    Ok(bytes(dev, offset, len)?.iter().all(|&b| b == 0))
}
