//! Where image bytes come from: one module per source kind. Each source
//! copies one image (its manifest or index and every blob it reaches)
//! into the bundle's [`Store`], verifying every blob against its digest
//! as it streams. The sources take an [`ImageRequest`] (made from the
//! config in `config::requests`) and know nothing of the config or the
//! bundler.
//!
//! - [`registry`]: Docker registry v2 / OCI distribution pulls.
//! - [`oci_layout`]: an OCI image layout folder.
//! - [`oci_archive`]: a tar of an OCI image layout, read in place.
//! - [`docker_archive`]: a `docker save` tar, converted to an OCI manifest.
//! - [`local`]: what the layout and archive sources share: the walk from
//!   the chosen manifest or index, and [`local::LocalImage`].
//! - [`safe_tar`]: the tar member index both archive readers share.

use std::path::PathBuf;

use airlift_oci::Reference;

use crate::store::Store;

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
    /// What `airlift validate` checks without a network: a local source
    /// is opened and indexed with the readers `airlift bundle` uses, its
    /// `ref` resolved and its manifests read and verified (see each
    /// module's `check`), with the `platforms` filter applied to OCI
    /// sources; a registry source is not contacted.
    pub fn check_local(&self, platforms: &[String]) -> anyhow::Result<()> {
        match self {
            SourceSpec::Registry { .. } => Ok(()),
            SourceSpec::OciLayout { path, reference } => {
                oci_layout::open(path, reference.as_deref())?.check(platforms)
            }
            SourceSpec::OciArchive { path, reference } => {
                oci_archive::open(path, reference.as_deref())?.check(platforms)
            }
            SourceSpec::DockerArchive { path, reference } => {
                docker_archive::check(path, reference.as_deref(), platforms)
            }
        }
    }

    /// Copies the image out of a local source into `store` (blocking
    /// I/O); a registry source is pulled by [`registry::ingest`] instead.
    pub fn ingest_local(&self, platforms: &[String], store: &Store) -> anyhow::Result<Ingested> {
        match self {
            SourceSpec::Registry { .. } => {
                anyhow::bail!("a registry source is pulled with registry::ingest, not read locally")
            }
            SourceSpec::OciLayout { path, reference } => {
                oci_layout::open(path, reference.as_deref())?.ingest(platforms, store)
            }
            SourceSpec::OciArchive { path, reference } => {
                oci_archive::open(path, reference.as_deref())?.ingest(platforms, store)
            }
            SourceSpec::DockerArchive { path, reference } => {
                docker_archive::ingest(path, reference.as_deref(), platforms, store)
            }
        }
    }
}
