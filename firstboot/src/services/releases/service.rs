//! host0's releases as one handle the API and the boot steps share:
//! load an update in the background ([`Releases::start_load`]), roll
//! back ([`Releases::rollback`]), serve what `state.json` says
//! ([`Releases::serve_state`]), and show it all ([`Releases::view`]).
//! Every change holds [`Ops`] from start to end.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlift_appliance::datadisk::Storage;
use airlift_appliance::ApplianceFile;
use airlift_oci::Digest;
use anyhow::{Context, Result};
use serde::Serialize;

use super::dir;
use super::load::{self, Adopt, Host};
use super::medium::Medium;
use super::progress::{LoadProgress, Loading};
use super::state::{Release, ReleasesState, Source};
use super::Ops;
use crate::services::registry::Registry;
use crate::sys::console::milestone;

/// The registry serving now.
pub type RegistryOf = Arc<dyn Fn() -> Arc<Registry> + Send + Sync>;

/// Run after a successful update load, once [`Ops`] is free again, with
/// the release loaded: garbage collection with the configured keep
/// (`services/gc`, wired by the lead with [`Releases::set_after_load`]).
pub type AfterLoad = Arc<dyn Fn(Release) + Send + Sync>;

/// Why a change was not made.
#[derive(Debug)]
pub enum Refused {
    /// Another change runs (HTTP 409), with the [`Ops`] message.
    Busy(String),
    /// The request cannot be done (HTTP 400), with the reason.
    Bad(anyhow::Error),
}

/// `GET /airlift/v1/releases`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub current: Option<Digest>,
    pub keep: u32,
    pub releases: Vec<ReleaseView>,
    pub loading: Option<Loading>,
}

/// One release in [`View`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseView {
    #[serde(flatten)]
    pub release: Release,
    pub current: bool,
    /// Kept by garbage collection with the configured keep.
    pub kept: bool,
}

/// The shared handle.
#[derive(Clone)]
pub struct Releases(Arc<Inner>);

struct Inner {
    data: PathBuf,
    name: String,
    version: String,
    storage: Storage,
    registry: RegistryOf,
    ops: Ops,
    progress: LoadProgress,
    after_load: Mutex<Option<AfterLoad>>,
}

impl Releases {
    /// host0's releases in its state folder `data`.
    pub fn new(data: &Path, file: &ApplianceFile, registry: RegistryOf, ops: Ops) -> Releases {
        Releases(Arc::new(Inner {
            data: data.to_path_buf(),
            name: file.name.clone(),
            version: file.version.clone(),
            storage: file.storage.clone(),
            registry,
            ops,
            progress: LoadProgress::default(),
            after_load: Mutex::new(None),
        }))
    }

    /// The day-two lock.
    pub fn ops(&self) -> &Ops {
        &self.0.ops
    }

