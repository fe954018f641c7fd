//! The initramfs contents before encoding: a sorted map from path to
//! node, filled from layers where later layers win.
//!
//! Paths are relative (`usr/bin/x`, no leading `/`). When a layer adds a
//! path under a directory that an earlier layer made a symlink (Debian's
//! merged `/usr`: `lib -> usr/lib`), the path is placed where the symlink
//! points, so `lib/modules/…` from a later layer lands in `usr/lib/modules/…`
//! and the archive never holds a member below a symlink.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// A file on the build host, read while encoding.
    Path(PathBuf),
    /// Bytes generated at build time.
    Bytes(Vec<u8>),
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File { data: Data, size: u64 },
    Symlink(String),
    CharDev { major: u32, minor: u32 },
    BlockDev { major: u32, minor: u32 },
    Fifo,
}

/// A node's owner and extended attributes: root:root and none unless a
/// source says otherwise (a container image layer does; host folders are
/// read as root-owned, since an unprivileged build cannot own files).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub uid: u32,
    pub gid: u32,
    /// Extended attributes, name (`security.capability`) to value.
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

/// A node with its permission bits (`0o7777`), owner and extended
/// attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub perm: u32,
    pub meta: Meta,
}

impl Node {
    pub fn dir(perm: u32) -> Node {
        Node {
            kind: Kind::Dir,
            perm,
            meta: Meta::default(),
        }
    }

    /// `/dev/console` (char 5:1, 0600): the kernel opens it for the first
    /// process before devtmpfs is mounted.
    pub fn console() -> Node {
        Node {
            kind: Kind::CharDev { major: 5, minor: 1 },
            perm: 0o600,
            meta: Meta::default(),
        }
    }

    pub fn bytes(data: Vec<u8>, perm: u32) -> Node {
        Node {
            kind: Kind::File {
                size: data.len() as u64,
                data: Data::Bytes(data),
            },
            perm,
            meta: Meta::default(),
        }
    }

    pub fn symlink(target: &str) -> Node {
        Node {
            kind: Kind::Symlink(target.to_string()),
            perm: 0o777,
            meta: Meta::default(),
        }
    }

    /// Reads a host path's type and permissions (without following a
    /// final symlink). Sockets are refused.
    pub fn from_host(path: &Path) -> Result<Node> {
        let meta =
            fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
        let ft = meta.file_type();
        let perm = meta.permissions().mode() & 0o7777;
        let rdev = meta.rdev();
        let (major, minor) = (dev_major(rdev), dev_minor(rdev));
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File {
                data: Data::Path(path.to_path_buf()),
                size: meta.len(),
            }
        } else if ft.is_symlink() {
            let target =
                fs::read_link(path).with_context(|| format!("reading link {}", path.display()))?;
            Kind::Symlink(
                target
                    .to_str()
                    .with_context(|| format!("{}: link target is not UTF-8", path.display()))?
                    .to_string(),
            )
        } else if ft.is_char_device() {
            Kind::CharDev { major, minor }
        } else if ft.is_block_device() {
            Kind::BlockDev { major, minor }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            bail!("{}: sockets cannot go into an initramfs", path.display());
        };
        Ok(Node {
            kind,
            perm,
            meta: Meta::default(),
        })
    }
}

fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32
}

fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32
}

/// The whole tree, sorted by path (a parent sorts before its children).
#[derive(Debug, Default)]
pub struct Tree {
    nodes: BTreeMap<String, Node>,
}

impl Tree {
    pub fn new() -> Tree {
        Tree::default()
    }

    /// Nodes in archive order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds `node` at `path`, replacing what was there. Missing parent
    /// directories are made (0755); parents that are symlinks to
    /// directories are followed. A directory added where a symlink to a
    /// directory is keeps the symlink (its contents merge through it). A
    /// non-directory replacing a directory drops the directory's contents.
    pub fn insert(&mut self, path: &str, node: Node) -> Result<()> {
        let path = self.resolve_parent(path)?;
        if path.is_empty() {
            // The root itself: nothing to store.
            return Ok(());
        }
        if let Some(existing) = self.nodes.get(&path) {
            match (&existing.kind, &node.kind) {
                (Kind::Dir, Kind::Dir) => {
                    self.nodes.insert(path, node);
                    return Ok(());
                }
                (Kind::Symlink(_), Kind::Dir) if self.is_dir_through_links(&path) => {
                    return Ok(());
                }
                (Kind::Dir, _) => self.remove_subtree(&path),
                _ => {}
            }
        }
        self.make_parents(&path)?;
        self.nodes.insert(path, node);
        Ok(())
    }

