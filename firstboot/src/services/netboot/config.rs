//! The `netboot` section of `/etc/airlift/appliance.json`, typed: the
//! builder copies it from the image config as is, this module is its
//! reader. Pure: parsing, the profile a MAC gets, the DHCP range.

use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Default plain-HTTP port for the boot files (iPXE's TLS is limited).
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// How host0 answers DHCP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DhcpMode {
    /// proxyDHCP beside the site's DHCP server: only the boot details.
    #[default]
    Proxy,
    /// The only DHCP server on an isolated network: addresses too.
    Full,
    /// No DHCP at all: only the HTTP boot files.
    Off,
}

/// What a netbooted machine becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NodeRole {
    #[default]
    Join,
    Replica,
    /// Refused by the builder's validation; kept so a file with it still parses.
    Host0,
}

impl NodeRole {
    /// The `airlift.role=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Join => "join",
            NodeRole::Replica => "replica",
            NodeRole::Host0 => "host0",
        }
    }
}

/// The profile unknown MACs get.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DefaultProfile {
    #[serde(default)]
    pub role: NodeRole,
    #[serde(default)]
    pub kernel_args: Vec<String>,
}

/// A machine known by its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KnownNode {
    pub mac: String,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub role: NodeRole,
    #[serde(default)]
    pub kernel_args: Vec<String>,
}

/// The section as the builder writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetbootConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub dhcp: DhcpMode,
    /// The interface served on.
    #[serde(default)]
    pub interface: Option<String>,
    /// For `full`: `FIRST-LAST`.
    #[serde(default)]
    pub range: Option<String>,
    #[serde(default)]
    pub default_profile: Option<DefaultProfile>,
    /// How many default-profile machines become replicas.
    #[serde(default)]
    pub replicas: u32,
    #[serde(default)]
    pub nodes: Vec<KnownNode>,
}

/// The profile chosen for one MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// `node:<hostname or mac>` for a listed machine, `default` otherwise.
    pub name: String,
    pub hostname: Option<String>,
    pub role: NodeRole,
    pub kernel_args: Vec<String>,
}

impl NetbootConfig {
    /// Parse the appliance file's `netboot` value (`null` or absent: disabled).
    pub fn from_value(value: &serde_json::Value) -> Result<NetbootConfig> {
        if value.is_null() {
            return Ok(NetbootConfig::default());
        }
        let cfg: NetbootConfig = serde_json::from_value(value.clone())
            .context("appliance.json field netboot is not a netboot section; rebuild the ISO")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// What the server relies on: MACs, the range for `full`.
    pub fn validate(&self) -> Result<()> {
        for (i, n) in self.nodes.iter().enumerate() {
            normalise_mac(&n.mac).with_context(|| format!("netboot.nodes[{i}].mac"))?;
        }
        if self.enabled && self.dhcp == DhcpMode::Full {
            let r = self
                .range
                .as_deref()
                .context("netboot.range is missing; dhcp: full needs FIRST-LAST")?;
            parse_range(r)?;
        }
        Ok(())
    }

    /// The profile for `mac`: its entry in `nodes`, else the default
    /// profile, else none (the machine is not served).
    pub fn profile_for(&self, mac: &str) -> Option<Profile> {
        let mac = normalise_mac(mac).ok()?;
        if let Some(n) = self
            .nodes
            .iter()
            .find(|n| normalise_mac(&n.mac).ok().as_deref() == Some(mac.as_str()))
        {
            return Some(Profile {
                name: format!("node:{}", n.hostname.as_deref().unwrap_or(&mac)),
                hostname: n.hostname.clone(),
                role: n.role,
                kernel_args: n.kernel_args.clone(),
            });
        }
        self.default_profile.as_ref().map(|d| Profile {
            name: "default".into(),
            hostname: None,
            role: d.role,
            kernel_args: d.kernel_args.clone(),
        })
    }
}

/// The replica count at work: a default-profile joining machine becomes
/// a replica while fewer than `wanted` machines hold that role by count
/// (`counted`: the MACs already made replicas this way; a machine that
/// was one stays one when it boots again).
pub fn apply_replica_count(mut p: Profile, mac: &str, wanted: u32, counted: &[String]) -> Profile {
    if p.name == "default" && p.role == NodeRole::Join && wanted > 0 {
        let already = counted.iter().any(|m| m == mac);
        if already || (counted.len() as u32) < wanted {
            p.role = NodeRole::Replica;
        }
    }
    p
}

/// `AA-BB-cc:dd:EE:ff` forms to `aa:bb:cc:dd:ee:ff`; anything else is an error.
pub fn normalise_mac(mac: &str) -> Result<String> {
    let parts: Vec<&str> = mac.trim().split([':', '-']).collect();
    if parts.len() != 6
        || !parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bail!("{mac:?} is not a MAC address (aa:bb:cc:dd:ee:ff)");
    }
    Ok(parts.join(":").to_ascii_lowercase())
}

