//! Network boot served by host0.
//!
//! - [`config`]: the appliance file's `netboot` section, typed; per-MAC profiles.
//! - [`address`]: host0's static address on the netboot link (`airlift.address=`).
//! - [`dnsmasq`]: dnsmasq's config (proxyDHCP or full DHCP, TFTP, chain-load to HTTP).
//! - [`grub`], [`tftp`]: UEFI machines under Secure Boot boot shim and the
//!   signed network GRUB over TFTP; its per-MAC configs, and the TFTP folder.
//! - [`track`]: dnsmasq's log (DHCP answers, GRUB config fetches) into the node table.
//! - [`supervise`]: dnsmasq as a child, restarted with backoff, its log forwarded.
//! - [`script`], [`BootFiles`]: the per-MAC iPXE script and the boot files, served
//!   over plain HTTP by [`crate::api::netboot`].
//! - [`nodes`]: every machine seen (DHCP, script, join), `GET /airlift/v1/nodes`.
//!
//! host0 calls [`prepare`] before making its certificate (so the link
//! address is in it) and [`crate::api::netboot::attach`] once its app is built.

pub mod address;
pub mod boot_files;
pub mod config;
pub mod dnsmasq;
pub mod grub;
pub mod nodes;
pub mod script;
pub mod supervise;
pub mod tftp;
pub mod track;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlift_appliance::ApplianceFile;
use anyhow::{Context, Result};
use axum::Router;

pub use boot_files::BootFiles;
pub use config::{DhcpMode, Netboot};
pub use nodes::Nodes;

use crate::services::mirrors::Scheme;
use crate::sys::console::milestone;
use address::Cidr;
use dnsmasq::DnsmasqParams;

/// Where the dnsmasq config, leases and TFTP folder go.
pub const STATE_DIR: &str = "/run/airlift/netboot";
/// The dnsmasq binary in the base.
pub const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// Everything netboot runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Netboot,
    /// The media's root (with `boot/` and `ipxe/`).
    pub media_root: PathBuf,
    pub registry_port: u16,
    pub registry_scheme: Scheme,
    pub token: String,
    /// `sha256:<hex>` of the CA, put on the nodes' kernel command line.
    pub ca_fingerprint: Option<String>,
    /// The boot files' plain-HTTP address.
    pub http_listen: SocketAddr,
    pub state_dir: PathBuf,
    pub dnsmasq: PathBuf,
    /// host0's addresses on the link (`airlift.address=`); empty: the
    /// interface's current IPv4 address.
    pub addresses: Vec<Cidr>,
}

/// A running netboot service; its tasks keep running when this is dropped.
#[derive(Debug, Clone)]
pub struct NetbootHandle {
    /// The node table.
    pub nodes: Nodes,
    /// The boot files' bound address.
    pub http: SocketAddr,
    /// The dnsmasq config written (None: `dhcp: off`).
    pub dnsmasq_config: Option<PathBuf>,
}

/// The kernel command line of this boot.
fn proc_cmdline() -> String {
    std::fs::read_to_string("/proc/cmdline").unwrap_or_default()
}

/// Give host0 its link address before anything reads its addresses
/// (a no-op unless netboot is on and `airlift.address=` is given).
/// Failures are logged: the registry serves anyway.
pub fn prepare(file: &ApplianceFile) {
    let run = || -> Result<()> {
        let cfg = config::checked(&file.netboot)?;
        let addrs = address::from_cmdline(&proc_cmdline())?;
        if !cfg.enabled || addrs.is_empty() {
            return Ok(());
        }
        let iface = cfg.interface.as_deref().context(
            "airlift.address= is on the kernel command line but netboot.interface is not set",
        )?;
        address::configure(Path::new("/"), iface, &addrs, Duration::from_secs(20))
    };
    if let Err(e) = run() {
        milestone(&format!("AIRLIFT-NETBOOT-FAILED the link address: {e:#}"));
    }
}

/// The media root for a bundle folder (`<media>/airlift/bundle`).
pub fn media_root(bundle_dir: &Path) -> PathBuf {
    bundle_dir
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| bundle_dir.to_path_buf(), Path::to_path_buf)
}

/// The settings netboot starts with when the appliance file enables it
/// (None when it is off; a bad section is logged and leaves it off).
pub fn settings_for(
    file: &ApplianceFile,
    bundle_dir: &Path,
    registry_port: u16,
    registry_scheme: Scheme,
    ca_fingerprint: Option<String>,
) -> Option<Settings> {
    let config = match config::checked(&file.netboot) {
        Ok(c) if c.enabled => c.clone(),
        Ok(_) => return None,
        Err(e) => {
            milestone(&format!("AIRLIFT-NETBOOT-FAILED {e:#}"));
            return None;
        }
    };
    let settings = Settings {
        config,
        media_root: media_root(bundle_dir),
        registry_port,
        registry_scheme,
        token: file.join_token.clone(),
        ca_fingerprint,
        http_listen: SocketAddr::from(([0, 0, 0, 0], config::DEFAULT_HTTP_PORT)),
        state_dir: PathBuf::from(STATE_DIR),
        dnsmasq: PathBuf::from(DNSMASQ),
        addresses: address::from_cmdline(&proc_cmdline()).unwrap_or_default(),
    };
    Some(settings)
}

