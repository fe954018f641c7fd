//! host0's state as `GET /airlift/v1/status` reports it: whether the
//! bundle is being copied to disk, served from disk, or from the media
//! only, with the copy's progress.
//!
//! [`Status`] is shared between the loader (which updates it) and the
//! HTTP handler in `api::status` (which serves a [`Snapshot`]); building
//! the snapshot is pure.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::services::mirrors::signatures::TrustStatus;
use crate::sys::secure_boot::SecureBoot;

/// Where host0 is with the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadState {
    /// Serving from the media while copying the bundle to the data disk.
    Loading,
    /// Every blob copied and verified; serving from the data disk.
    Ready,
    /// No persistent storage: serving from the media, nothing copied.
    MediaOnly,
    /// The copy failed; still serving from the media (see `message`).
    Failed,
}

/// Facts fixed at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Identity {
    /// The appliance's name.
    pub name: String,
    /// The appliance's version.
    pub version: String,
    /// `scheme://host:port` of the registry as bound.
    pub registry: String,
    /// `sha256:<hex>` of the CA certificate (None without TLS or a CA).
    pub ca_fingerprint: Option<String>,
    /// When host0 started, RFC 3339 UTC.
    pub started_at: String,
}

/// The copy's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub blobs_done: u64,
    pub blobs_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes copied by this run (not found already on disk); the rate's numerator.
    pub bytes_copied: u64,
}

impl Progress {
    /// Whole percent of bytes done (100 when there is nothing to copy).
    pub fn percent(&self) -> u64 {
        self.bytes_done
            .saturating_mul(100)
            .checked_div(self.bytes_total)
            .unwrap_or(100)
    }
}

/// What `GET /airlift/v1/status` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Snapshot {
    pub state: LoadState,
    /// `media` or `disk`: where the registry reads the bundle from.
    pub serving_from: String,
    pub blobs_done: u64,
    pub blobs_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Bytes per second copied by this run.
    pub rate: u64,
    pub started_at: String,
    pub appliance: ApplianceName,
    pub registry: String,
    pub ca_fingerprint: Option<String>,
    /// Where pushed images and the loaded bundle live ([`crate::datadisk`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::datadisk::StorageStatus>,
    /// The data folder's disk use, read now ([`crate::services::disk_use`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<crate::services::disk_use::DiskUse>,
    /// Why the copy failed, or what to do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// On a replica: how it keeps up with host0 ([`crate::services::ha::replication`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<ReplicationStatus>,
    /// Whether the firmware booted this machine with Secure Boot on
    /// ([`crate::sys::secure_boot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_boot: Option<SecureBoot>,
    /// The trusted keys and what enforces them here
    /// ([`crate::services::mirrors::signatures`]); None without a trust policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustStatus>,
    /// Pulls the registry's signature gate refused since start
    /// ([`crate::services::registry::gate`]); absent without a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_pulls: Option<u64>,
    /// The base image the OS was built from (`appliance.json`'s `base`);
    /// absent for a base given as host paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<airlift_appliance::bundle_manifest::BaseImageRecord>,
}

/// The appliance's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceName {
    pub name: String,
    pub version: String,
}

#[derive(Debug)]
struct Inner {
    state: LoadState,
    from_disk: bool,
    progress: Progress,
    load_started: Option<Instant>,
    message: Option<String>,
    storage: Option<crate::datadisk::StorageStatus>,
    disk: Option<crate::services::disk_use::DiskWatch>,
    replication: Option<ReplicationStatus>,
    secure_boot: Option<SecureBoot>,
    trust: Option<TrustStatus>,
    signature_gate: bool,
    base: Option<airlift_appliance::bundle_manifest::BaseImageRecord>,
}

/// The shared, updatable status.
#[derive(Debug, Clone)]
pub struct Status {
    identity: Arc<Identity>,
    inner: Arc<Mutex<Inner>>,
}