    /// Run `hook` after every successful update load.
    pub fn set_after_load(&self, hook: AfterLoad) {
        *self.0.after_load.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// What `GET /airlift/v1/releases` shows.
    pub fn view(&self) -> Result<View> {
        let state = ReleasesState::load(&self.0.data)?;
        let keep = self.0.storage.keep_releases();
        let kept: Vec<Digest> = state
            .kept(keep)
            .iter()
            .map(|r| r.id.bundle.clone())
            .collect();
        Ok(View {
            current: state.current.clone(),
            keep,
            releases: state
                .releases
                .iter()
                .map(|r| ReleaseView {
                    release: r.clone(),
                    current: state.current.as_ref() == Some(&r.id.bundle),
                    kept: kept.contains(&r.id.bundle),
                })
                .collect(),
            loading: self.0.progress.get(),
        })
    }

    /// Serve what `state.json` says: the current release with its tags,
    /// the other held releases by digest ([`dir::layer_specs`]).
    pub async fn serve_state(&self) -> Result<()> {
        let (data, registry) = (self.0.data.clone(), (self.0.registry)());
        tokio::task::spawn_blocking(move || {
            let state = ReleasesState::load(&data)?;
            registry.store.set_layers(&dir::layer_specs(&data, &state))
        })
        .await?
    }

    /// First boot's last step: record the boot media's bundle (all its
    /// blobs now in the registry) as a release, current if new to
    /// state.json, and serve the releases instead of the media.
    pub async fn adopt_media(&self, bundle_dir: &Path) -> Result<(Release, bool)> {
        let (data, name, version) = (
            self.0.data.clone(),
            self.0.name.clone(),
            self.0.version.clone(),
        );
        let bundle_dir = bundle_dir.to_path_buf();
        let recorded = tokio::task::spawn_blocking(move || {
            let medium = Medium::open(&bundle_dir, &name, &version)?;
            load::record(&data, &medium, Source::Media, Adopt::IfNew)
        })
        .await??;
        self.serve_state().await?;
        Ok(recorded)
    }

    /// Start loading the medium at `path` in the background; returns
    /// the load's id ([`Loading::id`]).
    pub fn start_load(&self, path: PathBuf) -> Result<u64, Refused> {
        let guard = self
            .0
            .ops
            .begin(&format!("loading {}", path.display()))
            .map_err(Refused::Busy)?;
        let id = self.0.progress.start(&path.display().to_string());
        let this = self.clone();
        tokio::spawn(async move {
            let done = this.load(path).await;
            drop(guard);
            match done {
                Ok(release) => {
                    let hook = this
                        .0
                        .after_load
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    if let Some(hook) = hook {
                        tokio::task::spawn_blocking(move || hook(release));
                    }
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    this.0.progress.fail(&msg);
                    milestone(&format!("AIRLIFT-UPDATE-FAILED {msg}"));
                }
            }
        });
        Ok(id)
    }

    async fn load(&self, path: PathBuf) -> Result<Release> {
        let this = self.clone();
        let (release, _) = tokio::task::spawn_blocking(move || {
            let i = &this.0;
            let host = Host {
                data: &i.data,
                name: &i.name,
                version: &i.version,
                storage: &i.storage,
            };
            load::load(&host, &path, &i.progress)
        })
        .await??;
        self.serve_state().await?;
        self.0.progress.clear();
        milestone(&format!(
            "AIRLIFT-UPDATE-LOADED {} {} {}",
            release.id.name,
            release.id.version,
            release.id.short()
        ));
        Ok(release)
    }

    /// Make `target` (default: the newest held release that is not
    /// current) current: its blobs are checked first, then one atomic
    /// save of state.json, then the tags move.
    pub async fn rollback(&self, target: Option<String>) -> Result<Release, Refused> {
        let _guard = self.0.ops.begin("a rollback").map_err(Refused::Busy)?;
        let data = self.0.data.clone();
        let release = tokio::task::spawn_blocking(move || -> Result<Release> {
            let mut state = ReleasesState::load(&data)?;
            let release = match target.as_deref() {
                Some(t) => state.find(t)?.clone(),
                None => state
                    .releases
                    .iter()
                    .rev()
                    .find(|r| Some(&r.id.bundle) != state.current.as_ref())
                    .cloned()
                    .with_context(|| {
                        format!(
                            "host0 holds no release but the current one ({})",
                            state.names().join(", ")
                        )
                    })?,
            };
            let dir = super::state::release_dir(&data, &release.id.bundle);
            dir::verify(&dir)
                .with_context(|| format!("release {} cannot be served again", release.id))?;
            state.set_current(&release.id.bundle)?;
            state.save(&data)?;
            Ok(release)
        })
        .await
        .map_err(|e| Refused::Bad(e.into()))?
        .map_err(Refused::Bad)?;
        self.serve_state().await.map_err(Refused::Bad)?;
        milestone(&format!(
            "AIRLIFT-ROLLBACK {} {}",
            release.id.name, release.id.version
        ));
        Ok(release)
    }
}
