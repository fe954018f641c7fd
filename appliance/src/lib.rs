//! The contract between the builder and the appliance: the bundle manifest
//! ([`bundle_manifest`]) and `/etc/airlift/appliance.json`, what the
//! appliance knows about itself at boot. The builder writes it into the
//! initramfs (from the image config); `airlift-firstboot` reads it. One set
//! of types for both sides, so the two can never disagree on a field's name
//! or meaning: the sections the image config carries over as they are
//! ([`netboot`], [`datadisk`], [`runtime`]) are also the builder's config
//! types for them.
//!
//! ```json
//! { "schema": 1, "name": "demo", "version": "0.1.0",
//!   "volumeLabel": "AIRLIFT_DEMO", "role": "host0", "joinToken": "<64 hex>",
//!   "kernelRelease": "6.1.0-56-amd64",
//!   "registry": { "port": 5000, "tls": "generate", "push": false, "allowDelete": false,
//!                 "extraNames": [] },
//!   "mirrors": ["quay.io", "registry.airlift.test"],
//!   "runtimes": ["crio", "podman", "containerd"],
//!   "netboot": { "enabled": false, ... as in the config ... },
//!   "storage": { "dataDisk": null, "allowRamPush": false },
//!   "ha": { "virtualIp": { "address": "10.77.0.50/24", "virtualRouterId": 51 } } }
//! ```

pub mod bundle_manifest;
pub mod datadisk;
pub mod ha;
pub mod mirror_order;
pub mod netboot;
pub mod release;
pub mod runtime;
pub mod trust;
pub mod xattrs;

pub use bundle_manifest::{
    Attachment, AttachmentKind, BundleImage, BundleManifest, Totals, VerifiedSignature,
};
pub use datadisk::{DataDisk, Filesystem, Storage};
pub use ha::{Ha, IpCidr, VirtualIp};
pub use netboot::{DhcpMode, Netboot, Node, NodeProfile};
pub use release::{ReleaseId, UpdateManifest};
pub use runtime::Runtime;
pub use trust::{Outcome, TrustPolicy, TrustedKey, Verifier};

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Deserializer, Serialize};

/// Current layout version of the file.
pub const SCHEMA: u32 = 1;
/// Where the file goes, relative to the appliance's root.
pub const PATH: &str = "etc/airlift/appliance.json";
/// Where the appliance reads it.
pub const DEFAULT_PATH: &str = "/etc/airlift/appliance.json";
/// Where the builder puts a supplied TLS certificate chain (`tls: provided`).
pub const TLS_CERT_PATH: &str = "etc/airlift/tls/server.crt";
/// Where the builder puts a supplied TLS private key (mode 0600).
pub const TLS_KEY_PATH: &str = "etc/airlift/tls/server.key";
/// Push credentials, beside `appliance.json`: a bcrypt htpasswd file ...
pub const HTPASSWD_PATH: &str = "etc/airlift/htpasswd";
/// ... and a bearer token file (both mode 0600).
pub const PUSH_TOKEN_PATH: &str = "etc/airlift/push-token";

/// The file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplianceFile {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The appliance's name (`metadata.name`).
    pub name: String,
    /// The appliance's version (`metadata.version`).
    pub version: String,
    /// The ISO's volume label, by which the boot media is found.
    pub volume_label: String,
    /// The role the media boots as: always host0 (netbooted nodes get
    /// theirs from the kernel command line).
    pub role: Role,
    /// The secret joining nodes present to host0's join endpoint.
    pub join_token: String,
    /// The kernel's release string (`uname -r`).
    pub kernel_release: String,
    /// Registry settings host0 serves with.
    pub registry: RegistryFile,
    /// Upstream registries mirrored to host0 (`quay.io`, …).
    pub mirrors: Vec<String>,
    /// Container runtimes whose mirror config host0 writes.
    pub runtimes: Vec<Runtime>,
    /// Network boot, as in the image config (`null` reads as off).
    #[serde(default, deserialize_with = "null_as_default")]
    pub netboot: Netboot,
    /// host0's persistent storage.
    #[serde(default)]
    pub storage: Storage,
    /// High availability of the registry (a virtual IP); absent in files
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<Ha>,
    /// The keys images must be signed by (the config's `verify:`), for
    /// the signature policy host0 writes and sends to nodes; absent when
    /// the config has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustPolicy>,
    /// The base image the OS came from (`base.image`); absent for a base
    /// given as host paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<bundle_manifest::BaseImageRecord>,
}

