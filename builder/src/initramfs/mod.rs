//! The initramfs writer: a zstd-compressed cpio "newc" archive, streamed
//! to disk and byte-for-byte reproducible.
//!
//! Layers, later wins: `/dev/console` (the kernel needs it before `/init`
//! runs), the base root filesystem (a folder, or a `.tar`, `.tar.gz` or
//! `.tar.zst` file), each overlay folder, the extra files the caller
//! generates (the first-boot binary, the appliance config), then the
//! kernel modules asked for with their dependency closure and a generated
//! `modules.dep`, `modules.alias` and `modules.softdep` (for busybox
//! `modprobe`) plus kmod's binary `.bin` indexes (for kmod's `modprobe`
//! and udev).
//!
//! Reproducible: members sorted by path, every mtime the given epoch
//! (`SOURCE_DATE_EPOCH`), inode numbers assigned in order. Owners are the
//! tree's (root for host folders and generated files; a container image
//! base keeps its layers' uid and gid). Regular files naming the same
//! host file with the same permissions and owner (a base image's hard
//! links) are written as hard links: one inode, the bytes once. cpio newc
//! has no extended attributes: the tree's are listed in the root
//! (`/usr/lib/airlift/xattrs.json`) and set at boot by
//! `airlift-xattrs.service`.

pub mod cpio;
pub mod kernel;
pub mod kmod_index;
pub mod modules;
pub mod server_set;
pub mod tree;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

pub use tree::{Data, Kind, Meta, Node, Tree};

/// Default zstd level: level 3 multithreaded was measured as the best
/// size/time trade for a ~170 MB systemd tree on 2 cores (see the report
/// in `build`'s log line).
pub const DEFAULT_LEVEL: i32 = 3;

/// Which kernel modules go in, and from where.
#[derive(Debug, Clone)]
pub struct ModulesSpec {
    /// A `lib/modules/VERSION` tree.
    pub dir: PathBuf,
    /// The kernel release; modules land in `/lib/modules/<release>/`.
    pub release: String,
    /// Module names; their dependency closure is added. Each must exist
    /// (as a module file or built in).
    pub names: Vec<String>,
    /// Module names added when the kernel has them (the server set):
    /// one it lacks is skipped and reported, not an error.
    pub optional: Vec<String>,
}

/// Where the base root filesystem comes from.
#[derive(Debug, Clone)]
pub enum RootSource {
    /// A folder or a tar file on the build host (the path base).
    Host(PathBuf),
    /// A tree already made: a base image's flattened layers, its files'
    /// bytes in the flattening store ([`crate::baseimage`]).
    Tree(std::sync::Arc<Tree>),
}

impl RootSource {
    /// For messages: the host path, or "the base image's root filesystem".
    pub fn describe(&self) -> String {
        match self {
            RootSource::Host(p) => p.display().to_string(),
            RootSource::Tree(_) => "(the base image's root filesystem)".to_string(),
        }
    }
}

/// Everything one initramfs is made of.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The base root filesystem.
    pub base: RootSource,
    /// Folders laid over the base, in order.
    pub overlays: Vec<PathBuf>,
    /// Generated files, added after the overlays: (path, node).
    pub files: Vec<(String, Node)>,
    pub modules: Option<ModulesSpec>,
    /// Every member's mtime (seconds since 1970).
    pub epoch: i64,
    /// zstd level (1–19).
    pub level: i32,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Report {
    pub members: usize,
    /// Modules included (canonical names), closure included.
    pub modules: Vec<String>,
    /// Optional names skipped because the kernel has no such module.
    pub skipped_modules: Vec<String>,
    /// Size of the cpio stream before compression.
    pub cpio_bytes: u64,
    /// Size of the file written.
    pub compressed_bytes: u64,
    /// SHA-256 of the file written, hex.
    pub sha256: String,
}

