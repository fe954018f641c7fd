//! Bounds on walking an ISO's directory tree, which comes from the image
//! and may be hostile: a directory record pointing back at an ancestor
//! (or any directory already walked) would make the walk endless.

use std::collections::HashMap;

use anyhow::{bail, Result};

/// Deepest directory nesting walked. ISO 9660 itself stops at 8 levels;
/// Rock Ridge lifts that, and airlift's own trees stay far below this.
pub const MAX_DEPTH: usize = 128;
/// Most entries walked in one image (a bundle of many images has tens of
/// thousands of files at most).
pub const MAX_ENTRIES: usize = 2_000_000;
/// Largest directory extent read (about 300,000 Rock Ridge records).
pub const MAX_DIR_BYTES: u32 = 64 << 20;

/// Tracks the directory extents walked, the depth and the entry count.
#[derive(Debug, Default)]
pub struct WalkGuard {
    /// First sector of every directory walked, with its path.
    seen: HashMap<u32, String>,
    entries: usize,
}

impl WalkGuard {
    /// Records entering directory `path` (depth = number of components)
    /// whose extent starts at `lba`.
    pub fn enter(&mut self, path: &str, lba: u32, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!(
                "ISO directory {path:?} is nested more than {MAX_DEPTH} levels deep; the image is \
                 corrupt or hostile"
            );
        }
        if let Some(first) = self.seen.get(&lba) {
            let first = if first.is_empty() { "/" } else { first };
            bail!(
                "ISO directory {path:?} loops back to {first:?} (both at sector {lba}); the image \
                 is corrupt or hostile"
            );
        }
        self.seen.insert(lba, path.to_string());
        Ok(())
    }

    /// Counts `n` more entries read in directory `path`.
    pub fn count(&mut self, path: &str, n: usize) -> Result<()> {
        self.entries += n;
        if self.entries > MAX_ENTRIES {
            bail!(
                "the ISO has more than {MAX_ENTRIES} entries (at {path:?}); the image is corrupt \
                 or hostile"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_seen_twice_is_named() {
        let mut g = WalkGuard::default();
        g.enter("", 20, 0).unwrap();
        g.enter("a", 21, 1).unwrap();
        let e = g.enter("a/b", 21, 2).unwrap_err().to_string();
        assert!(e.contains("\"a/b\" loops back to \"a\""), "{e}");
        let e = g.enter("a/c", 20, 2).unwrap_err().to_string();
        assert!(e.contains("loops back to \"/\""), "{e}");
    }

    #[test]
    fn depth_and_entries_are_bounded() {
        let mut g = WalkGuard::default();
        assert!(g.enter("deep", 5, MAX_DEPTH).is_ok());
        assert!(g.enter("deeper", 6, MAX_DEPTH + 1).is_err());
        g.count("x", MAX_ENTRIES).unwrap();
        assert!(g.count("x", 1).unwrap_err().to_string().contains("\"x\""));
    }
}
