//! What `airlift inspect` reads of a squashfs image (pure): its
//! superblock's compressor, inode count and size, and the compressor's
//! level when the image records it.

use serde::Serialize;

/// The facts of one squashfs superblock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Superblock {
    /// `zstd`, `xz`, `gzip`, `lz4`, `lzo`, `lzma`, or `unknown-N`.
    pub compression: String,
    /// The level, when the image stores compressor options (zstd, gzip).
    pub level: Option<u32>,
    pub inodes: u32,
    pub block_size: u32,
    /// Bytes the filesystem uses (before padding).
    pub bytes_used: u64,
}

/// The superblock's size; compressor options follow it.
const SIZE: usize = 96;
/// The flag saying compressor options follow the superblock.
const COMPRESSOR_OPTIONS: u16 = 0x0400;

/// Parses the first bytes of an image (at least 96, 100 for the level);
/// None when they are not a squashfs 4 little-endian superblock.
pub fn parse(head: &[u8]) -> Option<Superblock> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(head.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(head.get(o..o + 4)?.try_into().ok()?));
    if head.get(..4)? != b"hsqs" || u16_at(28)? != 4 {
        return None;
    }
    let id = u16_at(20)?;
    let compression = match id {
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        n => return Some(unknown(n, head)),
    }
    .to_string();
    let flags = u16_at(24)?;
    // zstd's and gzip's options start with the level (u32); the options
    // block itself is a metadata block: a 2-byte header, then the data.
    let level = (flags & COMPRESSOR_OPTIONS != 0 && matches!(id, 1 | 6))
        .then(|| u32_at(SIZE + 2))
        .flatten();
    Some(Superblock {
        compression,
        level,
        inodes: u32_at(4)?,
        block_size: u32_at(12)?,
        bytes_used: u64::from_le_bytes(head.get(40..48)?.try_into().ok()?),
    })
}

fn unknown(id: u16, head: &[u8]) -> Superblock {
    let u32_at = |o: usize| u32::from_le_bytes(head[o..o + 4].try_into().unwrap_or([0; 4]));
    Superblock {
        compression: format!("unknown-{id}"),
        level: None,
        inodes: u32_at(4),
        block_size: u32_at(12),
        bytes_used: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::{Node, Tree};

    #[test]
    fn reads_what_the_writer_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Tree::new();
        t.insert("etc/x", Node::bytes(b"x\n".to_vec(), 0o644))
            .unwrap();
        let image = dir.path().join("r.squashfs");
        let r = super::super::squashfs::write(&t, 0, 7, &image).unwrap();
        let head = std::fs::read(&image).unwrap();
        let sb = parse(&head).unwrap();
        assert_eq!(sb.compression, "zstd");
        assert_eq!(sb.level, Some(7));
        assert_eq!(sb.block_size, 128 * 1024);
        assert_eq!(sb.inodes, 3, "root, etc, etc/x");
        assert!(sb.bytes_used <= r.bytes && sb.bytes_used > 96);
        assert_eq!(parse(b"not a squashfs image"), None);
        assert_eq!(parse(&head[..30]), None, "truncated");
    }
}
