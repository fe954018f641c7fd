//! Which blobs a repository serves besides those its manifests
//! reference: blobs pushed or mounted into it since the registry
//! started. Kept in memory only, like uploads: after a restart a blob
//! no manifest references yet is pushed (or mounted) again.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use airlift_oci::Digest;

/// Repository → blobs pushed or mounted into it.
#[derive(Default)]
pub struct BlobLinks(RwLock<HashMap<String, HashSet<Digest>>>);

impl BlobLinks {
    /// Record that `repo` has `d`.
    pub fn link(&self, repo: &str, d: &Digest) {
        if let Ok(mut m) = self.0.write() {
            m.entry(repo.to_string()).or_default().insert(d.clone());
        }
    }

    /// Does `repo` have `d` linked?
    pub fn has(&self, repo: &str, d: &Digest) -> bool {
        self.0
            .read()
            .map(|m| m.get(repo).is_some_and(|s| s.contains(d)))
            .unwrap_or(false)
    }

    /// Forget `repo`'s link to `d`.
    pub fn unlink(&self, repo: &str, d: &Digest) {
        if let Ok(mut m) = self.0.write() {
            if let Some(s) = m.get_mut(repo) {
                s.remove(d);
                if s.is_empty() {
                    m.remove(repo);
                }
            }
        }
    }

    /// Every linked blob, in any repository.
    pub fn all(&self) -> std::collections::BTreeSet<Digest> {
        self.0
            .read()
            .map(|m| m.values().flatten().cloned().collect())
            .unwrap_or_default()
    }
}
