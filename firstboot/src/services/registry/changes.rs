//! The registry's change generation: a process-wide counter bumped after
//! every durable metadata change (a manifest stored or adopted, a tag
//! moved, a manifest or tag deleted), with a watch channel to wait on.
//!
//! Replication ([`crate::services::ha::replication`]) long-polls on it: a replica asks
//! "anything after generation N?" and is answered as soon as there is.
//! It is process-wide rather than per store because host0 swaps its
//! store (media + disk → disk alone) without restarting; a restart is
//! told apart by [`source_id`], which changes with every process.

use std::sync::OnceLock;

use tokio::sync::watch;

fn channel() -> &'static watch::Sender<u64> {
    static CHANNEL: OnceLock<watch::Sender<u64>> = OnceLock::new();
    CHANNEL.get_or_init(|| watch::channel(0).0)
}

/// Record one change; returns the new generation.
pub fn bump() -> u64 {
    let mut now = 0;
    channel().send_modify(|g| {
        *g += 1;
        now = *g;
    });
    now
}

/// The current generation (0 until the first change).
pub fn generation() -> u64 {
    *channel().borrow()
}

/// A receiver that wakes on every change.
pub fn subscribe() -> watch::Receiver<u64> {
    channel().subscribe()
}

/// This process's identity as a replication source (random, per process).
pub fn source_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bumps_wake_subscribers() {
        let mut rx = subscribe();
        let before = generation();
        let after = bump();
        assert!(after > before);
        rx.changed().await.unwrap();
        assert!(*rx.borrow() >= after);
        assert_eq!(source_id(), source_id());
    }
}