    /// Adds every entry below `host_dir` under `prefix` (`""` for the root).
    /// Entries are visited in sorted order so the result never depends on
    /// the host's directory order.
    pub fn add_host_dir(&mut self, host_dir: &Path, prefix: &str) -> Result<()> {
        let meta = fs::metadata(host_dir)
            .with_context(|| format!("reading layer folder {}", host_dir.display()))?;
        if !meta.is_dir() {
            bail!("{} is not a folder", host_dir.display());
        }
        let mut stack = vec![(host_dir.to_path_buf(), prefix.trim_matches('/').to_string())];
        while let Some((dir, rel)) = stack.pop() {
            let mut names: Vec<_> = fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<std::io::Result<_>>()
                .with_context(|| format!("listing {}", dir.display()))?;
            names.sort();
            // Push in reverse so directories are walked in sorted order.
            let mut subdirs = Vec::new();
            for name in names {
                let name_str = name
                    .to_str()
                    .with_context(|| format!("{}: a name is not UTF-8", dir.display()))?;
                let host = dir.join(&name);
                let path = if rel.is_empty() {
                    name_str.to_string()
                } else {
                    format!("{rel}/{name_str}")
                };
                let node = Node::from_host(&host)?;
                let is_dir = node.kind == Kind::Dir;
                self.insert(&path, node)
                    .with_context(|| format!("adding {}", host.display()))?;
                if is_dir {
                    subdirs.push((host, path));
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(())
    }

    /// Puts `node` at `path` as a container runtime applies a layer
    /// member: `path` is already resolved (no parent is a symlink) and
    /// relative. A directory over a directory replaces its metadata and
    /// keeps its contents; anything else replaces what was there (a
    /// directory's contents go with it). Missing parents are made (0755,
    /// root).
    pub fn replace(&mut self, path: &str, node: Node) -> Result<()> {
        if path.is_empty() {
            return Ok(());
        }
        if let Some(existing) = self.nodes.get(path) {
            if existing.kind == Kind::Dir && node.kind != Kind::Dir {
                self.remove_subtree(path);
            }
        }
        self.make_parents(path)?;
        self.nodes.insert(path.to_string(), node);
        Ok(())
    }

    /// Removes `path` and everything below it; returns whether it was there.
    pub fn remove(&mut self, path: &str) -> bool {
        self.remove_subtree(path);
        self.nodes.remove(path).is_some()
    }

    /// The paths strictly below `path` (`""` for the whole tree), in order.
    pub fn paths_below(&self, path: &str) -> Vec<String> {
        if path.is_empty() {
            return self.nodes.keys().cloned().collect();
        }
        let prefix = format!("{path}/");
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Logs one line when nodes carry extended attributes that `format`
    /// (the initramfs, the squashfs image) cannot hold: they reach the
    /// booted root through the list `collect` adds
    /// ([`airlift_appliance::xattrs`]).
    pub fn warn_xattrs_not_carried(&self, format: &str) {
        if let Some(summary) = self.xattr_summary() {
            tracing::info!(
                "the {format} cannot hold extended attributes; /{} lists them and \
                 airlift-xattrs.service sets them at boot: {summary}",
                airlift_appliance::xattrs::MANIFEST_PATH
            );
        }
    }

    /// "N nodes have extended attributes: /path (names); …": the count and
    /// up to ten paths with the attribute names (never their values), or
    /// `None` when no node has any.
    pub fn xattr_summary(&self) -> Option<String> {
        let with: Vec<(&String, &Node)> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.meta.xattrs.is_empty())
            .collect();
        if with.is_empty() {
            return None;
        }
        let shown: Vec<String> = with
            .iter()
            .take(10)
            .map(|(p, n)| {
                let names: Vec<&str> = n.meta.xattrs.keys().map(String::as_str).collect();
                format!("/{p} ({})", names.join(", "))
            })
            .collect();
        let more = if with.len() > shown.len() {
            "; …"
        } else {
            ""
        };
        Some(format!(
            "{} nodes have extended attributes: {}{more}",
            with.len(),
            shown.join("; ")
        ))
    }

    fn make_parents(&mut self, path: &str) -> Result<()> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            match self.nodes.get(parent).map(|n| &n.kind) {
                None => {
                    self.nodes.insert(parent.to_string(), Node::dir(0o755));
                }
                Some(Kind::Dir) => {}
                Some(_) => bail!("{parent} is not a directory (needed for {path})"),
            }
            end += i + 1;
        }
        Ok(())
    }

    fn remove_subtree(&mut self, path: &str) {
        let prefix = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    /// Rewrites `path` so no parent component is a symlink.
    pub fn resolve_parent(&self, path: &str) -> Result<String> {
        let parts = normalize(path.trim_matches('/'))?;
        let Some((last, parents)) = parts.split_last() else {
            return Ok(String::new());
        };
        let dir = self.resolve_dir(parents, 0)?;
        Ok(join(&dir, last))
    }

    /// Resolves a directory given as components, following symlinks.
    fn resolve_dir(&self, parts: &[String], depth: usize) -> Result<Vec<String>> {
        if depth > 40 {
            bail!("too many levels of symlinks resolving /{}", parts.join("/"));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let here = join(&out, part);
            match self.nodes.get(&here).map(|n| &n.kind) {
                Some(Kind::Symlink(target)) => {
                    let mut next = if target.starts_with('/') {
                        Vec::new()
                    } else {
                        out.clone()
                    };
                    next.extend(
                        target
                            .split('/')
                            .filter(|s| !s.is_empty())
                            .map(String::from),
                    );
                    next.extend(parts[i + 1..].iter().cloned());
                    let next = normalize(&next.join("/"))?;
                    return self.resolve_dir(&next, depth + 1);
                }
                _ => out.push(part.clone()),
            }
        }
        Ok(out)
    }

    fn is_dir_through_links(&self, path: &str) -> bool {
        let Ok(parts) = normalize(path) else {
            return false;
        };
        match self.resolve_dir(&parts, 0) {
            Ok(p) => matches!(
                self.nodes.get(&p.join("/")).map(|n| &n.kind),
                Some(Kind::Dir)
            ),
            Err(_) => false,
        }
    }
}

fn join(dir: &[String], name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.join("/"))
    }
}

