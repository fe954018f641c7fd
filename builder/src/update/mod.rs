//! Update media (`airlift build CONFIG --update-from PREVIOUS -o OUT`):
//! the new release's whole `index.json` and `bundle.json`, only the blobs
//! PREVIOUS lacks, and `update.json` ([`UpdateManifest`]) saying which
//! release it builds on and what it adds, changes and removes.
//!
//! Steps:
//! 1. load the config for an update (it does not boot, so `base:` and the
//!    overlays are not checked: their files need not exist) and read
//!    PREVIOUS ([`previous`]);
//!    refuse another appliance's before any work;
//! 2. collect the bundle exactly as `airlift build` does (same sources,
//!    blobs of local layouts linked and checked as they are written out,
//!    the same verification record);
//! 3. decide what to carry ([`plan`]);
//! 4. write OUT atomically: `.tar` → one OCI archive ([`archive`]), else a
//!    data-only ISO 9660 with the config's volume label ([`media_iso`]).
//!
//! [`medium`] reads media back (inspect, PREVIOUS); [`describe`] says
//! what one is; [`verify_archive`] checks an archive's blobs.

pub mod archive;
pub mod describe;
pub mod media_iso;
pub mod medium;
pub mod plan;
pub mod previous;
pub mod verify_archive;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use airlift_appliance::release::{self, ReleaseId, UpdateManifest};
use airlift_oci::documents::REF_NAME;
use airlift_oci::{Digest, Layout};
use anyhow::{bail, Context, Result};

use crate::bundler::{self, BundleReport};
use crate::config::{self, Appliance};
use crate::iso::Checks;
use crate::pipeline::{self, checks::remember};
use crate::verified;
use medium::Container;
use plan::{NewImage, Plan};
use previous::Previous;

/// Options for [`build`].
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    pub config: PathBuf,
    /// The previous release: its ISO, OCI archive or `bundle.json`.
    pub previous: PathBuf,
    /// `.tar` → an OCI archive, else an ISO.
    pub output: PathBuf,
    pub concurrency: usize,
    pub progress: bool,
    /// The verification record's folder (as [`pipeline::BuildOptions::cache`]).
    pub cache: Option<PathBuf>,
}

/// What [`build`] wrote.
#[derive(Debug, Clone)]
pub struct UpdateReport {
    pub manifest: UpdateManifest,
    pub container: Container,
    pub output_bytes: u64,
    /// What PREVIOUS was (`full medium`, `update medium`, `bundle.json`).
    pub previous_kind: &'static str,
    pub checks: Checks,
    pub seconds_bundle: f64,
    pub seconds_write: f64,
}

/// Whether `output` names an OCI archive.
pub fn is_archive(output: &Path) -> bool {
    output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
}

