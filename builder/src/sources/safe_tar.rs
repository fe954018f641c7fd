//! Reading tar archives without trusting them. [`TarIndex::open`] scans
//! the headers once (seeking over the data) and records where each
//! regular member's bytes are, so blobs stream straight out of the
//! archive with no extraction. Members are refused when their names are
//! absolute or contain `..`, when a symlink or hard link points outside
//! the archive, or when they are device nodes or FIFOs; an archive whose
//! members run past its end is reported as truncated.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tar::EntryType;

/// Where a regular member's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Extent {
    offset: u64,
    size: u64,
}

/// A member: file bytes, or a link to another member (normalised name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Member {
    File(Extent),
    Link(String),
}

/// The members of one tar archive, by normalised name (`blobs/sha256/…`).
#[derive(Debug)]
pub struct TarIndex {
    path: PathBuf,
    members: BTreeMap<String, Member>,
}

impl TarIndex {
    /// Scan `path` and index its members, rejecting unsafe ones.
    pub fn open(path: &Path) -> Result<TarIndex> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("reading the size of {}", path.display()))?
            .len();
        let mut archive = tar::Archive::new(file);
        // The tar crate's errors can quote header bytes (a text file's
        // first line read as a member name): they are not passed on.
        let not_tar = || {
            anyhow::anyhow!(
                "{} is not a readable tar archive (truncated, or not a tar file at all); \
                 give the path of a tar made by `docker save`, `skopeo copy` or `podman save`",
                path.display()
            )
        };
        let entries = archive.entries_with_seek().map_err(|_| not_tar())?;
        let mut members = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|_| not_tar())?;
            let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|e| {
                anyhow::anyhow!(
                    "tar archive {}: member name {:?} is not UTF-8",
                    path.display(),
                    String::from_utf8_lossy(e.as_bytes())
                )
            })?;
            let name = normalise(&raw)
                .with_context(|| format!("tar archive {}: member {raw:?}", path.display()))?;
            let kind = entry.header().entry_type();
            let member = match kind {
                EntryType::Regular | EntryType::Continuous => {
                    let offset = entry.raw_file_position();
                    let size = entry.size();
                    if offset.saturating_add(size) > len {
                        bail!(
                            "tar archive {} is truncated: member {name:?} needs bytes up to {} \
                             but the file has {len}",
                            path.display(),
                            offset.saturating_add(size)
                        );
                    }
                    Member::File(Extent { offset, size })
                }
                EntryType::Directory | EntryType::XGlobalHeader => continue,
                EntryType::Symlink | EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    let base = if kind == EntryType::Symlink {
                        parent(&name)
                    } else {
                        ""
                    };
                    let resolved = resolve_link(base, &target).with_context(|| {
                        format!(
                            "tar archive {}: link {name:?} -> {target:?}",
                            path.display()
                        )
                    })?;
                    Member::Link(resolved)
                }
                other => bail!(
                    "tar archive {}: member {name:?} is a {other:?} entry; only files, folders \
                     and links inside the archive are allowed",
                    path.display()
                ),
            };
            if name.is_empty() {
                continue;
            }
            members.insert(name, member);
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            members,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Does a (file or link) member of this name exist?
    pub fn contains(&self, name: &str) -> bool {
        self.extent(name).is_ok()
    }

    fn extent(&self, name: &str) -> Result<Extent> {
        let mut name = name.to_string();
        for _ in 0..16 {
            match self.members.get(&name) {
                Some(Member::File(e)) => return Ok(*e),
                Some(Member::Link(t)) => name = t.clone(),
                None => bail!(
                    "{name:?} is missing from tar archive {}",
                    self.path.display()
                ),
            }
        }
        bail!(
            "{name:?} in tar archive {} is a link loop",
            self.path.display()
        )
    }

    /// Stream a member's bytes.
    pub fn open_member(&self, name: &str) -> Result<impl Read> {
        let e = self.extent(name)?;
        let mut f =
            File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        f.seek(SeekFrom::Start(e.offset))
            .with_context(|| format!("seeking in {}", self.path.display()))?;
        Ok(f.take(e.size))
    }

    /// A member's size in bytes.
    pub fn size(&self, name: &str) -> Result<u64> {
        Ok(self.extent(name)?.size)
    }

    /// Read a small member whole, refusing members over `max` bytes.
    pub fn read_member(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        let size = self.size(name)?;
        if size > max {
            bail!(
                "{name:?} in {} is {size} bytes; more than {max} is refused",
                self.path.display()
            );
        }
        let mut out = Vec::new();
        self.open_member(name)?
            .read_to_end(&mut out)
            .with_context(|| format!("reading {name:?} from {}", self.path.display()))?;
        Ok(out)
    }
}

