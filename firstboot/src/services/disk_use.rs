//! The data folder's disk use as `/airlift/v1/status` and the status page
//! show it: size, free space, the reserve uploads and update loads keep,
//! and a warning past `storage.warnPercent` or when the reserve is eaten.
//! Read from the filesystem each time the status is read (statvfs is
//! cheap), so it is never stale; judging the numbers is pure.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::disk_space::{self, mb, Space};

/// What `/airlift/v1/status` says about the data folder's filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DiskUse {
    /// The folder measured (the registry's data folder).
    pub path: String,
    pub total: u64,
    pub available: u64,
    /// Bytes uploads and update loads leave free.
    pub reserve: u64,
    pub used_percent: u8,
    /// The usage past which the status warns (`storage.warnPercent`).
    pub warn_percent: u8,
    /// Why the operator should act, if they should.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Which folder to measure and the limits to judge it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskWatch {
    pub path: PathBuf,
    pub reserve: u64,
    pub warn_percent: u8,
}

impl DiskWatch {
    /// The disk use now (None, logged, when the folder cannot be measured).
    pub fn read(&self) -> Option<DiskUse> {
        match disk_space::space(&self.path) {
            Ok(s) => Some(assess(&self.path, s, self.reserve, self.warn_percent)),
            Err(e) => {
                tracing::warn!("status: {e:#}");
                None
            }
        }
    }
}

/// Judge `space` (pure).
pub fn assess(path: &Path, space: Space, reserve: u64, warn_percent: u8) -> DiskUse {
    let used = space.used_percent();
    let gc = "`airlift-firstboot gc --dry-run` shows what garbage collection would free";
    let warning = if space.available < reserve {
        Some(format!(
            "the data disk is full: {} free, less than the {} reserve, so uploads and update \
             loads are refused; {gc}, or give host0 a bigger data disk",
            mb(space.available),
            mb(reserve)
        ))
    } else if used > warn_percent {
        Some(format!(
            "the data disk is {used} % full (the warning starts past {warn_percent} %): {} free, \
             {} of it kept in reserve; {gc}",
            mb(space.available),
            mb(reserve)
        ))
    } else {
        None
    };
    DiskUse {
        path: path.display().to_string(),
        total: space.total,
        available: space.available,
        reserve,
        used_percent: used,
        warn_percent,
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(available: u64) -> DiskUse {
        let s = Space {
            total: 10_000_000_000,
            available,
        };
        assess(Path::new("/var/lib/airlift/registry"), s, 500_000_000, 85)
    }

    #[test]
    fn warns_past_the_threshold_and_when_the_reserve_is_eaten() {
        let ok = at(1_500_000_000);
        assert_eq!(
            (ok.used_percent, ok.warning),
            (85, None),
            "85 % is not past 85 %"
        );
        let w = at(1_400_000_000).warning.unwrap();
        assert!(
            w.starts_with("the data disk is 86 % full (the warning starts past 85 %): 1.4 GB free"),
            "{w}"
        );
        assert!(w.contains("gc --dry-run"), "{w}");
        let full = at(400_000_000).warning.unwrap();
        assert!(
            full.contains("less than the 500 MB reserve, so uploads and update loads are refused"),
            "{full}"
        );
        let v = serde_json::to_value(at(400_000_000)).unwrap();
        assert_eq!(v["total"], 10_000_000_000u64);
        assert_eq!(v["available"], 400_000_000);
        assert_eq!(v["reserve"], 500_000_000);
        assert_eq!(v["used-percent"], 96);
        assert_eq!(v["warn-percent"], 85);
        assert_eq!(v["path"], "/var/lib/airlift/registry");
        assert!(serde_json::to_value(at(9_000_000_000))
            .unwrap()
            .get("warning")
            .is_none());
    }

    #[test]
    fn reads_a_real_folder_each_time() {
        let t = tempfile::tempdir().unwrap();
        let w = DiskWatch {
            path: t.path().to_path_buf(),
            reserve: 0,
            warn_percent: 100,
        };
        let d = w.read().unwrap();
        assert!(d.total > 0 && d.available <= d.total, "{d:?}");
        let gone = DiskWatch {
            path: t.path().join("absent"),
            ..w
        };
        assert_eq!(gone.read(), None);
    }
}
