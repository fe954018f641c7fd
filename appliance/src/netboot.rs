//! Network boot served by host0: the image config's `netboot:` section,
//! carried into `appliance.json` as is. The builder checks it against the
//! rest of the config; `airlift-firstboot` checks what its servers rely
//! on (MACs, the DHCP range) and serves it.
//!
//! The fields of each struct are declared in alphabetical order: that is
//! the order of their keys in `appliance.json` (the section once passed
//! through a sorted JSON map), and the golden files hold those bytes.

use serde::{Deserialize, Serialize};

use crate::Role;

/// Network boot served by host0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Netboot {
    /// What unknown MACs get: a profile, or none (they are ignored).
    #[serde(default)]
    pub default_profile: Option<NodeProfile>,
    /// `proxy` beside an existing DHCP server, `full` on an isolated
    /// network, or `off` (HTTP boot files only).
    #[serde(default)]
    pub dhcp: DhcpMode,
    #[serde(default)]
    pub enabled: bool,
    /// Network interface to serve on (default: the one with the default
    /// route, else the first up).
    #[serde(default)]
    pub interface: Option<String>,
    /// Per-MAC profiles.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// For `full`: the address range handed out, `FIRST-LAST`.
    #[serde(default)]
    pub range: Option<String>,
    /// How many machines of the default profile become registry replicas
    /// (the first ones to netboot), besides those `nodes` names.
    #[serde(default)]
    pub replicas: u32,
}

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

/// A machine known by its MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Node {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// What it becomes (`host0` is refused by the builder's validation;
    /// kept so a file with it still parses).
    #[serde(default)]
    pub role: Role,
}

/// What a netbooted machine without its own entry becomes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeProfile {
    #[serde(default)]
    pub kernel_args: Vec<String>,
    #[serde(default)]
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_out_sorted_and_absent_ones_default() {
        let n = Netboot {
            default_profile: Some(NodeProfile::default()),
            nodes: vec![Node {
                hostname: None,
                kernel_args: vec!["quiet".into()],
                mac: "52:54:00:a1:00:01".into(),
                role: Role::Replica,
            }],
            ..Netboot::default()
        };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"defaultProfile":{"kernelArgs":[],"role":"join"},"dhcp":"proxy","enabled":false,"interface":null,"nodes":[{"hostname":null,"kernelArgs":["quiet"],"mac":"52:54:00:a1:00:01","role":"replica"}],"range":null,"replicas":0}"#
        );
        let back: Netboot = serde_json::from_str(r#"{"nodes":[{"mac":"x"}]}"#).unwrap();
        assert_eq!(back.dhcp, DhcpMode::Proxy);
        assert_eq!(back.nodes[0].role, Role::Join);
        assert!(!back.enabled && back.default_profile.is_none());
    }

    #[test]
    fn unknown_fields_and_values_are_refused() {
        for bad in [
            r#"{"bogus": 1}"#,
            r#"{"dhcp": "maybe"}"#,
            r#"{"nodes": [{"mac": "x", "colour": "red"}]}"#,
            r#"{"nodes": [{"hostname": "n1"}]}"#,
            r#"{"defaultProfile": {"role": "boss"}}"#,
        ] {
            assert!(serde_json::from_str::<Netboot>(bad).is_err(), "{bad}");
        }
    }
}
