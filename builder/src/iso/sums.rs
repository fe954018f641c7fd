//! `SHA256SUMS` for the ISO root: one `<hex>  <path>` line per payload
//! file, hashed while streaming.
//!
//! The writer makes it (see [`crate::iso::IsoImage::sha256sums`]) after
//! the layout is known, so files it patches (isolinux.bin's boot info
//! table) are hashed as the ISO holds them. Its length depends only on
//! the paths (a SHA-256 is always 64 hex digits), so the layout can
//! reserve its extent before any hash is taken.

use std::io::Read;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::tree::{Node, Tree};

/// The ISO path of the sums file.
pub const SUMS_PATH: &str = "SHA256SUMS";

/// Paths left out of SHA256SUMS: itself, and bundle blobs (which are
/// checked against their own digests).
pub fn excluded(path: &str) -> bool {
    path == SUMS_PATH || path.starts_with("airlift/bundle/blobs/")
}

/// The paths SHA256SUMS lists, sorted.
fn listed(tree: &Tree) -> impl Iterator<Item = (String, &Node)> {
    tree.files().into_iter().filter(|(p, _)| !excluded(p))
}

/// The byte length of the SHA256SUMS [`sha256sums`] renders for `tree`
/// (independent of the files' content).
pub fn sums_len(tree: &Tree) -> usize {
    listed(tree).map(|(p, _)| 64 + 2 + p.len() + 1).sum()
}

/// A file whose bytes in the ISO differ from its source: `bytes` replace
/// the source's from offset `at` (isolinux.bin's boot info table).
pub struct Patch<'a> {
    /// Path relative to the root, as [`Tree::files`] gives it.
    pub path: &'a str,
    pub at: u64,
    pub bytes: &'a [u8],
}

/// Hashes every file of `tree` (except [`excluded`] ones), with `patch`
/// applied, and renders the `SHA256SUMS` content, sorted by path, in
/// `sha256sum` format.
pub fn sha256sums(tree: &Tree, patch: Option<&Patch>) -> Result<String> {
    let mut out = String::new();
    for (path, node) in listed(tree) {
        let Node::File { src, .. } = node else {
            continue;
        };
        let mut r = src.open().with_context(|| format!("hashing {path}"))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let patch = patch.filter(|p| p.path == path);
        let mut pos = 0u64;
        loop {
            let n = r
                .read(&mut buf)
                .with_context(|| format!("reading {path}"))?;
            if n == 0 {
                break;
            }
            if let Some(p) = patch {
                apply(&mut buf[..n], pos, p);
            }
            h.update(&buf[..n]);
            pos += n as u64;
        }
        out.push_str(&format!("{}  {}\n", hex::encode(h.finalize()), path));
    }
    Ok(out)
}

/// Overwrites the part of `chunk` (at file offset `pos`) that `p` covers.
fn apply(chunk: &mut [u8], pos: u64, p: &Patch) {
    let end = pos + chunk.len() as u64;
    let p_end = p.at + p.bytes.len() as u64;
    let (from, to) = (p.at.max(pos), p_end.min(end));
    if from < to {
        chunk[(from - pos) as usize..(to - pos) as usize]
            .copy_from_slice(&p.bytes[(from - p.at) as usize..(to - p.at) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::FileSource;

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.add_file("/boot/vmlinuz", FileSource::Bytes(b"abc".to_vec()), 0o644)
            .unwrap();
        t.add_file(
            "/airlift/bundle/blobs/sha256/aa",
            FileSource::Bytes(vec![1]),
            0o644,
        )
        .unwrap();
        t.add_file(
            "/airlift/bundle/index.json",
            FileSource::Bytes(b"{}".to_vec()),
            0o644,
        )
        .unwrap();
        t.add_file("/SHA256SUMS", FileSource::Bytes(vec![]), 0o644)
            .unwrap();
        t
    }

    #[test]
    fn sums_skip_blobs_and_itself() {
        let t = tree();
        let s = sha256sums(&t, None).unwrap();
        assert_eq!(
            s,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  airlift/bundle/index.json\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  boot/vmlinuz\n"
        );
        assert_eq!(sums_len(&t), s.len());
    }

    #[test]
    fn sums_hash_the_patched_bytes() {
        let t = tree();
        let p = Patch {
            path: "boot/vmlinuz",
            at: 1,
            bytes: b"XYZ",
        };
        let s = sha256sums(&t, Some(&p)).unwrap();
        // "abc" patched at 1 with "XYZ" (cut at the file's end) is "aXY".
        let want = hex::encode(Sha256::digest(b"aXY"));
        assert!(s.contains(&format!("{want}  boot/vmlinuz\n")), "{s}");
    }

    #[test]
    fn patch_applies_across_chunks() {
        let p = Patch {
            path: "",
            at: 3,
            bytes: b"0123",
        };
        let mut a = *b"aaaa";
        let mut b = *b"bbbb";
        apply(&mut a, 0, &p);
        apply(&mut b, 4, &p);
        assert_eq!(&a, b"aaa0");
        assert_eq!(&b, b"123b");
    }
}