/// Registry settings host0 serves with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryFile {
    /// The port the registry (and the status and join endpoints) listen on.
    pub port: u16,
    /// How the registry gets its certificate.
    pub tls: TlsMode,
    /// With `tls: provided`: the certificate chain's path on the appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// With `tls: provided`: the private key's path on the appliance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Extra subject alternative names for a generated certificate.
    #[serde(default)]
    pub extra_names: Vec<String>,
    /// Whether pushes are accepted.
    pub push: bool,
    /// Whether DELETE is allowed.
    pub allow_delete: bool,
}

/// The role a machine boots as: the media's (always host0), or a
/// netbooted machine's (join unless its profile says otherwise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The first machine: boots from the media, serves the bundle.
    Host0,
    /// A node joining host0's cluster.
    #[default]
    Join,
    /// A node that also serves a copy of the registry.
    Replica,
}

impl Role {
    /// The name as written (`host0`, `join`, `replica`), as on the kernel
    /// command line's `airlift.role=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Host0 => "host0",
            Role::Join => "join",
            Role::Replica => "replica",
        }
    }
}

/// How the registry gets its certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TlsMode {
    /// A CA and server certificate made on first boot.
    #[default]
    Generate,
    /// `tlsCert` and `tlsKey`.
    Provided,
    /// Plain HTTP.
    Off,
}

impl ApplianceFile {
    /// The virtual IP settings, when the file has them.
    pub fn virtual_ip(&self) -> Option<&VirtualIp> {
        self.ha.as_ref()?.virtual_ip.as_ref()
    }

    /// Parse the file's bytes and check what a reader relies on; `origin`
    /// names the file in errors.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<ApplianceFile> {
        let file: ApplianceFile = serde_json::from_slice(bytes).with_context(|| {
            format!(
                "{} is not a valid appliance file (schema {SCHEMA}); rebuild the ISO with a \
                 matching airlift",
                origin.display()
            )
        })?;
        file.validate()
            .with_context(|| format!("checking {}", origin.display()))?;
        Ok(file)
    }

    /// Read and parse the file at `path`.
    pub fn load(path: &Path) -> Result<ApplianceFile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        ApplianceFile::parse(&bytes, path)
    }

    /// Check the values a reader relies on.
    pub fn validate(&self) -> Result<()> {
        if self.schema != SCHEMA {
            bail!(
                "schema is {}, this program reads schema {SCHEMA}; use the airlift-firstboot \
                 built with the ISO",
                self.schema
            );
        }
        if self.volume_label.is_empty() || self.volume_label.len() > 32 {
            bail!(
                "volumeLabel {:?} must be 1 to 32 characters",
                self.volume_label
            );
        }
        if self.join_token.len() < 16 {
            bail!("joinToken is shorter than 16 characters; it must be a long random secret");
        }
        if self.registry.port == 0 {
            bail!("registry.port is 0; give the port the registry listens on");
        }
        if self.registry.tls == TlsMode::Provided
            && (self.registry.tls_cert.is_none() || self.registry.tls_key.is_none())
        {
            bail!("registry.tls is provided but registry.tlsCert or registry.tlsKey is missing");
        }
        if let Some(t) = &self.trust {
            t.validate().context("trust")?;
        }
        if let Some(v) = self.virtual_ip() {
            if v.virtual_router_id == 0 {
                bail!("ha.virtualIp.virtualRouterId is 0; VRRP router ids are 1 to 255");
            }
            if let Some(why) = v.address.unusable_reason() {
                bail!(
                    "ha.virtualIp.address {} {why}; rebuild with a host address",
                    v.address
                );
            }
        }
        Ok(())
    }

    /// Does host0 have a disk to copy the bundle to?
    pub fn has_data_disk(&self) -> bool {
        self.storage.data_disk.is_some()
    }

    /// Pretty JSON with a final newline.
    pub fn render(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self).context("rendering appliance.json")?;
        out.push(b'\n');
        Ok(out)
    }
}

/// A section that may be written as `null`, read as its default.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}
