//! A short, bounded wait for a NIC's address before host0 picks the
//! addresses it announces (the READY line, the status page, the runtimes'
//! mirror config, the join endpoint) and puts in its certificate.
//!
//! host0 starts early in the boot, often while the NIC's driver is still
//! loading or DHCP has not answered yet; it would then announce only
//! `127.0.0.1`. So, when a NIC is coming up, host0 waits for an IPv4
//! address (the endpoints have no IPv6 form), up to a limit
//! (`--address-wait-secs`), and never when there is nothing to wait for:
//! no NIC, or only NICs without a link (no cable).
//!
//! [`verdict`] is the pure choice; [`read_links`] reads sysfs and the
//! interface addresses; [`wait`] polls the two until the verdict is
//! settled or the limit passes.

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// One network interface, as the wait sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    /// Backed by a device (`/sys/class/net/NAME/device`): a NIC, not a
    /// bridge, veth or loopback.
    pub physical: bool,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// A cable or peer is there (`carrier` = 1; unknown while down).
    pub carrier: bool,
    /// Has a usable IPv4 address.
    pub ipv4: bool,
}

/// What the machine looks like at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Network controllers on the PCI bus (class `0x02xxxx`), with or
    /// without a driver yet.
    pub nic_devices: usize,
    pub links: Vec<Link>,
}

/// Whether to keep waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Announce what is there now (the reason, for the log).
    Settled(String),
    /// A NIC is coming up (what it waits for).
    Pending(String),
}

/// How long an interface that is up but has no link yet may still be
/// negotiating one (real NICs take a second or three after coming up).
pub const LINK_GRACE: Duration = Duration::from_secs(4);

/// The choice (pure), `waited` into the wait: settled as soon as any
/// interface has a usable IPv4 address; pending while a NIC has no
/// driver yet (more PCI network controllers than NICs), a NIC is still
/// down (about to be brought up), a NIC has a link but no address (DHCP
/// under way), or, for [`LINK_GRACE`], a NIC is up without a link;
/// settled when there is no NIC or no NIC has a link after that.
pub fn verdict(s: &Snapshot, waited: Duration) -> Verdict {
    if let Some(l) = s.links.iter().find(|l| l.ipv4) {
        return Verdict::Settled(format!("{} has an IPv4 address", l.name));
    }
    let nics: Vec<&Link> = s.links.iter().filter(|l| l.physical).collect();
    if s.nic_devices > nics.len() {
        return Verdict::Pending(format!(
            "{} network controller(s) without an interface yet",
            s.nic_devices - nics.len()
        ));
    }
    if let Some(l) = nics.iter().find(|l| !l.up) {
        return Verdict::Pending(format!("{} to be brought up", l.name));
    }
    if let Some(l) = nics.iter().find(|l| l.carrier) {
        return Verdict::Pending(format!("an IPv4 address on {} (DHCP)", l.name));
    }
    if let Some(l) = nics.first().filter(|_| waited < LINK_GRACE) {
        return Verdict::Pending(format!("a link on {}", l.name));
    }
    if nics.is_empty() {
        Verdict::Settled("no NIC".into())
    } else {
        Verdict::Settled("no NIC has a link".into())
    }
}

