//! Reproducibility inputs: the timestamp every file gets, and the join
//! token.
//!
//! * **Epoch.** `SOURCE_DATE_EPOCH` when set (reproducible builds);
//!   otherwise the config file's modification time, so an image shows
//!   when its config last changed and two builds of an unchanged config
//!   still match in every timestamp.
//! * **Join token** (32 bytes, hex), the secret nodes present to join
//!   host0. `AIRLIFT_JOIN_TOKEN` (64 hex digits) when set. Otherwise, with
//!   `SOURCE_DATE_EPOCH` set, it is derived as
//!   `SHA-256("airlift-join-token\0" name "\0" version "\0" epoch)`, so a
//!   reproducible build is bit-identical, but anyone who knows those three
//!   values can compute it: set `AIRLIFT_JOIN_TOKEN` from a secret store
//!   for real deployments. Without either, 32 random bytes from the OS.

use std::io::Read;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// The build's epoch from `SOURCE_DATE_EPOCH` (`var`) or, when unset, the
/// config file's mtime.
pub fn epoch(var: Option<&str>, config_mtime: i64) -> Result<i64> {
    match var {
        Some(v) => {
            let v = v.trim();
            v.parse::<i64>()
                .ok()
                .filter(|e| (0..=u32::MAX as i64).contains(e))
                .with_context(|| {
                    format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds between 0 and 4294967295")
                })
        }
        None => Ok(config_mtime.max(0)),
    }
}

/// Where the join token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Explicit,
    Derived,
    Random,
}

/// The join token (64 hex digits) and where it came from; see the module doc.
pub fn join_token(
    explicit: Option<&str>,
    source_date_epoch: Option<i64>,
    name: &str,
    version: &str,
) -> Result<(String, TokenSource)> {
    if let Some(t) = explicit {
        let t = t.trim().to_ascii_lowercase();
        if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("AIRLIFT_JOIN_TOKEN must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`");
        }
        return Ok((t, TokenSource::Explicit));
    }
    if let Some(epoch) = source_date_epoch {
        let mut h = Sha256::new();
        h.update(b"airlift-join-token\0");
        h.update(name.as_bytes());
        h.update(b"\0");
        h.update(version.as_bytes());
        h.update(b"\0");
        h.update(epoch.to_string().as_bytes());
        return Ok((hex::encode(h.finalize()), TokenSource::Derived));
    }
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading 32 random bytes from /dev/urandom for the join token")?;
    Ok((hex::encode(buf), TokenSource::Random))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_prefers_source_date_epoch() {
        assert_eq!(epoch(Some("1700000000"), 5).unwrap(), 1_700_000_000);
        assert_eq!(epoch(None, 5).unwrap(), 5);
        assert_eq!(epoch(None, -3).unwrap(), 0);
        let err = epoch(Some("yesterday"), 5).unwrap_err();
        assert!(err.to_string().contains("SOURCE_DATE_EPOCH"), "{err}");
        assert!(epoch(Some("-1"), 5).is_err());
    }

    #[test]
    fn tokens_are_explicit_derived_or_random() {
        let hexs = "AB".repeat(32);
        let (t, s) = join_token(Some(&hexs), Some(1), "a", "1").unwrap();
        assert_eq!(
            (t.as_str(), s),
            ("ab".repeat(32).as_str(), TokenSource::Explicit)
        );
        assert!(join_token(Some("short"), None, "a", "1").is_err());

        let (d1, s) = join_token(None, Some(1), "a", "1").unwrap();
        assert_eq!(s, TokenSource::Derived);
        assert_eq!(d1, join_token(None, Some(1), "a", "1").unwrap().0);
        assert_ne!(d1, join_token(None, Some(2), "a", "1").unwrap().0);
        assert_ne!(d1, join_token(None, Some(1), "b", "1").unwrap().0);

        let (r1, s) = join_token(None, None, "a", "1").unwrap();
        assert_eq!(s, TokenSource::Random);
        assert_eq!(r1.len(), 64);
        assert_ne!(r1, join_token(None, None, "a", "1").unwrap().0);
    }
}
