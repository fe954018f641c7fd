//! The contract between the builder and the appliance: the bundle manifest
//! ([`bundle_manifest`]) and `/etc/airlift/appliance.json`, what the
//! appliance knows about itself at boot. The builder writes it into the
//! initramfs (from the image config); `airlift-firstboot` reads it. One type for both sides, so the
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
//!   "netboot": { ... as in the config ... }, "storage": { "dataDisk": null, ... },
//!   "ha": { "virtualIp": { "address": "10.77.0.50/24", "virtualRouterId": 51 } } }
//! ```

pub mod bundle_manifest;

pub use bundle_manifest::{BundleImage, BundleManifest, Totals};

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

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
    /// Network boot, as in the image config (typed by its reader).
    #[serde(default)]
    pub netboot: serde_json::Value,
    /// host0's persistent storage.
    #[serde(default)]
    pub storage: Storage,
    /// High availability of the registry (a virtual IP); absent in files
    /// written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<Ha>,
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

/// High availability of the registry served by host0 and its replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ha {
    /// One address that keepalived (VRRP) keeps on a healthy registry
    /// machine, for clients that take a single address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_ip: Option<VirtualIp>,
}

/// The floating registry address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualIp {
    /// The address and its subnet's prefix length (`10.77.0.50/24`).
    pub address: IpCidr,
    /// The interface to hold it on; none: the one with an address in the
    /// same subnet, found at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// VRRP's virtual router id (1 to 255), the same on every machine of
    /// the group and unique on the link.
    pub virtual_router_id: u8,
}

/// An IP address with a prefix length: `ADDRESS/PREFIX`
/// (`10.77.0.50/24`, `fd77::50/64`). Serialised as that string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpCidr {
    /// The address itself (not the network's).
    pub addr: IpAddr,
    /// The subnet's prefix length (at most 32 for IPv4, 128 for IPv6).
    pub prefix_len: u8,
}

impl IpCidr {
    /// The largest prefix length of the address's family.
    pub fn max_prefix(&self) -> u8 {
        if self.addr.is_ipv4() {
            32
        } else {
            128
        }
    }

    /// The subnet's mask as a 128-bit number (IPv4 in the low 32 bits).
    fn mask(&self) -> u128 {
        let host_bits = u32::from(self.max_prefix() - self.prefix_len);
        let all = if self.addr.is_ipv4() {
            u128::from(u32::MAX)
        } else {
            u128::MAX
        };
        all.checked_shl(host_bits).map_or(0, |m| m & all)
    }

    /// Is `ip` in this address's subnet (same family, same network bits)?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (bits(self.addr), bits(ip)) {
            (Some((a, fa)), Some((b, fb))) if fa == fb => a & self.mask() == b & self.mask(),
            _ => false,
        }
    }

    /// The subnet itself (`10.77.0.0/24`).
    pub fn network(&self) -> IpCidr {
        let (b, _) = bits(self.addr).unwrap_or((0, true));
        let n = b & self.mask();
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::from((n as u32).to_be_bytes()),
            IpAddr::V6(_) => IpAddr::from(n.to_be_bytes()),
        };
        IpCidr {
            addr,
            prefix_len: self.prefix_len,
        }
    }

    /// Why the address cannot be given to a host (network or broadcast
    /// address of an IPv4 subnet, loopback, multicast, unspecified), if so.
    pub fn unusable_reason(&self) -> Option<&'static str> {
        let ip = self.addr;
        if ip.is_unspecified() {
            return Some("is the unspecified address");
        }
        if ip.is_loopback() {
            return Some("is a loopback address");
        }
        if ip.is_multicast() {
            return Some("is a multicast address");
        }
        if let IpAddr::V4(v4) = ip {
            if self.prefix_len <= 30 {
                let host = u128::from(u32::from(v4)) & !self.mask() & u128::from(u32::MAX);
                if host == 0 {
                    return Some("is its subnet's network address");
                }
                if host == !self.mask() & u128::from(u32::MAX) {
                    return Some("is its subnet's broadcast address");
                }
            }
        }
        None
    }
}

