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
//! image of the bundle names, sorted. `netboot`, `storage`, `runtimes` and
//! the TLS mode are the contract's own types in the config too
//! (`airlift_appliance`), so they are carried over as they are.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::Appliance;

pub use airlift_appliance::{
    ApplianceFile, RegistryFile, HTPASSWD_PATH, PATH, PUSH_TOKEN_PATH, SCHEMA, TLS_CERT_PATH,
    TLS_KEY_PATH,
};

/// Files from the config that travel with `appliance.json`: the supplied
/// TLS certificate and key, and the push credentials, as (path in the
/// image, local file, mode).
pub fn secret_files(app: &Appliance) -> Vec<(&'static str, PathBuf, u32)> {
    let mut out = Vec::new();
    if app.registry.tls.mode == crate::config::TlsMode::Provided {
        if let (Some(cert), Some(key)) = (&app.registry.tls.cert, &app.registry.tls.key) {
            out.push((TLS_CERT_PATH, cert.clone(), 0o644));
            out.push((TLS_KEY_PATH, key.clone(), 0o600));
        }
    }
    if app.registry.push.enabled {
        if let Some(h) = &app.registry.push.htpasswd {
            out.push((HTPASSWD_PATH, h.clone(), 0o600));
        }
        if let Some(t) = &app.registry.push.token_file {
            out.push((PUSH_TOKEN_PATH, t.clone(), 0o600));
        }
    }
    out
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
    let provided = app.registry.tls.mode == crate::config::TlsMode::Provided;
    ApplianceFile {
        schema: SCHEMA,
        name: app.metadata.name.clone(),
        version: app.metadata.version.clone(),
        volume_label: app.output.volume_label.clone(),
        role: airlift_appliance::Role::Host0,
        join_token: join_token.to_string(),
        kernel_release: kernel_release.to_string(),
        registry: RegistryFile {
            port: app.registry.port,
            tls: app.registry.tls.mode,
            tls_cert: provided.then(|| PathBuf::from("/").join(TLS_CERT_PATH)),
            tls_key: provided.then(|| PathBuf::from("/").join(TLS_KEY_PATH)),
            extra_names: app.registry.tls.extra_names.clone(),
            push: app.registry.push.enabled,
            allow_delete: app.registry.allow_delete,
        },
        mirrors,
        runtimes: app.runtimes.clone(),
        netboot: app.netboot.clone(),
        storage: app.storage.clone(),
        ha: app.ha.clone(),
        trust: app.trust.clone(),
        base: None,
    }
}

/// Pretty JSON with a final newline.
pub fn render(file: &ApplianceFile) -> Result<Vec<u8>> {
    file.render().context("rendering appliance.json")
}
