//! High availability of the registry: the virtual IP that keepalived
//! (VRRP) keeps on one healthy registry machine, and [`IpCidr`], the
//! address-with-prefix type it is written in.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
