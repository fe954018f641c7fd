//! Registry replicas: any netbooted node given the replica role
//! (`airlift.role=replica`, from its per-MAC profile or the replica
//! count) keeps a full copy of host0's registry and serves the same API,
//! so pulls keep working while host0 is down.
//!
//! ```text
//! replica                                   host0
//!   POST /airlift/v1/join {role: replica} →  node config + a server
//!                                            certificate for the replica's
//!                                            address, signed by host0's CA
//!   GET  /airlift/v1/replication/state     →  {source-id, generation,
//!        ?after=G&source=S&replica=…           repositories} as soon as the
//!                                            generation passes G (long poll)
//!   GET  /v2/<repo>/manifests/<digest>     →  each missing manifest,
//!   GET  /v2/<repo>/blobs/<digest>            each missing blob, verified
//! ```
//!
//! The state is the whole catalogue (every repository's manifests and
//! tags, no blob bytes); the replica diffs it against its own store
//! ([`plan`]) and fetches only what it lacks ([`apply`]), children before
//! the manifests that point at them and tags last, so it never serves a
//! tag whose content it does not have. Every poll says what the replica
//! has applied, so host0's replica table ([`crate::api::replicas`]) knows each one's lag;
//! the replica shows its own at its status endpoint. Nodes list host0
//! first and then every replica that has finished its first sync
//! ([`crate::api::join`]), and re-fetch that list on a timer.

pub mod apply;
pub mod plan;
pub mod source;

use serde::{Deserialize, Serialize};

use crate::services::registry::store::snapshot::StoreState;

/// The state endpoint's path on host0.
pub const STATE_PATH: &str = "/airlift/v1/replication/state";
/// host0's replica table.
pub const REPLICAS_PATH: &str = "/airlift/v1/replicas";

/// What the state endpoint returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Feed {
    /// The source feed ([`crate::services::registry::store::Changes::source_id`]):
    /// generations of different ones are not comparable.
    pub source_id: String,
    /// The generation `repositories` is at least as new as.
    pub generation: u64,
    /// Every repository.
    pub repositories: StoreState,
}

/// What a replica says with each poll (query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The replica's name (host name, else MAC, else address).
    pub name: String,
    /// Where it serves (`https://10.77.0.101:5000`).
    pub url: String,
    /// The source it has applied from, and up to which generation.
    pub source: Option<String>,
    pub applied: u64,
    /// Has it finished its first full sync (may nodes use it)?
    pub synced: bool,
}

impl Report {
    /// The query string a replica sends (`after` is `applied`).
    pub fn query(&self, wait_secs: u64) -> String {
        let mut q = format!(
            "after={}&wait={wait_secs}&replica={}&url={}&synced={}",
            self.applied,
            urlencode(&self.name),
            urlencode(&self.url),
            self.synced
        );
        if let Some(s) = &self.source {
            q.push_str(&format!("&source={}", urlencode(s)));
        }
        q
    }

    /// Read it back from query parameters (None without `replica`).
    pub fn from_params(params: &[(String, String)]) -> Option<Report> {
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        Some(Report {
            name: get("replica")?.to_string(),
            url: get("url").unwrap_or_default().to_string(),
            source: get("source").map(str::to_string),
            applied: get("after").and_then(|v| v.parse().ok()).unwrap_or(0),
            synced: get("synced") == Some("true"),
        })
    }
}

/// Percent-encode everything but unreserved characters.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_survives_the_query_string() {
        let r = Report {
            name: "replica-1".into(),
            url: "https://10.77.0.101:5000".into(),
            source: Some("3f2a".into()),
            applied: 42,
            synced: true,
        };
        let q = r.query(25);
        assert!(q.starts_with("after=42&wait=25&"), "{q}");
        let params = crate::services::registry::route::query_params(Some(&q));
        assert_eq!(Report::from_params(&params), Some(r));
        assert_eq!(
            Report::from_params(&crate::services::registry::route::query_params(Some(
                "after=1"
            ))),
            None
        );
    }
}
