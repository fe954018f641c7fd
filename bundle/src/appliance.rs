//! `/etc/airlift/appliance.json`: what the appliance knows about itself
//! at boot. The builder writes it into the initramfs (from the image
//! config); `airlift-firstboot` reads it. One type for both sides, so the
//! two can never disagree on a field's name or meaning.
//!
//! ```json
//! { "schema": 1, "name": "demo", "version": "0.1.0",
//!   "volumeLabel": "AIRLIFT_DEMO", "role": "host0", "joinToken": "<64 hex>",
//!   "kernelRelease": "6.1.0-56-amd64",
//!   "registry": { "port": 5000, "tls": "generate", "push": false, "allowDelete": false,
//!                 "extraNames": [] },
//!   "mirrors": ["quay.io", "registry.airlift.test"],
//!   "runtimes": ["crio", "podman", "containerd"],
//!   "netboot": { ... as in the config ... }, "storage": { "dataDisk": null, ... } }
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Current layout version of the file.
pub const SCHEMA: u32 = 1;
/// Where the file goes, relative to the appliance's root.
pub const PATH: &str = "etc/airlift/appliance.json";
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
    /// Network boot, as in the image config (typed by its reader).
    #[serde(default)]
    pub netboot: serde_json::Value,
    /// host0's persistent storage.
    #[serde(default)]
    pub storage: Storage,
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

/// The role a machine boots as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The first machine: boots from the media, serves the bundle.
    Host0,
    /// A node joining host0's cluster.
    Join,
    /// A node that also serves a copy of the registry.
    Replica,
}

/// How the registry gets its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TlsMode {
    /// A CA and server certificate made on first boot.
    Generate,
    /// `tlsCert` and `tlsKey`.
    Provided,
    /// Plain HTTP.
    Off,
}

/// A container runtime whose mirror config is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Runtime {
    Crio,
    Podman,
    Containerd,
    K3s,
    Rke2,
    Docker,
}

/// host0's persistent storage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Storage {
    /// The data disk, as in the image config; none means the appliance
    /// runs from RAM and serves the bundle from the media only.
    #[serde(default)]
    pub data_disk: Option<serde_json::Value>,
    /// Without a data disk: accept pushes into RAM (lost at reboot).
    #[serde(default)]
    pub allow_ram_push: bool,
}

impl ApplianceFile {
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
        Ok(())
    }

    /// Does host0 have a disk to copy the bundle to?
    pub fn has_data_disk(&self) -> bool {
        self.storage
            .data_disk
            .as_ref()
            .is_some_and(|v| !v.is_null())
    }

    /// Pretty JSON with a final newline.
    pub fn render(&self) -> Result<Vec<u8>> {
        let mut out = serde_json::to_vec_pretty(self).context("rendering appliance.json")?;
        out.push(b'\n');
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ApplianceFile {
        ApplianceFile {
            schema: SCHEMA,
            name: "demo".into(),
            version: "0.1.0".into(),
            volume_label: "AIRLIFT_DEMO".into(),
            role: Role::Host0,
            join_token: "ab".repeat(32),
            kernel_release: "6.1.0-test".into(),
            registry: RegistryFile {
                port: 5000,
                tls: TlsMode::Generate,
                tls_cert: None,
                tls_key: None,
                extra_names: vec!["registry.airlift.test".into()],
                push: false,
                allow_delete: false,
            },
            mirrors: vec!["docker.io".into(), "quay.io".into()],
            runtimes: vec![Runtime::Crio, Runtime::Containerd],
            netboot: serde_json::json!({"enabled": false}),
            storage: Storage::default(),
        }
    }

    #[test]
    fn round_trips() {
        let f = sample();
        let bytes = f.render().unwrap();
        let back = ApplianceFile::parse(&bytes, Path::new("a.json")).unwrap();
        assert_eq!(back, f);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["volumeLabel"], "AIRLIFT_DEMO");
        assert_eq!(v["registry"]["tls"], "generate");
        assert_eq!(v["runtimes"][1], "containerd");
        assert!(!f.has_data_disk());
    }

    #[test]
    fn bad_files_name_the_file_and_field() {
        let mut f = sample();
        f.schema = 9;
        let err = ApplianceFile::parse(&f.render().unwrap(), Path::new("/etc/a.json")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("/etc/a.json") && msg.contains("schema is 9"),
            "{msg}"
        );

        let mut f = sample();
        f.join_token = "short".into();
        assert!(format!("{:#}", f.validate().unwrap_err()).contains("joinToken"));

        let mut f = sample();
        f.registry.tls = TlsMode::Provided;
        assert!(format!("{:#}", f.validate().unwrap_err()).contains("tlsCert"));

        let err =
            ApplianceFile::parse(br#"{"schema":1,"bogus":1}"#, Path::new("x.json")).unwrap_err();
        assert!(format!("{err:#}").contains("x.json"));
    }

    #[test]
    fn data_disk_presence() {
        let mut f = sample();
        f.storage.data_disk = Some(serde_json::json!({"device": "/dev/vdb"}));
        assert!(f.has_data_disk());
        f.storage.data_disk = Some(serde_json::Value::Null);
        assert!(!f.has_data_disk());
    }
}
