//! Flattening an image's layers into one root filesystem [`Tree`], in
//! order, as a container runtime applies them: whiteouts and opaque
//! directories honoured; owners, modes, extended attributes and hard
//! links kept; no root privilege needed.
//!
//! Regular files' bytes are written to numbered files in `store`, 256 to
//! a numbered folder (an
//! empty folder the caller made in its work folder); no path read from a
//! layer is ever used on the host, so a hostile layer cannot write
//! outside the work folder. Files a later layer replaced or whited out
//! are deleted from the store at the end. A hard link is a second node
//! naming the same store file (with its target's mode, owner and
//! extended attributes); the initramfs writer encodes such nodes as real
//! hard links, the squashfs writer as separate inodes sharing their data
//! blocks. Extended attributes stay in the tree; neither image format
//! written here carries them, so the root gets a list of them that
//! `airlift-xattrs.service` sets at boot (`initramfs::collect`).
//!
//! Layer semantics are the OCI image spec's (`layer.md`), applied as
//! containerd's tar applier does: members in order, later wins; a
//! `.wh.NAME` whiteout deletes NAME from the lower layers only; a
//! `.wh..wh..opq` marker in a directory hides that directory's lower
//! layer children (entries of the same layer stay); whiteout files never
//! appear in the tree. A member whose parent is a symlink lands where the
//! symlink points (merged `/usr`: `lib/x` with `lib -> usr/lib` is
//! `usr/lib/x`), and a directory entry over anything but a directory
//! replaces it.
//!
//! Refused, naming the layer and the member: `..` in a member path or a
//! hard link target, a whiteout of the root or a whiteout name used as a
//! directory, device nodes (`/dev` is populated at boot) and any member
//! type but file, directory, symlink, hard link and fifo, a relative
//! symlink climbing above the root from its own directory, a member below
//! a symlink that does not resolve to a directory in the image or only
//! through more than 40 symlinks in all, names that are not UTF-8,
//! member names and link targets longer than `PATH_MAX` (4096 bytes) or
//! with a component longer than `NAME_MAX` (255), GNU sparse files
//! (their holes would be written out in full), a uid or gid that does
//! not fit 32 bits, and a stream that is not a (complete) tar. Names
//! from the image are escaped (and cut short) in messages.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use tar::EntryType;

use crate::initramfs::{Data, Kind, Meta, Node, Tree};

/// One layer: its uncompressed tar stream, already checked (or being
/// checked while read) against its digest by the caller.
pub struct Layer<'a> {
    /// The layer's digest (`sha256:…`), for messages.
    pub digest: String,
    /// The uncompressed tar stream. [`flatten`] reads it to its end, so a
    /// verifying reader sees the whole stream.
    pub reader: Box<dyn Read + 'a>,
}

/// What [`flatten`] made.
#[derive(Debug)]
pub struct Flattened {
    /// The root filesystem; regular files point into the store.
    pub tree: Tree,
    pub report: Report,
}

/// Counts, for the build log and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub layers: usize,
    /// Regular files in the final tree, and their bytes.
    pub files: u64,
    pub bytes: u64,
    /// Whiteouts and opaque directories applied.
    pub whiteouts: u64,
    /// Hard links in the final tree (beyond the first name of each file).
    pub hard_links: u64,
    /// Nodes carrying extended attributes.
    pub xattr_nodes: u64,
}

/// Store files per folder: creating tens of thousands of files in one
/// folder costs the filesystem far more per file (measured here: 50,000
/// files in one folder 24 s, in folders of 256 4 s).
const FILES_PER_FOLDER: u64 = 256;

/// The `n`th store file (from 1): `store/<folder>/<n>`, 256 to a folder.
fn store_path(store: &Path, n: u64) -> PathBuf {
    store
        .join(((n - 1) / FILES_PER_FOLDER).to_string())
        .join(n.to_string())
}

