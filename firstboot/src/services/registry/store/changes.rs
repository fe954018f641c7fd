//! A store's change feed: a generation counter bumped after every
//! durable metadata change (a manifest stored or adopted, a tag moved, a
//! manifest or tag deleted), with a watch channel to wait on, and the
//! feed's identity.
//!
//! Replication ([`crate::services::ha::replication`]) long-polls on it: a
//! replica asks "anything after generation N?" and is answered as soon
//! as there is. The feed belongs to a store instance; when host0 swaps
//! its store (media + disk → disk alone) without restarting, the new
//! store is opened with the old one's feed, so generations go on. A new
//! feed (a restart) is told apart by [`Changes::source_id`], random per
//! feed.
//!
//! Each change also stamps what it touched: one repository
//! ([`Changes::bump_repo`]) or everything ([`Changes::bump`]: a layer
//! swap, an index refresh). [`Changes::repo_stamp`] is the generation of
//! the last change that touched a repository, so a cache of facts about
//! one repository (the signature gate's) knows when they may be stale
//! without being flushed by every push elsewhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// One change feed; clones share it.
#[derive(Clone)]
pub struct Changes {
    tx: Arc<watch::Sender<u64>>,
    source_id: Arc<str>,
    stamps: Arc<Mutex<Stamps>>,
}

/// The generation of the last change to each repository, and of the
/// last change to all of them.
#[derive(Debug, Default)]
struct Stamps {
    all: u64,
    repos: HashMap<String, u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes::new()
    }
}

impl std::fmt::Debug for Changes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("generation", &self.generation())
            .field("source_id", &self.source_id)
            .finish()
    }
}

impl Changes {
    /// A new feed at generation 0 with a fresh identity.
    pub fn new() -> Changes {
        Changes {
            tx: Arc::new(watch::channel(0).0),
            source_id: uuid::Uuid::new_v4().to_string().into(),
            stamps: Arc::default(),
        }
    }

    /// Record one change that may touch every repository; returns the
    /// new generation.
    pub fn bump(&self) -> u64 {
        let now = self.next();
        self.stamps().all = now;
        now
    }

    /// Record one change to `repo` (a manifest or tag written or
    /// removed); returns the new generation.
    pub fn bump_repo(&self, repo: &str) -> u64 {
        let now = self.next();
        self.stamps().repos.insert(repo.to_string(), now);
        now
    }

    /// The generation of the last change that touched `repo` (0 if
    /// none): unchanged as long as nothing in `repo` changed.
    pub fn repo_stamp(&self, repo: &str) -> u64 {
        let s = self.stamps();
        s.repos.get(repo).copied().unwrap_or(0).max(s.all)
    }

    fn next(&self) -> u64 {
        let mut now = 0;
        self.tx.send_modify(|g| {
            *g += 1;
            now = *g;
        });
        now
    }

    fn stamps(&self) -> std::sync::MutexGuard<'_, Stamps> {
        self.stamps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current generation (0 until the first change).
    pub fn generation(&self) -> u64 {
        *self.tx.borrow()
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }

    /// This feed's identity as a replication source (random per feed).
    pub fn source_id(&self) -> &str {
        &self.source_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bumps_wake_subscribers() {
        let changes = Changes::new();
        let mut rx = changes.subscribe();
        let before = changes.generation();
        let after = changes.bump();
        assert!(after > before);
        rx.changed().await.unwrap();
        assert!(*rx.borrow() >= after);
        assert_eq!(changes.source_id(), changes.source_id());
    }

    #[test]
    fn clones_share_one_feed_and_new_feeds_differ() {
        let a = Changes::new();
        let b = a.clone();
        a.bump();
        assert_eq!(b.generation(), 1);
        assert_eq!(a.source_id(), b.source_id());
        assert_ne!(Changes::new().source_id(), a.source_id());
    }

    #[test]
    fn a_repository_stamp_moves_with_its_own_changes_and_global_ones() {
        let c = Changes::new();
        assert_eq!(c.repo_stamp("quay.io/a"), 0);
        let a = c.bump_repo("quay.io/a");
        assert_eq!(c.repo_stamp("quay.io/a"), a);
        c.bump_repo("quay.io/b");
        assert_eq!(c.repo_stamp("quay.io/a"), a, "another repository's change");
        let all = c.clone().bump();
        assert_eq!(c.repo_stamp("quay.io/a"), all);
        assert_eq!(c.repo_stamp("quay.io/never"), all);
        assert_eq!(c.generation(), all);
    }
}
