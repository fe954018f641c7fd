//! Deciding whether to trust the CA host0 sends (pure but for the
//! remembered fingerprint's file).
//!
//! The first request goes over TLS that is not verified (the node has no
//! CA yet): what makes the answer trustworthy is that the CA it carries
//! matches the fingerprint host0 put on the node's kernel command line
//! (`airlift.ca=`, in the boot script). Without a pin, the CA is
//! accepted on first use, logged, and remembered: a later run refuses a
//! different one.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The remembered fingerprint's file name in the state folder.
pub const REMEMBERED: &str = "join-ca.sha256";

/// Why a CA was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// It matches `airlift.ca=`.
    Pinned(String),
    /// It matches the one accepted by an earlier run.
    Remembered(String),
    /// No pin and nothing remembered: trusted on first use.
    FirstUse(String),
    /// Plain HTTP, no CA.
    NoTls,
}

/// Check `ca_pem` (the CA sent) against the pin and the remembered fingerprint.
pub fn decide(
    ca_pem: Option<&str>,
    pin: Option<&str>,
    remembered: Option<&str>,
    https: bool,
) -> Result<Accepted> {
    let Some(pem) = ca_pem else {
        if https && pin.is_some() {
            bail!("host0 sent no CA but airlift.ca= pins one; refusing the config");
        }
        return Ok(Accepted::NoTls);
    };
    let got = crate::services::tls::fingerprint(pem).context("the CA host0 sent")?;
    if let Some(p) = pin {
        if !p.eq_ignore_ascii_case(&got) {
            bail!(
                "the CA host0 sent has fingerprint {got}, but airlift.ca= says {p}: refusing \
                 (is something else answering at host0's address?)"
            );
        }
        return Ok(Accepted::Pinned(got));
    }
    match remembered {
        Some(r) if r.trim().eq_ignore_ascii_case(&got) => Ok(Accepted::Remembered(got)),
        Some(r) => bail!(
            "the CA host0 sent has fingerprint {got}, but this node accepted {} before: \
             refusing; if host0 was rebuilt, delete {REMEMBERED} in the state folder",
            r.trim()
        ),
        None => Ok(Accepted::FirstUse(got)),
    }
}

/// The remembered fingerprint under `state`, if any.
pub fn remembered(state: &Path) -> Option<String> {
    std::fs::read_to_string(state.join(REMEMBERED)).ok()
}

/// Remember `fingerprint` under `state`.
pub fn remember(state: &Path, fingerprint: &str) -> Result<()> {
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    airlift_oci::atomic::write(
        &state.join(REMEMBERED),
        format!("{fingerprint}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        let tmp = tempfile::tempdir().unwrap();
        let t = crate::services::tls::ensure_tls(tmp.path(), &[], &[]).unwrap();
        let pem = t.ca_pem.unwrap();
        let fp = crate::services::tls::fingerprint(&pem).unwrap();
        (pem, fp)
    }

    #[test]
    fn pins_and_first_use() {
        let (pem, fp) = ca();
        assert_eq!(
            decide(
                Some(&pem),
                Some(&fp.to_uppercase().replace("SHA256", "sha256")),
                None,
                true
            )
            .unwrap(),
            Accepted::Pinned(fp.clone())
        );
        let other = format!("sha256:{}", "0".repeat(64));
        let e = format!(
            "{:#}",
            decide(Some(&pem), Some(&other), None, true).unwrap_err()
        );
        assert!(e.contains("refusing") && e.contains(&fp), "{e}");
        assert_eq!(
            decide(Some(&pem), None, None, true).unwrap(),
            Accepted::FirstUse(fp.clone())
        );
        assert_eq!(
            decide(Some(&pem), None, Some(&format!("{fp}\n")), true).unwrap(),
            Accepted::Remembered(fp.clone())
        );
        assert!(decide(Some(&pem), None, Some(&other), true).is_err());
        assert!(decide(None, Some(&fp), None, true).is_err());
        assert_eq!(decide(None, None, None, false).unwrap(), Accepted::NoTls);
    }

    #[test]
    fn remembers() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(remembered(tmp.path()), None);
        remember(tmp.path(), "sha256:ab").unwrap();
        assert_eq!(remembered(tmp.path()).as_deref(), Some("sha256:ab\n"));
    }
}
