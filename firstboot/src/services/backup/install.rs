//! Putting a verified backup in place, each file atomically with its
//! mode: the TLS files and admin token, the release dirs whose blobs are
//! all present, the registry's metadata (in name order, so a manifest's
//! marker lands before its tags and referrers), and state.json last. A
//! release whose blobs are absent is reported (it needs its medium) and
//! left out of state.json. A kill -9 half-way leaves whole files; rerun
//! `restore --force` to finish.

use std::path::Path;

use airlift_appliance::ReleaseId;
use airlift_oci::{atomic, Digest, Index};
use anyhow::{Context, Result};

use super::entry::Kind;
use super::reach::reach;
use super::read::Restored;
use crate::services::registry::REGISTRY_DIR;
use crate::services::releases::{state, ReleasesState};

/// What was put in place.
#[derive(Debug, Default)]
pub struct Installed {
    /// TLS files and the admin token.
    pub private: usize,
    /// Registry metadata files.
    pub meta: usize,
    pub releases: Vec<ReleaseId>,
    /// Releases left out: their blobs are not on this host0, so they
    /// need their medium (`airlift-firstboot update …`); with the count
    /// of missing blobs.
    pub need_media: Vec<(ReleaseId, usize)>,
    /// Machines in the backed-up node table, if it was recorded.
    pub nodes: Option<usize>,
}

/// Install `r` into host0's state folder `data`; `token` is where the
/// admin token goes (`DATA/admin-token`).
pub fn install(data: &Path, token: &Path, r: &Restored) -> Result<Installed> {
    let mut done = Installed::default();
    let repos = data.join(REGISTRY_DIR).join("repositories");
    for (kind, bytes) in &r.files {
        let dest = match kind {
            Kind::Tls(name) => data.join(crate::services::tls::TLS_DIR).join(name),
            Kind::AdminToken => token.to_path_buf(),
            Kind::Nodes => {
                done.nodes = serde_json::from_slice::<serde_json::Value>(bytes)
                    .ok()
                    .and_then(|v| v.as_array().map(Vec::len));
                continue;
            }
            _ => continue,
        };
        atomic::write_with_mode(&dest, bytes, kind.mode())?;
        done.private += 1;
    }
    let state = releases(data, r, &mut done)?;
    for (kind, bytes) in &r.files {
        if let Kind::Meta(rel) = kind {
            atomic::write_with_mode(&repos.join(rel), bytes, kind.mode())?;
            done.meta += 1;
        }
    }
    if let Some(s) = state {
        s.save(data)?;
    }
    Ok(done)
}

/// Write the release dirs whose blobs are present; the state to save
/// (host0's own, with the backup's held releases added and its current
/// release made current when held), or None without a state in the
/// backup.
fn releases(data: &Path, r: &Restored, done: &mut Installed) -> Result<Option<ReleasesState>> {
    let Some((_, bytes)) = r.files.iter().find(|(k, _)| *k == Kind::State) else {
        return Ok(None);
    };
    let backup: ReleasesState =
        airlift_oci::quiet_json::parse(bytes, "the backup's releases state.json")?;
    let mut local = ReleasesState::load(data)?;
    let registry = data.join(REGISTRY_DIR);
    for rel in &backup.releases {
        let hex = rel.id.bundle.hex().to_string();
        let files: Vec<(&str, &Vec<u8>, u32)> = r
            .files
            .iter()
            .filter_map(|(k, b)| match k {
                Kind::ReleaseFile(h, name) if *h == hex => Some((name.as_str(), b, k.mode())),
                _ => None,
            })
            .collect();
        let missing = match files.iter().find(|f| f.0 == "index.json") {
            Some((_, index, _)) => {
                let index: Index = airlift_oci::quiet_json::parse(
                    index,
                    &format!("release {}'s index.json in the backup", rel.id),
                )?;
                reach(&registry, &index.manifests)?.missing.len()
            }
            None => usize::MAX,
        };
        if missing > 0 {
            done.need_media.push((rel.id.clone(), missing));
            continue;
        }
        write_release_dir(data, &rel.id.bundle, &files)?;
        local.add(rel.clone());
        done.releases.push(rel.id.clone());
    }
    if let Some(c) = backup.current.as_ref().filter(|c| local.get(c).is_some()) {
        local.set_current(c)?;
    }
    Ok(Some(local))
}

/// `DATA/releases/<hex>/`: its files and `blobs -> ../../registry/blobs`.
fn write_release_dir(data: &Path, bundle: &Digest, files: &[(&str, &Vec<u8>, u32)]) -> Result<()> {
    let dir = state::release_dir(data, bundle);
    for (name, bytes, mode) in files {
        atomic::write_with_mode(&dir.join(name), bytes, *mode)?;
    }
    let link = dir.join("blobs");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink(Path::new("../../registry/blobs"), &link)
            .with_context(|| format!("linking {}", link.display()))?;
        atomic::sync_dir(&dir)?;
    }
    Ok(())
}
