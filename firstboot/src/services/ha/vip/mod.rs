//! The registry's virtual IP (`ha.virtualIp` in the appliance file): one
//! address that keepalived (VRRP) keeps on a healthy registry machine,
//! host0 first, then a replica. airlift writes keepalived's config and
//! the health check it runs; keepalived does the rest (no VRRP of our own).
//!
//! - [`keepalived::render`]: the config (pure).
//! - [`health`]: `airlift-firstboot health`, the check keepalived runs.
//! - [`apply`]: on host0 and replicas at boot: pick the interface, write
//!   `/etc/keepalived/keepalived.conf`, start or reload keepalived.
//! - [`address`]: the virtual IP, for the certificate's SANs.

pub mod health;
pub mod interface;
pub mod keepalived;
pub mod service;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use airlift_appliance::{ApplianceFile, IpCidr, TlsMode};
use anyhow::{Context, Result};

pub use airlift_appliance::Role;
pub use service::Service;

/// keepalived's config file, relative to the root.
pub const CONFIG_PATH: &str = "etc/keepalived/keepalived.conf";
/// The never-overwritten backup of a config that was there first.
pub const ORIG_SUFFIX: &str = crate::services::mirrors::apply::ORIG_SUFFIX;
/// The keepalived binary, relative to the root.
pub const KEEPALIVED_BINARY: &str = "usr/sbin/keepalived";
/// `airlift-firstboot` on the appliance, which keepalived runs as the check.
pub const FIRSTBOOT_BINARY: &str = "/usr/bin/airlift-firstboot";
/// Seconds the check waits for the registry (below keepalived's own timeout).
pub const CHECK_REQUEST_SECS: u32 = 1;

/// The virtual IP as one machine holds it: the interface resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipSettings {
    /// The address and its subnet's prefix length.
    pub address: IpCidr,
    /// The interface keepalived holds it on.
    pub interface: String,
    /// VRRP's virtual router id (1 to 255).
    pub virtual_router_id: u8,
}

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The appliance file has no `ha.virtualIp`: nothing to do.
    Off,
    /// This machine's role does not serve the registry: nothing to do.
    NotARegistry(Role),
    /// keepalived's config is in place.
    Configured {
        /// The config file (under the root).
        config: PathBuf,
        /// What it holds.
        settings: VipSettings,
        /// Was the file written (false: it already had this content)?
        changed: bool,
        /// What became of the keepalived service.
        service: Service,
    },
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Off => write!(f, "none configured"),
            Applied::NotARegistry(role) => write!(f, "not held by a {role:?} machine"),
            Applied::Configured {
                config,
                settings,
                changed,
                service,
            } => write!(
                f,
                "{} on {} (router id {}), {} {}, keepalived {}",
                settings.address,
                settings.interface,
                settings.virtual_router_id,
                if *changed { "wrote" } else { "unchanged" },
                config.display(),
                match service {
                    Service::Started => "started".to_string(),
                    Service::Reloaded => "reloaded".to_string(),
                    Service::Running => "running".to_string(),
                    Service::NotInstalled => "NOT INSTALLED: the address is not held".to_string(),
                    Service::NotStarted(why) => format!("not started ({why})"),
                }
            ),
        }
    }
}

/// The virtual IP's address, when the file has one (for certificates).
pub fn address(file: &ApplianceFile) -> Option<IpAddr> {
    file.virtual_ip().map(|v| v.address.addr)
}

/// The command keepalived runs to check this machine's registry.
pub fn health_command(file: &ApplianceFile) -> String {
    let scheme = if file.registry.tls == TlsMode::Off {
        "http"
    } else {
        "https"
    };
    check_command(FIRSTBOOT_BINARY, scheme, file.registry.port)
}

/// `BINARY health` against the registry at `SCHEME://127.0.0.1:PORT`
/// (the machine's own registry, whichever address holds the VIP).
pub fn check_command(binary: &str, scheme: &str, port: u16) -> String {
    format!("{binary} health --url {scheme}://127.0.0.1:{port} --timeout-secs {CHECK_REQUEST_SECS}")
}

