//! What to do with a disk, decided from what it holds (pure).
//!
//! airlift's disk has a GPT with exactly one "Linux filesystem"
//! partition. The partition is created under the name [`PART_PENDING`]
//! and renamed [`PART_READY`] only after `mkfs` has finished, so a boot
//! that was cut off between partitioning and the end of `mkfs` finds a
//! pending partition of its own and makes the filesystem again, while a
//! ready one is only ever mounted, never formatted.

use super::probe::{describe, Finding, LINUX_FS_TYPE};

/// The GPT partition name of a finished data partition.
pub const PART_READY: &str = "AIRLIFT_DATA";
/// The GPT partition name while the filesystem is being made.
pub const PART_PENDING: &str = "AIRLIFT_DATA_NEW";
/// The filesystem label.
pub const FS_LABEL: &str = "AIRLIFT_DATA";

/// What a whole disk holds, as far as airlift is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    /// Nothing at all.
    Blank,
    /// airlift's own layout: partition 1, ready or still pending.
    Ours { ready: bool },
    /// Anything else.
    Foreign(Vec<Finding>),
}

/// Classify a disk from its findings.
pub fn classify(findings: &[Finding]) -> DiskState {
    match findings {
        [] => DiskState::Blank,
        [Finding::Gpt { partitions, .. }] => match partitions.as_slice() {
            [p] if p.number == 1 && p.type_guid == LINUX_FS_TYPE && p.name == PART_READY => {
                DiskState::Ours { ready: true }
            }
            [p] if p.number == 1 && p.type_guid == LINUX_FS_TYPE && p.name == PART_PENDING => {
                DiskState::Ours { ready: false }
            }
            _ => DiskState::Foreign(findings.to_vec()),
        },
        _ => DiskState::Foreign(findings.to_vec()),
    }
}

/// The next step for a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Partition (after wiping, if `wipe`), make the filesystem, mount.
    Format { wipe: bool },
    /// Our pending partition: make the filesystem again, then mount.
    FinishFormat,
    /// Our ready partition: mount it.
    Mount,
    /// Leave the disk alone; the message says why and what to do.
    Refuse(String),
}

/// Decide for a disk named `name` (as the config or the selector names it).
/// `wipe` is true only when the config sets `wipe: true` and names this
/// exact disk by path.
pub fn decide(name: &str, state: &DiskState, wipe: bool) -> Action {
    match state {
        DiskState::Blank => Action::Format { wipe: false },
        DiskState::Ours { ready: true } => Action::Mount,
        DiskState::Ours { ready: false } => Action::FinishFormat,
        DiskState::Foreign(_) if wipe => Action::Format { wipe: true },
        DiskState::Foreign(f) => Action::Refuse(format!(
            "storage: {name} holds {}; not touching it. Set storage.dataDisk.wipe: true for \
             {name} to use it.",
            describe(f)
        )),
    }
}

/// Check that a ready partition holds our filesystem before mounting it.
/// Returns the filesystem type to mount, or why not.
pub fn check_ready_partition(
    partition: &str,
    findings: &[Finding],
) -> Result<&'static str, String> {
    match findings {
        [Finding::Filesystem {
            kind: kind @ ("ext4" | "XFS"),
            label: Some(l),
            ..
        }] if l == FS_LABEL => Ok(if *kind == "XFS" { "xfs" } else { "ext4" }),
        [] => Err(format!(
            "{partition} is airlift's data partition but holds no filesystem; \
             not formatting a partition marked finished. Wipe the disk to start over"
        )),
        f => Err(format!(
            "{partition} is airlift's data partition but holds {}; not touching it",
            describe(f)
        )),
    }
}
