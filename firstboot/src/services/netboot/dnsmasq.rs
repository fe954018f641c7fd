//! dnsmasq's config for netboot (pure): DHCP in `proxy` or `full` mode,
//! its built-in TFTP for the first stage, and the chain-load: a client
//! that already is iPXE (QEMU's NIC ROM, our `undionly.kpxe`, a UEFI ROM
//! with Secure Boot off) gets the HTTP script URL; a BIOS PXE client gets
//! `undionly.kpxe`; a UEFI firmware's own PXE client (client-arch 7 or 9,
//! not iPXE: what Secure Boot leaves, since it refuses unsigned iPXE)
//! gets shim, which loads the signed network GRUB ([`super::grub`]).
//! No DNS (`port=0`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::config::DhcpMode;

/// The TFTP file names: BIOS (also under the `.0` name proxyDHCP's
/// `pxe-service` asks for) and x86-64 UEFI.
pub const BIOS_FILE: &str = "undionly.kpxe";
/// iPXE for UEFI, kept on TFTP for machines that chain to it by hand;
/// DHCP hands UEFI clients [`SHIM_FILE`].
pub const EFI_FILE: &str = "ipxe.efi";
/// The UEFI first stage: Microsoft-signed shim.
pub const SHIM_FILE: &str = "shimx64.efi";
/// What shim loads from its own folder: the signed network GRUB.
pub const GRUB_FILE: &str = "grubx64.efi";

/// What the config is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqParams {
    /// `proxy` or `full` (`off` renders nothing: no dnsmasq).
    pub mode: DhcpMode,
    /// The interface served on.
    pub interface: String,
    /// host0's address on it.
    pub address: Ipv4Addr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// For `full`: the addresses handed out.
    pub range: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Known machines: MAC and host name.
    pub hosts: Vec<(String, Option<String>)>,
    /// The folder TFTP serves (iPXE, shim, GRUB, its configs, kernel, initrd).
    pub tftp_root: PathBuf,
    /// The lease file (`full`).
    pub lease_file: PathBuf,
    /// `http://HOST:PORT` of the boot files.
    pub http_base: String,
    /// Send IPv6 router advertisements on the interface (its global IPv6
    /// prefix): iPXE otherwise waits ~14 s for IPv6 autoconfiguration.
    pub router_advertisements: bool,
}

/// The netmask for a prefix length.
pub fn netmask(prefix_len: u8) -> Ipv4Addr {
    let bits = u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(bits)
}

/// The network address of `addr/prefix_len`.
pub fn network(addr: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(addr) & u32::from(netmask(prefix_len)))
}

/// The iPXE script URL handed to iPXE clients; iPXE fills in `${net0/mac}`.
pub fn script_url(http_base: &str) -> String {
    format!("{http_base}/boot/ipxe?mac=${{net0/mac}}")
}

