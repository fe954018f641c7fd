//! What a joining node receives from host0's join endpoint
//! ([`crate::api::join`]): the wire format both sides share.

use serde::{Deserialize, Serialize};

use crate::services::mirrors::{MirrorSpec, Runtime};
use crate::services::status::ApplianceName;

/// The node config's layout version.
pub const NODE_CONFIG_SCHEMA: u32 = 1;

/// What a joining node receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NodeConfig {
    /// [`NODE_CONFIG_SCHEMA`].
    pub schema: u32,
    /// The appliance the node joins.
    pub appliance: ApplianceName,
    /// The mirror config to apply (`mirrors::apply`).
    pub mirror: MirrorSpec,
    /// The CA to trust (also in `mirror`), PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// The registries' URLs in the order this node tries them: host0 and
    /// the synced replicas in its own spread order, then host0's other
    /// addresses ([`crate::api::join::Join::node_config`]).
    pub registries: Vec<String>,
    /// The runtimes to configure.
    pub runtimes: Vec<Runtime>,
    /// For a node joining as a registry replica: its server certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaGrant>,
}

/// What a replica needs from host0 to serve: a server certificate for
/// its address, signed by host0's CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReplicaGrant {
    /// The address host0 saw the replica at (its certificate's SAN).
    pub address: String,
    /// PEM certificate.
    pub cert_pem: String,
    /// PEM private key.
    pub key_pem: String,
}