/// `./a//b/./c` -> `a/b/c`; absolute names and `..` are errors.
pub fn normalise(raw: &str) -> Result<String> {
    if raw.starts_with('/') {
        bail!("absolute member names are not allowed");
    }
    let mut parts = Vec::new();
    for c in raw.split('/') {
        match c {
            "" | "." => {}
            ".." => bail!("member names with `..` are not allowed"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

fn parent(name: &str) -> &str {
    name.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Resolve a link target relative to `base` (a folder inside the
/// archive); fails if it is absolute or climbs out of the archive.
pub fn resolve_link(base: &str, target: &str) -> Result<String> {
    if target.starts_with('/') {
        bail!("absolute link targets point outside the archive");
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty()).collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("the link target climbs outside the archive");
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        bail!("the link target is empty or the archive root");
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_names() {
        assert_eq!(normalise("./blobs//sha256/./x").unwrap(), "blobs/sha256/x");
        assert_eq!(normalise("index.json").unwrap(), "index.json");
        assert!(normalise("/etc/passwd").is_err());
        assert!(normalise("blobs/../../x").is_err());
        assert!(normalise("..").is_err());
    }

    #[test]
    fn resolves_links_inside_only() {
        assert_eq!(resolve_link("a/b", "../c").unwrap(), "a/c");
        assert_eq!(resolve_link("", "blobs/x").unwrap(), "blobs/x");
        assert!(resolve_link("a", "../../etc/passwd").is_err());
        assert!(resolve_link("a", "/etc/passwd").is_err());
        assert!(resolve_link("", "..").is_err());
    }

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> tempfile::NamedTempFile {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let bytes = b.into_inner().unwrap();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }

    #[test]
    fn indexes_and_streams_members_and_links() {
        let f = archive(|b| {
            file(b, "./dir/a", b"hello");
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "dir/l", "a").unwrap();
        });
        let idx = TarIndex::open(f.path()).unwrap();
        assert_eq!(idx.read_member("dir/a", 100).unwrap(), b"hello");
        assert_eq!(idx.read_member("dir/l", 100).unwrap(), b"hello");
        assert!(idx.read_member("dir/a", 2).is_err());
        assert!(!idx.contains("nope"));
    }

    #[test]
    fn rejects_escaping_symlinks_and_devices() {
        let f = archive(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "blobs/x", "../../../etc/passwd")
                .unwrap();
        });
        let e = format!("{:#}", TarIndex::open(f.path()).unwrap_err());
        assert!(
            e.contains("outside the archive") && e.contains("blobs/x"),
            "{e}"
        );

        let f = archive(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Char);
            h.set_size(0);
            h.set_path("dev").unwrap();
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        });
        let e = format!("{:#}", TarIndex::open(f.path()).unwrap_err());
        assert!(e.contains("Char"), "{e}");
    }

    #[test]
    fn reports_truncation() {
        let f = archive(|b| file(b, "big", &vec![7u8; 10_000]));
        let bytes = std::fs::read(f.path()).unwrap();
        std::fs::write(f.path(), &bytes[..5000]).unwrap();
        let e = format!("{:#}", TarIndex::open(f.path()).unwrap_err());
        assert!(e.contains("truncated"), "{e}");
    }
}