/// `FIRST-LAST` as two IPv4 addresses, first not after last.
pub fn parse_range(range: &str) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let (a, b) = range
        .split_once('-')
        .with_context(|| format!("netboot.range {range:?} must be FIRST-LAST"))?;
    let first: Ipv4Addr = a
        .trim()
        .parse()
        .with_context(|| format!("netboot.range {range:?}: {a:?} is not an IPv4 address"))?;
    let last: Ipv4Addr = b
        .trim()
        .parse()
        .with_context(|| format!("netboot.range {range:?}: {b:?} is not an IPv4 address"))?;
    if first > last {
        bail!("netboot.range {range:?}: the first address is after the last");
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NetbootConfig {
        NetbootConfig::from_value(&serde_json::json!({
            "enabled": true, "dhcp": "full", "interface": "eth0",
            "range": "10.77.0.100-10.77.0.150",
            "defaultProfile": null,
            "nodes": [
                {"mac": "52:54:00:A1:00:01", "hostname": "node-1", "role": "join",
                 "kernelArgs": ["quiet"]},
                {"mac": "52-54-00-a1-00-02", "role": "replica"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn the_replica_count_takes_the_first_default_machines() {
        let d = Profile {
            name: "default".into(),
            hostname: None,
            role: NodeRole::Join,
            kernel_args: vec![],
        };
        let none: Vec<String> = vec![];
        let one = vec!["aa".to_string()];
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 1, &none).role,
            NodeRole::Replica
        );
        assert_eq!(
            apply_replica_count(d.clone(), "bb", 1, &one).role,
            NodeRole::Join
        );
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 1, &one).role,
            NodeRole::Replica
        );
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 0, &none).role,
            NodeRole::Join
        );
        let listed = Profile {
            name: "node:n1".into(),
            ..d
        };
        assert_eq!(
            apply_replica_count(listed, "cc", 3, &none).role,
            NodeRole::Join
        );
    }

    #[test]
    fn profiles_by_mac() {
        let c = cfg();
        let p = c.profile_for("52:54:00:a1:00:01").unwrap();
        assert_eq!(p.name, "node:node-1");
        assert_eq!(p.kernel_args, ["quiet"]);
        let p = c.profile_for("52:54:00:A1:00:02").unwrap();
        assert_eq!(
            (p.name.as_str(), p.role),
            ("node:52:54:00:a1:00:02", NodeRole::Replica)
        );
        assert_eq!(c.profile_for("52:54:00:a1:00:09"), None);
        assert_eq!(c.profile_for("garbage"), None);
        let mut d = c.clone();
        d.default_profile = Some(DefaultProfile::default());
        assert_eq!(d.profile_for("52:54:00:a1:00:09").unwrap().name, "default");
    }

    #[test]
    fn bad_sections_name_the_field() {
        assert!(
            !NetbootConfig::from_value(&serde_json::Value::Null)
                .unwrap()
                .enabled
        );
        let e = NetbootConfig::from_value(&serde_json::json!({"enabled": true, "dhcp": "full"}))
            .unwrap_err();
        assert!(format!("{e:#}").contains("netboot.range"), "{e:#}");
        let e =
            NetbootConfig::from_value(&serde_json::json!({"nodes": [{"mac": "zz"}]})).unwrap_err();
        assert!(format!("{e:#}").contains("netboot.nodes[0].mac"), "{e:#}");
        assert!(parse_range("10.0.0.9-10.0.0.1").is_err());
        assert!(NetbootConfig::from_value(&serde_json::json!({"bogus": 1})).is_err());
    }
}