/// Applies `layers` in order (bottom first) into a tree; file bytes go
/// to `store`. Errors name the layer digest and the member path.
pub fn flatten<'a>(
    layers: impl IntoIterator<Item = Result<Layer<'a>>>,
    store: &Path,
) -> Result<Flattened> {
    let mut state = State {
        tree: Tree::new(),
        store: store.to_path_buf(),
        next_file: 0,
        whiteouts: 0,
        buf: vec![0u8; COPY_BUFFER],
    };
    let mut count = 0;
    for layer in layers {
        let layer = layer?;
        state.apply(layer)?;
        count += 1;
    }
    state.prune_store()?;
    let report = state.report(count);
    Ok(Flattened {
        tree: state.tree,
        report,
    })
}

/// The copy buffer: file bytes are streamed, never held whole.
const COPY_BUFFER: usize = 1 << 20;

/// Symlinks followed in total while resolving one path, as Linux
/// allows (40): counting every link followed, not the nesting depth, so
/// links naming other links several times cannot make the work grow
/// exponentially.
const MAX_LINKS: usize = 40;

/// Resolving a path followed more than [`MAX_LINKS`] symlinks: passed up
/// through the nested walks unwrapped.
#[derive(Debug)]
struct TooManyLinks(String);

impl std::fmt::Display for TooManyLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "too many symbolic links resolving {} (more than {MAX_LINKS} followed; a symlink loop?)",
            self.0
        )
    }
}

impl std::error::Error for TooManyLinks {}

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

struct State {
    tree: Tree,
    store: PathBuf,
    next_file: u64,
    whiteouts: u64,
    buf: Vec<u8>,
}

