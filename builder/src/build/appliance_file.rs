//! `/etc/airlift/appliance.json`: what the appliance needs to know about
//! itself at boot, rendered from the normalised config (pure).
//!
//! ```json
//! { "schema": 1, "name": "demo", "version": "0.1.0",
//!   "volumeLabel": "AIRLIFT_DEMO", "role": "host0", "joinToken": "<64 hex>",
//!   "kernelRelease": "6.1.0-56-amd64",
//!   "registry": { "port": 5000, "tls": "generate", "push": false, "allowDelete": false },
//!   "mirrors": ["quay.io", "registry.airlift.test"],
//!   "runtimes": ["crio", "podman", "containerd"],
//!   "netboot": { ... as in the config ... }, "storage": { ... } }
//! ```
//!
//! `mirrors` is `registry.mirrors` when set, else every registry host an
//! image of the bundle names, sorted.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::{Appliance, Netboot, Role, Runtime, Storage, TlsMode};

/// Current layout version of the file.
pub const SCHEMA: u32 = 1;
/// Where the file goes inside the initramfs.
pub const PATH: &str = "etc/airlift/appliance.json";

/// The file's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplianceFile {
    pub schema: u32,
    pub name: String,
    pub version: String,
    pub volume_label: String,
    /// The role the media boots as: always host0 (netbooted nodes get
    /// theirs from the kernel command line).
    pub role: Role,
    pub join_token: String,
    pub kernel_release: String,
    pub registry: RegistryFile,
    pub mirrors: Vec<String>,
    pub runtimes: Vec<Runtime>,
    pub netboot: Netboot,
    pub storage: Storage,
}

/// Registry settings host0 serves with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryFile {
    pub port: u16,
    pub tls: TlsMode,
    pub push: bool,
    pub allow_delete: bool,
}

/// Builds the file's content from the config.
pub fn appliance_file(app: &Appliance, join_token: &str, kernel_release: &str) -> ApplianceFile {
    let mirrors: Vec<String> = if app.registry.mirrors.is_empty() {
        app.images
            .iter()
            .map(|i| i.reference.registry().to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    } else {
        app.registry.mirrors.clone()
    };
    ApplianceFile {
        schema: SCHEMA,
        name: app.metadata.name.clone(),
        version: app.metadata.version.clone(),
        volume_label: app.output.volume_label.clone(),
        role: Role::Host0,
        join_token: join_token.to_string(),
        kernel_release: kernel_release.to_string(),
        registry: RegistryFile {
            port: app.registry.port,
            tls: app.registry.tls.mode,
            push: app.registry.push.enabled,
            allow_delete: app.registry.allow_delete,
        },
        mirrors,
        runtimes: app.runtimes.clone(),
        netboot: app.netboot.clone(),
        storage: app.storage.clone(),
    }
}

/// Pretty JSON with a final newline.
pub fn render(file: &ApplianceFile) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(file).context("rendering appliance.json")?;
    out.push(b'\n');
    Ok(out)
}
