//! `GET /airlift/v1/images`: every image the appliance serves.
//!
//! Two sources, merged by reference:
//! - the `bundle.json` of the release whose tags are served
//!   ([`release_manifest`]: the boot media's, read once at start since
//!   the media may be ejected later, until a release is recorded on the
//!   data disk; then the current release's copy there, re-read when an
//!   update or a rollback moves the tags), with the builder's sizes and
//!   platforms;
//! - the registry's own store (catalog and tags), for images that are
//!   not in `bundle.json`: pushed ones, or every image of a bundle
//!   without a `bundle.json`. Their size and platforms are worked out
//!   from the stored manifests (and image configs), cached by digest:
//!   content-addressed documents never change.
//!
//! The JSON is what the status page and `airlift-firstboot status` show.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airlift_appliance::bundle_manifest::{BundleManifest, BUNDLE_MANIFEST_FILE};
use airlift_oci::documents::{media, Document};
use airlift_oci::Digest;
use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use crate::api::json::json_response;
use crate::services::registry::route::ManifestRef;
use crate::services::registry::store::Store;
use crate::services::registry::Registry;

/// The path of the endpoint.
pub const PATH: &str = "/airlift/v1/images";

/// The largest image config read to learn an image's platform.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Where an image's entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageSource {
    /// Listed in the bundle's `bundle.json`.
    Bundle,
    /// In the registry's store but not in `bundle.json` (pushed, or a
    /// bundle that has no `bundle.json`).
    Registry,
}

/// One image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageEntry {
    /// The full reference nodes pull (`quay.io/org/app:1.2`).
    pub reference: String,
    /// The top manifest's or index's digest.
    pub digest: String,
    pub media_type: String,
    /// `os/arch[/variant]` of every platform (empty when unknown).
    pub platforms: Vec<String>,
    /// Bytes of every distinct blob the image reaches, manifests included.
    pub size: u64,
    pub source: ImageSource,
    /// The signatures verified at build (`bundle.json`), each naming the
    /// trusted key; empty: not signed by any trusted key (or not from the
    /// bundle).
    #[serde(default)]
    pub signatures: Vec<ImageSignature>,
}

/// A signature the builder verified, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageSignature {
    /// The trusted key's name.
    pub key: String,
    /// The identity it signs (`docker-reference` of its payload).
    pub identity: String,
    /// The manifest digest it is over.
    pub subject: String,
}

/// The bundle's own facts, from `bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct BundleSummary {
    pub name: String,
    pub version: String,
    pub images: u64,
    pub blobs: u64,
    /// Bytes stored, each blob once.
    pub unique_bytes: u64,
    /// What separate copies of every image would take.
    pub referenced_bytes: u64,
}

/// What `GET /airlift/v1/images` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImagesReport {
    /// None when the media has no `bundle.json`.
    pub bundle: Option<BundleSummary>,
    /// Sorted by reference.
    pub images: Vec<ImageEntry>,
}

/// Gives the registry serving now (host0 swaps it once the bundle is
/// on disk).
pub type CurrentRegistry = Arc<dyn Fn() -> Arc<Registry> + Send + Sync>;

/// Where the served release's `bundle.json` comes from, asked at each report.
pub type ManifestSource = Arc<dyn Fn() -> Option<Arc<BundleManifest>> + Send + Sync>;

/// The endpoint's state.
#[derive(Clone)]
pub struct Images {
    manifest: ManifestSource,
    registry: CurrentRegistry,
    cache: Arc<Mutex<HashMap<Digest, Details>>>,
}

/// Size and platforms of a stored image, by its top digest.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    media_type: String,
    size: u64,
    platforms: Vec<String>,
}

impl Images {
    /// Serve `manifest` (if any) and what `registry` holds.
    pub fn new(manifest: Option<BundleManifest>, registry: CurrentRegistry) -> Images {
        let manifest = manifest.map(Arc::new);
        Images::with_source(Arc::new(move || manifest.clone()), registry)
    }

    /// Serve the `bundle.json` `source` gives at each report, and what
    /// `registry` holds.
    pub fn with_source(source: ManifestSource, registry: CurrentRegistry) -> Images {
        Images {
            manifest: source,
            registry,
            cache: Arc::default(),
        }
    }