/// Builds the update medium `opts` describes.
pub fn build(opts: &UpdateOptions) -> Result<UpdateReport> {
    let app = config::load_and_validate(&opts.config, config::Purpose::Update)?;
    let previous = previous::read(&opts.previous)?;
    same_appliance(&app, &previous, opts)?;
    let epoch = pipeline::build_epoch(&opts.config)?;
    let out_dir = pipeline::parent_dir(&opts.output);
    let work = tempfile::Builder::new()
        .prefix(".airlift-update-")
        .tempdir_in(out_dir)
        .with_context(|| format!("making a work folder in {}", out_dir.display()))?;

    let t = Instant::now();
    let bundle_dir = work.path().join("bundle");
    let bundle = pipeline::write_bundle(&app, &bundle_dir, opts.concurrency, opts.progress)?;
    let images = new_images(&bundle_dir, &bundle)?;
    let plan = Plan::new(&images, &previous.held);
    let index_json = std::fs::read(bundle_dir.join("index.json")).context("reading index.json")?;
    let release = ReleaseId {
        name: app.metadata.name.clone(),
        version: app.metadata.version.clone(),
        bundle: release::bundle_id(&index_json),
    };
    if release == previous.release {
        tracing::warn!("{release} is the release PREVIOUS already is: the medium carries nothing");
    }
    let manifest = plan::manifest(
        release,
        previous.release.clone(),
        &bundle.manifest,
        &previous.bundle,
        &plan,
    );
    let seconds_bundle = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut record = opts.cache.as_deref().map(verified::Record::load);
    let started = SystemTime::now();
    let mut update_json = serde_json::to_vec_pretty(&manifest).context("encoding update.json")?;
    update_json.push(b'\n');
    let written = Written {
        bundle_dir: &bundle_dir,
        unverified: &bundle.unverified,
        carried: &plan.carried,
        record: record.as_ref(),
        update_json,
        epoch,
    };
    let (container, checks) = if is_archive(&opts.output) {
        (Container::Archive, written.archive(&opts.output)?)
    } else {
        let image = media_iso::image(&app.output.volume_label, &written)?;
        let report = crate::iso::write(&image, &opts.output)
            .with_context(|| format!("writing the ISO {}", opts.output.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opts.output, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("making {} readable", opts.output.display()))?;
        (Container::Iso, report.checks)
    };
    remember(opts.cache.as_deref().zip(record.as_mut()), &checks, started);
    let output_bytes = std::fs::metadata(&opts.output)
        .with_context(|| format!("reading {}", opts.output.display()))?
        .len();
    Ok(UpdateReport {
        manifest,
        container,
        output_bytes,
        previous_kind: previous.kind,
        checks,
        seconds_bundle,
        seconds_write: t.elapsed().as_secs_f64(),
    })
}

/// Refuses PREVIOUS of another appliance (its name is not the config's).
fn same_appliance(app: &Appliance, previous: &Previous, opts: &UpdateOptions) -> Result<()> {
    if previous.release.name != app.metadata.name {
        bail!(
            "another appliance's medium: {} is for {:?}, but {} is for {:?} (metadata.name); \
             pass the previous release of {:?}",
            opts.previous.display(),
            previous.release.name,
            opts.config.display(),
            app.metadata.name,
            app.metadata.name
        );
    }
    Ok(())
}

/// Every image of the bundle at `dir` with the blobs it reaches.
fn new_images(dir: &Path, bundle: &BundleReport) -> Result<Vec<NewImage>> {
    let layout = Layout::open(dir)?;
    let platforms: BTreeMap<&str, &Vec<String>> = bundle
        .manifest
        .images
        .iter()
        .map(|i| (i.reference.as_str(), &i.platforms))
        .collect();
    let mut out = Vec::new();
    for desc in layout.read_index()?.manifests {
        let reference = desc.annotations.get(REF_NAME).cloned().unwrap_or_default();
        out.push(NewImage {
            digest: desc.digest.clone(),
            platforms: platforms
                .get(reference.as_str())
                .map(|p| p.to_vec())
                .unwrap_or_default(),
            blobs: bundler::image_blobs(&layout, &desc)
                .with_context(|| format!("image {reference}"))?,
        });
    }
    Ok(out)
}

/// What goes onto the medium, whichever container holds it.
pub struct Written<'a> {
    pub bundle_dir: &'a Path,
    pub unverified: &'a BTreeMap<Digest, bundler::Unverified>,
    pub carried: &'a BTreeMap<Digest, u64>,
    pub record: Option<&'a verified::Record>,
    pub update_json: Vec<u8>,
    pub epoch: i64,
}

impl Written<'_> {
    /// Writes the OCI archive at `out`.
    fn archive(&self, out: &Path) -> Result<Checks> {
        use archive::Content;
        let read = |name: &str| -> Result<Content> {
            let p = self.bundle_dir.join(name);
            Ok(Content::Bytes(
                std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
            ))
        };
        let mut entries = vec![
            ("oci-layout".to_string(), read("oci-layout")?),
            ("index.json".to_string(), read("index.json")?),
            ("bundle.json".to_string(), read("bundle.json")?),
            (
                release::UPDATE_FILE.to_string(),
                Content::Bytes(self.update_json.clone()),
            ),
        ];
        for d in self.carried.keys() {
            let content = match self.unverified.get(d) {
                Some(u) => Content::Check {
                    file: u.file.clone(),
                    digest: d.clone(),
                    source: u.source.clone(),
                    trusted: self.trusted(d, &u.file),
                },
                None => Content::Verified(self.bundle_dir.join(d.blob_path())),
            };
            entries.push((d.blob_path(), content));
        }
        archive::write(entries, self.epoch, out)
    }

    /// The key the verification record vouches for, if `file` has it now.
    pub fn trusted(&self, digest: &Digest, file: &Path) -> Option<verified::FileKey> {
        let r = self.record?;
        verified::FileKey::at(file).filter(|key| r.trusts(digest, key))
    }
}
