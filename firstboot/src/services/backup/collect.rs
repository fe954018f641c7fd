//! Reading host0's state folder for a backup. It only reads, so it may
//! run while host0 serves: every metadata file is written atomically, so
//! each one read is whole.
//!
//! Where things live: the registry (`DATA/registry`, its blobs and
//! metadata), the releases (`DATA/releases/`), TLS (`DATA/tls`,
//! [`crate::services::tls`]), the admin token (`DATA/admin-token`, whose
//! path the command passes in from `api::admin`, a floor above).
//! The node table is kept in host0's memory
//! ([`crate::services::netboot::Nodes`]), so the command asks the running
//! host0 for it and passes it in.

use std::collections::BTreeSet;
use std::path::Path;

use airlift_oci::{Descriptor, Digest, Layout};
use anyhow::{Context, Result};

use super::entry;
use super::plan::Inputs;
use super::reach::{blob_path, reach};
use crate::services::registry::store::meta::Meta;
use crate::services::registry::REGISTRY_DIR;
use crate::services::releases::{state, ReleasesState};

/// Read what a backup of `data` holds; `token` is the admin token's
/// file, `nodes` the node table's JSON when host0 answered.
pub fn collect(
    data: &Path,
    token: &Path,
    appliance: &str,
    now: &str,
    nodes: Option<Vec<u8>>,
) -> Result<Inputs> {
    let registry = data.join(REGISTRY_DIR);
    let mut inputs = Inputs {
        appliance: appliance.to_string(),
        created_at: now.to_string(),
        ..Inputs::default()
    };
    pushed(&registry, &mut inputs)?;
    releases(data, &mut inputs)?;
    let repos = registry.join("repositories");
    for rel in files_under(&repos)? {
        // A tag deleted since the listing is simply not backed up.
        if let Some(bytes) = read_opt(&repos.join(&rel))? {
            inputs.files.push((format!("{}{rel}", entry::META), bytes));
        }
    }
    let tls = data.join(crate::services::tls::TLS_DIR);
    for name in entry::TLS_FILES {
        if let Some(bytes) = read_opt(&tls.join(name))? {
            inputs.files.push((format!("{}{name}", entry::TLS), bytes));
        }
    }
    if let Some(bytes) = read_opt(token)? {
        inputs.files.push((entry::ADMIN_TOKEN.into(), bytes));
    }
    if let Some(nodes) = nodes {
        inputs.files.push((entry::NODES.into(), nodes));
    }
    Ok(inputs)
}

/// The registry's data metadata: pushed tags and manifests, and what
/// they reach.
fn pushed(registry: &Path, inputs: &mut Inputs) -> Result<()> {
    let repos_dir = registry.join("repositories");
    if !repos_dir.is_dir() {
        return Ok(());
    }
    let size = |d: &Digest| {
        std::fs::metadata(blob_path(registry, d))
            .ok()
            .map(|m| m.len())
    };
    let repos = Meta::new(&repos_dir)?.load(&size)?;
    let mut roots = Vec::new();
    for (name, repo) in &repos {
        let desc = |d: &Digest| {
            let info = &repo.manifests[d];
            Descriptor::new(&info.media_type, d.clone(), info.size)
        };
        for (tag, d) in &repo.tags {
            inputs.tags.push((name.clone(), tag.clone(), desc(d)));
        }
        let tagged: BTreeSet<&Digest> = repo.tags.values().collect();
        let mut members: Vec<&Digest> = repo.manifests.keys().collect();
        members.sort();
        for d in members {
            roots.push(desc(d));
            if !tagged.contains(d) {
                inputs.untagged.push((name.clone(), desc(d)));
            }
        }
    }
    let r = reach(registry, &roots)?;
    inputs.reached = r.present;
    inputs.missing = r.missing;
    Ok(())
}

/// The releases: state.json, every release dir's small files, and the
/// blobs each release dir's index reaches (left out of the archive).
fn releases(data: &Path, inputs: &mut Inputs) -> Result<()> {
    inputs.releases = ReleasesState::load(data)?
        .releases
        .into_iter()
        .map(|r| r.id)
        .collect();
    if let Some(bytes) = read_opt(&state::state_path(data))? {
        inputs.files.push((entry::STATE.into(), bytes));
    }
    let dir = data.join(state::DIR);
    let Ok(list) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut hexes: Vec<String> = list
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    hexes.sort();
    for hex in hexes {
        let rdir = dir.join(&hex);
        if !rdir.join("index.json").is_file() {
            continue;
        }
        let index = Layout::open(&rdir)?.read_index()?;
        let r = reach(&data.join(REGISTRY_DIR), &index.manifests)?;
        inputs.release_blobs.extend(r.present.into_keys());
        inputs.release_blobs.extend(r.missing);
        for name in entry::RELEASE_FILES {
            if let Some(bytes) = read_opt(&rdir.join(name))? {
                inputs
                    .files
                    .push((format!("{}{hex}/{name}", entry::RELEASES), bytes));
            }
        }
    }
    Ok(())
}

/// Every regular file under `dir` (relative, `/`-separated, sorted),
/// skipping hidden names (a writer's temp files).
fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        for e in rd {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let kind = e.file_type()?;
            let rel = format!("{prefix}{name}");
            if kind.is_dir() {
                walk(&e.path(), &format!("{rel}/"), out)?;
            } else if kind.is_file() {
                out.push(rel);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// How many pushed manifests the registry folder `registry` holds (its
/// data metadata): restore refuses to write over them without `--force`.
pub fn pushed_manifests(registry: &Path) -> Result<usize> {
    let repos_dir = registry.join("repositories");
    if !repos_dir.is_dir() {
        return Ok(0);
    }
    let size = |d: &Digest| {
        std::fs::metadata(blob_path(registry, d))
            .ok()
            .map(|m| m.len())
    };
    let repos = Meta::new(&repos_dir)?.load(&size)?;
    Ok(repos.values().map(|r| r.manifests.len()).sum())
}
