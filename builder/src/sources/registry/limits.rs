//! Bounds on what a registry may send: body sizes (a manifest sent
//! without a length could otherwise grow without end) and how long a
//! transfer may sit idle before it counts as stalled and is retried.

use std::time::Duration;

use anyhow::{bail, Result};
use reqwest::Response;

/// Largest manifest or index accepted: 4 MiB, containerd's limit too.
pub const MAX_MANIFEST: usize = 4 << 20;
/// Largest token-service answer read.
pub const MAX_TOKEN_RESPONSE: usize = 1 << 20;
/// Most of an error answer's body read (a few hundred bytes are shown).
pub const MAX_ERROR_BODY: usize = 16 << 10;

/// The environment variable overriding [`DEFAULT_IDLE`] (whole seconds).
pub const IDLE_ENV: &str = "AIRLIFT_REGISTRY_IDLE_TIMEOUT";
/// How long a connection may send nothing (headers or body) before the
/// transfer is abandoned and retried.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(30);

/// The idle read timeout: `value` of [`IDLE_ENV`] if set, else the default.
pub fn idle_timeout(value: Option<&str>) -> Result<Duration> {
    match value {
        None => Ok(DEFAULT_IDLE),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            _ => bail!("{IDLE_ENV}={v:?}: give a whole number of seconds from 1 to 3600"),
        },
    }
}

/// Why a body could not be read whole.
#[derive(Debug)]
pub enum BodyError {
    /// More than the cap arrived.
    TooLarge,
    /// The transfer failed (cut off, or idle past the timeout).
    Http(reqwest::Error),
}

/// Reads `resp`'s body, refusing more than `max` bytes whatever the
/// `Content-Length` says (or without one).
pub async fn read_capped(mut resp: Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::new();
    while let Some(c) = resp.chunk().await.map_err(BodyError::Http)? {
        if out.len() + c.len() > max {
            return Err(BodyError::TooLarge);
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// Describes a failed transfer, saying so when it stalled.
pub fn describe(e: &reqwest::Error, idle: Duration) -> String {
    if e.is_timeout() {
        format!(
            "the registry stalled: nothing arrived for {} s ({e})",
            idle.as_secs()
        )
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_timeout_defaults_and_parses_seconds() {
        assert_eq!(idle_timeout(None).unwrap(), DEFAULT_IDLE);
        assert_eq!(idle_timeout(Some("2")).unwrap(), Duration::from_secs(2));
        for bad in ["0", "-1", "1.5", "x", "99999"] {
            let e = idle_timeout(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(IDLE_ENV), "{e}");
        }
    }
}
