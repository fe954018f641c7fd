//! One day-two change at a time: an update load, a rollback, a garbage
//! collection and a restore each hold [`Ops`] from start to end, so a
//! collection never runs while a load is half done and two loads never
//! race for the tags. A second request is refused at once, naming what
//! runs, rather than queued behind a load that may take minutes.

use std::sync::{Arc, Mutex};

/// The day-two lock, shared by host0's endpoints.
#[derive(Clone, Default)]
pub struct Ops(Arc<Mutex<Option<String>>>);

/// Held while a change runs; dropping it ends the change.
pub struct OpGuard(Arc<Mutex<Option<String>>>);

impl Ops {
    /// Start `what` (`loading release demo 2.0`), or say what runs instead.
    pub fn begin(&self, what: &str) -> Result<OpGuard, String> {
        let mut running = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(other) = running.as_ref() {
            return Err(format!(
                "cannot start {what}: {other} is running; wait for it (airlift-firstboot releases)"
            ));
        }
        *running = Some(what.to_string());
        Ok(OpGuard(self.0.clone()))
    }

    /// What runs now.
    pub fn running(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for OpGuard {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_at_a_time() {
        let ops = Ops::default();
        let g = ops.begin("loading release demo 2").unwrap();
        assert_eq!(ops.running().as_deref(), Some("loading release demo 2"));
        let e = ops.begin("garbage collection").err().unwrap();
        assert!(e.contains("cannot start garbage collection: loading release demo 2 is running"));
        drop(g);
        assert!(ops.running().is_none());
        assert!(ops.begin("garbage collection").is_ok());
    }
}
