//! The file tree an ISO is written from: directories, files and symlinks
//! with POSIX modes, keyed by their real (Rock Ridge) names.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A host file, streamed (never read whole into memory).
    Path(PathBuf),
    /// Small in-memory content (configs, manifests).
    Bytes(Vec<u8>),
}

impl FileSource {
    /// The current length of the content.
    pub fn len(&self) -> Result<u64> {
        match self {
            FileSource::Path(p) => Ok(std::fs::metadata(p)
                .with_context(|| format!("reading the size of {}", p.display()))?
                .len()),
            FileSource::Bytes(b) => Ok(b.len() as u64),
        }
    }

    /// Whether the content is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Opens the content as a reader.
    pub fn open(&self) -> Result<Box<dyn std::io::Read + '_>> {
        match self {
            FileSource::Path(p) => Ok(Box::new(
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
            )),
            FileSource::Bytes(b) => Ok(Box::new(std::io::Cursor::new(b.as_slice()))),
        }
    }
}

/// A digest a file's bytes must hash to, and where the file came from
/// (named in the error when they do not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub digest: airlift_oci::Digest,
    /// Such as `oci-layout /srv/images`.
    pub source: String,
    /// The key the source file had when an earlier build checked that it
    /// hashes to `digest` (see [`crate::verified`]): the writer copies it
    /// unhashed if the file has this key before and after the copy, and
    /// hashes it otherwise.
    pub trusted: Option<crate::verified::FileKey>,
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A directory; children sorted by name.
    Dir {
        mode: u32,
        children: BTreeMap<String, Node>,
    },
    /// A regular file of `size` bytes (the size seen when it was added;
    /// the writer fails if it changed).
    File {
        src: FileSource,
        size: u64,
        mode: u32,
        /// The digest its bytes must have, checked by the writer on the
        /// bytes it wrote (see [`Tree::expect_digest`]).
        expect: Option<Expected>,
    },
    /// A symbolic link.
    Symlink { target: String, mode: u32 },
}

impl Node {
    /// The POSIX permission bits (without the file-type bits).
    pub fn mode(&self) -> u32 {
        match self {
            Node::Dir { mode, .. } | Node::File { mode, .. } | Node::Symlink { mode, .. } => *mode,
        }
    }

    /// The full POSIX `st_mode` (type bits included).
    pub fn st_mode(&self) -> u32 {
        let kind = match self {
            Node::Dir { .. } => 0o040000,
            Node::File { .. } => 0o100000,
            Node::Symlink { .. } => 0o120000,
        };
        kind | (self.mode() & 0o7777)
    }
}

/// A directory tree rooted at the ISO root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The root directory (always a [`Node::Dir`]).
    pub root: Node,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            root: Node::Dir {
                mode: 0o755,
                children: BTreeMap::new(),
            },
        }
    }
}

/// Splits and validates an ISO path such as `/boot/vmlinuz` or `boot/vmlinuz`.
pub fn split_path(iso_path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = iso_path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        bail!("ISO path {iso_path:?} names the root; give a file or directory path");
    }
    for p in &parts {
        if *p == "." || *p == ".." {
            bail!("ISO path {iso_path:?} contains {p:?}; use a plain path");
        }
        if p.len() > 255 || p.contains('\0') {
            bail!(
                "ISO path {iso_path:?}: component {p:?} is longer than 255 bytes or contains NUL"
            );
        }
    }
    Ok(parts)
}

impl Tree {
    /// An empty tree (root mode 0755).
    pub fn new() -> Self {
        Self::default()
    }