impl Status {
    /// A status in `state` with no progress yet.
    pub fn new(identity: Identity, state: LoadState) -> Status {
        Status {
            identity: Arc::new(identity),
            inner: Arc::new(Mutex::new(Inner {
                state,
                from_disk: false,
                progress: Progress::default(),
                load_started: None,
                message: None,
                storage: None,
                disk: None,
                replication: None,
                secure_boot: None,
                trust: None,
                signature_gate: false,
                base: None,
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// The copy starts now with these totals.
    pub fn start_load(&self, progress: Progress) {
        self.with(|i| {
            i.state = LoadState::Loading;
            i.progress = progress;
            i.load_started = Some(Instant::now());
        });
    }

    /// Replace the counters.
    pub fn set_progress(&self, progress: Progress) {
        self.with(|i| i.progress = progress);
    }

    /// The current counters.
    pub fn progress(&self) -> Progress {
        self.with(|i| i.progress)
    }

    /// Move to `state`, with an optional message.
    pub fn set_state(&self, state: LoadState, message: Option<String>) {
        self.with(|i| {
            i.state = state;
            i.message = message;
        });
    }

    /// What the storage step found.
    pub fn set_storage(&self, storage: crate::datadisk::StorageStatus) {
        self.with(|i| i.storage = Some(storage));
    }

    /// Report the disk use of `watch.path` (read at each snapshot).
    pub fn set_disk(&self, watch: crate::services::disk_use::DiskWatch) {
        self.with(|i| i.disk = Some(watch));
    }

    /// A replica's replication state.
    pub fn set_replication(&self, r: ReplicationStatus) {
        self.with(|i| i.replication = Some(r));
    }

    /// What the firmware said about Secure Boot at start.
    pub fn set_secure_boot(&self, state: SecureBoot) {
        self.with(|i| i.secure_boot = Some(state));
    }

    /// The trust policy's state on this machine.
    pub fn set_trust(&self, trust: TrustStatus) {
        self.with(|i| i.trust = Some(trust));
    }

    /// The base image the OS was built from.
    pub fn set_base(&self, base: Option<airlift_appliance::bundle_manifest::BaseImageRecord>) {
        self.with(|i| i.base = base);
    }

    /// The registry gates pulls on signatures: report its refusals.
    pub fn set_signature_gate(&self) {
        self.with(|i| i.signature_gate = true);
    }

    /// The registry now reads the bundle from the data disk.
    pub fn set_serving_from_disk(&self) {
        self.with(|i| i.from_disk = true);
    }

    /// The current state.
    pub fn state(&self) -> LoadState {
        self.with(|i| i.state)
    }

    /// The status as JSON-ready data (the disk use measured now).
    pub fn snapshot(&self) -> Snapshot {
        let watch = self.with(|i| i.disk.clone());
        let disk = watch.and_then(|w| w.read());
        let mut snap = self.with(|i| {
            let elapsed = i.load_started.map(|s| s.elapsed()).unwrap_or_default();
            let mut s = render(
                &self.identity,
                i.state,
                i.from_disk,
                &i.progress,
                elapsed,
                i.message.clone(),
            );
            s.storage = i.storage.clone();
            s.replication = i.replication.clone();
            s.secure_boot = i.secure_boot;
            s.trust = i.trust.clone();
            s.base = i.base.clone();
            s.refused_pulls = i
                .signature_gate
                .then(crate::services::registry::gate::refused_total);
            s
        });
        snap.disk = disk;
        snap
    }
}

/// Build the snapshot (pure).
pub fn render(
    id: &Identity,
    state: LoadState,
    from_disk: bool,
    p: &Progress,
    elapsed: Duration,
    message: Option<String>,
) -> Snapshot {
    Snapshot {
        state,
        serving_from: if from_disk { "disk" } else { "media" }.to_string(),
        blobs_done: p.blobs_done,
        blobs_total: p.blobs_total,
        bytes_done: p.bytes_done,
        bytes_total: p.bytes_total,
        rate: rate(p.bytes_copied, elapsed),
        started_at: id.started_at.clone(),
        appliance: ApplianceName {
            name: id.name.clone(),
            version: id.version.clone(),
        },
        registry: id.registry.clone(),
        ca_fingerprint: id.ca_fingerprint.clone(),
        storage: None,
        disk: None,
        replication: None,
        secure_boot: None,
        trust: None,
        refused_pulls: None,
        base: None,
        message,
    }
}

/// Bytes per second (0 before a millisecond has passed).
pub fn rate(bytes: u64, elapsed: Duration) -> u64 {
    (u128::from(bytes) * 1000)
        .checked_div(elapsed.as_millis())
        .map_or(0, |r| u64::try_from(r).unwrap_or(u64::MAX))
}

/// A replica's view of its replication (in its `/airlift/v1/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReplicationStatus {
    /// host0's registry.
    pub source: String,
    /// `syncing` (first sync), `in-sync`, `source-unreachable`.
    pub state: String,
    /// The source generation applied.
    pub applied_generation: u64,
    /// Seconds from the last change being seen to it being served here.
    pub last_apply_seconds: f64,
    /// Seconds the replica is behind now: 0 when in sync, else since
    /// it first saw a change it has not applied (or lost the source).
    pub lag_seconds: f64,
    /// Totals copied since start.
    pub manifests_copied: u64,
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    /// When host0 last answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> Identity {
        Identity {
            name: "demo".into(),
            version: "0.1.0".into(),
            registry: "https://127.0.0.1:5000".into(),
            ca_fingerprint: Some("sha256:ab".into()),
            started_at: "2026-11-22T12:00:00Z".into(),
        }
    }

    #[test]
    fn snapshot_json_has_every_field() {
        let p = Progress {
            blobs_done: 3,
            blobs_total: 10,
            bytes_done: 300,
            bytes_total: 1000,
            bytes_copied: 200,
        };
        let s = render(
            &id(),
            LoadState::Loading,
            false,
            &p,
            Duration::from_secs(2),
            None,
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "loading");
        assert_eq!(v["serving-from"], "media");
        assert_eq!(v["blobs-done"], 3);
        assert_eq!(v["blobs-total"], 10);
        assert_eq!(v["bytes-done"], 300);
        assert_eq!(v["bytes-total"], 1000);
        assert_eq!(v["rate"], 100);
        assert_eq!(v["appliance"]["name"], "demo");
        assert_eq!(v["appliance"]["version"], "0.1.0");
        assert_eq!(v["registry"], "https://127.0.0.1:5000");
        assert_eq!(v["ca-fingerprint"], "sha256:ab");
        assert_eq!(v["started-at"], "2026-11-22T12:00:00Z");
        assert!(v.get("message").is_none());
        let back: Snapshot = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);

        let s = render(
            &id(),
            LoadState::MediaOnly,
            true,
            &p,
            Duration::ZERO,
            Some("x".into()),
        );
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["state"], "media-only");
        assert_eq!(v["serving-from"], "disk");
        assert_eq!(v["rate"], 0);
        assert_eq!(v["message"], "x");
    }

    #[test]
    fn shared_status_moves_through_states() {
        let s = Status::new(id(), LoadState::MediaOnly);
        s.start_load(Progress {
            blobs_total: 2,
            bytes_total: 10,
            ..Progress::default()
        });
        assert_eq!(s.state(), LoadState::Loading);
        s.set_progress(Progress {
            blobs_done: 2,
            blobs_total: 2,
            bytes_done: 10,
            bytes_total: 10,
            bytes_copied: 10,
        });
        s.set_state(LoadState::Ready, None);
        s.set_serving_from_disk();
        assert!(serde_json::to_value(s.snapshot())
            .unwrap()
            .get("secure-boot")
            .is_none());
        s.set_secure_boot(SecureBoot::Enabled);
        let snap = s.snapshot();
        assert_eq!(
            serde_json::to_value(&snap).unwrap()["secure-boot"],
            "enabled"
        );
        assert_eq!(snap.state, LoadState::Ready);
        assert_eq!(snap.blobs_done, 2);
        assert_eq!(snap.disk, None);
        let t = tempfile::tempdir().unwrap();
        s.set_disk(crate::services::disk_use::DiskWatch {
            path: t.path().to_path_buf(),
            reserve: u64::MAX,
            warn_percent: 100,
        });
        let d = s.snapshot().disk.unwrap();
        assert_eq!(d.reserve, u64::MAX);
        assert!(d.total > 0 && d.warning.is_some(), "{d:?}");
        assert_eq!(snap.serving_from, "disk");
    }

    #[test]
    fn refused_pulls_are_reported_only_with_a_signature_gate() {
        let s = Status::new(id(), LoadState::Ready);
        let v = serde_json::to_value(s.snapshot()).unwrap();
        assert!(v.get("refused-pulls").is_none(), "{v}");
        s.set_signature_gate();
        let v = serde_json::to_value(s.snapshot()).unwrap();
        assert!(v["refused-pulls"].is_u64(), "{v}");
    }

    #[test]
    fn percent_and_rate() {
        let mut p = Progress::default();
        assert_eq!(p.percent(), 100);
        p.bytes_total = 3;
        p.bytes_done = 1;
        assert_eq!(p.percent(), 33);
        assert_eq!(rate(1_000_000, Duration::from_millis(500)), 2_000_000);
    }
}
