//! Reading a backup back: its info first (so the caller can refuse
//! another appliance's backup before anything is written), then every
//! entry checked against [`super::entry::classify`] and the info's list.
//! Blobs stream into the registry's blob folder, each verified by digest
//! and size before it is renamed into place (a verified blob no metadata
//! names yet is inert: nothing serves it, and `gc` would collect it).
//! Every other file is kept in memory until the whole archive has been
//! read and checked, so a damaged archive installs nothing.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use airlift_oci::{Digest, Layout};
use anyhow::{bail, Context, Result};

use super::entry::{self, Kind};
use super::{BackupInfo, SCHEMA};

/// Largest small file (metadata, state, keys) read into memory.
const MAX_FILE: u64 = 16 << 20;
/// Largest sum of the small files.
const MAX_FILES_TOTAL: u64 = 1 << 30;

/// A backup read and verified: its info and small files; its blobs are
/// in the registry's blob folder.
#[derive(Debug)]
pub struct Restored {
    pub info: BackupInfo,
    pub files: Vec<(Kind, Vec<u8>)>,
    /// Blobs written (a blob already present is checked, not rewritten).
    pub blobs: u64,
    pub bytes: u64,
}

/// Read `archive`, writing its blobs into `registry` (a folder holding
/// `blobs/`). `check` sees the info before anything is written.
pub fn read(
    archive: &Path,
    registry: &Path,
    check: &dyn Fn(&BackupInfo) -> Result<()>,
) -> Result<Restored> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut entries = tar
        .entries()
        .with_context(|| format!("reading {}", archive.display()))?;
    let damaged = |after: &str| {
        format!(
            "{} is damaged or truncated after entry {after:?}",
            archive.display()
        )
    };
    let first = match entries.next() {
        Some(e) => e.with_context(|| damaged("(start)"))?,
        None => bail!("{} is empty: not an airlift backup", archive.display()),
    };
    let info = read_info(first, archive)?;
    check(&info)?;
    let listed_blobs: std::collections::BTreeMap<&Digest, u64> =
        info.blobs.iter().map(|b| (&b.digest, b.size)).collect();
    let listed_files: BTreeSet<&str> = info.files.iter().map(String::as_str).collect();
    let layout = Layout::create(registry)?;
    let mut seen = BTreeSet::new();
    let mut out = Restored {
        info: info.clone(),
        files: Vec::new(),
        blobs: 0,
        bytes: 0,
    };
    let mut total = 0u64;
    let mut last = entry::INFO.to_string();
    for e in entries {
        let mut e = e.with_context(|| damaged(&last))?;
        let path = entry_path(&e)?;
        let kind = entry::classify(&path)?;
        if !seen.insert(path.clone()) {
            bail!("entry {path:?} appears twice; the backup is damaged");
        }
        let size = e.header().size().with_context(|| damaged(&path))?;
        match kind {
            Kind::Blob(d) => {
                match listed_blobs.get(&d) {
                    Some(s) if *s == size => {}
                    _ => bail!(
                        "entry {path:?} is not listed in {} with its size; the backup is damaged",
                        entry::INFO
                    ),
                }
                let mut w = layout.blob_writer(d.algorithm())?;
                std::io::copy(&mut e, &mut w)
                    .with_context(|| format!("entry {path:?}: {}", damaged(&path)))?;
                w.commit(Some(&d), Some(size))
                    .with_context(|| format!("entry {path:?} is damaged"))?;
                out.blobs += 1;
                out.bytes += size;
            }
            kind => {
                if !listed_files.contains(path.as_str()) || size > MAX_FILE {
                    bail!(
                        "entry {path:?} is not listed in {} or is too large; the backup is damaged",
                        entry::INFO
                    );
                }
                total += size;
                if total > MAX_FILES_TOTAL {
                    bail!(
                        "{} holds more than {MAX_FILES_TOTAL} bytes of small files; refused",
                        archive.display()
                    );
                }
                let mut bytes = Vec::with_capacity(size as usize);
                e.read_to_end(&mut bytes).with_context(|| damaged(&path))?;
                if bytes.len() as u64 != size {
                    bail!("{}", damaged(&path));
                }
                out.files.push((kind, bytes));
            }
        }
        last = path;
    }
    let absent = (info.blobs.iter().map(|b| b.digest.blob_path()))
        .chain(info.files.iter().cloned())
        .find(|p| !seen.contains(p));
    if let Some(p) = absent {
        bail!(
            "{} ends before entry {p:?}, which {} lists: the backup is truncated",
            archive.display(),
            entry::INFO
        );
    }
    Ok(out)
}

/// The first entry: the info, whose schema this airlift reads.
fn read_info<R: Read>(mut e: tar::Entry<R>, archive: &Path) -> Result<BackupInfo> {
    let path = entry_path(&e)?;
    if path != entry::INFO {
        bail!(
            "{} is not an airlift backup: its first entry is {path:?}, not {}",
            archive.display(),
            entry::INFO
        );
    }
    let mut bytes = Vec::new();
    (&mut e)
        .take(MAX_FILE)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {} in {}", entry::INFO, archive.display()))?;
    let info: BackupInfo = airlift_oci::quiet_json::parse(
        &bytes,
        &format!("{} in {}", entry::INFO, archive.display()),
    )?;
    if info.schema != SCHEMA {
        bail!(
            "{}: schema {:?} is not {SCHEMA:?}; this airlift-firstboot cannot restore it",
            archive.display(),
            info.schema
        );
    }
    Ok(info)
}

/// The entry's name; anything but a regular file is refused naming it.
fn entry_path<R: Read>(e: &tar::Entry<R>) -> Result<String> {
    let raw = e.path_bytes();
    let path = String::from_utf8_lossy(&raw).into_owned();
    let kind = e.header().entry_type();
    if !kind.is_file() {
        bail!("entry {path:?} is refused: it is a {kind:?}, and a backup holds regular files only");
    }
    Ok(path)
}