/// The config file's text (None for `off`).
pub fn render(p: &DnsmasqParams) -> Option<String> {
    if p.mode == DhcpMode::Off {
        return None;
    }
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(
        w,
        "# Written by airlift-firstboot (netboot); a restart replaces this file."
    );
    let _ = writeln!(w, "# No DNS: DHCP and TFTP only.");
    let _ = writeln!(w, "port=0");
    let _ = writeln!(w, "interface={}", p.interface);
    let _ = writeln!(w, "bind-interfaces");
    let _ = writeln!(w, "keep-in-foreground");
    let _ = writeln!(w, "log-facility=-");
    let _ = writeln!(w, "pid-file=");
    let _ = writeln!(w, "user=root");
    let _ = writeln!(w, "no-resolv");
    let _ = writeln!(w, "no-hosts");
    let _ = writeln!(w, "dhcp-leasefile={}", p.lease_file.display());
    let _ = writeln!(w);
    let _ = writeln!(
        w,
        "# Clients that already run iPXE (QEMU's NIC ROM, or our chain-loaded one) get the script;"
    );
    let _ = writeln!(
        w,
        "# other UEFI clients (Secure Boot) get shim, then the signed network GRUB."
    );
    let _ = writeln!(w, "dhcp-userclass=set:ipxe,iPXE");
    let _ = writeln!(w, "dhcp-match=set:ipxe,175");
    let _ = writeln!(w, "dhcp-match=set:efi64,option:client-arch,7");
    let _ = writeln!(w, "dhcp-match=set:efi64,option:client-arch,9");
    let _ = writeln!(w);
    let _ = writeln!(w, "enable-tftp");
    let _ = writeln!(w, "tftp-root={}", p.tftp_root.display());
    let _ = writeln!(w);
    let script = script_url(&p.http_base);
    match p.mode {
        DhcpMode::Proxy => {
            let _ = writeln!(
                w,
                "# proxyDHCP: the site's server hands out addresses, we add the boot details."
            );
            let _ = writeln!(w, "dhcp-range={},proxy", network(p.address, p.prefix_len));
            let _ = writeln!(w, "pxe-prompt=\"airlift netboot\",0");
            let _ = writeln!(
                w,
                "pxe-service=tag:!ipxe,x86PC,\"airlift (BIOS)\",{BIOS_FILE}"
            );
            let _ = writeln!(
                w,
                "pxe-service=tag:!ipxe,X86-64_EFI,\"airlift (UEFI)\",{SHIM_FILE}"
            );
            let _ = writeln!(
                w,
                "pxe-service=tag:!ipxe,BC_EFI,\"airlift (UEFI)\",{SHIM_FILE}"
            );
            let _ = writeln!(w, "dhcp-boot=tag:ipxe,{script}");
        }
        DhcpMode::Full => {
            let _ = writeln!(w, "# The only DHCP server on this network.");
            let _ = writeln!(w, "dhcp-authoritative");
            if let Some((first, last)) = p.range {
                let _ = writeln!(w, "dhcp-range={first},{last},{},1h", netmask(p.prefix_len));
            }
            let _ = writeln!(w, "# An isolated network: no router, no DNS server.");
            let _ = writeln!(w, "dhcp-option=option:router");
            let _ = writeln!(w, "dhcp-option=option:dns-server");
            for (mac, name) in &p.hosts {
                match name {
                    Some(n) => {
                        let _ = writeln!(w, "dhcp-host={mac},{n}");
                    }
                    None => {
                        let _ = writeln!(w, "dhcp-host={mac}");
                    }
                }
            }
            let _ = writeln!(w, "dhcp-boot=tag:!ipxe,tag:efi64,{SHIM_FILE}");
            let _ = writeln!(w, "dhcp-boot=tag:!ipxe,tag:!efi64,{BIOS_FILE}");
            let _ = writeln!(w, "dhcp-boot=tag:ipxe,{script}");
        }
        DhcpMode::Off => unreachable!("handled above"),
    }
    if p.router_advertisements {
        let _ = writeln!(w);
        let _ = writeln!(
            w,
            "# IPv6 router advertisements, so iPXE does not wait for IPv6 autoconfiguration."
        );
        let _ = writeln!(w, "enable-ra");
        let _ = writeln!(w, "dhcp-range=::,constructor:{},ra-only", p.interface);
    }
    Some(o)
}

