//! The background copy of the bundle to the data disk, and the switch to
//! serving from the disk copy alone ([`crate::services::loader`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use airlift_oci::Layout;
use anyhow::Result;

use crate::api::server;
use crate::services::loader::{self, Reporting};
use crate::services::registry::{Registry, ServeOptions};
use crate::services::status::{LoadState, Status};
use crate::sys::console::milestone;

/// Is every blob of the bundle in the registry's data folder (by size)?
pub fn all_blobs_present(bundle: &Layout, reg_dir: &Path) -> Result<bool> {
    let data = Layout::create(reg_dir)?;
    Ok(loader::plan(bundle)?
        .iter()
        .all(|d| std::fs::metadata(data.blob_path(&d.digest)).is_ok_and(|m| m.len() == d.size)))
}

/// The background copy and the switch to the disk copy.
pub struct LoadJob {
    pub bundle: Layout,
    pub reg_dir: PathBuf,
    pub progress: PathBuf,
    pub status: Status,
    pub current: server::Current,
    pub registry: Arc<Registry>,
    pub serve_opts: ServeOptions,
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
        let images = loader::register(&self.registry.store, &self.bundle).await?;
        loader::mark_complete(&self.progress, &self.bundle, &p)?;
        if let Some(data) = self.reg_dir.parent() {
            crate::datadisk::stub::save(self.bundle.root(), data)?;
        }
        let mut opts = self.serve_opts.clone();
        opts.layers.clear();
        // The disk store goes on with this store's change feed.
        let changes = self.registry.store.changes().clone();
        let disk = tokio::task::spawn_blocking(move || Registry::open_with_changes(&opts, changes))
            .await??;
        self.current.replace(Arc::new(disk));
        self.status.set_serving_from_disk();
        self.status.set_state(LoadState::Ready, None);
        milestone(&format!(
            "AIRLIFT-HOST0-LOADED {images} images, {} blobs, {} MB verified in {}; \
             serving from the disk: the media can be ejected",
            p.blobs_done,
            p.bytes_done / 1_000_000,
            self.reg_dir.display()
        ));
        Ok(())
    }
}
