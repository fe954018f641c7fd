//! The update load in progress (or the last one that failed), as
//! `GET /airlift/v1/releases` shows it under `loading`. A successful
//! load clears it: the release is then in the list.

use std::sync::{Arc, Mutex};

use airlift_appliance::ReleaseId;
use serde::{Deserialize, Serialize};

/// Where a load is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Loading,
    Failed,
}

/// One load, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Loading {
    /// Counts the loads of this process: `update` waits for its own.
    pub id: u64,
    /// The release, once its medium has been read.
    pub release: Option<ReleaseId>,
    /// The path given.
    pub from: String,
    pub blobs_done: u64,
    pub blobs_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub state: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Loading {
    /// Percent of the bytes to copy that are copied (100 with none).
    pub fn percent(&self) -> u64 {
        (self.bytes_done * 100)
            .checked_div(self.bytes_total)
            .unwrap_or(100)
            .min(100)
    }
}

/// The shared progress of host0's update loads.
#[derive(Clone, Default)]
pub struct LoadProgress(Arc<Mutex<(u64, Option<Loading>)>>);

impl LoadProgress {
    /// A new load from `from`; returns its id.
    pub fn start(&self, from: &str) -> u64 {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        g.1 = Some(Loading {
            id: g.0,
            release: None,
            from: from.to_string(),
            blobs_done: 0,
            blobs_total: 0,
            bytes_done: 0,
            bytes_total: 0,
            state: Phase::Loading,
            error: None,
        });
        g.0
    }

    /// Change the load in progress.
    pub fn update(&self, f: impl FnOnce(&mut Loading)) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = g.1.as_mut() {
            f(l);
        }
    }

    /// The load failed with `error`: shown until the next load.
    pub fn fail(&self, error: &str) {
        self.update(|l| {
            l.state = Phase::Failed;
            l.error = Some(error.to_string());
        });
    }

    /// The load succeeded: nothing to show.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1 = None;
    }

    /// What to show now.
    pub fn get(&self) -> Option<Loading> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_is_shown_until_it_succeeds_and_a_failure_until_the_next() {
        let p = LoadProgress::default();
        assert_eq!(p.get(), None);
        let a = p.start("/media/a");
        p.update(|l| {
            l.bytes_total = 200;
            l.bytes_done = 50;
        });
        assert_eq!(p.get().unwrap().percent(), 25);
        p.fail("boom");
        let l = p.get().unwrap();
        assert_eq!(
            (l.id, l.state, l.error.as_deref()),
            (a, Phase::Failed, Some("boom"))
        );
        let b = p.start("/media/b");
        assert!(b > a);
        assert_eq!(p.get().unwrap().percent(), 100, "nothing to copy is done");
        p.clear();
        assert_eq!(p.get(), None);
    }
}
