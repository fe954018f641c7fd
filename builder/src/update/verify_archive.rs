//! `airlift verify` of an OCI archive (`.tar`, as `build --update-from`
//! writes): every blob hashes to its name, every descriptor reachable
//! from `index.json` is there with its size (an update's missing ones are
//! counted as in its base release), and `update.json` matches what the
//! archive carries, as for an ISO ([`crate::iso::verify`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use airlift_appliance::release::{UpdateManifest, UPDATE_FILE};
use airlift_oci::digest::Hasher;
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};

use crate::iso::verify::{check_descriptors, check_update, BlobStore, Report};

/// The archive's blobs: where each one's bytes start, and its size.
struct Blobs<'a> {
    file: &'a File,
    at: BTreeMap<String, (u64, u64)>,
}

impl BlobStore for Blobs<'_> {
    fn blob_size(&self, alg: &str, hex: &str) -> Result<Option<u64>> {
        Ok(self.at.get(&format!("{alg}:{hex}")).map(|b| b.1))
    }

    fn read_blob(&self, alg: &str, hex: &str) -> Result<Vec<u8>> {
        let Some(&(offset, size)) = self.at.get(&format!("{alg}:{hex}")) else {
            return Ok(Vec::new());
        };
        let mut body = vec![0; usize::try_from(size)?];
        self.file.read_exact_at(&mut body, offset)?;
        Ok(body)
    }
}

/// Verifies the OCI archive at `path`.
pub fn verify(path: &Path) -> Result<Report> {
    let what = path.display().to_string();
    let file = File::open(path).with_context(|| format!("opening {what}"))?;
    let mut report = Report::default();
    let mut blobs = Blobs {
        file: &file,
        at: BTreeMap::new(),
    };
    let (mut index, mut update) = (None, None);
    let mut archive = tar::Archive::new(&file);
    for entry in archive.entries_with_seek()? {
        let (mut entry, name) = super::medium::named(entry, &what)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry.header().size()?;
        match name.strip_prefix("blobs/").map(|r| r.replacen('/', ":", 1)) {
            Some(digest) => {
                let offset = entry.raw_file_position();
                if check_blob(&mut entry, &digest, &mut report)? {
                    blobs.at.insert(digest, (offset, size));
                }
            }
            None if name == "index.json" || name == UPDATE_FILE => {
                if size > 16 << 20 {
                    bail!("{what}: {name} is {size} bytes, more than an airlift medium's ever is");
                }
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes)?;
                *(if name == UPDATE_FILE {
                    &mut update
                } else {
                    &mut index
                }) = Some(bytes);
            }
            None => {}
        }
    }
    let update: Option<UpdateManifest> = update
        .map(|u| airlift_oci::quiet_json::parse(&u, &format!("{what}: update.json")))
        .transpose()?;
    check_descriptors(&blobs, index.as_deref(), update.is_some(), &mut report)?;
    if let Some(u) = &update {
        let held = (blobs.at.len() as u64, blobs.at.values().map(|b| b.1).sum());
        check_update(u, index.as_deref(), held, &mut report);
    }
    Ok(report)
}

/// Hashes one blob entry; `false` (and a failure) when its name is no
/// digest, or its bytes do not hash to it.
fn check_blob(entry: &mut impl Read, name: &str, report: &mut Report) -> Result<bool> {
    let Ok(digest) = name.parse::<Digest>() else {
        report.failures.push(format!(
            "blobs/{}: unexpected file in the blob store",
            name.replacen(':', "/", 1)
        ));
        return Ok(false);
    };
    let mut h = Hasher::new(digest.algorithm());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    report.blobs_checked += 1;
    let got = h.finish();
    if got != digest {
        report
            .failures
            .push(format!("blob {digest}: content hashes to {got}"));
    }
    Ok(true)
}