/// Collects the layers of `spec` into a [`Tree`]. Returns the tree and,
/// for a tar base, the temp folder it was unpacked into (keep it alive
/// until the tree is encoded).
pub fn collect(spec: &Spec) -> Result<(Tree, Chosen, Option<tempfile::TempDir>)> {
    let mut tree = Tree::new();
    tree.insert("dev", Node::dir(0o755))?;
    tree.insert("dev/console", Node::console())?;

    let unpacked = match &spec.base {
        RootSource::Host(base) => {
            let (base_dir, unpacked) = base_folder(base)?;
            tree.add_host_dir(&base_dir, "")
                .with_context(|| format!("adding the base root filesystem {}", base.display()))?;
            unpacked
        }
        RootSource::Tree(base) => {
            // Its paths are already resolved (no parent is a symlink).
            for (path, node) in base.iter() {
                tree.replace(path, node.clone())
                    .with_context(|| format!("adding /{path} of the base image"))?;
            }
            None
        }
    };
    for overlay in &spec.overlays {
        tree.add_host_dir(overlay, "")
            .with_context(|| format!("adding overlay {}", overlay.display()))?;
    }
    for (path, node) in &spec.files {
        tree.insert(path, node.clone())
            .with_context(|| format!("adding /{path}"))?;
    }
    let mut chosen = Chosen::default();
    if let Some(m) = &spec.modules {
        chosen = add_modules(&mut tree, m)?;
    }
    add_xattr_manifest(&mut tree)?;
    Ok((tree, chosen, unpacked))
}

/// Neither cpio newc nor the squashfs writer holds extended attributes:
/// the tree's go into one list in the root
/// ([`airlift_appliance::xattrs::MANIFEST_PATH`]), which
/// `airlift-xattrs.service` sets on the booted root early in boot.
fn add_xattr_manifest(tree: &mut Tree) -> Result<()> {
    let manifest = airlift_appliance::xattrs::Manifest::from_raw(
        tree.iter().map(|(p, n)| (p.as_str(), &n.meta.xattrs)),
    );
    let path = airlift_appliance::xattrs::MANIFEST_PATH;
    match manifest {
        Some(m) => {
            let json = serde_json::to_vec_pretty(&m).context("encoding the xattr list")?;
            tree.insert(path, Node::bytes(json, 0o644))
                .with_context(|| format!("adding /{path}"))
        }
        // A list an overlay brought would name attributes no file has.
        None => {
            tree.remove(path);
            Ok(())
        }
    }
}

/// The modules an initramfs got: the closure's names, and the optional
/// names skipped because the kernel lacks them.
#[derive(Debug, Clone, Default)]
pub struct Chosen {
    pub names: Vec<String>,
    pub skipped: Vec<String>,
}

/// Adds the modules `m` names, their dependency closure and the index
/// files under `lib/modules/<release>/`; returns the modules added.
pub fn add_modules(tree: &mut Tree, m: &ModulesSpec) -> Result<Chosen> {
    let index = modules::index(&m.dir)
        .with_context(|| format!("indexing kernel modules in {}", m.dir.display()))?;
    let builtin = modules::builtin(&m.dir)?;
    let (optional, skipped) = modules::present(&m.optional, &index, &builtin);
    for name in &skipped {
        tracing::warn!(
            "kernel module {name} of the server set is not in {} (nor built in): skipped",
            m.dir.display()
        );
    }
    let wanted: Vec<String> = m.names.iter().chain(&optional).cloned().collect();
    let closure = modules::closure(&wanted, &index, &builtin, |rel| {
        modules::read_modinfo(&m.dir.join(rel))
    })
    .with_context(|| format!("kernel modules folder {}", m.dir.display()))?;
    let root = format!("lib/modules/{}", m.release);
    tree.insert(&root, Node::dir(0o755))?;
    for module in closure.modules.values() {
        let host = m.dir.join(&module.rel);
        let mut node = Node::from_host(&host)?;
        node.perm = 0o644;
        tree.insert(&format!("{root}/{}", module.rel), node)?;
    }
    let text = |s: String| Node::bytes(s.into_bytes(), 0o644);
    tree.insert(&format!("{root}/modules.dep"), text(closure.modules_dep()))?;
    tree.insert(
        &format!("{root}/modules.alias"),
        text(closure.modules_alias()),
    )?;
    tree.insert(
        &format!("{root}/modules.softdep"),
        text(closure.modules_softdep()),
    )?;
    let chosen: std::collections::BTreeSet<&str> =
        closure.modules.values().map(|m| m.rel.as_str()).collect();
    let order_path = m.dir.join("modules.order");
    if let Ok(order) = fs::read_to_string(&order_path) {
        let kept: String = order
            .lines()
            .filter(|l| chosen.contains(l))
            .map(|l| format!("{l}\n"))
            .collect();
        tree.insert(&format!("{root}/modules.order"), text(kept))?;
    }
    let builtin_modinfo = match fs::read(m.dir.join("modules.builtin.modinfo")) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).context("reading modules.builtin.modinfo"),
    };
    for (name, bytes) in closure.kmod_indexes(&builtin, &builtin_modinfo)? {
        tree.insert(&format!("{root}/{name}"), Node::bytes(bytes, 0o644))?;
    }
    for name in ["modules.builtin", "modules.builtin.modinfo"] {
        let host = m.dir.join(name);
        if host.is_file() {
            tree.insert(&format!("{root}/{name}"), Node::from_host(&host)?)?;
        }
    }
    Ok(Chosen {
        names: closure.modules.keys().cloned().collect(),
        skipped,
    })
}

