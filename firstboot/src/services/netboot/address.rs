//! host0's own address on the netboot link, from the kernel command
//! line (`airlift.address=10.77.0.1/24[,fd77::1/64]`, set with the image
//! config's `base.kernelArgs`), put on `netboot.interface` before the
//! registry's certificate is made and before dnsmasq starts.
//!
//! With systemd-networkd running, a `.network` file in
//! `/run/systemd/network` (sorted before the base's DHCP one, applied
//! with `networkctl reconfigure`) gives the interface these static
//! addresses and no DHCP client; `ip` adds them
//! at once as well, so nothing waits for networkd.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The networkd file's name.
pub const NETWORK_FILE: &str = "10-airlift-netboot.network";

/// One `ADDR/LEN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub ip: IpAddr,
    pub prefix_len: u8,
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix_len)
    }
}

/// Parse `ADDR/LEN`.
pub fn parse_cidr(s: &str) -> Result<Cidr> {
    let (a, l) = s
        .split_once('/')
        .with_context(|| format!("{s:?} is not ADDRESS/PREFIX (e.g. 10.77.0.1/24)"))?;
    let ip: IpAddr = a
        .parse()
        .with_context(|| format!("{s:?}: {a:?} is not an IP address"))?;
    let prefix_len: u8 = l
        .parse()
        .with_context(|| format!("{s:?}: {l:?} is not a prefix length"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        bail!("{s:?}: prefix length {prefix_len} is over {max}");
    }
    Ok(Cidr { ip, prefix_len })
}

/// The value of `key=` on a kernel command line (the last one wins).
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

/// The `airlift.address=` addresses on a command line.
pub fn from_cmdline(cmdline: &str) -> Result<Vec<Cidr>> {
    match cmdline_value(cmdline, "airlift.address") {
        None => Ok(Vec::new()),
        Some(v) => v
            .split(',')
            .map(|p| parse_cidr(p).context("kernel command line airlift.address="))
            .collect(),
    }
}

/// The networkd file for `iface` with `addrs` (pure).
pub fn network_file(iface: &str, addrs: &[Cidr]) -> String {
    let mut s = String::from(
        "# Written by airlift-firstboot: host0's static address on the netboot link\n\
         # (kernel command line airlift.address=); it serves DHCP here, so it is no client.\n",
    );
    let _ = write!(
        s,
        "[Match]\nName={iface}\n\n[Network]\nDHCP=no\nIPv6AcceptRA=no\n"
    );
    s.push_str("ConfigureWithoutCarrier=yes\nLinkLocalAddressing=ipv6\n");
    for a in addrs {
        let _ = writeln!(s, "Address={a}");
    }
    s
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("running {shown} (is iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Put `addrs` on `iface` (see the module docs) and wait until the
/// kernel lists them (at most `wait`).
pub fn configure(root: &Path, iface: &str, addrs: &[Cidr], wait: Duration) -> Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    let dir = root.join("run/systemd/network");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    airlift_oci::atomic::write(
        &dir.join(NETWORK_FILE),
        network_file(iface, addrs).as_bytes(),
    )?;
    if Path::new("/run/systemd/netif").exists() {
        // `reload` reads the new file; `reconfigure` applies it to a link
        // networkd already manages (else its DHCP client keeps running
        // there and takes a lease from our own dnsmasq).
        let networkd = run(Command::new("networkctl").arg("reload"))
            .and_then(|()| run(Command::new("networkctl").args(["reconfigure", iface])));
        if let Err(e) = networkd {
            tracing::warn!("{e:#}; adding the address with ip alone");
        }
    }
    run(Command::new("ip").args(["link", "set", "dev", iface, "up"]))?;
    for a in addrs {
        run(Command::new("ip").args(["addr", "replace", &a.to_string(), "dev", iface]))?;
    }
    let start = Instant::now();
    loop {
        let have = crate::sys::net::usable_addresses();
        if addrs.iter().all(|a| a.ip.is_ipv6() || have.contains(&a.ip)) {
            break;
        }
        if start.elapsed() > wait {
            bail!("{iface} does not have {addrs:?} after {wait:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    tracing::info!(
        "netboot link {iface}: {}",
        addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_from_the_command_line() {
        let c = "BOOT_IMAGE=/vmlinuz airlift.label=X airlift.address=10.77.0.1/24,fd77::1/64 quiet";
        let a = from_cmdline(c).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].to_string(), "10.77.0.1/24");
        assert_eq!(a[1].prefix_len, 64);
        assert!(from_cmdline("quiet").unwrap().is_empty());
        let e = from_cmdline("airlift.address=10.77.0.1").unwrap_err();
        assert!(format!("{e:#}").contains("airlift.address"), "{e:#}");
        assert!(parse_cidr("10.0.0.1/33").is_err());
        assert_eq!(cmdline_value("a=1 airlift.addressx=2 a=3", "a"), Some("3"));
        assert_eq!(cmdline_value("airlift.addressx=2", "airlift.address"), None);
    }

    #[test]
    fn networkd_file() {
        let f = network_file("eth0", &[parse_cidr("10.77.0.1/24").unwrap()]);
        assert!(f.contains("[Match]\nName=eth0\n"), "{f}");
        assert!(
            f.contains("DHCP=no\n") && f.ends_with("Address=10.77.0.1/24\n"),
            "{f}"
        );
    }
}
