//! The background copy of the bundle to the data disk, then the bundle
//! recorded as a release and served from the disk alone
//! ([`crate::services::loader`], [`crate::services::releases`]).

use std::path::PathBuf;

use airlift_oci::Layout;
use anyhow::Result;

use crate::services::loader::{self, Reporting};
use crate::services::releases::{OpGuard, Releases};
use crate::services::status::{LoadState, Status};
use crate::sys::console::milestone;

/// The background copy and the switch to the disk copy.
pub struct LoadJob {
    pub bundle: Layout,
    pub reg_dir: PathBuf,
    pub progress: PathBuf,
    pub status: Status,
    pub releases: Releases,
    /// The day-two lock, held until the job ends.
    pub _guard: OpGuard,
}

impl LoadJob {
    /// Copy, then switch; a failure is logged and shown in the status.
    pub async fn run(self) {
        let status = self.status.clone();
        if let Err(e) = self.load().await {
            let msg = format!("{e:#}");
            tracing::error!("loading the bundle failed, still serving from the media: {msg}");
            println!("AIRLIFT-HOST0-LOAD-FAILED {msg}");
            status.set_state(LoadState::Failed, Some(msg));
        }
    }

    async fn load(self) -> Result<()> {
        let bundle = self.bundle.clone();
        let data = Layout::create(&self.reg_dir)?;
        let (status, progress) = (self.status.clone(), self.progress.clone());
        let p = tokio::task::spawn_blocking(move || -> Result<_> {
            let blobs = loader::plan(&bundle)?;
            loader::copy_blobs(
                &bundle,
                &data,
                &blobs,
                &status,
                &progress,
                Reporting::default(),
            )
        })
        .await??;
        // The release dir and state.json, then the store serves the
        // releases (same store, same change feed) instead of the media.
        let (release, current) = self.releases.adopt_media(self.bundle.root()).await?;
        loader::mark_complete(&self.progress, &self.bundle, &p)?;
        self.status.set_serving_from_disk();
        self.status.set_state(LoadState::Ready, None);
        if !current {
            tracing::info!(
                "release {} is held already; the current release stays",
                release.id
            );
        }
        milestone(&format!(
            "AIRLIFT-HOST0-LOADED {} images, {} blobs, {} MB verified in {}; \
             serving from the disk: the media can be ejected",
            release.images,
            p.blobs_done,
            p.bytes_done / 1_000_000,
            self.reg_dir.display()
        ));
        Ok(())
    }
}
