//! Signing boot files with a site's own Secure Boot key (`secureBoot:
//! mode: sign`): systemd-boot and the unified kernel image ([`uki`]).
//!
//! Signing runs Debian's `sbsign` (sbsigntool): it writes the Authenticode
//! signature firmware checks, from the key and certificate as OpenSSL
//! reads them. A Rust Authenticode signer would need the PE hash, the
//! SpcIndirectDataContent and the PKCS#7 encoder written here, for no
//! gain over the tool Debian itself signs with. Two details make it fit a
//! reproducible build:
//! * sbsign stamps a PKCS#9 signing time in the signature; it runs under
//!   `faketime` with the clock frozen at the build's epoch, so the same
//!   inputs sign to the same bytes (RSA PKCS#1 v1.5 is deterministic);
//! * its stdin is closed, so an encrypted key fails instead of prompting.
//!
//! Every signed file is checked with `sbverify --cert` before it is used.

pub mod uki;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// A key and its certificate, as the config names them.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub key: PathBuf,
    pub certificate: PathBuf,
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of `epoch`: the frozen clock for faketime.
pub fn faketime_stamp(epoch: i64) -> String {
    let c = airlift_oci::civil_time::civil(epoch);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// What went wrong in sbsign's words, reduced to its error reasons (it
/// prints OpenSSL's error queue; no file contents).
fn sbsign_reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: data remaining"))
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .collect();
    lines.join("; ")
}

/// Signs the PE image `input` into `output` with `k`, the signing time
/// pinned to `epoch`, then checks the result with `sbverify --cert`.
pub fn sign(k: &SigningKey, input: &Path, output: &Path, epoch: i64) -> Result<()> {
    let run = Command::new("faketime")
        .arg("-f")
        .arg(faketime_stamp(epoch))
        .arg("sbsign")
        .arg("--key")
        .arg(&k.key)
        .arg("--cert")
        .arg(&k.certificate)
        .arg("--output")
        .arg(output)
        .arg(input)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .output();
    let out = match run {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`faketime` is not installed (Debian: apt-get install faketime sbsigntool; \
             `just deps`): airlift runs sbsign under it so signatures do not depend on the clock"
        ),
        Err(e) => return Err(e).context("running faketime sbsign"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if stderr.contains("does not match certificate") || stderr.contains("key values mismatch") {
            bail!(
                "the Secure Boot key {} does not match the certificate {}: give the certificate \
                 made from this key (compare `openssl x509 -noout -pubkey -in CERT` with \
                 `openssl pkey -pubout -in KEY`)",
                k.key.display(),
                k.certificate.display()
            );
        }
        if stderr.contains("Running specified command failed") {
            bail!("`sbsign` is not installed (Debian: apt-get install sbsigntool; `just deps`)");
        }
        bail!(
            "sbsign could not sign {} with the key {} and certificate {} ({}): {}",
            input.display(),
            k.key.display(),
            k.certificate.display(),
            out.status,
            sbsign_reason(&stderr)
        );
    }
    verify(k, output)
}

/// `sbverify --cert CERT file` accepts `file`.
pub fn verify(k: &SigningKey, file: &Path) -> Result<()> {
    let out = Command::new("sbverify")
        .arg("--cert")
        .arg(&k.certificate)
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .context("running sbverify (Debian: apt-get install sbsigntool)")?;
    if !out.status.success() {
        bail!(
            "{} was signed, but sbverify --cert {} does not accept it ({}); is the certificate \
             the one of the key {}?",
            file.display(),
            k.certificate.display(),
            sbsign_reason(&String::from_utf8_lossy(&out.stderr)),
            k.key.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