/// The settings of `file`'s virtual IP on this machine: the configured
/// interface, else the one `addrs` show in the address's subnet.
pub fn settings(file: &ApplianceFile, addrs: &[(String, IpAddr)]) -> Result<Option<VipSettings>> {
    let Some(v) = file.virtual_ip() else {
        return Ok(None);
    };
    let interface = match &v.interface {
        Some(i) => i.clone(),
        None => interface::pick(&v.address, addrs)?,
    };
    Ok(Some(VipSettings {
        address: v.address,
        interface,
        virtual_router_id: v.virtual_router_id,
    }))
}

/// Hold `file`'s virtual IP with keepalived on this machine (host0 or a
/// replica) under `root`: write the config (the first time, a config that
/// was there is kept as `keepalived.conf.airlift-orig`; the same content is
/// not written again), then enable and start keepalived, or reload it when
/// it runs and the config changed. Without keepalived installed the config
/// is still written and the outcome says so (with a warning in the log):
/// the base root filesystem needs Debian's `keepalived` package.
pub fn apply(file: &ApplianceFile, role: Role, root: &Path) -> Result<Applied> {
    if file.virtual_ip().is_none() {
        return Ok(Applied::Off);
    }
    if role == Role::Join {
        return Ok(Applied::NotARegistry(role));
    }
    let settings = settings(file, &crate::sys::net::named_addresses())?
        .context("the virtual IP disappeared from the appliance file")?;
    let content = keepalived::render(&settings, role, &health_command(file));
    let config = root.join(CONFIG_PATH);
    let changed = write_config(&config, &content)?;
    if changed {
        tracing::info!(
            "virtual IP {} on {}: wrote {}",
            settings.address,
            settings.interface,
            config.display()
        );
    }
    let service = service::ensure(root, changed)?;
    if service == Service::NotInstalled {
        tracing::warn!(
            "the virtual IP {} is not held on this machine: keepalived is not installed \
             ({} is missing); add Debian's keepalived package to the appliance's base root \
             filesystem",
            settings.address,
            root.join(KEEPALIVED_BINARY).display()
        );
    }
    Ok(Applied::Configured {
        config,
        settings,
        changed,
        service,
    })
}

/// [`apply`] in the background, as host0 and a replica start: the
/// registry does not wait for keepalived; the outcome or the error is
/// logged.
pub fn apply_in_background(file: &ApplianceFile, role: Role, root: &Path) {
    let (file, root) = (file.clone(), root.to_path_buf());
    tokio::task::spawn_blocking(move || match apply(&file, role, &root) {
        Ok(Applied::Off) => {}
        Ok(a) => tracing::info!("virtual IP: {a}"),
        Err(e) => tracing::error!("virtual IP: {e:#}"),
    });
}