/// What a dnsmasq log line says about a client, if anything:
/// `DHCPACK(eth0) 10.77.0.100 52:54:00:a1:00:01 node-1` gives the MAC and
/// address; `PXE(eth0) 52:54:00:…` (proxy) the MAC alone.
pub fn parse_log_line(line: &str) -> Option<(String, Option<Ipv4Addr>)> {
    let rest = line.split("dnsmasq-dhcp").nth(1).unwrap_or(line);
    let mut words = rest.split_whitespace().skip_while(|w| {
        !(w.starts_with("DHCPACK(") || (w.starts_with("PXE(") && !w.contains("tftp")))
    });
    let kind = words.next()?;
    let mut ip = None;
    let mut mac = None;
    for word in words.take(2) {
        if let Ok(a) = word.parse::<Ipv4Addr>() {
            ip = Some(a);
        } else if let Ok(m) = super::config::normalise_mac(word) {
            mac = Some(m);
        }
    }
    let _ = kind;
    mac.map(|m| (m, ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(mode: DhcpMode) -> DnsmasqParams {
        DnsmasqParams {
            mode,
            interface: "eth0".into(),
            address: "10.77.0.1".parse().unwrap(),
            prefix_len: 24,
            range: Some((
                "10.77.0.100".parse().unwrap(),
                "10.77.0.150".parse().unwrap(),
            )),
            hosts: vec![
                ("52:54:00:a1:00:01".into(), Some("node-1".into())),
                ("52:54:00:a1:00:02".into(), None),
            ],
            tftp_root: "/run/airlift/netboot/tftp".into(),
            lease_file: "/run/airlift/netboot/dnsmasq.leases".into(),
            http_base: "http://10.77.0.1:8080".into(),
            router_advertisements: false,
        }
    }

    fn golden(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/services/netboot/testdata")
            .join(name);
        if std::env::var_os("AIRLIFT_BLESS").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (AIRLIFT_BLESS=1 writes it)", path.display()));
        assert_eq!(
            text,
            want,
            "{} differs (AIRLIFT_BLESS=1 rewrites it)",
            path.display()
        );
    }

    #[test]
    fn uefi_firmware_gets_shim_and_ipxe_the_script() {
        let text = render(&params(DhcpMode::Full)).unwrap();
        assert!(
            text.contains("dhcp-boot=tag:!ipxe,tag:efi64,shimx64.efi\n"),
            "{text}"
        );
        assert!(
            text.contains("dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe\n"),
            "{text}"
        );
        assert!(
            text.contains("dhcp-boot=tag:ipxe,http://10.77.0.1:8080/boot/ipxe?mac=${net0/mac}\n")
        );
        assert!(!text.contains(EFI_FILE), "{text}");
    }

    #[test]
    fn full_mode_golden() {
        golden(
            "dnsmasq-full.conf",
            &render(&params(DhcpMode::Full)).unwrap(),
        );
        let mut p = params(DhcpMode::Full);
        p.router_advertisements = true;
        golden("dnsmasq-full-ra.conf", &render(&p).unwrap());
    }

    #[test]
    fn proxy_mode_golden() {
        let mut p = params(DhcpMode::Proxy);
        p.address = "192.168.7.23".parse().unwrap();
        p.prefix_len = 20;
        p.range = None;
        let text = render(&p).unwrap();
        assert!(text.contains("dhcp-range=192.168.0.0,proxy\n"), "{text}");
        assert!(!text.contains("dhcp-authoritative"));
        // UEFI firmware PXE (Secure Boot) gets shim; iPXE keeps the script.
        for csa in ["X86-64_EFI", "BC_EFI"] {
            assert!(
                text.contains(&format!(
                    "pxe-service=tag:!ipxe,{csa},\"airlift (UEFI)\",{SHIM_FILE}\n"
                )),
                "{text}"
            );
        }
        assert!(!text.contains(EFI_FILE), "{text}");
        golden("dnsmasq-proxy.conf", &text);
        assert_eq!(render(&params(DhcpMode::Off)), None);
    }

    #[test]
    fn masks() {
        assert_eq!(netmask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask(0), Ipv4Addr::new(0, 0, 0, 0));
        assert_eq!(netmask(32), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(
            network("10.77.3.9".parse().unwrap(), 16),
            Ipv4Addr::new(10, 77, 0, 0)
        );
    }

    #[test]
    fn log_lines() {
        assert_eq!(
            parse_log_line("dnsmasq-dhcp[312]: DHCPACK(eth0) 10.77.0.117 52:54:00:a1:00:01 node-1"),
            Some((
                "52:54:00:a1:00:01".into(),
                Some("10.77.0.117".parse().unwrap())
            ))
        );
        assert_eq!(
            parse_log_line("dnsmasq-dhcp[9]: PXE(eth0) 52:54:00:A1:00:02 proxy"),
            Some(("52:54:00:a1:00:02".into(), None))
        );
        assert_eq!(
            parse_log_line("dnsmasq-dhcp[9]: DHCPDISCOVER(eth0) 52:54:00:a1:00:02"),
            None
        );
        assert_eq!(
            parse_log_line("dnsmasq-tftp[9]: sent /x/undionly.kpxe to 10.0.0.2"),
            None
        );
    }
}