    /// The report now.
    pub async fn report(&self) -> ImagesReport {
        let registry = (self.registry)();
        let manifest = (self.manifest)();
        let mut by_ref: BTreeMap<String, ImageEntry> = BTreeMap::new();
        if let Some(m) = &manifest {
            for e in bundle_entries(m) {
                by_ref.insert(e.reference.clone(), e);
            }
        }
        for (reference, digest) in stored_tags(&registry.store) {
            if by_ref.contains_key(&reference) {
                continue;
            }
            let details = match self.details(&registry.store, &digest).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::debug!("images: {reference} ({digest}): {e:#}");
                    Details {
                        media_type: String::new(),
                        size: 0,
                        platforms: Vec::new(),
                    }
                }
            };
            by_ref.insert(
                reference.clone(),
                ImageEntry {
                    reference,
                    digest: digest.to_string(),
                    media_type: details.media_type,
                    platforms: details.platforms,
                    size: details.size,
                    source: ImageSource::Registry,
                    signatures: Vec::new(),
                },
            );
        }
        ImagesReport {
            bundle: manifest.as_deref().map(summary),
            images: by_ref.into_values().collect(),
        }
    }

    async fn details(&self, store: &Store, digest: &Digest) -> Result<Details> {
        if let Some(d) = self.cache_get(digest) {
            return Ok(d);
        }
        let d = stored_details(store, digest).await?;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.clone(), d.clone());
        Ok(d)
    }

    fn cache_get(&self, digest: &Digest) -> Option<Details> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }
}

/// Read `bundle.json` of a bundle folder: inside it, else beside it (the
/// ISO has both `/airlift/bundle/bundle.json` and `/airlift/bundle.json`).
/// Ok(None) when there is none; an error names the file that is broken.
pub fn load_bundle_manifest(bundle_dir: &Path) -> Result<Option<BundleManifest>> {
    let candidates: Vec<PathBuf> = std::iter::once(bundle_dir.join(BUNDLE_MANIFEST_FILE))
        .chain(bundle_dir.parent().map(|p| p.join(BUNDLE_MANIFEST_FILE)))
        .collect();
    for path in candidates {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let m: BundleManifest = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a bundle manifest; rebuild the ISO with this airlift",
                path.display()
            )
        })?;
        return Ok(Some(m));
    }
    Ok(None)
}

/// The `bundle.json` of the release whose tags are served: the current
/// release's copy in `data` (`DATA/releases/<hex>/bundle.json`) once
/// `state.json` names one, else the boot media's (read now, from
/// `media_bundle_dir`). The release's copy is read again only when the
/// current release changes; a broken one is logged and none is shown.
pub fn release_manifest(media_bundle_dir: &Path, data: PathBuf) -> ManifestSource {
    let media = read_logged(media_bundle_dir);
    let seen: Mutex<Option<(PathBuf, Option<Arc<BundleManifest>>)>> = Mutex::new(None);
    Arc::new(move || {
        let Some(dir) = crate::services::releases::dir::current_dir(&data) else {
            return media.clone();
        };
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        match seen.as_ref() {
            Some((d, m)) if *d == dir => m.clone(),
            _ => {
                let m = read_logged(&dir);
                *seen = Some((dir, m.clone()));
                m
            }
        }
    })
}

fn read_logged(dir: &Path) -> Option<Arc<BundleManifest>> {
    load_bundle_manifest(dir)
        .unwrap_or_else(|e| {
            tracing::warn!("the status page lists the registry's images only: {e:#}");
            None
        })
        .map(Arc::new)
}

/// The entries of `bundle.json`, in its order.
pub fn bundle_entries(m: &BundleManifest) -> Vec<ImageEntry> {
    m.images
        .iter()
        .map(|i| ImageEntry {
            reference: i.reference.clone(),
            digest: i.digest.to_string(),
            media_type: i.media_type.clone(),
            platforms: i.platforms.clone(),
            size: i.size,
            source: ImageSource::Bundle,
            signatures: i
                .signatures
                .iter()
                .map(|s| ImageSignature {
                    key: s.key.clone(),
                    identity: s.identity.clone(),
                    subject: s.subject.to_string(),
                })
                .collect(),
        })
        .collect()
}

