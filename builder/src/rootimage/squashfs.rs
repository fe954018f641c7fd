//! The root filesystem as a compressed, read-only squashfs image, written
//! from the same in-memory [`Tree`] the initramfs writer encodes: no
//! file is materialised on disk and no root privilege is needed, since
//! owners, modes, device nodes and mtimes come from the tree, not from
//! the build host.
//!
//! Why the `backhand` crate and not Debian's `mksquashfs`: `mksquashfs`
//! reads owners and device nodes from the files it is given, so an
//! unprivileged build would need a pseudo-file list for every node;
//! backhand takes each node with its own uid, gid, mode and mtime.
//! backhand is maintained (0.25, 2025, MIT/Apache), and writes the same
//! bytes for the same tree (tested below and checked by `unsquashfs`).
//!
//! Compression: zstd. The Debian 6.1 kernel reads zlib, xz, lz4 and
//! zstd squashfs. zstd decompresses several times faster than xz and
//! zlib (which matters under QEMU's TCG, where every block read costs
//! emulated instructions), and its images are markedly smaller than
//! lz4's, which the media and netbooted nodes (who fetch the image over
//! HTTP) pay for. The level is the initramfs's (`--zstd-level`).
//!
//! Owners: each node's uid and gid from the tree (root for host folders
//! and generated files; a container image base keeps its layers'). Not
//! carried: extended attributes (backhand writes none; the tree's are
//! listed in the root by `initramfs::collect` and set at boot by
//! `airlift-xattrs.service`) and hard links (each link is
//! its own inode, but identical contents are stored once: backhand
//! de-duplicates file data).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Cursor, Read};
use std::path::Path;

use anyhow::{Context, Result};
use backhand::compression::{CompressionOptions, Compressor, Zstd};
use backhand::{FilesystemCompressor, FilesystemReader, FilesystemWriter, Id, NodeHeader};
use sha2::{Digest, Sha256};

use crate::initramfs::{Data, Kind, Node, Tree};

/// Where the image sits on the ISO.
pub const ISO_PATH: &str = "airlift/rootfs.squashfs";

/// The squashfs block size: 128 KiB, mksquashfs's default.
const BLOCK_SIZE: u32 = 128 * 1024;

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Nodes in the image (the root directory not counted).
    pub nodes: usize,
    /// Size of the image file.
    pub bytes: u64,
    /// SHA-256 of the image file, hex.
    pub sha256: String,
    /// `zstd-LEVEL`.
    pub compression: String,
}

/// Writes `tree` as a squashfs image to `out` atomically (temp file
/// beside it, fsync, rename). Every node keeps the tree's owner, every
/// mtime is `epoch`.
pub fn write(tree: &Tree, epoch: i64, level: i32, out: &Path) -> Result<Report> {
    tree.warn_xattrs_not_carried("squashfs root image");
    let mtime = epoch.clamp(0, u32::MAX as i64) as u32;
    let ids: BTreeSet<u32> = tree
        .iter()
        .flat_map(|(_, n)| [n.meta.uid, n.meta.gid])
        .chain([0])
        .collect();
    let seed = if ids.len() > 1 {
        Some(id_seed(&ids)?)
    } else {
        None
    };
    let mut fs = match &seed {
        Some(reader) => {
            let mut fs =
                FilesystemWriter::from_fs_reader(reader).context("starting the squashfs writer")?;
            fs.set_no_duplicate_files(true);
            fs.set_emit_compression_options(true);
            fs.set_kib_padding(4);
            fs
        }
        None => {
            let mut fs = FilesystemWriter::default();
            fs.set_only_root_id();
            fs
        }
    };
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    fs.set_time(mtime);
    fs.set_block_size(BLOCK_SIZE);
    fs.set_root_mode(0o755);
    let level = u32::try_from(level.clamp(1, 22)).unwrap_or(3);
    let options = CompressionOptions::Zstd(Zstd {
        compression_level: level,
    });
    let compressor =
        FilesystemCompressor::new(Compressor::Zstd, Some(options)).context("setting up zstd")?;
    fs.set_compressor(compressor);
    for (path, node) in tree.iter() {
        push(&mut fs, path, node, mtime)
            .with_context(|| format!("adding /{path} to the root filesystem image"))?;
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".rootfs-")
        .tempfile_in(dir)
        .with_context(|| format!("making a temp file in {}", dir.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?);
    fs.write(&mut w)
        .with_context(|| format!("writing the squashfs image {}", out.display()))?;
    drop(w);
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing the squashfs image {}", out.display()))?;
    let (bytes, sha256) = hash_file(tmp.path())?;
    tmp.persist(out)
        .with_context(|| format!("renaming the squashfs image into {}", out.display()))?;
    Ok(Report {
        nodes: tree.len(),
        bytes,
        sha256,
        compression: format!("zstd-{level}"),
    })
}

/// A reader over an empty image whose id table is `ids` (root first),
/// for [`FilesystemWriter::from_fs_reader`]: backhand 0.25's writer has
/// no other way to take ids beyond root, and it looks each node's uid
/// and gid up in that table.
fn id_seed(ids: &BTreeSet<u32>) -> Result<FilesystemReader<'static>> {
    let mut empty = FilesystemWriter::default();
    let compressor =
        FilesystemCompressor::new(Compressor::Zstd, None).context("setting up zstd")?;
    empty.set_compressor(compressor);
    let mut bytes = Cursor::new(Vec::new());
    empty
        .write(&mut bytes)
        .context("writing the squashfs id seed")?;
    bytes.set_position(0);
    let mut reader =
        FilesystemReader::from_reader(bytes).context("reading the squashfs id seed")?;
    reader.id_table = ids.iter().map(|&n| Id::new(n)).collect();
    Ok(reader)
}

/// One tree node into the writer, with its owner.
fn push(fs: &mut FilesystemWriter, path: &str, node: &Node, mtime: u32) -> Result<()> {
    let header = NodeHeader::new(
        (node.perm & 0o7777) as u16,
        node.meta.uid,
        node.meta.gid,
        mtime,
    );
    match &node.kind {
        Kind::Dir => fs.push_dir(path, header)?,
        Kind::File {
            data: Data::Path(p),
            ..
        } => fs.push_file_from_path(p.clone(), path, header)?,
        Kind::File {
            data: Data::Bytes(b),
            ..
        } => fs.push_file(Cursor::new(b.clone()), path, header)?,
        Kind::Symlink(target) => fs.push_symlink(target, path, header)?,
        Kind::CharDev { major, minor } => {
            fs.push_char_device(encode_dev(*major, *minor), path, header)?
        }
        Kind::BlockDev { major, minor } => {
            fs.push_block_device(encode_dev(*major, *minor), path, header)?
        }
        Kind::Fifo => fs.push_fifo(path, header)?,
    }
    Ok(())
}

/// The kernel's "new" 32-bit device number (squashfs's `rdev`).
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// Size and SHA-256 (hex) of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

#[cfg(test)]
#[path = "squashfs_tests.rs"]
mod tests;