/// The IPv4 addresses (with prefix) of `iface` now.
fn iface_ipv4(iface: &str) -> Vec<Cidr> {
    crate::sys::net::addresses()
        .into_iter()
        .filter(|a| a.interface == iface && a.ip.is_ipv4())
        .filter_map(|a| {
            Some(Cidr {
                ip: a.ip,
                prefix_len: a.prefix_len?,
            })
        })
        .collect()
}

/// Start the boot-file server and (unless `dhcp: off`) dnsmasq.
pub async fn start(
    s: Settings,
    boot_router: fn(Arc<BootFiles>) -> Router,
) -> Result<NetbootHandle> {
    let nodes = Nodes::new();
    let http = serve_boot_files(&s, &nodes, boot_router).await?;
    let mut dnsmasq_config = None;
    if s.config.dhcp != DhcpMode::Off {
        let params = dnsmasq_params(&s, http.port())?;
        let text = dnsmasq::render(&params).context("rendering the dnsmasq config")?;
        let conf = s.state_dir.join("dnsmasq.conf");
        airlift_oci::atomic::write(&conf, text.as_bytes())?;
        let track = track::Track {
            nodes: nodes.clone(),
            netboot: Arc::new(s.config.clone()),
        };
        tokio::spawn(supervise::supervise(s.dnsmasq.clone(), conf.clone(), track));
        dnsmasq_config = Some(conf);
        milestone(&format!(
            "AIRLIFT-NETBOOT-READY http={} dhcp={} interface={}",
            params.http_base,
            serde_json::to_value(s.config.dhcp)?
                .as_str()
                .unwrap_or_default(),
            params.interface
        ));
    } else {
        milestone(&format!(
            "AIRLIFT-NETBOOT-READY http={http} dhcp=off (boot files only)"
        ));
    }
    Ok(NetbootHandle {
        nodes,
        http,
        dnsmasq_config,
    })
}

/// Bind the plain-HTTP boot port and serve `boot_router` on it in the
/// background; the bound address.
async fn serve_boot_files(
    s: &Settings,
    nodes: &Nodes,
    boot_router: fn(Arc<BootFiles>) -> Router,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(s.http_listen)
        .await
        .with_context(|| format!("binding the netboot HTTP port {}", s.http_listen))?;
    let http = listener.local_addr()?;
    let files = Arc::new(BootFiles {
        config: s.config.clone(),
        media_root: s.media_root.clone(),
        registry_port: s.registry_port,
        registry_scheme: s.registry_scheme,
        token: s.token.clone(),
        ca_fingerprint: s.ca_fingerprint.clone(),
        root_sha256: boot_files::root_image_sha256(&s.media_root),
        nodes: nodes.clone(),
    });
    for name in ["vmlinuz", "initrd.img"] {
        if let Some(p) = files.file(name).filter(|p| !p.is_file()) {
            tracing::warn!("{} is missing: netbooting machines will fail", p.display());
        }
    }
    let app = boot_router(files);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        {
            tracing::error!("the netboot HTTP server stopped: {e}");
        }
    });
    Ok(http)
}

/// dnsmasq's parameters: the interface and its IPv4 address, the range,
/// the fixed hosts, and the TFTP folder (filled from the media here).
fn dnsmasq_params(s: &Settings, http_port: u16) -> Result<DnsmasqParams> {
    let iface = s
        .config
        .interface
        .clone()
        .context("netboot.interface is not set; name the interface to serve DHCP on")?;
    let v4 = s
        .addresses
        .iter()
        .copied()
        .find(|a| a.ip.is_ipv4())
        .or_else(|| iface_ipv4(&iface).into_iter().next())
        .with_context(|| {
            format!(
                "{iface} has no IPv4 address; give one with airlift.address=ADDR/LEN on \
                 the kernel command line (base.kernelArgs)"
            )
        })?;
    let IpAddr::V4(ip4) = v4.ip else {
        unreachable!("filtered to IPv4")
    };
    let range = match (&s.config.range, s.config.dhcp) {
        (Some(r), DhcpMode::Full) => Some(config::parse_range(r)?),
        _ => None,
    };
    let tftp = s.state_dir.join("tftp");
    let http_base = format!("http://{ip4}:{http_port}");
    let server = format!("{}://{ip4}:{}", s.registry_scheme, s.registry_port);
    let root_sha256 = boot_files::root_image_sha256(&s.media_root);
    let grub_files = grub::files(
        &s.config,
        &grub::Common {
            http_base: &http_base,
            server: &server,
            token: &s.token,
            ca_fingerprint: s.ca_fingerprint.as_deref(),
            root_sha256: root_sha256.as_deref(),
        },
    );
    tftp::fill(&s.media_root, &tftp, &grub_files)?;
    Ok(DnsmasqParams {
        mode: s.config.dhcp,
        interface: iface,
        address: ip4,
        prefix_len: v4.prefix_len,
        range,
        hosts: s
            .config
            .nodes
            .iter()
            .filter_map(|n| Some((config::normalise_mac(&n.mac).ok()?, n.hostname.clone())))
            .collect(),
        tftp_root: tftp,
        lease_file: s.state_dir.join("dnsmasq.leases"),
        http_base,
        router_advertisements: s.config.dhcp == DhcpMode::Full
            && s.addresses.iter().any(|a| a.ip.is_ipv6()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_root_of_the_bundle() {
        assert_eq!(
            media_root(Path::new("/run/airlift/media/airlift/bundle")),
            Path::new("/run/airlift/media")
        );
    }
}
