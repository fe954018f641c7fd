//! This machine's network interfaces and host name, read once from the
//! kernel (`getifaddrs`), and the pure filters over them.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// One address of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfAddr {
    /// The interface's name (`eth0`).
    pub interface: String,
    pub ip: IpAddr,
    /// The prefix length from the netmask, when the kernel gives one.
    pub prefix_len: Option<u8>,
}

/// Every IPv4 and IPv6 address of every interface, loopback included.
pub fn addresses() -> Vec<IfAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for a in addrs {
        let Some(sa) = a.address else { continue };
        let (ip, prefix_len) = if let Some(v4) = sa.as_sockaddr_in() {
            let mask = a.netmask.and_then(|m| m.as_sockaddr_in().map(|m| m.ip()));
            (
                IpAddr::V4(v4.ip()),
                mask.map(|m| u32::from(m).count_ones() as u8),
            )
        } else if let Some(v6) = sa.as_sockaddr_in6() {
            let mask = a.netmask.and_then(|m| m.as_sockaddr_in6().map(|m| m.ip()));
            (
                IpAddr::V6(v6.ip()),
                mask.map(|m| u128::from(m).count_ones() as u8),
            )
        } else {
            continue;
        };
        out.push(IfAddr {
            interface: a.interface_name,
            ip,
            prefix_len,
        });
    }
    out
}

/// Every address as (interface, address).
pub fn named_addresses() -> Vec<(String, IpAddr)> {
    addresses()
        .into_iter()
        .map(|a| (a.interface, a.ip))
        .collect()
}

/// Every usable address of any interface ([`usable`]), sorted, once each.
pub fn usable_addresses() -> Vec<IpAddr> {
    let set: BTreeSet<IpAddr> = addresses()
        .into_iter()
        .map(|a| a.ip)
        .filter(|ip| usable(*ip))
        .collect();
    set.into_iter().collect()
}

/// Not loopback, unspecified, multicast or IPv6 link-local (which needs a
/// zone to be used).
pub fn usable(ip: IpAddr) -> bool {
    if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
        return false;
    }
    match ip {
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        IpAddr::V4(_) => true,
    }
}

/// The host name (None if unset or `localhost`).
pub fn hostname() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    let name = name.trim().to_string();
    (!name.is_empty() && name != "localhost" && name != "(none)").then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_excludes_what_cannot_be_dialled() {
        assert!(usable("10.0.0.1".parse().unwrap()));
        assert!(usable("2001:db8::1".parse().unwrap()));
        for bad in ["127.0.0.1", "0.0.0.0", "224.0.0.1", "fe80::1", "::1"] {
            assert!(!usable(bad.parse().unwrap()), "{bad}");
        }
    }

    #[test]
    fn loopback_is_listed_with_its_prefix() {
        let all = addresses();
        let lo = all
            .iter()
            .find(|a| a.ip == IpAddr::from([127, 0, 0, 1]))
            .expect("127.0.0.1 on some interface");
        assert_eq!(lo.prefix_len, Some(8));
        assert!(usable_addresses().iter().all(|ip| !ip.is_loopback()));
    }
}
