//! host0's step that opens the registry: its data folder on the data
//! disk, with the releases held as read-only layers (the current one
//! with its tags), or the media's bundle as the tagged layer until its
//! load has completed ([`crate::services::registry`],
//! [`crate::services::releases`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::{Host0, Media};
use crate::datadisk::Mode;
use crate::services::disk_use::DiskWatch;
use crate::services::loader::{self, CopyDecision};
use crate::services::registry::store::LayerSpec;
use crate::services::registry::{Registry, ServeOptions};
use crate::services::releases::{dir, state, ReleasesState};
use crate::services::status::LoadState;
use crate::services::tls::TlsMaterial;

/// The registry as opened, and what it serves from.
pub struct Opened {
    pub registry: Arc<Registry>,
    pub serve_opts: ServeOptions,
    /// The registry's data folder.
    pub reg_dir: PathBuf,
    /// The loader's progress file.
    pub progress: PathBuf,
    /// Whether the bundle is served from the media alone, loaded, or loading.
    pub initial: LoadState,
}

impl Opened {
    /// What the status reports of the data folder's disk: the registry's
    /// reserve, and the usage past which it warns.
    pub fn disk_watch(&self, warn_percent: u8) -> DiskWatch {
        DiskWatch {
            path: self.reg_dir.clone(),
            reserve: self.registry.space.reserve(),
            warn_percent,
        }
    }
}

impl Host0 {
    /// Open the registry: its data folder, with the releases as layers
    /// when the media's bundle is a held release, else with the media as
    /// the tagged layer (held releases still pull by digest).
    pub(super) async fn open_registry(
        &self,
        media: &Media,
        listen: SocketAddr,
        tls: Option<&TlsMaterial>,
    ) -> Result<Opened> {
        let reg_dir = crate::services::registry::registry_dir(&self.opts.data);
        let progress = loader::progress_path(&self.opts.data);
        std::fs::create_dir_all(&reg_dir)
            .with_context(|| format!("creating {}", reg_dir.display()))?;
        let decision = loader::should_copy(
            &reg_dir,
            self.storage.mode == Mode::Disk,
            self.opts.force_load,
        )?;
        let (loaded, layers) = self.layers(media, decision)?;
        let mut serve_opts = serve_options(
            listen,
            &reg_dir,
            vec![],
            tls,
            self.file.registry.allow_delete,
        )?;
        serve_opts.reserve_mib = self.file.storage.reserve_mib; // None: the same default reserve
        serve_opts.verifier =
            crate::services::registry::gate::verifier_for(self.file.trust.as_ref())?;
        // Replicas copy everything, presenting the join token.
        serve_opts.gate_bypass_token = Some(self.file.join_token.clone());

        if self.file.registry.push {
            let dir = self.opts.config.parent().unwrap_or(Path::new("/"));
            serve_opts.push_token_file = Some(dir.join("push-token")).filter(|p| p.is_file());
            serve_opts.htpasswd = Some(dir.join("htpasswd")).filter(|p| p.is_file());
        }
        let registry = {
            let (o, reason) = (serve_opts.clone(), self.storage.push_disabled_reason());
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    let mut r = Registry::open(&o)?;
                    r.auth.push_disabled_reason = reason;
                    r.store.set_layers(&layers)?;
                    anyhow::Ok(r)
                })
                .await??,
            )
        };
        // A refused upload says what `gc` would free: worked out then, on
        // this (multi-threaded) runtime's worker, which may block for the
        // walk of the blob folder; refusals are rare.
        let (data, keep) = (self.opts.data.clone(), self.file.storage.keep_releases());
        registry.space.set_reclaimable(Some(Arc::new(move || {
            tokio::task::block_in_place(|| crate::services::gc::reclaimable(&data, keep))
                .map_err(|e| tracing::warn!("working out what gc would free: {e:#}"))
                .ok()
        })));
        let initial = match (decision, loaded) {
            (CopyDecision::MediaOnly, _) => LoadState::MediaOnly,
            (CopyDecision::Copy, true) => LoadState::Ready,
            (CopyDecision::Copy, false) => LoadState::Loading,
        };
        Ok(Opened {
            registry,
            serve_opts,
            reg_dir,
            progress,
            initial,
        })
    }
}

impl Host0 {
    /// Is the media's bundle a held release (loaded before), and the
    /// layers to serve.
    fn layers(&self, media: &Media, decision: CopyDecision) -> Result<(bool, Vec<LayerSpec>)> {
        let media_layer = LayerSpec::tagged(&media.dir);
        if decision == CopyDecision::MediaOnly {
            return Ok((false, vec![media_layer]));
        }
        let data = &self.opts.data;
        let held = ReleasesState::load(data)?;
        let index = media.dir.join("index.json");
        let id = airlift_appliance::release::bundle_id(
            &std::fs::read(&index).with_context(|| format!("reading {}", index.display()))?,
        );
        let specs = dir::layer_specs(data, &held);
        let loaded =
            held.get(&id).is_some() && specs.iter().any(|s| s.dir == state::release_dir(data, &id));
        if loaded {
            return Ok((true, specs));
        }
        let others = specs.into_iter().map(|s| LayerSpec { tags: false, ..s });
        Ok((false, std::iter::once(media_layer).chain(others).collect()))
    }
}

/// The registry's options: built through its config-file form, so every
/// setting not named here keeps the registry's own default.
fn serve_options(
    listen: SocketAddr,
    data: &Path,
    layers: Vec<PathBuf>,
    tls: Option<&TlsMaterial>,
    allow_delete: bool,
) -> Result<ServeOptions> {
    let mut v = serde_json::json!({
        "listen": listen.to_string(),
        "data": data,
        "layers": layers,
        "allow-delete": allow_delete,
    });
    if let Some(t) = tls {
        v["tls-cert"] = serde_json::json!(t.cert_path());
        v["tls-key"] = serde_json::json!(t.key_path());
    }
    serde_json::from_value(v).context("building the registry's options")
}