/// Write `content` to `path` unless it is there already; keep a file
/// airlift did not write as `<path>.airlift-orig` (once). Returns whether
/// it wrote.
fn write_config(path: &Path, content: &str) -> Result<bool> {
    let existing = match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if existing.as_deref() == Some(content.as_bytes()) {
        return Ok(false);
    }
    if let Some(old) = &existing {
        let mut orig = path.as_os_str().to_owned();
        orig.push(ORIG_SUFFIX);
        let orig = PathBuf::from(orig);
        if !old.starts_with(keepalived::HEADER.as_bytes()) && !orig.exists() {
            airlift_oci::atomic::write_with_mode(&orig, old, 0o644)
                .with_context(|| format!("keeping the original {}", path.display()))?;
        }
    }
    airlift_oci::atomic::write_with_mode(path, content.as_bytes(), 0o644)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_appliance::{Ha, VirtualIp};

    fn file(interface: Option<&str>) -> ApplianceFile {
        let mut f: ApplianceFile = serde_json::from_value(serde_json::json!({
            "schema": 1, "name": "t", "version": "1", "volumeLabel": "T", "role": "host0",
            "joinToken": "ab".repeat(32), "kernelRelease": "6.1",
            "registry": {"port": 5000, "tls": "generate", "push": false, "allowDelete": false},
            "mirrors": [], "runtimes": [],
        }))
        .unwrap();
        f.ha = Some(Ha {
            virtual_ip: Some(VirtualIp {
                address: "10.77.0.50/24".parse().unwrap(),
                interface: interface.map(str::to_string),
                virtual_router_id: 51,
            }),
        });
        f
    }

    #[test]
    fn address_and_health_command() {
        let mut f = file(None);
        assert_eq!(address(&f), Some("10.77.0.50".parse().unwrap()));
        assert_eq!(
            health_command(&f),
            "/usr/bin/airlift-firstboot health --url https://127.0.0.1:5000 --timeout-secs 1"
        );
        f.registry.tls = TlsMode::Off;
        f.registry.port = 8080;
        assert!(health_command(&f).contains(" --url http://127.0.0.1:8080 "));
        f.ha = None;
        assert_eq!(address(&f), None);
    }

    #[test]
    fn settings_resolve_the_interface() {
        let addrs = vec![("eth1".to_string(), "10.77.0.1".parse().unwrap())];
        let s = settings(&file(None), &addrs).unwrap().unwrap();
        assert_eq!(s.interface, "eth1");
        let s = settings(&file(Some("bond0")), &addrs).unwrap().unwrap();
        assert_eq!(s.interface, "bond0");
        let e = settings(&file(None), &[]).unwrap_err();
        assert!(format!("{e:#}").contains("10.77.0.0/24"), "{e:#}");
    }

    #[test]
    fn apply_writes_once_keeps_the_original_and_reports_no_keepalived() {
        let root = tempfile::tempdir().unwrap();
        let f = file(Some("eth9"));
        let conf = root.path().join(CONFIG_PATH);
        std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
        std::fs::write(&conf, "# the user's own\n").unwrap();

        let a = apply(&f, Role::Host0, root.path()).unwrap();
        let Applied::Configured {
            config,
            settings,
            changed,
            service,
        } = a
        else {
            panic!("{a:?}")
        };
        assert_eq!(config, conf);
        assert!(changed);
        assert_eq!(service, Service::NotInstalled);
        let shown = Applied::Configured {
            config: config.clone(),
            settings: settings.clone(),
            changed,
            service: service.clone(),
        }
        .to_string();
        assert!(
            shown.starts_with("10.77.0.50/24 on eth9 (router id 51), wrote "),
            "{shown}"
        );
        assert!(
            shown.ends_with("keepalived NOT INSTALLED: the address is not held"),
            "{shown}"
        );
        assert_eq!(settings.interface, "eth9");
        let text = std::fs::read_to_string(&conf).unwrap();
        assert_eq!(
            text,
            keepalived::render(&settings, Role::Host0, &health_command(&f))
        );
        let orig = root
            .path()
            .join("etc/keepalived/keepalived.conf.airlift-orig");
        assert_eq!(
            std::fs::read_to_string(&orig).unwrap(),
            "# the user's own\n"
        );

        // Again: nothing written.
        let Applied::Configured { changed, .. } = apply(&f, Role::Host0, root.path()).unwrap()
        else {
            panic!()
        };
        assert!(!changed);
        // As a replica: rewritten, and the original backup is left alone.
        let Applied::Configured { changed, .. } = apply(&f, Role::Replica, root.path()).unwrap()
        else {
            panic!()
        };
        assert!(changed);
        assert!(std::fs::read_to_string(&conf)
            .unwrap()
            .contains("priority 100"));
        assert_eq!(
            std::fs::read_to_string(&orig).unwrap(),
            "# the user's own\n"
        );

        // keepalived installed but this root is not the running system:
        // the service is left alone.
        let bin = root.path().join(KEEPALIVED_BINARY);
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "").unwrap();
        let Applied::Configured { service, .. } = apply(&f, Role::Replica, root.path()).unwrap()
        else {
            panic!()
        };
        assert!(matches!(service, Service::NotStarted(_)), "{service:?}");
    }

    #[test]
    fn nothing_to_do_without_a_vip_or_on_a_plain_node() {
        let root = tempfile::tempdir().unwrap();
        let mut f = file(Some("eth0"));
        assert_eq!(
            apply(&f, Role::Join, root.path()).unwrap(),
            Applied::NotARegistry(Role::Join)
        );
        f.ha = None;
        assert_eq!(apply(&f, Role::Host0, root.path()).unwrap(), Applied::Off);
        assert!(!root.path().join("etc").exists());
    }
}