fn summary(m: &BundleManifest) -> BundleSummary {
    BundleSummary {
        name: m.name.clone(),
        version: m.version.clone(),
        images: m.totals.images,
        blobs: m.totals.blobs,
        unique_bytes: m.totals.unique_bytes,
        referenced_bytes: m.totals.referenced_bytes,
    }
}

/// `repo:tag` and its digest for every tag in the store, sorted.
fn stored_tags(store: &Store) -> Vec<(String, Digest)> {
    let mut out = Vec::new();
    for repo in store.catalog() {
        for tag in store.tags(&repo).unwrap_or_default() {
            if let Some((digest, _)) = store.resolve(&repo, &ManifestRef::Tag(tag.clone())) {
                out.push((format!("{repo}:{tag}"), digest));
            }
        }
    }
    out
}

/// Size and platforms of the image whose top manifest is `top`.
async fn stored_details(store: &Store, top: &Digest) -> Result<Details> {
    let bytes = store
        .manifest_bytes(top)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let doc = Document::parse(&bytes, None)?;
    let media_type = doc.media_type().to_string();
    let mut sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    sizes.insert(top.clone(), bytes.len() as u64);
    let mut platforms = BTreeSet::new();
    let mut manifests = Vec::new();
    match &doc {
        Document::Index(index) => {
            for child in &index.manifests {
                if let Some(p) = &child.platform {
                    if p.os != "unknown" {
                        platforms.insert(p.spec());
                    }
                }
                sizes.insert(child.digest.clone(), child.size);
                if media::is_manifest(&child.media_type) || media::is_index(&child.media_type) {
                    if let Ok(b) = store.manifest_bytes(&child.digest).await {
                        if let Ok(Document::Manifest(m)) = Document::parse(&b, None) {
                            manifests.push(*m);
                        }
                    }
                }
            }
        }
        Document::Manifest(m) => {
            manifests.push((**m).clone());
            if let Some(p) = config_platform(store, &m.config).await {
                platforms.insert(p);
            }
        }
    }
    for m in &manifests {
        for d in std::iter::once(&m.config).chain(&m.layers) {
            sizes.insert(d.digest.clone(), d.size);
        }
    }
    Ok(Details {
        media_type,
        size: sizes.values().sum(),
        platforms: platforms.into_iter().collect(),
    })
}

/// `os/arch[/variant]` from an image config blob (None for artifacts or
/// an unreadable config).
async fn config_platform(
    store: &Store,
    config: &airlift_oci::documents::Descriptor,
) -> Option<String> {
    if !(config.media_type == media::OCI_CONFIG || config.media_type == media::DOCKER_CONFIG)
        || config.size > MAX_CONFIG_BYTES
    {
        return None;
    }
    let blob = store.blob(&config.digest).await?;
    let bytes = store.read_blob(&blob).await.ok()?;
    platform_of_config(&bytes)
}

/// `os/arch[/variant]` of an image config's JSON.
pub fn platform_of_config(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let c: Config = serde_json::from_slice(bytes).ok()?;
    let (os, arch) = (c.os?, c.architecture?);
    Some(match c.variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    })
}