impl State {
    fn apply(&mut self, layer: Layer<'_>) -> Result<()> {
        let digest = layer.digest;
        let mut archive = tar::Archive::new(layer.reader);
        // Paths written by this layer: a whiteout or opaque marker hides
        // only what the layers below wrote.
        let mut written: BTreeSet<String> = BTreeSet::new();
        let entries = archive
            .entries()
            .with_context(|| format!("layer {digest}: reading the tar stream"))?;
        for entry in entries {
            let mut entry = entry.with_context(|| {
                format!("layer {digest}: not a valid tar stream (or cut short)")
            })?;
            let raw = entry.path_bytes().into_owned();
            self.member(&mut entry, &raw, &mut written)
                .with_context(|| {
                    format!(
                        "layer {digest}: member {}",
                        shown(&String::from_utf8_lossy(&raw))
                    )
                })?;
        }
        // The rest of the stream (tar's zero blocks and any padding), so
        // a verifying reader sees every byte.
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink())
            .with_context(|| format!("layer {digest}: reading to the end of the stream"))?;
        Ok(())
    }

    fn member<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        written: &mut BTreeSet<String>,
    ) -> Result<()> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            return Ok(());
        }
        check_length("the name", raw)?;
        let name = std::str::from_utf8(raw).map_err(|_| {
            anyhow!("the name is not UTF-8 (the image root holds UTF-8 names only)")
        })?;
        let parts = components(name)?;
        let Some((base, parents)) = parts.split_last() else {
            // The root itself (`./`): its metadata is the image's root's,
            // which the writers fix.
            return Ok(());
        };
        if let Some(p) = parents.iter().find(|p| p.starts_with(WHITEOUT_PREFIX)) {
            bail!(
                "a whiteout name ({}) used as a directory is not allowed",
                shown(p)
            );
        }
        let dir = self.resolve_dir(parents)?;

        if let Some(hidden) = base.strip_prefix(WHITEOUT_PREFIX) {
            self.whiteouts += 1;
            if *base == OPAQUE {
                self.hide_lower(&dir.join("/"), false, written);
                return Ok(());
            }
            if hidden.starts_with(WHITEOUT_PREFIX) {
                // Other `.wh..wh.*` names are the runtime's own: skipped.
                self.whiteouts -= 1;
                return Ok(());
            }
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                bail!("a whiteout of the image root (or of nothing) is not allowed");
            }
            self.hide_lower(&join(&dir, hidden), true, written);
            return Ok(());
        }

        let path = join(&dir, base);
        let header = entry.header();
        let perm = header.mode().context("reading the mode")? & 0o7777;
        let mut meta = Meta {
            uid: id32("uid", header.uid().context("reading the uid")?)?,
            gid: id32("gid", header.gid().context("reading the gid")?)?,
            xattrs: BTreeMap::new(),
        };
        if let Some(pax) = entry.pax_extensions().context("reading PAX records")? {
            for ext in pax {
                let ext = ext.context("reading a PAX record")?;
                let key = ext
                    .key()
                    .map_err(|_| anyhow!("a PAX record's key is not UTF-8"))?;
                let value = ext.value_bytes();
                if let Some(attr) = key.strip_prefix("SCHILY.xattr.") {
                    meta.xattrs.insert(attr.to_string(), value.to_vec());
                } else if key == "uid" || key == "gid" {
                    let n: u64 = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok())
                        .with_context(|| format!("PAX {key} is not a number"))?;
                    let n = id32(key, n)?;
                    if key == "uid" {
                        meta.uid = n;
                    } else {
                        meta.gid = n;
                    }
                }
            }
        }
        let node = match kind {
            EntryType::Directory => Node {
                kind: Kind::Dir,
                perm,
                meta,
            },
            EntryType::Regular | EntryType::Continuous => {
                let (data, size) = self.store_file(entry)?;
                Node {
                    kind: Kind::File { data, size },
                    perm,
                    meta,
                }
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .context("a symlink without a target")?;
                check_length("the symlink target", &target)?;
                let target = std::str::from_utf8(&target)
                    .map_err(|_| anyhow!("the symlink target is not UTF-8"))?
                    .to_string();
                check_symlink(&dir, &target)?;
                Node {
                    kind: Kind::Symlink(target),
                    perm: 0o777,
                    meta,
                }
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .context("a hard link without a target")?;
                check_length("the hard link target", &target)?;
                let target = std::str::from_utf8(&target)
                    .map_err(|_| anyhow!("the hard link target is not UTF-8"))?;
                self.link_target(target)?
            }
            EntryType::Fifo => Node {
                kind: Kind::Fifo,
                perm,
                meta,
            },
            EntryType::GNUSparse => bail!(
                "sparse files are not supported in a base image layer (their holes would be \
                 written out in full); rebuild the layer with the file stored whole (no \
                 tar --sparse)"
            ),
            EntryType::Char | EntryType::Block => {
                bail!("device nodes cannot be in a base image root; /dev is populated at boot")
            }
            other => bail!("unsupported tar member type {:?}", other.as_byte() as char),
        };
        self.tree.replace(&path, node)?;
        written.insert(path);
        Ok(())
    }

    /// Copies a regular file's bytes into a new numbered store file.
    fn store_file<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(Data, u64)> {
        self.next_file += 1;
        let path = store_path(&self.store, self.next_file);
        if self.next_file % FILES_PER_FOLDER == 1 {
            let dir = path.parent().expect("a store file has a folder");
            std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        let expected = entry.size();
        let mut copied = 0u64;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).context("reading the file's bytes (tar cut short?)"),
            };
            out.write_all(&self.buf[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            copied += n as u64;
        }
        if copied != expected {
            bail!("the tar stream ends inside the file ({copied} of {expected} bytes)");
        }
        Ok((Data::Path(path), copied))
    }

    /// A hard link: the node its target names (resolved in the tree so
    /// far), sharing that file's store file and metadata.
    fn link_target(&self, target: &str) -> Result<Node> {
        let parts =
            components(target).with_context(|| format!("hard link target {}", shown(target)))?;
        let Some((base, parents)) = parts.split_last() else {
            bail!("a hard link to the image root");
        };
        let dir = self
            .resolve_dir(parents)
            .with_context(|| format!("hard link target {}", shown(target)))?;
        let resolved = join(&dir, base);
        match self.tree.get(&resolved) {
            Some(node) if matches!(node.kind, Kind::File { .. }) => Ok(node.clone()),
            Some(_) => bail!("hard link target {} is not a regular file", shown(target)),
            None => bail!(
                "hard link target {} is not in the image (so far)",
                shown(target)
            ),
        }
    }

    /// Resolves a member's parent components: a symlink met on the way is
    /// followed and must lead to a directory in the image; components not
    /// in the tree yet are directories the member implies.
    fn resolve_dir(&self, parts: &[&str]) -> Result<Vec<String>> {
        let mut followed = 0;
        walk(
            &self.tree,
            Vec::new(),
            parts.iter().copied(),
            false,
            &mut followed,
        )
    }

    /// Removes what the layers below wrote at `path` and under it
    /// (`with_self` false: only under it, for an opaque directory);
    /// entries this layer wrote stay, with the directories holding them.
    fn hide_lower(&mut self, path: &str, with_self: bool, written: &BTreeSet<String>) {
        let mut keep: BTreeSet<String> = BTreeSet::new();
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        // `path` itself, then what lies below it: `path/…` names are
        // contiguous from `path/` on, while siblings such as `path.txt`
        // or `path b` sort between `path` and `path/`.
        let below = written
            .range(prefix.clone()..)
            .take_while(|w| w.starts_with(&prefix));
        for w in written.get(path).into_iter().chain(below) {
            keep.insert(w.clone());
            let mut end = w.len();
            while let Some(i) = w[..end].rfind('/') {
                keep.insert(w[..i].to_string());
                end = i;
            }
        }
        let mut doomed = self.tree.paths_below(path);
        if with_self && !path.is_empty() {
            doomed.insert(0, path.to_string());
        }
        for p in doomed {
            // `keep` holds every ancestor of what this layer wrote, so a
            // path not in it has nothing of this layer below it.
            if !keep.contains(&p) {
                self.tree.remove(&p);
            }
        }
    }

    /// Deletes the store files no node of the final tree names (files a
    /// later layer replaced or whited out), so the store holds the root
    /// filesystem's bytes and no more.
    fn prune_store(&self) -> Result<()> {
        let kept: std::collections::HashSet<&Path> = self
            .tree
            .iter()
            .filter_map(|(_, n)| match &n.kind {
                Kind::File {
                    data: Data::Path(p),
                    ..
                } => Some(p.as_path()),
                _ => None,
            })
            .collect();
        for n in 1..=self.next_file {
            let path = store_path(&self.store, n);
            if !kept.contains(path.as_path()) {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    fn report(&self, layers: usize) -> Report {
        let mut report = Report {
            layers,
            whiteouts: self.whiteouts,
            ..Report::default()
        };
        let mut names: HashMap<&Path, u64> = HashMap::new();
        for (_, node) in self.tree.iter() {
            if !node.meta.xattrs.is_empty() {
                report.xattr_nodes += 1;
            }
            if let Kind::File {
                data: Data::Path(p),
                size,
            } = &node.kind
            {
                let n = names.entry(p.as_path()).or_default();
                if *n == 0 {
                    report.files += 1;
                    report.bytes += size;
                } else {
                    report.hard_links += 1;
                }
                *n += 1;
            }
        }
        report
    }
}

/// A member name's components: leading `/` and `./` dropped, `.` and
/// empty components skipped; `..` refused (a layer names paths from its
/// root, never above).
fn components(name: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("a path with a `..` component is not allowed in a layer"),
            p => out.push(p),
        }
    }
    Ok(out)
}

