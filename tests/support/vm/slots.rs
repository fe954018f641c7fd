//! How many QEMU processes (and `airlift build`s) run at once in one test
//! process: at most [`max_parallel`] slots, 2 by default (the machine has
//! 2 cores). A VM takes one slot per vCPU, an ISO build one, a cluster of
//! VMs all of them, whatever the test threads do. One counter for every
//! module of the `vm` test binary, so two modules never boot past it.

use std::sync::{Condvar, Mutex};

static USED: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Slots at once per test process: `AIRLIFT_QEMU_PARALLEL`, else 2.
pub fn max_parallel() -> usize {
    std::env::var("AIRLIFT_QEMU_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

/// Slots held until dropped.
#[must_use = "the slots are given back when this is dropped"]
pub struct Slot(usize);

impl Slot {
    /// Wait for `n` slots (at most [`max_parallel`], at least one).
    pub fn take(n: usize) -> Slot {
        let n = n.clamp(1, max_parallel());
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        while *used + n > max_parallel() {
            used = FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += n;
        Slot(n)
    }

    /// Every slot: nothing else boots or builds until this is dropped
    /// (the clusters, whose VMs share the cores between them).
    pub fn whole_machine() -> Slot {
        Slot::take(max_parallel())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.0;
        FREED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_given_back_and_capped() {
        let all = Slot::whole_machine();
        assert_eq!(all.0, max_parallel());
        drop(all);
        // More than there are is capped, so it cannot wait forever.
        let big = Slot::take(usize::MAX);
        assert_eq!(big.0, max_parallel());
        drop(big);
        let one = Slot::take(0);
        assert_eq!(one.0, 1);
    }
}