    fn parent_dir<'a>(
        &'a mut self,
        iso_path: &str,
        parts: &[&str],
    ) -> Result<&'a mut BTreeMap<String, Node>> {
        let mut cur = &mut self.root;
        for p in parts {
            let Node::Dir { children, .. } = cur else {
                unreachable!()
            };
            cur = children
                .entry((*p).to_string())
                .or_insert_with(|| Node::Dir {
                    mode: 0o755,
                    children: BTreeMap::new(),
                });
            if !matches!(cur, Node::Dir { .. }) {
                bail!("ISO path {iso_path:?}: {p:?} already exists and is not a directory");
            }
        }
        let Node::Dir { children, .. } = cur else {
            unreachable!()
        };
        Ok(children)
    }

    fn insert(&mut self, iso_path: &str, node: Node) -> Result<()> {
        let parts = split_path(iso_path)?;
        let (name, parents) = parts.split_last().expect("non-empty");
        let dir = self.parent_dir(iso_path, parents)?;
        match dir.get_mut(*name) {
            Some(Node::Dir { mode, .. }) if matches!(node, Node::Dir { .. }) => {
                *mode = node.mode();
                Ok(())
            }
            Some(_) => bail!("ISO path {iso_path:?} was added twice"),
            None => {
                dir.insert((*name).to_string(), node);
                Ok(())
            }
        }
    }

    /// Adds a regular file; missing parent directories are created (0755).
    pub fn add_file(&mut self, iso_path: &str, src: FileSource, mode: u32) -> Result<()> {
        let size = src
            .len()
            .with_context(|| format!("adding ISO file {iso_path:?}"))?;
        if let FileSource::Path(p) = &src {
            let md = std::fs::metadata(p).with_context(|| format!("reading {}", p.display()))?;
            if !md.is_file() {
                bail!(
                    "adding ISO file {iso_path:?}: {} is not a regular file",
                    p.display()
                );
            }
        }
        self.insert(
            iso_path,
            Node::File {
                src,
                size,
                mode: mode & 0o7777,
                expect: None,
            },
        )
    }

    /// Make the writer check that the file at `iso_path` hashes to
    /// `expected.digest` as it writes it (the ISO is not renamed into
    /// place otherwise); the error names the digest and its source.
    pub fn expect_digest(&mut self, iso_path: &str, expected: Expected) -> Result<()> {
        let Node::File { expect, .. } = self.node_mut(iso_path)? else {
            bail!("ISO path {iso_path:?} is not a regular file");
        };
        *expect = Some(expected);
        Ok(())
    }

    /// Make the entry at `iso_path` (a file, or the symlink a linked
    /// bundle holds) the regular file `src`.
    pub fn replace_with_file(&mut self, iso_path: &str, src: FileSource, mode: u32) -> Result<()> {
        let node = self.node_mut(iso_path)?;
        if matches!(node, Node::Dir { .. }) {
            bail!("ISO path {iso_path:?} is a directory, not a file");
        }
        let size = src
            .len()
            .with_context(|| format!("adding ISO file {iso_path:?}"))?;
        *node = Node::File {
            src,
            size,
            mode: mode & 0o7777,
            expect: None,
        };
        Ok(())
    }

    /// Set the mode of every file and directory under `iso_prefix` (so
    /// the image does not depend on how its inputs were made: copied
    /// blobs are 0600 temp files, linked ones keep their source's mode).
    pub fn set_modes(&mut self, iso_prefix: &str, file_mode: u32, dir_mode: u32) -> Result<()> {
        fn walk(n: &mut Node, f: u32, d: u32) {
            match n {
                Node::Dir { mode, children } => {
                    *mode = d;
                    for c in children.values_mut() {
                        walk(c, f, d);
                    }
                }
                Node::File { mode, .. } => *mode = f,
                Node::Symlink { .. } => {}
            }
        }
        walk(
            self.node_mut(iso_prefix)?,
            file_mode & 0o7777,
            dir_mode & 0o7777,
        );
        Ok(())
    }

    fn node_mut(&mut self, iso_path: &str) -> Result<&mut Node> {
        let mut cur = &mut self.root;
        for p in split_path(iso_path)? {
            let Node::Dir { children, .. } = cur else {
                bail!("ISO path {iso_path:?}: {p:?} is under a file");
            };
            cur = children
                .get_mut(p)
                .with_context(|| format!("ISO path {iso_path:?} is not in the tree"))?;
        }
        Ok(cur)
    }

    /// Adds a directory (or sets the mode of an existing one).
    pub fn add_dir(&mut self, iso_path: &str, mode: u32) -> Result<()> {
        if iso_path.split('/').all(|p| p.is_empty()) {
            if let Node::Dir { mode: m, .. } = &mut self.root {
                *m = mode & 0o7777;
            }
            return Ok(());
        }
        self.insert(
            iso_path,
            Node::Dir {
                mode: mode & 0o7777,
                children: BTreeMap::new(),
            },
        )
    }

    /// Adds a symbolic link pointing at `target` (mode 0777).
    pub fn add_symlink(&mut self, iso_path: &str, target: &str) -> Result<()> {
        if target.is_empty() {
            bail!("symlink {iso_path:?} has an empty target");
        }
        self.insert(
            iso_path,
            Node::Symlink {
                target: target.to_string(),
                mode: 0o777,
            },
        )
    }

    /// Adds `host_dir` recursively under `iso_prefix`, keeping modes and
    /// symlinks. Entries are visited in name order.
    pub fn add_tree_from_dir(&mut self, iso_prefix: &str, host_dir: &Path) -> Result<()> {
        let md = std::fs::symlink_metadata(host_dir)
            .with_context(|| format!("reading {}", host_dir.display()))?;
        if !md.is_dir() {
            bail!("{} is not a directory", host_dir.display());
        }
        self.add_dir(iso_prefix, md.permissions().mode())?;
        let mut entries: Vec<_> = std::fs::read_dir(host_dir)
            .with_context(|| format!("listing {}", host_dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("listing {}", host_dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("{}: file name is not UTF-8", e.path().display()))?;
            let iso_path = format!("{}/{}", iso_prefix.trim_end_matches('/'), name);
            let iso_path = iso_path.as_str();
            let path = e.path();
            let md = std::fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let ft = md.file_type();
            if ft.is_dir() {
                self.add_tree_from_dir(iso_path, &path)?;
            } else if ft.is_file() {
                self.add_file(iso_path, FileSource::Path(path), md.permissions().mode())?;
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path)
                    .with_context(|| format!("reading link {}", path.display()))?;
                let target = target
                    .to_str()
                    .with_context(|| format!("{}: link target is not UTF-8", path.display()))?;
                self.add_symlink(iso_path, target)?;
            } else {
                bail!(
                    "{}: only files, directories and symlinks can go into the ISO",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Looks up a node by ISO path.
    pub fn get(&self, iso_path: &str) -> Option<&Node> {
        let mut cur = &self.root;
        for p in iso_path.split('/').filter(|p| !p.is_empty()) {
            let Node::Dir { children, .. } = cur else {
                return None;
            };
            cur = children.get(p)?;
        }
        Some(cur)
    }

    /// Every regular file as (path relative to the root, node), depth-first
    /// in name order.
    pub fn files(&self) -> Vec<(String, &Node)> {
        fn walk<'a>(prefix: &str, node: &'a Node, out: &mut Vec<(String, &'a Node)>) {
            if let Node::Dir { children, .. } = node {
                for (name, child) in children {
                    let path = if prefix.is_empty() {
                        name.clone()
                    } else {
                        format!("{prefix}/{name}")
                    };
                    match child {
                        Node::Dir { .. } => walk(&path, child, out),
                        Node::File { .. } => out.push((path, child)),
                        Node::Symlink { .. } => {}
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk("", &self.root, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_parents_and_rejects_duplicates() {
        let mut t = Tree::new();
        t.add_file("/a/b/c.txt", FileSource::Bytes(b"hi".to_vec()), 0o644)
            .unwrap();
        assert!(matches!(t.get("a/b"), Some(Node::Dir { .. })));
        assert!(t
            .add_file("/a/b/c.txt", FileSource::Bytes(vec![]), 0o644)
            .is_err());
        assert!(t
            .add_file("/a/b/c.txt/d", FileSource::Bytes(vec![]), 0o644)
            .is_err());
        assert!(t.add_dir("/a/../x", 0o755).is_err());
        t.add_dir("/a", 0o700).unwrap();
        assert_eq!(t.get("/a").unwrap().mode(), 0o700);
        t.add_symlink("/a/l", "b/c.txt").unwrap();
        assert_eq!(t.get("/a/l").unwrap().st_mode(), 0o120777);
        assert_eq!(t.files().len(), 1);
    }
}
