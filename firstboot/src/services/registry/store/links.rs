//! Which blobs a repository serves besides those its manifests
//! reference: blobs pushed or mounted into it since the registry
//! started, and blobs a member manifest was found to reference
//! (remembered so the next request needs no manifest reads). Kept in
//! memory only, like uploads: after a restart a blob no manifest
//! references yet is pushed (or mounted) again. Garbage collection
//! spares blobs pushed or mounted within its grace period; a blob only
//! remembered as referenced is no root (its manifest is).

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use airlift_oci::Digest;

/// How a blob came to be linked.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// When it was last pushed or mounted; None if only remembered.
    pushed: Option<Instant>,
}

/// Repository → blobs pushed or mounted into it (or found referenced).
#[derive(Default)]
pub struct BlobLinks(RwLock<HashMap<String, HashMap<Digest, Link>>>);

impl BlobLinks {
    /// Record that `d` was pushed or mounted into `repo` (now).
    pub fn link(&self, repo: &str, d: &Digest) {
        if let Ok(mut m) = self.0.write() {
            m.entry(repo.to_string()).or_default().insert(
                d.clone(),
                Link {
                    pushed: Some(Instant::now()),
                },
            );
        }
    }

    /// Remember that a member manifest of `repo` references `d`.
    pub fn remember(&self, repo: &str, d: &Digest) {
        if let Ok(mut m) = self.0.write() {
            m.entry(repo.to_string())
                .or_default()
                .entry(d.clone())
                .or_insert(Link { pushed: None });
        }
    }

    /// Does `repo` have `d` linked?
    pub fn has(&self, repo: &str, d: &Digest) -> bool {
        self.0
            .read()
            .map(|m| m.get(repo).is_some_and(|s| s.contains_key(d)))
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

    /// Blobs pushed or mounted into any repository less than `within` ago.
    pub fn pushed_within(&self, within: Duration) -> BTreeSet<Digest> {
        let Ok(m) = self.0.read() else {
            return BTreeSet::new();
        };
        m.values()
            .flat_map(|s| s.iter())
            .filter(|(_, l)| l.pushed.is_some_and(|at| at.elapsed() < within))
            .map(|(d, _)| d.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recent_pushes_are_roots_remembered_references_are_not() {
        let links = BlobLinks::default();
        let (a, b) = (Digest::sha256_of(b"a"), Digest::sha256_of(b"b"));
        links.link("r", &a);
        links.remember("s", &b);
        links.remember("r", &a);
        assert!(links.has("r", &a) && links.has("s", &b) && !links.has("r", &b));
        let hour = Duration::from_secs(3600);
        assert_eq!(links.pushed_within(hour), [a.clone()].into());
        assert!(links.pushed_within(Duration::ZERO).is_empty());
        links.unlink("r", &a);
        assert!(links.pushed_within(hour).is_empty());
    }
}
