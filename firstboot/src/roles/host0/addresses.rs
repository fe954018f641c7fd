//! host0's names and addresses: for the certificate's SANs and for the
//! registry endpoints written into the runtimes' mirror config.

use std::net::{IpAddr, SocketAddr};

use crate::sys::net::usable;

/// Letters, digits, `-` and `.`, labels not empty: what a certificate's
/// DNS name may hold.
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// The `HOST:PORT` endpoints host0 advertises for `listen` (pure):
/// `overrides` when given; the listen address itself when it is a
/// specific one; else every usable IPv4 interface address (registry
/// host names in image references have no IPv6 form), then `127.0.0.1`
/// so host0's own runtimes always reach it.
pub fn endpoints(listen: SocketAddr, addresses: &[IpAddr], overrides: &[String]) -> Vec<String> {
    if !overrides.is_empty() {
        return overrides.to_vec();
    }
    let port = listen.port();
    let fmt = |ip: IpAddr| crate::api::join::host_port(SocketAddr::new(ip, port));
    if !listen.ip().is_unspecified() {
        return vec![fmt(listen.ip())];
    }
    let mut ips: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| ip.is_ipv4() && usable(*ip))
        .collect();
    ips.sort();
    let mut out: Vec<String> = ips.into_iter().map(fmt).collect();
    out.push(format!("127.0.0.1:{port}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_endpoints() {
        let any: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        let ips: Vec<IpAddr> = ["fd00::5", "10.0.2.15", "fe80::1", "127.0.0.1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            endpoints(any, &ips, &[]),
            ["10.0.2.15:5000", "127.0.0.1:5000"]
        );
        let lo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        assert_eq!(endpoints(lo, &ips, &[]), ["127.0.0.1:7000"]);
        assert_eq!(
            endpoints(any, &ips, &["reg.example:443".into()]),
            ["reg.example:443"]
        );
        assert_eq!(endpoints(any, &[], &[]), ["127.0.0.1:5000"]);
    }

    #[test]
    fn dns_names() {
        assert!(is_dns_name("host0"));
        assert!(is_dns_name("host0.airlift.test"));
        assert!(!is_dns_name("my_host"));
        assert!(!is_dns_name("a..b"));
        assert!(!is_dns_name(""));
    }
}
