//! `SHA256SUMS` for the ISO root: one `<hex>  <path>` line per payload
//! file, hashed while streaming.

use std::io::Read;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::tree::{Node, Tree};

/// Paths left out of SHA256SUMS: itself, and bundle blobs (which are
/// checked against their own digests).
pub fn excluded(path: &str) -> bool {
    path == "SHA256SUMS" || path.starts_with("airlift/bundle/blobs/")
}

/// Hashes every file of `tree` (except [`excluded`] ones) and renders the
/// `SHA256SUMS` content, sorted by path, in `sha256sum` format.
pub fn sha256sums(tree: &Tree) -> Result<String> {
    let mut out = String::new();
    for (path, node) in tree.files() {
        if excluded(&path) {
            continue;
        }
        let Node::File { src, .. } = node else {
            continue;
        };
        let mut r = src.open().with_context(|| format!("hashing {path}"))?;
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = r
                .read(&mut buf)
                .with_context(|| format!("reading {path}"))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        out.push_str(&format!("{}  {}\n", hex::encode(h.finalize()), path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::FileSource;

    #[test]
    fn sums_skip_blobs_and_itself() {
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
        let s = sha256sums(&t).unwrap();
        assert_eq!(
            s,
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a  airlift/bundle/index.json\n\
             ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  boot/vmlinuz\n"
        );
    }
}