/// A folder base is used in place; a tar file is unpacked into a temp folder.
fn base_folder(base: &Path) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    let meta = fs::metadata(base)
        .with_context(|| format!("base root filesystem {} is missing", base.display()))?;
    if meta.is_dir() {
        return Ok((base.to_path_buf(), None));
    }
    let name = base.to_string_lossy();
    let file = File::open(base).with_context(|| format!("opening {}", base.display()))?;
    let reader: Box<dyn io::Read> = if name.ends_with(".tar") {
        Box::new(io::BufReader::new(file))
    } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
    } else if name.ends_with(".tar.zst") || name.ends_with(".tzst") {
        Box::new(zstd::Decoder::new(file)?)
    } else {
        bail!(
            "base root filesystem {}: expected a folder or a .tar, .tar.gz or .tar.zst file",
            base.display()
        );
    };
    let dir = tempfile::Builder::new()
        .prefix("airlift-rootfs-")
        .tempdir()
        .context("making a temp folder for the root filesystem")?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_unpack_xattrs(false);
    archive
        .unpack(dir.path())
        .with_context(|| format!("unpacking {}", base.display()))?;
    Ok((dir.path().to_path_buf(), Some(dir)))
}

/// Encodes `tree` as cpio newc into `out` (uncompressed). Returns the
/// number of members and bytes written.
///
/// Hard links: regular files sharing one host file ([`Data::Path`]) with
/// the same permissions and owner are one inode: every member carries the
/// first member's inode number and the group's link count, the first
/// member carries the bytes and the others none. The kernel's unpacker
/// links a member to an earlier one with the same inode when its link
/// count is 2 or more and keeps the bytes already written; `cpio -i` does
/// the same.
pub fn encode<W: Write>(tree: &Tree, epoch: i64, out: W) -> Result<(usize, u64, W)> {
    let mtime = epoch.clamp(0, u32::MAX as i64) as u32;
    tree.warn_xattrs_not_carried("initramfs (cpio newc)");
    let links = link_groups(tree)?;
    let mut w = cpio::Writer::new(out);
    for (index, (path, node)) in tree.iter().enumerate() {
        let mut ino = u32::try_from(index + 1).context("too many files for cpio inode numbers")?;
        let mut nlink = if node.kind == Kind::Dir { 2 } else { 1 };
        let mut carries_data = true;
        if let Some(key) = link_key(node) {
            if let Some(&(first, count)) = links.get(&key) {
                if count > 1 {
                    carries_data = first == ino;
                    ino = first;
                    nlink = count;
                }
            }
        }
        let (type_bits, size, rdev) = match &node.kind {
            Kind::Dir => (cpio::S_IFDIR, 0, (0, 0)),
            Kind::File { .. } if !carries_data => (cpio::S_IFREG, 0, (0, 0)),
            Kind::File { size, .. } => (cpio::S_IFREG, *size, (0, 0)),
            Kind::Symlink(t) => (cpio::S_IFLNK, t.len() as u64, (0, 0)),
            Kind::CharDev { major, minor } => (cpio::S_IFCHR, 0, (*major, *minor)),
            Kind::BlockDev { major, minor } => (cpio::S_IFBLK, 0, (*major, *minor)),
            Kind::Fifo => (cpio::S_IFIFO, 0, (0, 0)),
        };
        let header = cpio::Header {
            name: path.clone(),
            mode: type_bits | (node.perm & 0o7777),
            ino,
            uid: node.meta.uid,
            gid: node.meta.gid,
            nlink,
            mtime,
            size,
            rdev_major: rdev.0,
            rdev_minor: rdev.1,
        };
        let result = match &node.kind {
            Kind::File { .. } if !carries_data => w.empty(&header),
            Kind::File {
                data: Data::Path(p),
                ..
            } => {
                let mut f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
                w.stream(&header, &mut f)
            }
            Kind::File {
                data: Data::Bytes(b),
                ..
            } => w.bytes(&header, b),
            Kind::Symlink(t) => w.bytes(&header, t.as_bytes()),
            _ => w.empty(&header),
        };
        result.with_context(|| format!("writing /{path} into the initramfs"))?;
    }
    let written = w.written();
    let out = w.finish().context("writing the cpio trailer")?;
    Ok((tree.len(), written, out))
}