/// Splits a relative path into components, dropping `.` and applying `..`
/// (which may not climb above the root).
fn normalize(path: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &str) -> Node {
        Node::bytes(s.as_bytes().to_vec(), 0o644)
    }

    #[test]
    fn parents_are_made_and_sorted_first() {
        let mut t = Tree::new();
        t.insert("etc/airlift/appliance.json", file("{}")).unwrap();
        let paths: Vec<_> = t.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["etc", "etc/airlift", "etc/airlift/appliance.json"]);
    }

    #[test]
    fn later_layers_win() {
        let mut t = Tree::new();
        t.insert("init", file("old")).unwrap();
        t.insert("init", file("new")).unwrap();
        assert_eq!(t.get("init").unwrap(), &file("new"));
    }

    #[test]
    fn paths_below_a_symlinked_dir_land_at_the_target() {
        let mut t = Tree::new();
        t.insert("usr/lib", Node::dir(0o755)).unwrap();
        t.insert("lib", Node::symlink("usr/lib")).unwrap();
        t.insert("lib/modules/6.1/modules.dep", file("")).unwrap();
        assert!(t.get("usr/lib/modules/6.1/modules.dep").is_some());
        assert!(t.get("lib/modules").is_none());
        // An overlay's own `lib/` folder keeps the symlink.
        t.insert("lib", Node::dir(0o755)).unwrap();
        assert_eq!(t.get("lib").unwrap(), &Node::symlink("usr/lib"));
    }

    #[test]
    fn absolute_and_dotdot_links_resolve() {
        let mut t = Tree::new();
        t.insert("usr/lib/x", Node::dir(0o755)).unwrap();
        t.insert("a/b", Node::symlink("/usr/lib")).unwrap();
        t.insert("c", Node::symlink("a/../usr/lib/x")).unwrap();
        assert_eq!(t.resolve_parent("a/b/f").unwrap(), "usr/lib/f");
        assert_eq!(t.resolve_parent("c/f").unwrap(), "usr/lib/x/f");
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let mut t = Tree::new();
        t.insert("a", Node::symlink("b")).unwrap();
        t.insert("b", Node::symlink("a")).unwrap();
        let err = t.resolve_parent("a/f").unwrap_err();
        assert!(err.to_string().contains("symlinks"), "{err}");
    }

    #[test]
    fn the_xattr_summary_names_paths_and_attributes_not_values() {
        let mut t = Tree::new();
        t.insert("etc/plain", file("x")).unwrap();
        assert_eq!(t.xattr_summary(), None);
        for i in 0..12 {
            let mut n = file("x");
            n.meta
                .xattrs
                .insert("security.capability".into(), b"SECRET".to_vec());
            n.meta.xattrs.insert("user.a".into(), b"SECRET".to_vec());
            t.insert(&format!("bin/f{i:02}"), n).unwrap();
        }
        let s = t.xattr_summary().unwrap();
        assert!(s.starts_with("12 nodes have extended attributes: "), "{s}");
        assert!(s.contains("/bin/f00 (security.capability, user.a)"), "{s}");
        assert!(s.contains("/bin/f09 ("), "{s}");
        assert!(!s.contains("/bin/f10"), "only ten paths: {s}");
        assert!(!s.contains("SECRET"), "{s}");
    }

    #[test]
    fn a_file_replacing_a_dir_drops_its_contents() {
        let mut t = Tree::new();
        t.insert("d/x", file("x")).unwrap();
        t.insert("d", file("now a file")).unwrap();
        assert!(t.get("d/x").is_none());
        assert_eq!(t.len(), 1);
    }
}