fn join(dir: &[String], name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.join("/"))
    }
}

/// Walks `parts` from `start`, following symlinks. A symlink's target
/// must resolve to an existing directory (`must_exist` for the target's
/// own walk); otherwise components missing from the tree are taken as
/// directories still to be made. `followed` counts the symlinks followed
/// in the whole resolution, shared by the nested walks.
fn walk<'p>(
    tree: &Tree,
    start: Vec<String>,
    parts: impl Iterator<Item = &'p str>,
    must_exist: bool,
    followed: &mut usize,
) -> Result<Vec<String>> {
    let mut out = start;
    let mut missing = false;
    for part in parts {
        match part {
            "" | "." => continue,
            ".." => {
                // Only in symlink targets (member paths refuse `..`):
                // at the root, `..` is the root, as in the kernel.
                out.pop();
                continue;
            }
            _ => {}
        }
        let here = join(&out, part);
        if missing {
            out.push(part.to_string());
            continue;
        }
        match tree.get(&here).map(|n| &n.kind) {
            None if must_exist => bail!("/{} is not in the image", shown(&here)),
            None => {
                missing = true;
                out.push(part.to_string());
            }
            Some(Kind::Dir) => out.push(part.to_string()),
            Some(Kind::Symlink(target)) => {
                if *followed >= MAX_LINKS {
                    return Err(TooManyLinks(format!("/{}", shown(&here))).into());
                }
                *followed += 1;
                let base = if target.starts_with('/') {
                    Vec::new()
                } else {
                    out.clone()
                };
                out = walk(tree, base, target.split('/'), true, followed).map_err(|e| {
                    if e.is::<TooManyLinks>() {
                        return e;
                    }
                    anyhow!(
                        "/{} is a symlink to {}, which does not resolve to a directory in the image ({e:#})",
                        shown(&here),
                        shown(target)
                    )
                })?;
                if !out.is_empty() && tree.get(&out.join("/")).map(|n| &n.kind) != Some(&Kind::Dir)
                {
                    bail!(
                        "/{} is a symlink to {}, which does not resolve to a directory in the image",
                        shown(&here),
                        shown(target)
                    );
                }
            }
            Some(_) => bail!("/{} is not a directory", shown(&here)),
        }
    }
    Ok(out)
}

