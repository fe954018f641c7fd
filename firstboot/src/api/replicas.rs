//! host0's replica table: who replicates, where it serves, what it has
//! applied, and so how far behind it is. Fed by the replicas' polls and
//! by the change generation; read by the join endpoint (which replicas
//! nodes may use), `GET /airlift/v1/replicas` and the status page.
//!
//! Lag is measured on host0's clock alone: the time since the oldest
//! change the replica has not yet applied was made (0 when it has them
//! all), so clocks on other machines never matter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::services::ha::replication::Report;

/// A replica not heard from for this long is shown as unreachable (it
/// polls at least every [`crate::services::ha::replication::source::POLL_WAIT`]).
pub const STALE_AFTER: Duration = Duration::from_secs(60);

/// Changes remembered for lag (older ones count from the oldest kept).
const HISTORY: usize = 10_000;

#[derive(Debug, Clone)]
struct Record {
    url: String,
    applied: u64,
    current_source: bool,
    synced: bool,
    first_seen: SystemTime,
    last_seen: Instant,
    last_seen_wall: SystemTime,
}

#[derive(Debug, Default)]
struct Inner {
    replicas: BTreeMap<String, Record>,
    /// Generation → when host0 made it.
    history: BTreeMap<u64, Instant>,
}

/// One replica as shown (`GET /airlift/v1/replicas`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ReplicaView {
    pub name: String,
    pub url: String,
    /// `syncing` (first sync not done), `in-sync`, `behind`, `unreachable`.
    pub state: &'static str,
    pub applied_generation: u64,
    pub source_generation: u64,
    /// Seconds since the oldest change it lacks was made (0: none).
    pub lag_seconds: f64,
    pub first_seen: String,
    pub last_seen: String,
}

/// The shared table.
#[derive(Debug, Clone, Default)]
pub struct Replicas(Arc<Mutex<Inner>>);

impl Replicas {
    /// An empty table.
    pub fn new() -> Replicas {
        Replicas::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Remember when generation `g` was made.
    pub fn changed(&self, g: u64, at: Instant) {
        self.with(|i| {
            i.history.entry(g).or_insert(at);
            while i.history.len() > HISTORY {
                i.history.pop_first();
            }
        });
    }

    /// A replica's poll; `ours` says whether it names this source.
    pub fn report(&self, r: &Report, ours: bool, now: Instant) {
        let wall = SystemTime::now();
        self.with(|i| {
            let rec = i.replicas.entry(r.name.clone()).or_insert(Record {
                url: r.url.clone(),
                applied: 0,
                current_source: false,
                synced: false,
                first_seen: wall,
                last_seen: now,
                last_seen_wall: wall,
            });
            rec.url = r.url.clone();
            rec.applied = if ours { r.applied } else { 0 };
            rec.current_source = ours;
            rec.synced = rec.synced || r.synced;
            rec.last_seen = now;
            rec.last_seen_wall = wall;
        });
    }

    /// URLs of the replicas nodes may pull from: those that finished a
    /// first sync (a replica that later falls behind or goes away stays
    /// listed: runtimes skip a mirror that fails).
    pub fn usable_urls(&self) -> Vec<String> {
        self.with(|i| {
            i.replicas
                .values()
                .filter(|r| r.synced && !r.url.is_empty())
                .map(|r| r.url.clone())
                .collect()
        })
    }

    /// Every replica as of `now`, with `current` the source's generation.
    pub fn view(&self, current: u64, now: Instant) -> Vec<ReplicaView> {
        self.with(|i| {
            i.replicas
                .iter()
                .map(|(name, r)| {
                    let applied = if r.current_source { r.applied } else { 0 };
                    let lag = if applied >= current {
                        Duration::ZERO
                    } else {
                        let since = i
                            .history
                            .range(applied + 1..)
                            .next()
                            .map(|(_, at)| *at)
                            .unwrap_or(r.last_seen);
                        now.saturating_duration_since(since)
                    };
                    let state = if now.saturating_duration_since(r.last_seen) > STALE_AFTER {
                        "unreachable"
                    } else if !r.synced {
                        "syncing"
                    } else if applied < current {
                        "behind"
                    } else {
                        "in-sync"
                    };
                    ReplicaView {
                        name: name.clone(),
                        url: r.url.clone(),
                        state,
                        applied_generation: applied,
                        source_generation: current,
                        lag_seconds: (lag.as_secs_f64() * 1000.0).round() / 1000.0,
                        first_seen: airlift_oci::civil_time::rfc3339_of(r.first_seen),
                        last_seen: airlift_oci::civil_time::rfc3339_of(r.last_seen_wall),
                    }
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(name: &str, applied: u64, synced: bool) -> Report {
        Report {
            name: name.into(),
            url: format!("https://{name}:5000"),
            source: Some("s".into()),
            applied,
            synced,
        }
    }

    #[test]
    fn lag_counts_from_the_oldest_change_not_applied() {
        let t = Replicas::new();
        let t0 = Instant::now();
        t.changed(1, t0);
        t.changed(2, t0 + Duration::from_secs(10));
        t.changed(3, t0 + Duration::from_secs(20));
        t.report(&report("r1", 1, true), true, t0 + Duration::from_secs(21));
        let v = t.view(3, t0 + Duration::from_secs(25));
        assert_eq!(v[0].state, "behind");
        assert_eq!(v[0].lag_seconds, 15.0, "since generation 2 was made");
        t.report(&report("r1", 3, true), true, t0 + Duration::from_secs(26));
        let v = t.view(3, t0 + Duration::from_secs(30));
        assert_eq!((v[0].state, v[0].lag_seconds), ("in-sync", 0.0));
    }

    #[test]
    fn only_synced_replicas_are_offered_and_silent_ones_go_stale() {
        let t = Replicas::new();
        let t0 = Instant::now();
        t.report(&report("a", 0, false), true, t0);
        t.report(&report("b", 5, true), true, t0);
        assert_eq!(t.usable_urls(), ["https://b:5000"]);
        assert_eq!(t.view(5, t0)[0].state, "syncing");
        let late = t0 + STALE_AFTER + Duration::from_secs(1);
        assert_eq!(t.view(5, late)[1].state, "unreachable");
        // Still listed: a node's runtime skips a mirror that fails.
        assert_eq!(t.usable_urls(), ["https://b:5000"]);
    }

    #[test]
    fn a_report_about_another_source_counts_as_nothing_applied() {
        let t = Replicas::new();
        let t0 = Instant::now();
        t.changed(1, t0);
        t.report(&report("r", 7, true), false, t0);
        let v = t.view(1, t0 + Duration::from_secs(2));
        assert_eq!(v[0].applied_generation, 0);
        assert_eq!(v[0].state, "behind");
        assert_eq!(v[0].lag_seconds, 2.0);
    }
}