/// What makes regular files one inode: the same host file, permissions
/// and owner.
type LinkKey<'t> = (&'t Path, u32, u32, u32);

fn link_key(node: &Node) -> Option<LinkKey<'_>> {
    match &node.kind {
        Kind::File {
            data: Data::Path(p),
            ..
        } => Some((p.as_path(), node.perm, node.meta.uid, node.meta.gid)),
        _ => None,
    }
}

/// Each link group's first inode number (in archive order) and size.
fn link_groups(tree: &Tree) -> Result<std::collections::HashMap<LinkKey<'_>, (u32, u32)>> {
    let mut groups = std::collections::HashMap::new();
    for (index, (_, node)) in tree.iter().enumerate() {
        if let Some(key) = link_key(node) {
            let ino = u32::try_from(index + 1).context("too many files for cpio inode numbers")?;
            groups.entry(key).or_insert((ino, 0)).1 += 1;
        }
    }
    Ok(groups)
}

/// Writes the initramfs of `spec` to `out` atomically (temp file beside
/// it, fsync, rename).
pub fn write(spec: &Spec, out: &Path) -> Result<Report> {
    let (tree, chosen, _unpacked) = collect(spec)?;
    write_tree(&tree, chosen, spec.epoch, spec.level, out)
}

/// Writes `tree` as the initramfs `out` (zstd at `level`, every mtime
/// `epoch`) atomically; `chosen` (the modules) goes into the report.
pub fn write_tree(
    tree: &Tree,
    chosen: Chosen,
    epoch: i64,
    level: i32,
    out: &Path,
) -> Result<Report> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".initrd-")
        .tempfile_in(dir)
        .with_context(|| format!("making a temp file in {}", dir.display()))?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?),
        hasher: Sha256::new(),
        count: 0,
    };
    let mut enc = zstd::Encoder::new(hashing, level).context("starting zstd")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    if threads > 1 {
        enc.multithread(threads).context("enabling zstd threads")?;
    }
    enc.include_checksum(true)?;
    let (members, cpio_bytes, enc) = encode(tree, epoch, enc)?;
    let hashing = enc.finish().context("finishing zstd")?;
    let HashingWriter {
        inner,
        hasher,
        count,
    } = hashing;
    inner
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing the initramfs for {}", out.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing the initramfs for {}", out.display()))?;
    tmp.persist(out)
        .with_context(|| format!("renaming the initramfs into {}", out.display()))?;
    Ok(Report {
        members,
        modules: chosen.names,
        skipped_modules: chosen.skipped,
        cpio_bytes,
        compressed_bytes: count,
        sha256: hex::encode(hasher.finalize()),
    })
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
