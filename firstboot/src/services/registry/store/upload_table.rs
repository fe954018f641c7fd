//! The uploads in progress: which repository and client each belongs
//! to, caps on how many are open (in all and per client address), and
//! idle expiry. An upload holds no open file between requests (see
//! [`super::uploads`]), so idle uploads cost a table entry and a file on
//! disk, both removed when they expire.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::error::StoreError;
use super::uploads::Upload;

/// One upload's state (None once finished or cancelled).
pub type Slot = Arc<tokio::sync::Mutex<Option<Upload>>>;

/// How many uploads may be open and how long one may sit idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    /// An upload with no chunk for this long is removed.
    pub idle: Duration,
    /// Uploads open at once, all clients together.
    pub max: usize,
    /// Uploads open at once from one client address.
    pub max_per_client: usize,
}

/// Default idle time before an upload is removed (1 hour).
pub const DEFAULT_UPLOAD_IDLE_SECS: u64 = 3600;
/// Default cap on uploads open at once.
pub const DEFAULT_MAX_UPLOADS: usize = 1024;
/// Default cap on uploads open at once from one client address.
pub const DEFAULT_MAX_UPLOADS_PER_CLIENT: usize = 64;

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            idle: Duration::from_secs(DEFAULT_UPLOAD_IDLE_SECS),
            max: DEFAULT_MAX_UPLOADS,
            max_per_client: DEFAULT_MAX_UPLOADS_PER_CLIENT,
        }
    }
}

struct Entry {
    repo: String,
    client: Option<IpAddr>,
    slot: Slot,
}

/// The table of uploads in progress.
#[derive(Default)]
pub struct UploadTable {
    entries: Mutex<HashMap<String, Entry>>,
    policy: Mutex<UploadPolicy>,
    /// Wakes the sweeper when the policy changes, so a shorter idle time
    /// set after start-up takes effect at once, not after the old period.
    policy_changed: tokio::sync::Notify,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::internal("the upload table's lock was poisoned")
}

fn client_name(client: Option<IpAddr>) -> String {
    client.map_or_else(|| "the registry itself".to_string(), |c| c.to_string())
}

impl UploadTable {
    /// The policy in force.
    pub fn policy(&self) -> UploadPolicy {
        self.policy.lock().map(|p| *p).unwrap_or_default()
    }

    /// Change the policy (caps apply to the next upload started).
    pub fn set_policy(&self, policy: UploadPolicy) {
        if let Ok(mut p) = self.policy.lock() {
            *p = policy;
        }
        self.policy_changed.notify_one();
    }

    /// Add a new upload unless a cap is reached (then
    /// [`StoreError::Busy`] naming the cap; the caller removes its file).
    /// `client` None is the registry itself (replication): not capped,
    /// so clients filling the table cannot stall it.
    pub fn insert(
        &self,
        id: &str,
        repo: &str,
        client: Option<IpAddr>,
        upload: Upload,
    ) -> Result<(), Box<(StoreError, Upload)>> {
        let policy = self.policy();
        let mut entries = match self.entries.lock() {
            Ok(e) => e,
            Err(e) => return Err(Box::new((poisoned(e), upload))),
        };
        let refuse = StoreError::Busy;
        let idle = policy.idle.as_secs();
        let clients = entries.values().filter(|e| e.client.is_some()).count();
        if client.is_some() && clients >= policy.max {
            let msg = format!(
                "this registry has {} uploads in progress, its limit (max-uploads {}); \
                 finish or cancel uploads, idle ones are removed after {idle} s",
                clients, policy.max
            );
            return Err(Box::new((refuse(msg), upload)));
        }
        let mine = entries.values().filter(|e| e.client == client).count();
        if client.is_some() && mine >= policy.max_per_client {
            let msg = format!(
                "client {} has {mine} uploads in progress, the limit per client \
                 (max-uploads-per-client {}); finish or cancel some (DELETE), idle ones \
                 are removed after {idle} s",
                client_name(client),
                policy.max_per_client
            );
            return Err(Box::new((refuse(msg), upload)));
        }
        entries.insert(
            id.to_string(),
            Entry {
                repo: repo.to_string(),
                client,
                slot: Arc::new(tokio::sync::Mutex::new(Some(upload))),
            },
        );
        Ok(())
    }

    /// The upload `id` of `repo`, or [`StoreError::UploadUnknown`].
    pub fn get(&self, repo: &str, id: &str) -> Result<Slot, StoreError> {
        let entries = self.entries.lock().map_err(poisoned)?;
        match entries.get(id) {
            Some(e) if e.repo == repo => Ok(e.slot.clone()),
            _ => Err(StoreError::UploadUnknown(format!(
                "upload {id:?} is not in progress (finished, cancelled or expired)"
            ))),
        }
    }

    /// Forget an upload (after finish or cancel).
    pub fn remove(&self, id: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(id);
        }
    }

    /// How many uploads are open.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Is no upload open?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Remove the uploads idle for longer than the policy allows (not
    /// those a request is working on) and their files. Returns how many.
    pub async fn expire(&self) -> usize {
        let idle = self.policy().idle;
        let mut expired = Vec::new();
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|id, e| {
                let Ok(mut guard) = e.slot.try_lock() else {
                    return true; // a request is using it
                };
                match guard.as_ref() {
                    Some(u) if u.idle_for() >= idle => {
                        tracing::info!(upload = %id, repository = %e.repo,
                            client = %client_name(e.client), "upload idle for {} s: removed",
                            idle.as_secs());
                        expired.extend(guard.take());
                        false
                    }
                    _ => true,
                }
            });
        }
        let n = expired.len();
        for u in expired {
            u.discard().await;
        }
        n
    }

    /// Expire idle uploads every so often while the table exists.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let table: Weak<UploadTable> = Arc::downgrade(self);
        rt.spawn(async move {
            loop {
                let Some(t) = table.upgrade() else { return };
                let every =
                    (t.policy().idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
                // A policy change restarts the wait with the new period.
                let changed = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    _ = t.policy_changed.notified() => true,
                };
                if !changed {
                    t.expire().await;
                }
            }
        });
    }
}