/// An address as a number and whether it is IPv4.
fn bits(ip: IpAddr) -> Option<(u128, bool)> {
    match ip {
        IpAddr::V4(v4) => Some((u128::from(u32::from(v4)), true)),
        IpAddr::V6(v6) => Some((u128::from(v6), false)),
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpCidr {
    type Err = String;

    fn from_str(s: &str) -> Result<IpCidr, String> {
        let (a, l) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not ADDRESS/PREFIX; write e.g. 10.77.0.50/24 or fd77::50/64")
        })?;
        let addr: IpAddr = a.parse().map_err(|_| {
            format!("{s:?}: {a:?} is not an IPv4 or IPv6 address; write e.g. 10.77.0.50/24")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len: u8 = l.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
            format!(
                "{s:?}: the prefix length {l:?} is not a number from 0 to {max}; write the \
                 subnet's, e.g. /24"
            )
        })?;
        Ok(IpCidr { addr, prefix_len })
    }
}

impl TryFrom<String> for IpCidr {
    type Error = String;

    fn try_from(s: String) -> Result<IpCidr, String> {
        s.parse()
    }
}

impl From<IpCidr> for String {
    fn from(c: IpCidr) -> String {
        c.to_string()
    }
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
            ha: None,
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

    #[test]
    fn files_without_ha_still_parse_and_ha_round_trips() {
        let f = sample();
        let mut v: serde_json::Value = serde_json::from_slice(&f.render().unwrap()).unwrap();
        assert!(v.get("ha").is_none(), "no ha key when unset");
        v.as_object_mut().unwrap().remove("ha");
        let back = ApplianceFile::parse(&serde_json::to_vec(&v).unwrap(), Path::new("a")).unwrap();
        assert_eq!(back.ha, None);
        assert!(back.virtual_ip().is_none());

        let mut f = sample();
        f.ha = Some(Ha {
            virtual_ip: Some(VirtualIp {
                address: "10.77.0.50/24".parse().unwrap(),
                interface: None,
                virtual_router_id: 51,
            }),
        });
        let bytes = f.render().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["ha"]["virtualIp"]["address"], "10.77.0.50/24");
        assert_eq!(v["ha"]["virtualIp"]["virtualRouterId"], 51);
        assert_eq!(ApplianceFile::parse(&bytes, Path::new("a")).unwrap(), f);

        let bad = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("10.77.0.50/24", "10.77.0.50/33");
        let err = ApplianceFile::parse(bad.as_bytes(), Path::new("/etc/a.json")).unwrap_err();
        assert!(format!("{err:#}").contains("prefix length"), "{err:#}");
        let zero = String::from_utf8(bytes)
            .unwrap()
            .replace("\"virtualRouterId\": 51", "\"virtualRouterId\": 0");
        let err = ApplianceFile::parse(zero.as_bytes(), Path::new("a")).unwrap_err();
        assert!(
            format!("{err:#}").contains("virtualRouterId is 0"),
            "{err:#}"
        );
    }

    #[test]
    fn cidrs_parse_and_know_their_subnet() {
        let c: IpCidr = "10.77.0.50/24".parse().unwrap();
        assert_eq!(c.to_string(), "10.77.0.50/24");
        assert_eq!(c.network().to_string(), "10.77.0.0/24");
        assert!(c.contains("10.77.0.1".parse().unwrap()));
        assert!(!c.contains("10.77.1.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
        assert_eq!(c.unusable_reason(), None);
        let v6: IpCidr = "fd77::50/64".parse().unwrap();
        assert_eq!(v6.network().to_string(), "fd77::/64");
        assert!(v6.contains("fd77::1".parse().unwrap()));
        assert!(!v6.contains("fd78::1".parse().unwrap()));
        assert!(!v6.contains("10.77.0.1".parse().unwrap()));
        let all: IpCidr = "10.1.2.3/0".parse().unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        let host: IpCidr = "10.1.2.3/32".parse().unwrap();
        assert!(host.contains("10.1.2.3".parse().unwrap()));
        assert!(!host.contains("10.1.2.4".parse().unwrap()));
        for (s, why) in [
            ("10.77.0.0/24", "network address"),
            ("10.77.0.255/24", "broadcast address"),
            ("127.0.0.5/8", "loopback"),
            ("0.0.0.0/8", "unspecified"),
            ("224.0.0.18/24", "multicast"),
        ] {
            let c: IpCidr = s.parse().unwrap();
            assert!(c.unusable_reason().unwrap().contains(why), "{s}");
        }
        for bad in [
            "10.77.0.50",
            "10.77.0.50/33",
            "fd77::1/129",
            "10.77.0/24",
            "x/1",
            "1.2.3.4/-1",
        ] {
            assert!(bad.parse::<IpCidr>().is_err(), "{bad}");
        }
    }
}
