//! Free space on the data folder's filesystem, and the one check every
//! writer of bulk data makes before it writes (an update load, a blob
//! upload): would this leave less than the reserve free? The refusal
//! says how much is needed and free, and what garbage collection would
//! give back when that is known.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};

/// A filesystem's size and what an unprivileged writer may still use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    pub total: u64,
    pub available: u64,
}

impl Space {
    /// Bytes in use, as `df` counts them.
    pub fn used(&self) -> u64 {
        self.total.saturating_sub(self.available)
    }

    /// Percent in use (0 for an empty or zero-sized filesystem).
    pub fn used_percent(&self) -> u8 {
        if self.total == 0 {
            return 0;
        }
        ((self.used() as u128 * 100) / self.total as u128).min(100) as u8
    }
}

/// The filesystem holding `path`.
pub fn space(path: &Path) -> Result<Space> {
    let s = rustix::fs::statvfs(path)
        .with_context(|| format!("reading the free space of {}", path.display()))?;
    let unit = s.f_frsize.max(1);
    Ok(Space {
        total: s.f_blocks.saturating_mul(unit),
        available: s.f_bavail.saturating_mul(unit),
    })
}

/// A write refused because it would eat into the reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSpace {
    /// What the write was (`loading release demo 2.0`, `the upload of sha256:…`).
    pub what: String,
    /// Bytes it needs.
    pub needed: u64,
    pub available: u64,
    pub reserve: u64,
    /// Bytes `airlift-firstboot gc` would free, when known.
    pub reclaimable: Option<u64>,
}

impl fmt::Display for NoSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not enough space for {}: it needs {}, {} is free and {} is kept in reserve",
            self.what,
            mb(self.needed),
            mb(self.available),
            mb(self.reserve)
        )?;
        match self.reclaimable {
            Some(0) => write!(
                f,
                "; garbage collection would free nothing: delete pushed images or give host0 a \
                 bigger data disk"
            ),
            Some(r) => write!(
                f,
                "; `airlift-firstboot gc` would free {} (`airlift-firstboot gc --dry-run` lists it)",
                mb(r)
            ),
            None => write!(
                f,
                "; `airlift-firstboot gc --dry-run` shows what garbage collection would free"
            ),
        }
    }
}

impl std::error::Error for NoSpace {}

/// Would writing `needed` bytes leave at least `reserve` free in `space`?
pub fn check(
    what: &str,
    needed: u64,
    space: Space,
    reserve: u64,
    reclaimable: Option<u64>,
) -> Result<(), NoSpace> {
    if space.available >= needed.saturating_add(reserve) {
        return Ok(());
    }
    Err(NoSpace {
        what: what.to_string(),
        needed,
        available: space.available,
        reserve,
        reclaimable,
    })
}

/// `1.5 GB`, `12 MB`, `900 kB`: decimal units, as `df -H` and skopeo print.
pub fn mb(bytes: u64) -> String {
    match bytes {
        b if b >= 10_000_000_000 => format!("{} GB", b / 1_000_000_000),
        b if b >= 1_000_000_000 => format!("{:.1} GB", b as f64 / 1e9),
        b if b >= 1_000_000 => format!("{} MB", b / 1_000_000),
        b => format!("{} kB", b.div_ceil(1000)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_eat_the_reserve_and_says_why() {
        let s = Space {
            total: 10_000_000_000,
            available: 3_000_000_000,
        };
        assert_eq!(s.used_percent(), 70);
        assert!(check("x", 2_000_000_000, s, 1_000_000_000, None).is_ok());
        let e = check(
            "loading release demo 2.0",
            2_500_000_000,
            s,
            1_000_000_000,
            Some(4_200_000_000),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("loading release demo 2.0: it needs 2.5 GB, 3.0 GB is free and 1.0 GB")
                && e.contains("gc` would free 4.2 GB"),
            "{e}"
        );
        let e = check("x", u64::MAX, s, 1, Some(0)).unwrap_err().to_string();
        assert!(e.contains("would free nothing"), "{e}");
        assert_eq!(mb(999), "1 kB");
        assert_eq!(mb(12_345_678), "12 MB");
    }

    #[test]
    fn reads_a_real_filesystem() {
        let t = tempfile::tempdir().unwrap();
        let s = space(t.path()).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
        assert!(space(&t.path().join("absent")).is_err());
    }
}
