//! The node table: every machine seen by DHCP, the boot script endpoint
//! or the join endpoint, by MAC. `GET /airlift/v1/nodes` renders it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How far a machine got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// Got a DHCP answer from us.
    Dhcp,
    /// Fetched its boot script (and so its kernel).
    Netbooted,
    /// Fetched its node config from the join endpoint.
    Joined,
}

/// One machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct NodeRecord {
    pub mac: String,
    pub ip: Option<IpAddr>,
    /// The profile's name (`node:node-1`, `default`), once it asked for a script.
    pub profile: Option<String>,
    pub role: Option<String>,
    pub state: NodeState,
    pub boots: u32,
    pub first_seen: String,
    pub last_seen: String,
}

/// The shared table.
#[derive(Debug, Clone, Default)]
pub struct Nodes(Arc<Mutex<BTreeMap<String, NodeRecord>>>);

impl Nodes {
    /// An empty table.
    pub fn new() -> Nodes {
        Nodes::default()
    }

    fn upsert(&self, mac: &str, ip: Option<IpAddr>, f: impl FnOnce(&mut NodeRecord)) {
        let now = airlift_oci::civil_time::rfc3339_of(SystemTime::now());
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let rec = map.entry(mac.to_string()).or_insert_with(|| NodeRecord {
            mac: mac.to_string(),
            ip: None,
            profile: None,
            role: None,
            state: NodeState::Dhcp,
            boots: 0,
            first_seen: now.clone(),
            last_seen: now.clone(),
        });
        if ip.is_some() {
            rec.ip = ip;
        }
        rec.last_seen = now;
        f(rec);
    }

    /// DHCP answered `mac` (with `ip` in full mode).
    pub fn dhcp(&self, mac: &str, ip: Option<IpAddr>) {
        self.upsert(mac, ip, |r| {
            if r.state == NodeState::Joined {
                // A joined machine asking again is rebooting.
                r.state = NodeState::Dhcp;
            }
        });
    }

    /// `mac` fetched its boot script.
    pub fn netbooted(&self, mac: &str, ip: Option<IpAddr>, profile: &str, role: &str) {
        self.upsert(mac, ip, |r| {
            r.state = NodeState::Netbooted;
            r.boots += 1;
            r.profile = Some(profile.to_string());
            r.role = Some(role.to_string());
        });
    }

    /// A node joined: by its MAC when it said it, else by its address.
    /// Returns the MAC recorded.
    pub fn joined(&self, mac: Option<&str>, ip: IpAddr) -> String {
        let mac = mac.map(str::to_string).or_else(|| {
            let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.values()
                .find(|r| r.ip == Some(ip))
                .map(|r| r.mac.clone())
        });
        let mac = mac.unwrap_or_else(|| format!("unknown@{ip}"));
        self.upsert(&mac, Some(ip), |r| r.state = NodeState::Joined);
        mac
    }

    /// The MAC last seen at `ip`, if any.
    pub fn mac_for_ip(&self, ip: IpAddr) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|r| r.ip == Some(ip))
            .max_by(|a, b| a.last_seen.cmp(&b.last_seen))
            .map(|r| r.mac.clone())
    }

    /// MACs made replicas by the replica count (default profile, role replica).
    pub fn counted_replicas(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|r| {
                r.profile.as_deref() == Some("default") && r.role.as_deref() == Some("replica")
            })
            .map(|r| r.mac.clone())
            .collect()
    }

    /// Every record, by MAC.
    pub fn list(&self) -> Vec<NodeRecord> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// The MAC a join request's body says (`{"mac": "52:54:00:a1:00:01"}`),
/// normalised; None when absent or not a MAC.
pub fn join_mac(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        mac: Option<String>,
    }
    serde_json::from_slice::<Body>(body)
        .ok()
        .and_then(|b| b.mac)
        .and_then(|m| super::config::normalise_mac(&m).ok())
}

/// Record a successful join from the join endpoint's request: the body
/// may carry `{"mac": "..."}` (what `airlift-firstboot join` sends).
pub fn record_join(nodes: &Nodes, body: &[u8], remote: IpAddr) {
    let mac = nodes.joined(join_mac(body).as_deref(), remote);
    let line = format!("AIRLIFT-NETBOOT-JOINED mac={mac} ip={remote}");
    println!("{line}");
    tracing::info!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_moves_through_the_states() {
        let n = Nodes::new();
        let ip: IpAddr = "10.77.0.100".parse().unwrap();
        n.dhcp("52:54:00:a1:00:01", Some(ip));
        assert_eq!(n.list()[0].state, NodeState::Dhcp);
        n.netbooted("52:54:00:a1:00:01", Some(ip), "node:node-1", "join");
        // The running node's DHCP client may get another address; the
        // join says its MAC.
        let other: IpAddr = "10.77.0.101".parse().unwrap();
        record_join(&n, br#"{"token":"x","mac":"52:54:00:A1:00:01"}"#, other);
        let l = n.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].state, NodeState::Joined);
        assert_eq!(l[0].ip, Some(other));
        assert_eq!(l[0].boots, 1);
        assert_eq!(l[0].profile.as_deref(), Some("node:node-1"));
        // Without a MAC, the address finds it.
        assert_eq!(n.joined(None, other), "52:54:00:a1:00:01");
        assert_eq!(
            n.joined(None, "10.9.9.9".parse().unwrap()),
            "unknown@10.9.9.9"
        );
        let json = serde_json::to_value(n.list()).unwrap();
        assert_eq!(json[0]["state"], "joined");
        assert!(json[0]["first-seen"].as_str().unwrap().ends_with('Z'));
    }
}
