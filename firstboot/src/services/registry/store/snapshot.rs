//! The store's whole state as plain data, for replication: every
//! repository with its member manifests (digest and media type) and its
//! tags, read-only layers and data folder merged (the data folder wins a
//! tag both have, as it does when serving).

use std::collections::BTreeMap;

use airlift_oci::Digest;
use serde::{Deserialize, Serialize};

use super::index::RepoIndex;
use super::Store;

/// One repository's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RepoState {
    /// Member manifests and their media types.
    pub manifests: BTreeMap<Digest, String>,
    /// Tag → manifest digest.
    pub tags: BTreeMap<String, Digest>,
}

/// Every repository by stored name.
pub type StoreState = BTreeMap<String, RepoState>;

fn add(into: &mut RepoState, ri: &RepoIndex) {
    for (d, info) in &ri.manifests {
        into.manifests.insert(d.clone(), info.media_type.clone());
    }
    for (t, d) in &ri.tags {
        into.tags.insert(t.clone(), d.clone());
    }
}

impl Store {
    /// Everything stored, as of now.
    pub fn snapshot(&self) -> StoreState {
        let mut out = StoreState::new();
        for (name, ri) in &self.layer_set().repos {
            add(out.entry(name.clone()).or_default(), ri);
        }
        if let Ok(data) = self.repos.read() {
            for (name, ri) in data.iter() {
                add(out.entry(name.clone()).or_default(), ri);
            }
        }
        out
    }
}
