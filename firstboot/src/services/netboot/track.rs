//! What dnsmasq's log says about machines, into the node table: DHCP
//! answers (address and MAC), and the TFTP fetches of the network GRUB's
//! configs ([`super::grub`]): a machine booting through shim and GRUB never
//! asks for an iPXE script, so fetching its config counts as netbooting.
//!
//! GRUB first asks for `grub/<mac>.cfg` (dnsmasq logs `sent … to IP`, or
//! `file … not found for IP` when the machine is not listed, which still
//! ties the MAC to the address), then, for unlisted machines,
//! `grub/default.cfg`, whose fetch is matched to its MAC by address.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::config::{self, Netboot, Profile};
use super::dnsmasq::parse_log_line;
use super::grub;
use super::nodes::Nodes;

/// The node table and the config the GRUB files were rendered from.
#[derive(Debug, Clone)]
pub struct Track {
    pub nodes: Nodes,
    pub netboot: Arc<Netboot>,
}

/// A TFTP transfer dnsmasq logged: the file's path, the client, and
/// whether it was sent (else: not found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub path: String,
    pub ip: Ipv4Addr,
    pub sent: bool,
}

/// `dnsmasq-tftp[9]: sent /x/grub/grub.cfg to 10.0.0.5` and
/// `dnsmasq-tftp[9]: file /x/grub/a.cfg not found for 10.0.0.5`.
pub fn parse_tftp_line(line: &str) -> Option<Transfer> {
    let rest = line.split_once("dnsmasq-tftp")?.1;
    let rest = rest.split_once("]: ").map_or(rest, |(_, r)| r).trim();
    if let Some(r) = rest.strip_prefix("sent ") {
        let (path, ip) = r.rsplit_once(" to ")?;
        return Some(Transfer {
            path: path.to_string(),
            ip: ip.trim().parse().ok()?,
            sent: true,
        });
    }
    let r = rest.strip_prefix("file ")?;
    let (path, ip) = r.rsplit_once(" not found for ")?;
    Some(Transfer {
        path: path.to_string(),
        ip: ip.trim().parse().ok()?,
        sent: false,
    })
}

/// Which GRUB config a TFTP path is: `Some(Some(mac))` for a machine's,
/// `Some(None)` for the default one.
fn grub_config(path: &str) -> Option<Option<String>> {
    let (folder, name) = path.rsplit_once('/')?;
    if !folder.ends_with(&format!("/{}", grub::FOLDER)) && folder != grub::FOLDER {
        return None;
    }
    if name == grub::DEFAULT_CFG {
        return Some(None);
    }
    let mac = config::normalise_mac(name.strip_suffix(".cfg")?).ok()?;
    Some(Some(mac))
}

impl Track {
    /// Read one log line; the console line to print, if any.
    pub fn line(&self, line: &str) -> Option<String> {
        if let Some((mac, ip)) = parse_log_line(line) {
            self.nodes.dhcp(&mac, ip.map(IpAddr::V4));
            let ip = ip.map_or_else(|| "-".to_string(), |i| i.to_string());
            return Some(format!("AIRLIFT-NETBOOT-DHCP mac={mac} ip={ip}"));
        }
        let t = parse_tftp_line(line)?;
        let ip = IpAddr::V4(t.ip);
        match (grub_config(&t.path)?, t.sent) {
            (Some(mac), false) => {
                // Not listed: remember its address for the default file.
                self.nodes.dhcp(&mac, Some(ip));
                None
            }
            (Some(mac), true) => {
                let p = config::profile_for(&self.netboot, &mac)?;
                Some(self.netbooted(&mac, ip, &p))
            }
            (None, true) => {
                let p = config::profile_for_unlisted(&self.netboot)?;
                let mac = self
                    .nodes
                    .mac_for_ip(ip)
                    .unwrap_or_else(|| format!("unknown@{ip}"));
                Some(self.netbooted(&mac, ip, &p))
            }
            (None, false) => None,
        }
    }

    fn netbooted(&self, mac: &str, ip: IpAddr, p: &Profile) -> String {
        let role = p.role.as_str();
        self.nodes.netbooted(mac, Some(ip), &p.name, role);
        format!(
            "AIRLIFT-NETBOOT-GRUB mac={mac} ip={ip} profile={} role={role}",
            p.name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> Track {
        let netboot = config::from_json(serde_json::json!({
            "enabled": true, "dhcp": "off",
            "nodes": [{"mac": "52:54:00:a1:00:01", "hostname": "node-1", "role": "replica"}],
            "defaultProfile": {"role": "join"}
        }))
        .unwrap();
        Track {
            nodes: Nodes::new(),
            netboot: Arc::new(netboot),
        }
    }

    #[test]
    fn tftp_lines() {
        assert_eq!(
            parse_tftp_line("dnsmasq-tftp[9]: sent /run/x/tftp/grub/grub.cfg to 10.0.0.5"),
            Some(Transfer {
                path: "/run/x/tftp/grub/grub.cfg".into(),
                ip: "10.0.0.5".parse().unwrap(),
                sent: true
            })
        );
        assert_eq!(
            parse_tftp_line(
                "dnsmasq-tftp[9]: file /t/grub/52:54:00:a1:00:07.cfg not found for 10.0.0.7"
            )
            .map(|t| (t.path, t.sent)),
            Some(("/t/grub/52:54:00:a1:00:07.cfg".into(), false))
        );
        assert_eq!(parse_tftp_line("dnsmasq-dhcp[9]: sent x to 10.0.0.1"), None);
        assert_eq!(parse_tftp_line("dnsmasq-tftp[9]: sent x to nowhere"), None);
    }

    #[test]
    fn grub_fetches_mark_machines_netbooted() {
        let t = track();
        // A listed machine: its own file.
        let line = t.line("dnsmasq-tftp[9]: sent /t/grub/52:54:00:a1:00:01.cfg to 10.0.0.5");
        assert_eq!(
            line.as_deref(),
            Some(
                "AIRLIFT-NETBOOT-GRUB mac=52:54:00:a1:00:01 ip=10.0.0.5 profile=node:node-1 role=replica"
            )
        );
        // An unlisted one: not found, then the default file from the same address.
        assert_eq!(
            t.line("dnsmasq-tftp[9]: file /t/grub/52:54:00:a1:00:07.cfg not found for 10.0.0.7"),
            None
        );
        let line = t.line("dnsmasq-tftp[9]: sent /t/grub/default.cfg to 10.0.0.7");
        assert_eq!(
            line.as_deref(),
            Some(
                "AIRLIFT-NETBOOT-GRUB mac=52:54:00:a1:00:07 ip=10.0.0.7 profile=default role=join"
            )
        );
        // Other files say nothing.
        assert_eq!(
            t.line("dnsmasq-tftp[9]: sent /t/grub/grub.cfg to 10.0.0.7"),
            None
        );
        assert_eq!(
            t.line("dnsmasq-tftp[9]: sent /t/boot/vmlinuz to 10.0.0.7"),
            None
        );
        let l = t.nodes.list();
        assert_eq!(l.len(), 2);
        assert!(l
            .iter()
            .all(|r| r.state == super::super::nodes::NodeState::Netbooted));
        assert_eq!(l[1].ip, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(l[1].profile.as_deref(), Some("default"));
        // DHCP lines as before.
        assert_eq!(
            t.line("dnsmasq-dhcp[312]: DHCPACK(eth0) 10.0.0.9 52:54:00:a1:00:09")
                .as_deref(),
            Some("AIRLIFT-NETBOOT-DHCP mac=52:54:00:a1:00:09 ip=10.0.0.9")
        );
    }
}
