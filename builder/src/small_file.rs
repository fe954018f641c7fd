//! Reading a small file a user names (a config, a credentials file): a
//! regular file after links, of bounded size, read with that bound however
//! it grows meanwhile, so `/dev/zero` or a wrong path costs nothing.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The bytes of `path`, a regular file of at most `max` bytes. `what`
/// names it in errors ("image config"), `hint` says what to give instead
/// of a non-regular file ("give the path of a YAML file").
pub fn read(path: &Path, max: u64, what: &str, hint: &str) -> Result<Vec<u8>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading {what} {}", path.display()))?;
    if !meta.is_file() {
        bail!("{what} {} is not a regular file; {hint}", path.display());
    }
    let too_big = || {
        anyhow::anyhow!(
            "{what} {} is larger than the {} it may have; is it the right file?",
            path.display(),
            size(max)
        )
    };
    if meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}

/// `4 MiB`, `1 MiB`, else bytes.
fn size(n: u64) -> String {
    if n >= 1 << 20 && n & ((1 << 20) - 1) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_regular_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("a.yaml");
        std::fs::write(&ok, b"x: 1\n").unwrap();
        assert_eq!(read(&ok, 16, "image config", "hint").unwrap(), b"x: 1\n");

        let e = read(&ok, 3, "image config", "hint")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.yaml") && e.contains("larger than the 3 bytes"),
            "{e}"
        );

        let e = read(dir.path(), 16, "image config", "give a file")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file; give a file"), "{e}");

        let e = read(Path::new("/dev/zero"), 4 << 20, "credentials file", "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero is not a regular file"), "{e}");
        assert_eq!(size(4 << 20), "4 MiB");
    }
}
