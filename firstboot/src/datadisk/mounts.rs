//! `/proc/self/mountinfo`, parsed (pure) and read.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `MAJOR:MINOR` of the mounted device.
    pub dev: String,
    pub mount_point: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(v) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(Mount {
                dev: l.get(2)?.to_string(),
                mount_point: PathBuf::from(unescape(l.get(4)?)),
                fstype: r.first()?.to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// Read and parse `path` (normally `/proc/self/mountinfo`).
pub fn read(path: &Path) -> Result<Vec<Mount>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(parse(&text))
}

/// The mount at `target` (the last one, which hides the others).
pub fn at<'a>(mounts: &'a [Mount], target: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.mount_point == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_lines() {
        let text = "22 1 0:21 / / rw,relatime shared:1 - rootfs rootfs rw\n\
                    40 22 254:17 / /var/lib/airlift rw,noatime shared:20 - ext4 /dev/vdb1 rw\n\
                    41 22 11:0 / /run/my\\040media ro - iso9660 /dev/sr0 ro\n\
                    garbage\n";
        let m = parse(text);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].dev, "254:17");
        assert_eq!(m[1].fstype, "ext4");
        assert_eq!(m[1].source, "/dev/vdb1");
        assert_eq!(m[2].mount_point, PathBuf::from("/run/my media"));
        assert_eq!(
            at(&m, Path::new("/var/lib/airlift")).map(|m| m.dev.as_str()),
            Some("254:17")
        );
        assert!(at(&m, Path::new("/nope")).is_none());
    }
}
