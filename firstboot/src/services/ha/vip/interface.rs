//! Which interface holds the virtual IP: the one configured, else the
//! one with an address in the virtual IP's subnet.

use std::net::IpAddr;

use airlift_appliance::IpCidr;
use anyhow::{bail, Result};

/// The interface among `addrs` with an address in `vip`'s subnet (pure).
/// An interface holding only the virtual IP itself (keepalived put it
/// there) counts when no other does.
pub fn pick(vip: &IpCidr, addrs: &[(String, IpAddr)]) -> Result<String> {
    let in_subnet = |own_vip: bool| {
        let mut names: Vec<&str> = addrs
            .iter()
            .filter(|(_, ip)| !ip.is_loopback() && vip.contains(*ip))
            .filter(|(_, ip)| (*ip == vip.addr) == own_vip)
            .map(|(n, _)| n.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let mut names = in_subnet(false);
    if names.is_empty() {
        names = in_subnet(true);
    }
    match names.as_slice() {
        [one] => Ok((*one).to_string()),
        [] => {
            let mut seen: Vec<String> = addrs
                .iter()
                .filter(|(_, ip)| !ip.is_loopback())
                .map(|(n, ip)| format!("{n} {ip}"))
                .collect();
            seen.sort();
            bail!(
                "no interface has an address in {} (the subnet of ha.virtualIp.address {vip}); \
                 this machine has {}. Give it an address in that subnet, or set \
                 ha.virtualIp.interface in the image config",
                vip.network(),
                if seen.is_empty() {
                    "no addresses".to_string()
                } else {
                    seen.join(", ")
                }
            )
        }
        many => bail!(
            "{} all have addresses in {} (the subnet of ha.virtualIp.address {vip}); set \
             ha.virtualIp.interface in the image config to choose one",
            many.join(", "),
            vip.network()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[(&str, &str)]) -> Vec<(String, IpAddr)> {
        list.iter()
            .map(|(n, a)| (n.to_string(), a.parse().unwrap()))
            .collect()
    }

    #[test]
    fn picks_the_interface_in_the_subnet() {
        let vip: IpCidr = "10.77.0.50/24".parse().unwrap();
        let a = addrs(&[
            ("lo", "127.0.0.1"),
            ("eth0", "192.0.2.2"),
            ("eth1", "10.77.0.1"),
            ("eth1", "fd77::1"),
        ]);
        assert_eq!(pick(&vip, &a).unwrap(), "eth1");
        let v6: IpCidr = "fd77::50/64".parse().unwrap();
        assert_eq!(pick(&v6, &a).unwrap(), "eth1");
    }

    #[test]
    fn an_interface_holding_only_the_vip_counts_last() {
        let vip: IpCidr = "10.77.0.50/24".parse().unwrap();
        let a = addrs(&[("eth0", "10.77.0.50")]);
        assert_eq!(pick(&vip, &a).unwrap(), "eth0");
        let a = addrs(&[("br0", "10.77.0.50"), ("eth1", "10.77.0.7")]);
        assert_eq!(pick(&vip, &a).unwrap(), "eth1");
    }

    #[test]
    fn none_or_several_is_an_error_naming_the_subnet() {
        let vip: IpCidr = "10.77.0.50/24".parse().unwrap();
        let e = pick(&vip, &addrs(&[("lo", "127.0.0.1"), ("eth0", "192.0.2.2")])).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("no interface has an address in 10.77.0.0/24"),
            "{msg}"
        );
        assert!(
            msg.contains("eth0 192.0.2.2") && !msg.contains("127.0.0.1"),
            "{msg}"
        );
        assert!(msg.contains("ha.virtualIp.interface"), "{msg}");
        let e = pick(
            &vip,
            &addrs(&[("eth0", "10.77.0.2"), ("eth1", "10.77.0.3")]),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("eth0, eth1 all have addresses in 10.77.0.0/24"));
    }
}
