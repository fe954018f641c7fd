//! Garbage collection: blob files no kept release and no pushed image
//! reaches are deleted, and dropped releases forgotten. The decision is
//! pure ([`plan`]) over facts read from disk or the running store
//! ([`gather`], [`scan`], [`reach`]); carrying it out is crash-safe
//! ([`run`]). Host0 collects after an update and on demand
//! (`airlift-firstboot gc`, `POST /airlift/v1/gc`); a stopped host0 with
//! `gc --offline`; a replica after removing manifests.
//!
//! Roots: the kept releases (`state.kept(keep)`), every manifest of the
//! registry's data metadata and what it reaches, the layers' manifests,
//! blobs pushed or mounted within the grace period, and blob files younger than the
//! grace period (uploads finishing, loads in progress).

pub mod gather;
pub mod plan;
pub mod reach;
pub mod run;
pub mod scan;

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use self::plan::Doomed;
pub use self::run::OnReleases;
use crate::services::registry::store::Store;

/// Blob files younger than this are never collected.
pub const GRACE: Duration = Duration::from_secs(600);

/// What to collect.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// Releases kept (at least 1: the current one).
    pub keep: u32,
    /// Only say what would go.
    pub dry_run: bool,
    pub grace: Duration,
}

/// What a collection did (or would do): `POST /airlift/v1/gc`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub dry_run: bool,
    pub keep: u32,
    /// `name version (short)` of each release dropped.
    pub releases_dropped: Vec<String>,
    pub blobs: Vec<Doomed>,
    pub blob_count: usize,
    pub bytes: u64,
}

impl Report {
    fn new(req: &Request, dropped: &plan::Plan, blobs: Vec<Doomed>) -> Report {
        Report {
            dry_run: req.dry_run,
            keep: req.keep,
            releases_dropped: dropped.dropped.iter().map(|r| r.to_string()).collect(),
            blob_count: blobs.len(),
            bytes: blobs.iter().map(|b| b.size).sum(),
            blobs,
        }
    }

    /// The console milestone of a collection that ran.
    pub fn milestone(&self) -> String {
        format!("AIRLIFT-GC freed {} blobs {}", self.blob_count, self.bytes)
    }
}

/// Collect with host0 stopped, on the files of its state folder `data`.
pub async fn collect_offline(data: &Path, req: &Request) -> Result<Report> {
    let g = gather::offline(data, req.keep, req.grace)?;
    let plan = plan::plan(&g.inputs);
    if req.dry_run {
        return Ok(Report::new(req, &plan, plan.blobs.clone()));
    }
    let registry = scan::registry_dir(data);
    let removed = run::execute(Some(data), &registry, None, g, &plan, None).await?;
    Ok(Report::new(req, &plan, removed))
}

/// Collect on a running store: host0's (`data` = its state folder, with
/// `on_releases` making the store serve the kept releases only) or a
/// replica's (`data` None: no releases).
pub async fn collect_live(
    store: &Store,
    data: Option<&Path>,
    req: &Request,
    on_releases: Option<&OnReleases>,
) -> Result<Report> {
    let g = gather::live(store, data, req.keep, req.grace).await?;
    let plan = plan::plan(&g.inputs);
    if req.dry_run {
        return Ok(Report::new(req, &plan, plan.blobs.clone()));
    }
    let registry = store
        .data_folder()
        .ok_or_else(|| anyhow!("blobs are kept in a bucket; gc collects a data folder only"))?
        .to_path_buf();
    let removed = run::execute(data, &registry, Some(store), g, &plan, on_releases).await?;
    Ok(Report::new(req, &plan, removed))
}

/// About how many bytes `gc --keep keep` would free now, from the files
/// of host0's state folder `data` (blocking: a walk of the blob folder
/// and every manifest; for the disk guardrail's refusal message).
pub fn reclaimable(data: &Path, keep: u32) -> Result<u64> {
    let g = gather::offline(data, keep, GRACE)?;
    Ok(plan::plan(&g.inputs).bytes)
}
