//! PREVIOUS of `airlift build --update-from`: the release an update
//! builds on, and which of its blobs host0 is known to hold ([`Held`]).
//!
//! - An airlift ISO or OCI archive ([`Medium`]): a full medium's blob
//!   files are exactly what host0 holds of it. An update medium only
//!   carries part of its release, so its blob files count, and so do
//!   its images whose top digest the new release keeps (host0 had to
//!   hold them whole to load it).
//! - A `bundle.json`: images whose top digest (and platforms) the new
//!   release keeps count as held; everything else is carried. Its
//!   release is named by the digest of its `index.json`, so that file
//!   must be beside it (as in the ISO's `/airlift/bundle/`) or in
//!   `bundle/` beside it (as in the ISO's `/airlift/`).

use std::io::Read;
use std::path::{Path, PathBuf};

use airlift_appliance::release::{self, ReleaseId};
use airlift_appliance::BundleManifest;
use anyhow::{bail, Context, Result};

use super::medium::{sniff, Medium};
use super::plan::Held;

/// Largest `bundle.json` read (one image is a few hundred bytes).
const MAX_BUNDLE_JSON: u64 = 16 << 20;

/// The release an update builds on.
#[derive(Debug, Clone)]
pub struct Previous {
    pub release: ReleaseId,
    pub bundle: BundleManifest,
    pub held: Held,
    /// What it was read from, for messages.
    pub kind: &'static str,
}

/// Reads PREVIOUS at `path`; "not an airlift medium" when it is none.
pub fn read(path: &Path) -> Result<Previous> {
    if sniff(path)?.is_some() {
        return Ok(from_medium(Medium::open(path)?));
    }
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_BUNDLE_JSON + 1).read_to_end(&mut head))
        .with_context(|| format!("reading {}", path.display()))?;
    if head.len() as u64 > MAX_BUNDLE_JSON {
        bail!(
            "{} is not an airlift medium: it is neither an ISO, a tar archive nor a bundle.json",
            path.display()
        );
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        bail!(
            "{} is not an airlift medium: --update-from takes the previous release's ISO (or its \
             .tar update archive) or its bundle.json",
            path.display()
        );
    }
    let bundle: BundleManifest = airlift_oci::quiet_json::parse(
        &head,
        &format!("{} is not an airlift bundle.json", path.display()),
    )?;
    let index = index_beside(path)?;
    let index_json =
        std::fs::read(&index).with_context(|| format!("reading {}", index.display()))?;
    let held = Held {
        images: images_of(&bundle),
        ..Held::default()
    };
    Ok(Previous {
        release: ReleaseId {
            name: bundle.name.clone(),
            version: bundle.version.clone(),
            bundle: release::bundle_id(&index_json),
        },
        bundle,
        held,
        kind: "bundle.json",
    })
}

fn images_of(
    bundle: &BundleManifest,
) -> std::collections::BTreeSet<(airlift_oci::Digest, Vec<String>)> {
    bundle
        .images
        .iter()
        .map(|i| (i.digest.clone(), i.platforms.clone()))
        .collect()
}

fn from_medium(m: Medium) -> Previous {
    let release = m.release();
    let (held, kind) = match &m.update {
        None => (
            Held {
                blobs: m.blobs.keys().cloned().collect(),
                ..Held::default()
            },
            "full medium",
        ),
        Some(_) => (
            Held {
                blobs: m.blobs.keys().cloned().collect(),
                images: images_of(&m.bundle),
            },
            "update medium",
        ),
    };
    Previous {
        release,
        bundle: m.bundle,
        held,
        kind,
    }
}

/// The `index.json` of the bundle whose `bundle.json` is at `path`.
fn index_beside(path: &Path) -> Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let candidates = [
        dir.join("index.json"),
        dir.join("bundle").join("index.json"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "{}: a bundle.json alone does not name its release (host0 knows a release by the \
                 SHA-256 of its index.json); put the previous release's index.json \
                 (/airlift/bundle/index.json on its ISO) beside it, or pass the previous ISO",
                path.display()
            )
        })
}
