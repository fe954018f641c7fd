//! Where image bytes come from: one module per source kind. Each source
//! copies one image (its manifest or index and every blob it reaches)
//! into the bundle's [`Store`](crate::bundler::store::Store), verifying
//! every blob against its digest as it streams.
//!
//! - [`registry`]: Docker registry v2 / OCI distribution pulls.
//! - [`oci_layout`]: an OCI image layout folder.
//! - [`oci_archive`]: a tar of an OCI image layout, read in place.
//! - [`docker_archive`]: a `docker save` tar, converted to an OCI manifest.
//! - [`safe_tar`]: the tar member index both archive readers share.

use std::path::PathBuf;

use airlift_oci::Reference;

pub mod docker_archive;
pub mod local;
pub mod oci_archive;
pub mod oci_layout;
pub mod platform;
pub mod registry;
pub mod safe_tar;

/// One image to put in the bundle: the reference nodes will pull, where
/// its bytes come from, and which platforms to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    /// The full upstream reference, recorded in the bundle's `index.json`.
    pub reference: Reference,
    pub source: SourceSpec,
    /// `os/arch[/variant]` to keep from a multi-arch index; empty keeps all.
    pub platforms: Vec<String>,
}

/// Where an image's bytes come from, with paths already resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// Pull over the registry API from the reference's registry or `mirror`.
    Registry {
        /// Base URL to pull from instead of the reference's registry.
        mirror: Option<String>,
        /// A containers auth.json / docker config.json credentials file.
        credentials: Option<PathBuf>,
        /// Allow `http://` and skip TLS certificate checks.
        insecure: bool,
    },
    /// An OCI image layout folder; `reference` picks the `index.json` entry.
    OciLayout {
        path: PathBuf,
        reference: Option<String>,
    },
    /// A tar of an OCI image layout; `reference` as for a layout.
    OciArchive {
        path: PathBuf,
        reference: Option<String>,
    },
    /// A `docker save` tar; `reference` picks a `RepoTags` entry.
    DockerArchive {
        path: PathBuf,
        reference: Option<String>,
    },
}

impl SourceSpec {
    /// A short human description: `registry http://…`, `oci-layout /path`.
    pub fn describe(&self, reference: &Reference) -> String {
        match self {
            SourceSpec::Registry {
                mirror: Some(m), ..
            } => format!("registry mirror {m}"),
            SourceSpec::Registry { mirror: None, .. } => {
                format!("registry {}", registry::client::default_base_url(reference))
            }
            SourceSpec::OciLayout { path, .. } => format!("oci-layout {}", path.display()),
            SourceSpec::OciArchive { path, .. } => format!("oci-archive {}", path.display()),
            SourceSpec::DockerArchive { path, .. } => {
                format!("docker-archive {}", path.display())
            }
        }
    }
}

/// What a source put into the store for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// The top manifest or index, exactly as upstream (digest and bytes).
    pub root: airlift_oci::Descriptor,
    /// `os/arch[/variant]` of every platform kept.
    pub platforms: Vec<String>,
}

impl SourceSpec {
    /// From the config's source (paths already absolute); `None` means a
    /// pull from the reference's own registry.
    /// What `airlift validate` checks without a network: a local source
    /// is opened and indexed with the readers `airlift bundle` uses, its
    /// `ref` resolved and its manifests read and verified (see each
    /// module's `check`), with the `platforms` filter applied to OCI
    /// sources; a registry source is not contacted.
    pub fn check_local(&self, platforms: &[String]) -> anyhow::Result<()> {
        match self {
            SourceSpec::Registry { .. } => Ok(()),
            SourceSpec::OciLayout { path, reference } => {
                oci_layout::check(path, reference.as_deref(), platforms)
            }
            SourceSpec::OciArchive { path, reference } => {
                oci_archive::check(path, reference.as_deref(), platforms)
            }
            SourceSpec::DockerArchive { path, reference } => {
                docker_archive::check(path, reference.as_deref(), platforms)
            }
        }
    }

    pub fn from_config(source: Option<&crate::config::ImageSource>) -> SourceSpec {
        use crate::config::ImageSource as S;
        match source {
            None => SourceSpec::Registry {
                mirror: None,
                credentials: None,
                insecure: false,
            },
            Some(S::Registry(r)) => SourceSpec::Registry {
                mirror: r.mirror.clone(),
                credentials: r.credentials.clone(),
                insecure: r.insecure,
            },
            Some(S::OciLayout(l)) => SourceSpec::OciLayout {
                path: l.path.clone(),
                reference: l.reference.clone(),
            },
            Some(S::OciArchive(l)) => SourceSpec::OciArchive {
                path: l.path.clone(),
                reference: l.reference.clone(),
            },
            Some(S::DockerArchive(d)) => SourceSpec::DockerArchive {
                path: d.path.clone(),
                reference: d.reference.clone(),
            },
        }
    }
}

impl From<&crate::config::ImageEntry> for ImageRequest {
    /// A normalised config entry (reference parsed, paths absolute).
    fn from(e: &crate::config::ImageEntry) -> Self {
        ImageRequest {
            reference: e.reference.clone(),
            source: SourceSpec::from_config(Some(&e.source)),
            platforms: e.platforms.clone(),
        }
    }
}
