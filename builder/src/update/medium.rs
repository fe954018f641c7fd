//! Reading an airlift release medium without mounting it: a full ISO, an
//! update ISO, or an update OCI archive (`.tar`). What it holds:
//! `bundle.json`, the bundle's `index.json`, `update.json` when it is an
//! update, and the blob files it carries (digest and size, not read).
//!
//! ```text
//! ISO:      /airlift/bundle.json  /airlift/update.json  /airlift/bundle/{index.json,blobs/<alg>/<hex>}
//! archive:  bundle.json  update.json  index.json  blobs/<alg>/<hex>   (at the tar's root)
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use airlift_appliance::release::{self, ReleaseId, UpdateManifest, UPDATE_FILE, UPDATE_ISO_PATH};
use airlift_appliance::BundleManifest;
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};

use crate::iso::read::{Iso, Kind};
use crate::pipeline::BUNDLE_ISO_DIR;

/// Largest small file (`bundle.json`, `index.json`, `update.json`) read.
const MAX_SMALL: u64 = 16 << 20;

/// What kind of file a medium is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Iso,
    Archive,
}

/// An airlift medium's release files and its blob list.
#[derive(Debug, Clone)]
pub struct Medium {
    pub container: Container,
    pub bundle: BundleManifest,
    /// The bundle's `index.json`, as its bytes (they name the release).
    pub index_json: Vec<u8>,
    pub update: Option<UpdateManifest>,
    /// Every blob file on the medium, with its size.
    pub blobs: BTreeMap<Digest, u64>,
}

impl Medium {
    /// Reads the medium at `path` (an ISO or an OCI archive), failing
    /// with "not an airlift medium" for anything else.
    pub fn open(path: &Path) -> Result<Medium> {
        match sniff(path)? {
            Some(Container::Iso) => from_iso(path),
            Some(Container::Archive) => from_archive(path),
            None => bail!(
                "{} is not an airlift medium: neither an ISO 9660 image nor a tar archive",
                path.display()
            ),
        }
    }

    /// The release this medium brings.
    pub fn release(&self) -> ReleaseId {
        ReleaseId {
            name: self.bundle.name.clone(),
            version: self.bundle.version.clone(),
            bundle: release::bundle_id(&self.index_json),
        }
    }
}

/// Which container `path` is, by its magic numbers; `None` for neither.
pub fn sniff(path: &Path) -> Result<Option<Container>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut magic = [0u8; 5];
    if f.read_exact_at(&mut magic, 16 * 2048 + 1).is_ok() && &magic == b"CD001" {
        return Ok(Some(Container::Iso));
    }
    if f.read_exact_at(&mut magic, 257).is_ok() && &magic == b"ustar" {
        return Ok(Some(Container::Archive));
    }
    Ok(None)
}

/// The three release files of a medium, as found.
#[derive(Default)]
struct Files {
    bundle: Option<Vec<u8>>,
    index: Option<Vec<u8>>,
    update: Option<Vec<u8>>,
}

/// Parses the three release files (`what` names where they came from).
fn parse(
    container: Container,
    files: Files,
    blobs: BTreeMap<Digest, u64>,
    what: &str,
) -> Result<Medium> {
    let Files {
        bundle,
        index,
        update,
    } = files;
    let (Some(bundle), Some(index_json)) = (bundle, index) else {
        bail!(
            "{what} is not an airlift medium: it has no bundle.json and bundle index.json \
             (was it made by airlift build?)"
        );
    };
    let bundle: BundleManifest =
        airlift_oci::quiet_json::parse(&bundle, &format!("{what}: bundle.json"))?;
    let update = update
        .map(|u| {
            airlift_oci::quiet_json::parse::<UpdateManifest>(&u, &format!("{what}: update.json"))
        })
        .transpose()?;
    Ok(Medium {
        container,
        bundle,
        index_json,
        update,
        blobs,
    })
}

fn from_iso(path: &Path) -> Result<Medium> {
    let iso = Iso::open(path)?;
    let what = path.display().to_string();
    let files = Files {
        bundle: iso.read_file("airlift/bundle.json")?,
        index: iso.read_file(&format!("{BUNDLE_ISO_DIR}/index.json"))?,
        update: iso.read_file(UPDATE_ISO_PATH)?,
    };
    let mut blobs = BTreeMap::new();
    if let Some(dir) = iso.lookup(&format!("{BUNDLE_ISO_DIR}/blobs"))? {
        for alg in iso.read_dir(&dir)? {
            if alg.kind != Kind::Dir {
                continue;
            }
            for f in iso.read_dir(&alg)? {
                if let (Kind::File, Some(d)) = (&f.kind, blob_digest(&alg.name, &f.name)) {
                    blobs.insert(d, f.size);
                }
            }
        }
    }
    parse(Container::Iso, files, blobs, &what)
}

/// The digest a blob file `blobs/<alg>/<hex>` names, if it names one.
fn blob_digest(alg: &str, hex: &str) -> Option<Digest> {
    format!("{alg}:{hex}").parse().ok()
}

/// An archive entry and its path (without a leading `./`).
pub fn named<'a, R: Read>(
    entry: std::io::Result<tar::Entry<'a, R>>,
    what: &str,
) -> Result<(tar::Entry<'a, R>, String)> {
    let entry = entry.with_context(|| format!("reading the tar archive {what}"))?;
    let name = entry
        .path()?
        .to_string_lossy()
        .trim_start_matches("./")
        .to_string();
    Ok((entry, name))
}

fn from_archive(path: &Path) -> Result<Medium> {
    let what = path.display().to_string();
    let f = File::open(path).with_context(|| format!("opening {what}"))?;
    let mut archive = tar::Archive::new(f);
    let mut files = Files::default();
    let mut blobs = BTreeMap::new();
    for entry in archive
        .entries_with_seek()
        .with_context(|| format!("reading the tar archive {what}"))?
    {
        let (mut entry, name) = named(entry, &what)?;
        let size = entry.header().size()?;
        let slot = match name.as_str() {
            airlift_appliance::bundle_manifest::BUNDLE_MANIFEST_FILE => &mut files.bundle,
            "index.json" => &mut files.index,
            UPDATE_FILE => &mut files.update,
            other => {
                let parts: Vec<&str> = other.split('/').collect();
                if let ["blobs", alg, hex] = parts[..] {
                    if entry.header().entry_type().is_file() {
                        if let Some(d) = blob_digest(alg, hex) {
                            blobs.insert(d, size);
                        }
                    }
                }
                continue;
            }
        };
        if size > MAX_SMALL {
            bail!("{what}: {name} is {size} bytes, more than an airlift medium's ever is");
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        *slot = Some(bytes);
    }
    parse(Container::Archive, files, blobs, &what)
}
