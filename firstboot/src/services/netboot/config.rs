//! The `netboot` section of `/etc/airlift/appliance.json` as host0 reads
//! it: the section is the contract's [`Netboot`] (the builder copies it
//! from the image config as is); this module checks what the servers rely
//! on and picks the profile a MAC gets. Pure.

use std::net::Ipv4Addr;

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use airlift_appliance::{DhcpMode, Netboot, Node, NodeProfile, Role};

/// Default plain-HTTP port for the boot files (iPXE's TLS is limited).
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The profile chosen for one MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// `node:<hostname or mac>` for a listed machine, `default` otherwise.
    pub name: String,
    pub hostname: Option<String>,
    pub role: Role,
    pub kernel_args: Vec<String>,
}

/// The appliance file's section, once it holds what the servers rely on
/// (see [`validate`]).
pub fn checked(cfg: &Netboot) -> Result<&Netboot> {
    validate(cfg)?;
    Ok(cfg)
}

/// What the servers rely on: MACs, the range for `full`.
pub fn validate(cfg: &Netboot) -> Result<()> {
    for (i, n) in cfg.nodes.iter().enumerate() {
        normalise_mac(&n.mac).with_context(|| format!("netboot.nodes[{i}].mac"))?;
    }
    if cfg.enabled && cfg.dhcp == DhcpMode::Full {
        let r = cfg
            .range
            .as_deref()
            .context("netboot.range is missing; dhcp: full needs FIRST-LAST")?;
        parse_range(r)?;
    }
    Ok(())
}

/// The profile for `mac`: its entry in `nodes`, else the default
/// profile, else none (the machine is not served).
pub fn profile_for(cfg: &Netboot, mac: &str) -> Option<Profile> {
    let mac = normalise_mac(mac).ok()?;
    if let Some(n) = cfg
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
    profile_for_unlisted(cfg)
}

/// The profile of a machine `nodes` does not name: the default profile, if any.
pub fn profile_for_unlisted(cfg: &Netboot) -> Option<Profile> {
    cfg.default_profile.as_ref().map(|d| Profile {
        name: "default".into(),
        hostname: None,
        role: d.role,
        kernel_args: d.kernel_args.clone(),
    })
}

/// The replica count at work: a default-profile joining machine becomes
/// a replica while fewer than `wanted` machines hold that role by count
/// (`counted`: the MACs already made replicas this way; a machine that
/// was one stays one when it boots again).
pub fn apply_replica_count(mut p: Profile, mac: &str, wanted: u32, counted: &[String]) -> Profile {
    if p.name == "default" && p.role == Role::Join && wanted > 0 {
        let already = counted.iter().any(|m| m == mac);
        if already || (counted.len() as u32) < wanted {
            p.role = Role::Replica;
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

/// A section as JSON, read as the appliance file reads it (`null`: off)
/// and [`checked`]: for tests that write the section by hand.
#[cfg(test)]
pub(crate) fn from_json(value: serde_json::Value) -> Result<Netboot> {
    let cfg: Option<Netboot> = serde_json::from_value(value).context("not a netboot section")?;
    let cfg = cfg.unwrap_or_default();
    validate(&cfg)?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Netboot {
        from_json(serde_json::json!({
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
            role: Role::Join,
            kernel_args: vec![],
        };
        let none: Vec<String> = vec![];
        let one = vec!["aa".to_string()];
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 1, &none).role,
            Role::Replica
        );
        assert_eq!(
            apply_replica_count(d.clone(), "bb", 1, &one).role,
            Role::Join
        );
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 1, &one).role,
            Role::Replica
        );
        assert_eq!(
            apply_replica_count(d.clone(), "aa", 0, &none).role,
            Role::Join
        );
        let listed = Profile {
            name: "node:n1".into(),
            ..d
        };
        assert_eq!(apply_replica_count(listed, "cc", 3, &none).role, Role::Join);
    }

    #[test]
    fn profiles_by_mac() {
        let c = cfg();
        let p = profile_for(&c, "52:54:00:a1:00:01").unwrap();
        assert_eq!(p.name, "node:node-1");
        assert_eq!(p.kernel_args, ["quiet"]);
        let p = profile_for(&c, "52:54:00:A1:00:02").unwrap();
        assert_eq!(
            (p.name.as_str(), p.role),
            ("node:52:54:00:a1:00:02", Role::Replica)
        );
        assert_eq!(profile_for(&c, "52:54:00:a1:00:09"), None);
        assert_eq!(profile_for(&c, "garbage"), None);
        let mut d = c.clone();
        d.default_profile = Some(NodeProfile::default());
        assert_eq!(
            profile_for(&d, "52:54:00:a1:00:09").unwrap().name,
            "default"
        );
    }

    #[test]
    fn bad_sections_name_the_field() {
        assert!(!from_json(serde_json::Value::Null).unwrap().enabled);
        let e = from_json(serde_json::json!({"enabled": true, "dhcp": "full"})).unwrap_err();
        assert!(format!("{e:#}").contains("netboot.range"), "{e:#}");
        let e = from_json(serde_json::json!({"nodes": [{"mac": "zz"}]})).unwrap_err();
        assert!(format!("{e:#}").contains("netboot.nodes[0].mac"), "{e:#}");
        assert!(parse_range("10.0.0.9-10.0.0.1").is_err());
        assert!(from_json(serde_json::json!({"bogus": 1})).is_err());
    }
}
