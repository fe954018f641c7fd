//! Loading a release medium onto host0, up to the one atomic step:
//! open the medium, check it (appliance, base release, free space),
//! copy and verify every blob the registry lacks (resumable: a blob is
//! in the registry only after a verified rename, so a rerun skips it),
//! check every blob the new index reaches is present, write the release
//! dir, and then record the release in `state.json` with one rename.
//! Serving the new tags ([`crate::services::registry::store::Store::set_layers`])
//! is the caller's next step. Blocking I/O: run off the async runtime.

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use airlift_appliance::datadisk::Storage;
use airlift_oci::Layout;
use anyhow::Result;

use super::checks;
use super::dir;
use super::medium::{Blobs, Medium};
use super::progress::LoadProgress;
use super::state::{Release, ReleasesState, Source};
use crate::services::loader;
use crate::sys::disk_space;

/// What a load needs to know about host0.
pub struct Host<'a> {
    /// host0's state folder.
    pub data: &'a Path,
    /// The appliance's name and version (a medium of another name is refused).
    pub name: &'a str,
    pub version: &'a str,
    pub storage: &'a Storage,
}

/// How a loaded release enters `state.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adopt {
    /// It becomes current (an update, a rollback target).
    Current,
    /// It becomes current only if new to state.json (the boot media: a
    /// reboot with an older release's media is no rollback).
    IfNew,
}

/// Load the medium at `path` and record it; returns the release and
/// whether it is now current. Nothing is recorded on any error.
pub fn load(host: &Host, path: &Path, progress: &LoadProgress) -> Result<(Release, bool)> {
    let medium = Medium::open(path, host.name, host.version)?;
    progress.update(|l| l.release = Some(medium.id.clone()));
    let state = ReleasesState::load(host.data)?;
    checks::check(host.name, &medium.id, medium.update.as_ref(), &state)?;
    let reg_dir = crate::services::registry::registry_dir(host.data);
    let reg = Layout::create(&reg_dir)?;
    let missing = checks::missing(&medium.carried, |d, size| {
        std::fs::metadata(reg.blob_path(d)).is_ok_and(|m| m.is_file() && m.len() == size)
    });
    let needed: u64 = missing.iter().map(|(_, s)| s).sum();
    let space = disk_space::space(&reg_dir)?;
    let what = format!("loading release {}", medium.id);
    let reserve = host.storage.reserve_bytes(space.total);
    disk_space::check(&what, needed, space, reserve, None).map_err(|mut refusal| {
        // Say what garbage collection would free (a walk of the blob
        // folder: only worked out when refusing).
        let keep = host.storage.keep_releases();
        refusal.reclaimable = crate::services::gc::reclaimable(host.data, keep).ok();
        refusal
    })?;
    progress.update(|l| {
        l.blobs_total = missing.len() as u64;
        l.bytes_total = needed;
    });
    tracing::info!(
        "{what}: {} of its {} blobs to copy ({})",
        missing.len(),
        medium.carried.len(),
        disk_space::mb(needed)
    );
    let done = |size: u64| {
        progress.update(|l| {
            l.blobs_done += 1;
            l.bytes_done += size;
        })
    };
    match &medium.blobs {
        Blobs::Folder(layout) => {
            for (d, size) in &missing {
                loader::copy_one(layout, &reg, d, *size)?;
                done(*size);
            }
        }
        Blobs::Archive(tar) => {
            let wanted: HashSet<_> = missing.iter().map(|(d, _)| d.clone()).collect();
            super::archive::copy(tar, &wanted, &reg, |_, size| done(size))?;
        }
    }
    let source = if medium.update.is_some() {
        Source::Update
    } else {
        Source::Media
    };
    record(host.data, &medium, source, Adopt::Current)
}

/// Write the release dir of an opened medium whose blobs are all in the
/// registry, verify it, and record it in `state.json` (atomic).
pub fn record(
    data: &Path,
    medium: &Medium,
    source: Source,
    adopt: Adopt,
) -> Result<(Release, bool)> {
    let dir = dir::write(data, &medium.id.bundle, &medium.files)?;
    let (images, blobs, bytes) = dir::verify(&dir)?;
    let release = Release {
        id: medium.id.clone(),
        images,
        blobs,
        bytes,
        loaded_at: airlift_oci::civil_time::rfc3339_of(SystemTime::now()),
        source,
        base: medium.update.as_ref().map(|u| u.base.clone()),
    };
    let mut state = ReleasesState::load(data)?;
    let new = state.get(&release.id.bundle).is_none();
    let make_current = match adopt {
        Adopt::Current => true,
        Adopt::IfNew => new || state.current().is_none(),
    };
    if new || adopt == Adopt::Current {
        state.add(release.clone());
    }
    if make_current {
        state.set_current(&release.id.bundle)?;
    }
    state.save(data)?;
    let is_current = state.current.as_ref() == Some(&release.id.bundle);
    Ok((release, is_current))
}