/// `GET /airlift/v1/images`.
pub async fn handler(State(images): State<Images>) -> Response {
    let mut r = json_response(StatusCode::OK, &images.report().await);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The route, to merge into host0's app (GET and HEAD only).
pub fn router(images: Images) -> Router {
    Router::new().route(PATH, get(handler)).with_state(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_appliance::bundle_manifest::{BundleImage, Totals, BUNDLE_SCHEMA};

    fn manifest() -> BundleManifest {
        BundleManifest {
            schema: BUNDLE_SCHEMA.into(),
            name: "demo".into(),
            version: "1.2.3".into(),
            images: vec![BundleImage {
                reference: "quay.io/org/app:1.0".into(),
                digest: Digest::sha256_of(b"x"),
                media_type: media::OCI_INDEX.into(),
                platforms: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
                size: 12_345,
                attachments: Vec::new(),
                signatures: vec![airlift_appliance::VerifiedSignature {
                    subject: Digest::sha256_of(b"x"),
                    key: "release".into(),
                    identity: "quay.io/org/app:1.0".into(),
                    signature: Digest::sha256_of(b"sig"),
                }],
            }],
            totals: Totals {
                images: 1,
                blobs: 4,
                unique_bytes: 12_345,
                referenced_bytes: 12_345,
                saved_bytes: 0,
            },
            base: None,
        }
    }

    #[test]
    fn bundle_entries_keep_the_builders_facts() {
        let e = bundle_entries(&manifest());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].reference, "quay.io/org/app:1.0");
        assert_eq!(e[0].digest, Digest::sha256_of(b"x").to_string());
        assert_eq!(e[0].platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(e[0].source, ImageSource::Bundle);
        let v = serde_json::to_value(&e[0]).unwrap();
        assert_eq!(v["media-type"], media::OCI_INDEX);
        assert_eq!(v["source"], "bundle");
        assert_eq!(v["signatures"][0]["key"], "release");
        assert_eq!(v["signatures"][0]["identity"], "quay.io/org/app:1.0");
        assert_eq!(
            v["signatures"][0]["subject"],
            Digest::sha256_of(b"x").to_string()
        );
    }

    #[test]
    fn bundle_manifest_inside_then_beside_the_bundle() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = tmp.path().join("airlift/bundle");
        std::fs::create_dir_all(&bundle).unwrap();
        assert_eq!(load_bundle_manifest(&bundle).unwrap(), None);
        let json = serde_json::to_vec(&manifest()).unwrap();
        std::fs::write(tmp.path().join("airlift/bundle.json"), &json).unwrap();
        assert_eq!(load_bundle_manifest(&bundle).unwrap(), Some(manifest()));
        std::fs::write(bundle.join("bundle.json"), b"{\"schema\": 1}").unwrap();
        let err = format!("{:#}", load_bundle_manifest(&bundle).unwrap_err());
        assert!(err.contains("airlift/bundle/bundle.json"), "{err}");
        assert!(err.contains("not a bundle manifest"), "{err}");
    }

    #[test]
    fn the_served_release_s_bundle_json_follows_the_current_release() {
        use crate::services::releases::dir::{self, SmallFiles, OCI_LAYOUT};
        use crate::services::releases::state::{Release, ReleasesState, Source};
        let tmp = tempfile::tempdir().unwrap();
        let (media, data) = (tmp.path().join("media/bundle"), tmp.path().join("data"));
        std::fs::create_dir_all(&media).unwrap();
        std::fs::create_dir_all(data.join("registry/blobs")).unwrap();
        let json = serde_json::to_vec(&manifest()).unwrap();
        std::fs::write(media.join("bundle.json"), &json).unwrap();
        let source = release_manifest(&media, data.clone());
        assert_eq!(
            source().unwrap().version,
            "1.2.3",
            "no release yet: the media's"
        );

        // Release 2 recorded on the data disk and made current.
        let mut two = manifest();
        two.version = "2.0".into();
        let bundle = airlift_appliance::release::bundle_id(b"{}");
        let files = SmallFiles {
            oci_layout: OCI_LAYOUT.to_vec(),
            index: b"{}".to_vec(),
            bundle: Some(serde_json::to_vec(&two).unwrap()),
            update: None,
        };
        dir::write(&data, &bundle, &files).unwrap();
        let mut state = ReleasesState::default();
        state.add(Release {
            id: airlift_appliance::ReleaseId {
                name: "demo".into(),
                version: "2.0".into(),
                bundle: bundle.clone(),
            },
            images: 1,
            blobs: 1,
            bytes: 1,
            loaded_at: "2026-12-07T00:00:00Z".into(),
            source: Source::Update,
            base: None,
        });
        state.set_current(&bundle).unwrap();
        state.save(&data).unwrap();
        assert_eq!(source().unwrap().version, "2.0");
        // The media's copy going away changes nothing now.
        std::fs::remove_file(media.join("bundle.json")).unwrap();
        assert_eq!(source().unwrap().version, "2.0");
    }

    #[test]
    fn platforms_from_image_configs() {
        assert_eq!(
            platform_of_config(br#"{"os":"linux","architecture":"amd64"}"#).as_deref(),
            Some("linux/amd64")
        );
        assert_eq!(
            platform_of_config(br#"{"os":"linux","architecture":"arm","variant":"v7"}"#).as_deref(),
            Some("linux/arm/v7")
        );
        assert_eq!(platform_of_config(b"{}"), None);
        assert_eq!(platform_of_config(b"not json"), None);
    }
}