/// Longest member name or link target a layer may use, in bytes:
/// Linux's `PATH_MAX`.
const PATH_MAX: usize = 4096;

/// Longest component of a name, in bytes: Linux's `NAME_MAX`.
const NAME_MAX: usize = 255;

/// Refuses a name (`what`: a member name or link target) longer than
/// [`PATH_MAX`] or with a component longer than [`NAME_MAX`]: no
/// filesystem the root is written to could hold it.
fn check_length(what: &str, name: &[u8]) -> Result<()> {
    if name.len() > PATH_MAX {
        bail!(
            "{what} is {} bytes long, more than a path may have ({PATH_MAX}, PATH_MAX)",
            name.len()
        );
    }
    if let Some(part) = name.split(|b| *b == b'/').find(|p| p.len() > NAME_MAX) {
        bail!(
            "{what} has a component of {} bytes, more than a name may have ({NAME_MAX}, \
             NAME_MAX): {}",
            part.len(),
            shown(&String::from_utf8_lossy(part))
        );
    }
    Ok(())
}

/// A uid or gid (`what`) as the tree keeps it: refused if it does not
/// fit 32 bits rather than cut short to another owner.
fn id32(what: &str, n: u64) -> Result<u32> {
    u32::try_from(n).map_err(|_| anyhow!("{what} {n} does not fit 32 bits"))
}

/// Characters of an image-controlled name shown in a message.
const SHOWN_MAX: usize = 200;

/// An image-controlled name (member path, link target) as put in a
/// message: escaped as Rust's `escape_debug` does, so a name holding a
/// newline or a terminal escape cannot forge log lines or drive the
/// terminal; cut to its first [`SHOWN_MAX`] characters, marked `…`.
fn shown(name: &str) -> String {
    let mut chars = name.chars();
    let head: String = chars.by_ref().take(SHOWN_MAX).collect();
    let mut out = head.escape_debug().to_string();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Refuses a relative symlink target that climbs above the image root
/// when read from the link's own directory `dir`.
fn check_symlink(dir: &[String], target: &str) -> Result<()> {
    if target.starts_with('/') {
        return Ok(());
    }
    let mut depth = dir.len();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth == 0 {
                    bail!("symlink escapes the image root (target {})", shown(target));
                }
                depth -= 1;
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "flatten_tests.rs"]
mod tests;