/// Read the interfaces under `sys` (`/sys`) and whether each has a usable
/// IPv4 address among `addrs` (name, address).
pub fn read_links(sys: &Path, addrs: &[(String, IpAddr)]) -> Snapshot {
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    let nic_devices = fs::read_dir(sys.join("bus/pci/devices"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| read(&d.path().join("class")).trim().starts_with("0x02"))
        .count();
    let mut links: Vec<Link> = fs::read_dir(sys.join("class/net"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| {
            let name = d.file_name().to_string_lossy().into_owned();
            let dir = d.path();
            let flags = read(&dir.join("flags"));
            let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
            Link {
                physical: dir.join("device").exists(),
                up: flags & 1 == 1,
                carrier: read(&dir.join("carrier")).trim() == "1",
                ipv4: addrs
                    .iter()
                    .any(|(n, ip)| *n == name && ip.is_ipv4() && crate::sys::net::usable(*ip)),
                name,
            }
        })
        .collect();
    links.sort_by(|a, b| a.name.cmp(&b.name));
    Snapshot { nic_devices, links }
}

/// Wait (blocking) until [`verdict`] is settled or `limit` passes. Logs
/// what it waited for and how long. The caller reads the addresses after
/// this returns, not from here: host0 adds its netboot address meanwhile.
pub fn wait(limit: Duration) {
    let start = Instant::now();
    let mut waiting_for = None;
    loop {
        let v = verdict(
            &read_links(Path::new("/sys"), &crate::sys::net::named_addresses()),
            start.elapsed(),
        );
        match v {
            Verdict::Settled(why) => {
                if waiting_for.is_some() {
                    tracing::info!("waited {:.1?} for a NIC address: {why}", start.elapsed());
                }
                break;
            }
            Verdict::Pending(what) if start.elapsed() >= limit => {
                tracing::warn!(
                    "gave up waiting for {what} after {limit:?}; announcing the addresses there are"
                );
                break;
            }
            Verdict::Pending(what) => {
                if waiting_for.as_ref() != Some(&what) {
                    tracing::info!("waiting up to {limit:?} for {what}");
                    waiting_for = Some(what);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZERO: Duration = Duration::ZERO;

    fn nic(name: &str, up: bool, carrier: bool, ipv4: bool) -> Link {
        Link {
            name: name.into(),
            physical: true,
            up,
            carrier,
            ipv4,
        }
    }

    fn settled(v: Verdict) -> bool {
        matches!(v, Verdict::Settled(_))
    }

    #[test]
    fn nothing_to_wait_for_without_a_nic() {
        assert_eq!(
            verdict(&Snapshot::default(), ZERO),
            Verdict::Settled("no NIC".into())
        );
        // A bridge is not a NIC.
        let mut br = nic("br0", false, false, false);
        br.physical = false;
        assert!(settled(verdict(
            &Snapshot {
                nic_devices: 0,
                links: vec![br],
            },
            ZERO
        )));
    }

    #[test]
    fn an_address_settles_at_once() {
        let s = Snapshot {
            nic_devices: 3,
            links: vec![
                nic("eth0", false, false, false),
                nic("eth1", true, true, true),
            ],
        };
        assert_eq!(
            verdict(&s, ZERO),
            Verdict::Settled("eth1 has an IPv4 address".into())
        );
    }

    #[test]
    fn a_nic_coming_up_is_waited_for() {
        // The driver has not made the interface yet.
        let s = Snapshot {
            nic_devices: 1,
            links: vec![],
        };
        assert!(!settled(verdict(&s, ZERO)));
        // Down: networkd is about to bring it up.
        let s = Snapshot {
            nic_devices: 1,
            links: vec![nic("enp0s3", false, false, false)],
        };
        assert_eq!(
            verdict(&s, ZERO),
            Verdict::Pending("enp0s3 to be brought up".into())
        );
        // Up with a link, no address: DHCP under way.
        let s = Snapshot {
            nic_devices: 1,
            links: vec![nic("enp0s3", true, true, false)],
        };
        assert_eq!(
            verdict(&s, ZERO),
            Verdict::Pending("an IPv4 address on enp0s3 (DHCP)".into())
        );
    }

    #[test]
    fn no_cable_is_waited_for_only_briefly() {
        let s = Snapshot {
            nic_devices: 2,
            links: vec![
                nic("eno1", true, false, false),
                nic("eno2", true, false, false),
            ],
        };
        // Just up: the link may still be negotiating.
        assert_eq!(
            verdict(&s, Duration::from_secs(1)),
            Verdict::Pending("a link on eno1".into())
        );
        assert_eq!(
            verdict(&s, LINK_GRACE),
            Verdict::Settled("no NIC has a link".into())
        );
    }

    #[test]
    fn reads_a_sysfs_tree() {
        let sys = tempfile::tempdir().unwrap();
        let p = sys.path();
        for (dev, class) in [("0000:00:03.0", "0x020000"), ("0000:00:01.1", "0x010180")] {
            fs::create_dir_all(p.join("bus/pci/devices").join(dev)).unwrap();
            fs::write(p.join("bus/pci/devices").join(dev).join("class"), class).unwrap();
        }
        let eth = p.join("class/net/ens3");
        fs::create_dir_all(eth.join("device")).unwrap();
        fs::write(eth.join("flags"), "0x1003\n").unwrap();
        fs::write(eth.join("carrier"), "1\n").unwrap();
        let lo = p.join("class/net/lo");
        fs::create_dir_all(&lo).unwrap();
        fs::write(lo.join("flags"), "0x9\n").unwrap();
        let addrs = vec![
            ("lo".to_string(), "127.0.0.1".parse().unwrap()),
            ("ens3".to_string(), "10.0.2.15".parse().unwrap()),
        ];
        let s = read_links(p, &addrs);
        assert_eq!(s.nic_devices, 1);
        assert_eq!(
            s.links,
            vec![
                nic("ens3", true, true, true),
                Link {
                    name: "lo".into(),
                    physical: false,
                    up: true,
                    carrier: false,
                    ipv4: false,
                },
            ]
        );
        // Loopback's address is not usable: only ens3 settles it.
        let s = read_links(p, &addrs[..1]);
        assert_eq!(
            verdict(&s, ZERO),
            Verdict::Pending("an IPv4 address on ens3 (DHCP)".into())
        );
    }
}
