//! A release medium as one OCI archive (`airlift build … -o OUT.tar`):
//! `oci-layout`, `index.json`, `blobs/<alg>/<hex>`, `bundle.json` and
//! `update.json` at the tar's root, in any order. Read twice in place,
//! never unpacked: [`scan`] reads the small files and lists the blobs
//! (seeking over their bytes), so every check runs before anything is
//! written; [`copy`] then streams the wanted blobs into the registry,
//! each hashed as it is written and renamed into place only when its
//! digest and size match.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use airlift_oci::{Digest, Layout};
use anyhow::{bail, Context, Result};

use super::dir::{SmallFiles, OCI_LAYOUT};

/// The largest small file read into memory.
const SMALL_MAX: u64 = 64 << 20;

/// Is `path` a tar (by name or by the `ustar` magic)?
pub fn is_archive(path: &Path) -> Result<bool> {
    if path.extension().is_some_and(|e| e == "tar") {
        return Ok(true);
    }
    let mut head = [0u8; 263];
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = f.read(&mut head).unwrap_or(0);
    Ok(n == head.len() && &head[257..262] == b"ustar")
}

/// What an entry of the archive is.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Small(&'static str),
    Blob(Digest),
    Other,
}

fn classify(name: &str) -> Entry {
    let name = name.trim_start_matches("./");
    for small in ["oci-layout", "index.json", "bundle.json", "update.json"] {
        if name == small {
            return Entry::Small(small);
        }
    }
    let mut parts = name.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("blobs"), Some(alg), Some(hex), None) => format!("{alg}:{hex}")
            .parse()
            .map(Entry::Blob)
            .unwrap_or(Entry::Other),
        _ => Entry::Other,
    }
}

fn open(path: &Path) -> Result<tar::Archive<BufReader<File>>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(tar::Archive::new(BufReader::with_capacity(1 << 20, f)))
}

/// An entry's path as text (lossy: a name that is not UTF-8 matches no
/// entry airlift reads, so it is skipped like any other unknown name).
fn entry_name<R: std::io::Read>(entry: &tar::Entry<'_, R>) -> std::io::Result<String> {
    Ok(entry.path()?.to_string_lossy().into_owned())
}

/// The small files and the blobs (digest, size) of the archive.
pub fn scan(path: &Path) -> Result<(SmallFiles, Vec<(Digest, u64)>)> {
    let mut archive = open(path)?;
    let (mut layout, mut index, mut bundle, mut update) = (None, None, None, None);
    let mut blobs = Vec::new();
    let ctx = || format!("reading the archive {}", path.display());
    for entry in archive.entries_with_seek().with_context(ctx)? {
        let mut entry = entry.with_context(ctx)?;
        let name = entry_name(&entry).with_context(ctx)?;
        match classify(&name) {
            Entry::Small(which) => {
                if entry.size() > SMALL_MAX {
                    bail!(
                        "{}: {which} is too large ({} bytes)",
                        path.display(),
                        entry.size()
                    );
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).with_context(ctx)?;
                let slot = match which {
                    "oci-layout" => &mut layout,
                    "index.json" => &mut index,
                    "bundle.json" => &mut bundle,
                    _ => &mut update,
                };
                *slot = Some(bytes);
            }
            Entry::Blob(d) => blobs.push((d, entry.size())),
            Entry::Other => {}
        }
    }
    let Some(index) = index else {
        bail!(
            "{} is a tar without index.json at its root: not an airlift OCI archive",
            path.display()
        );
    };
    blobs.sort();
    Ok((
        SmallFiles {
            oci_layout: layout.unwrap_or_else(|| OCI_LAYOUT.to_vec()),
            index,
            bundle,
            update,
        },
        blobs,
    ))
}

/// Stream the blobs of `wanted` into `data`, each verified; `done` is
/// told each blob written. Blobs already in `data` are skipped.
pub fn copy(
    path: &Path,
    wanted: &HashSet<Digest>,
    data: &Layout,
    mut done: impl FnMut(&Digest, u64),
) -> Result<()> {
    let mut archive = open(path)?;
    let ctx = || format!("reading the archive {}", path.display());
    for entry in archive.entries().with_context(ctx)? {
        let mut entry = entry.with_context(ctx)?;
        let name = entry_name(&entry).with_context(ctx)?;
        let Entry::Blob(d) = classify(&name) else {
            continue;
        };
        if !wanted.contains(&d) {
            continue;
        }
        let size = entry.size();
        if !data.has_blob(&d) {
            let mut w = data.blob_writer(d.algorithm())?;
            std::io::copy(&mut entry, &mut w)
                .with_context(|| format!("copying blob {d} from {}", path.display()))?;
            w.commit(Some(&d), Some(size)).with_context(|| {
                format!(
                    "blob {d} in {} is corrupt; copy the archive again",
                    path.display()
                )
            })?;
        }
        done(&d, size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_small_files_and_blobs() {
        assert_eq!(classify("./index.json"), Entry::Small("index.json"));
        assert_eq!(classify("update.json"), Entry::Small("update.json"));
        let d = Digest::sha256_of(b"x");
        assert_eq!(
            classify(&format!("blobs/sha256/{}", d.hex())),
            Entry::Blob(d)
        );
        assert_eq!(classify("blobs/sha256/nothex"), Entry::Other);
        assert_eq!(classify("airlift/index.json"), Entry::Other);
        assert_eq!(classify("blobs/sha256/a/b"), Entry::Other);
    }

    fn tar_of(files: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
        let f = tempfile::Builder::new().suffix(".tar").tempfile().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (name, bytes) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *bytes).unwrap();
        }
        b.finish().unwrap();
        f
    }

    #[test]
    fn scans_then_copies_verified_blobs() {
        let good = Digest::sha256_of(b"good");
        let bad = Digest::sha256_of(b"expected");
        let (gp, bp) = (
            format!("blobs/sha256/{}", good.hex()),
            format!("blobs/sha256/{}", bad.hex()),
        );
        let t = tar_of(&[
            ("oci-layout", OCI_LAYOUT),
            (&gp, b"good"),
            (&bp, b"tampered"),
            ("index.json", b"{}"),
        ]);
        assert!(is_archive(t.path()).unwrap());
        let (files, blobs) = scan(t.path()).unwrap();
        assert_eq!(files.index, b"{}");
        assert_eq!(files.bundle, None);
        assert_eq!(blobs.len(), 2);
        let dir = tempfile::tempdir().unwrap();
        let data = Layout::create(dir.path()).unwrap();
        let mut seen = Vec::new();
        copy(t.path(), &HashSet::from([good.clone()]), &data, |d, _| {
            seen.push(d.clone())
        })
        .unwrap();
        assert_eq!(seen, vec![good.clone()]);
        assert!(data.has_blob(&good));
        let e = format!(
            "{:#}",
            copy(t.path(), &HashSet::from([bad.clone()]), &data, |_, _| {}).unwrap_err()
        );
        assert!(e.contains(&bad.to_string()) && e.contains("corrupt"), "{e}");
        assert!(!data.has_blob(&bad));
        let not = tar_of(&[("oci-layout", OCI_LAYOUT)]);
        assert!(format!("{:#}", scan(not.path()).unwrap_err()).contains("without index.json"));
    }
}
