//! Verifying an ISO's content without mounting it: every blob under
//! `/airlift/bundle/blobs/<alg>/<hex>` is streamed and hashed, every
//! `SHA256SUMS` line is checked, and every descriptor reachable from the
//! bundle's `index.json` must exist with its recorded size. Problems are
//! collected, not the first one returned; `airlift verify` prints them.
//!
//! An update medium (with `/airlift/update.json`) leaves out the blobs its
//! base release holds: a descriptor without its blob is counted as in the
//! base, not a problem; instead the blobs it carries must be exactly as
//! many, and as large, as `update.json` says, and `update.json` must name
//! this bundle (the digest of its `index.json`).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use airlift_appliance::release::{UpdateManifest, UPDATE_ISO_PATH};

use super::read::{Entry, Iso, Kind};

/// What verification found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub blobs_checked: usize,
    pub sums_checked: usize,
    pub descriptors_checked: usize,
    /// Descriptors whose blob an update medium leaves to its base release.
    pub in_base: usize,
    /// One line per problem, naming the blob, file or digest.
    pub failures: Vec<String>,
}

/// Where the bundle's blobs are in the ISO.
const BLOBS: &str = "airlift/bundle/blobs";

/// The hex digest (`alg` sha256 or sha512) of a file's bytes in the ISO.
fn hash_entry(iso: &Iso, e: &Entry, alg: &str) -> Result<String> {
    let mut r = iso.open_file(e)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut s256 = Sha256::new();
    let mut s512 = Sha512::new();
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        match alg {
            "sha256" => s256.update(&buf[..n]),
            _ => s512.update(&buf[..n]),
        }
    }
    Ok(match alg {
        "sha256" => hex::encode(s256.finalize()),
        _ => hex::encode(s512.finalize()),
    })
}

/// Verifies the ISO at `path`.
pub fn verify(path: &Path) -> Result<Report> {
    let iso = Iso::open(path)?;
    let mut report = Report::default();
    let update = update_manifest(&iso)?;
    let carried = check_blobs(&iso, &mut report)?;
    check_sums(&iso, &mut report)?;
    let index = iso.read_file("airlift/bundle/index.json")?;
    check_descriptors(&iso, index.as_deref(), update.is_some(), &mut report)?;
    if let Some(u) = &update {
        check_update(u, index.as_deref(), carried, &mut report);
    }
    Ok(report)
}

/// `/airlift/update.json`, if the ISO is an update medium.
fn update_manifest(iso: &Iso) -> Result<Option<UpdateManifest>> {
    iso.read_file(UPDATE_ISO_PATH)?
        .map(|b| airlift_oci::quiet_json::parse(&b, UPDATE_ISO_PATH))
        .transpose()
}

/// An update medium carries what its `update.json` says (`(blobs,
/// bytes)`: what it holds), for this bundle (`index`: its index.json).
pub fn check_update(
    u: &UpdateManifest,
    index: Option<&[u8]>,
    (blobs, bytes): (u64, u64),
    report: &mut Report,
) {
    if (blobs, bytes) != (u.carried.blobs, u.carried.bytes) {
        report.failures.push(format!(
            "{UPDATE_ISO_PATH}: says {} blobs ({} bytes) are carried, the medium has {blobs} \
             ({bytes} bytes)",
            u.carried.blobs, u.carried.bytes
        ));
    }
    if let Some(index) = index {
        let id = airlift_appliance::release::bundle_id(index);
        if id != u.release.bundle {
            report.failures.push(format!(
                "{UPDATE_ISO_PATH}: names bundle {}, but index.json is {id}",
                u.release.bundle
            ));
        }
    }
}

/// Every blob in the store hashes to its name; returns how many blobs
/// and bytes the store holds.
fn check_blobs(iso: &Iso, report: &mut Report) -> Result<(u64, u64)> {
    let mut held = (0, 0);
    for (p, e) in &iso.walk()? {
        let Some(rest) = p.strip_prefix(&format!("{BLOBS}/")) else {
            continue;
        };
        if e.kind == Kind::Dir {
            continue;
        }
        let Some((alg, hexd)) = rest.split_once('/') else {
            report
                .failures
                .push(format!("{p}: unexpected file in the blob store"));
            continue;
        };
        if !matches!(alg, "sha256" | "sha512") {
            report
                .failures
                .push(format!("{p}: unsupported digest algorithm {alg:?}"));
            continue;
        }
        if e.kind != Kind::File {
            report
                .failures
                .push(format!("blob {alg}:{hexd}: not a regular file"));
            continue;
        }
        report.blobs_checked += 1;
        held = (held.0 + 1, held.1 + e.size);
        let got = hash_entry(iso, e, alg).with_context(|| format!("reading blob {alg}:{hexd}"))?;
        if got != hexd {
            report
                .failures
                .push(format!("blob {alg}:{hexd}: content hashes to {alg}:{got}"));
        }
    }
    Ok(held)
}

/// Every `SHA256SUMS` line names a file with that sha256.
fn check_sums(iso: &Iso, report: &mut Report) -> Result<()> {
    let Some(sums) = iso.read_file("SHA256SUMS")? else {
        report
            .failures
            .push("SHA256SUMS: missing at the ISO root".into());
        return Ok(());
    };
    let text = String::from_utf8(sums).context("SHA256SUMS is not UTF-8")?;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Some((want, file)) = line.split_once("  ") else {
            report
                .failures
                .push(format!("SHA256SUMS line {}: not '<hex>  <path>'", n + 1));
            continue;
        };
        report.sums_checked += 1;
        match iso.lookup(file)? {
            Some(e) if e.kind == Kind::File => {
                let got = hash_entry(iso, &e, "sha256")?;
                if got != want {
                    report
                        .failures
                        .push(format!("{file}: sha256 is {got}, SHA256SUMS says {want}"));
                }
            }
            _ => report
                .failures
                .push(format!("{file}: listed in SHA256SUMS but missing")),
        }
    }
    Ok(())
}

/// Where [`check_descriptors`] finds a medium's blobs by `alg` and hex:
/// the ISO, or an OCI archive ([`crate::update::verify_archive`]).
pub trait BlobStore {
    /// The blob's size, if the medium has it.
    fn blob_size(&self, alg: &str, hex: &str) -> Result<Option<u64>>;
    /// The bytes of a blob the medium has (only manifests and indexes of
    /// at most [`MAX_DOCUMENT`] bytes are read).
    fn read_blob(&self, alg: &str, hex: &str) -> Result<Vec<u8>>;
}

/// Largest manifest or index read for its children.
pub const MAX_DOCUMENT: u64 = 16 << 20;

impl BlobStore for Iso {
    fn blob_size(&self, alg: &str, hex: &str) -> Result<Option<u64>> {
        Ok(self
            .lookup(&format!("{BLOBS}/{alg}/{hex}"))?
            .map(|e| e.size))
    }

    fn read_blob(&self, alg: &str, hex: &str) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        if let Some(e) = self.lookup(&format!("{BLOBS}/{alg}/{hex}"))? {
            self.open_file(&e)?.read_to_end(&mut body)?;
        }
        Ok(body)
    }
}

/// Every descriptor reachable from `index` (the bundle's `index.json`,
/// `None` when missing) has its blob, with the recorded size; manifests
/// and indexes are read for their children. On an `update` medium a
/// missing blob is in the base release.
pub fn check_descriptors(
    store: &dyn BlobStore,
    index: Option<&[u8]>,
    update: bool,
    report: &mut Report,
) -> Result<()> {
    let Some(bytes) = index else {
        report
            .failures
            .push("the bundle's index.json: missing".into());
        return Ok(());
    };
    let index: Value = airlift_oci::quiet_json::parse(bytes, "the bundle's index.json")?;
    let mut queue: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
    let mut seen = std::collections::HashSet::new();
    while let Some(d) = queue.pop() {
        let digest = d["digest"].as_str().unwrap_or_default().to_string();
        if !seen.insert(digest.clone()) {
            continue;
        }
        report.descriptors_checked += 1;
        if let Some(children) = check_descriptor(store, &d, &digest, update, report)? {
            queue.extend(children);
        }
    }
    Ok(())
}

/// One descriptor: its blob exists with the recorded size. Returns the
/// descriptors a manifest or index (read when at most 16 MiB) lists.
fn check_descriptor(
    store: &dyn BlobStore,
    d: &Value,
    digest: &str,
    update: bool,
    report: &mut Report,
) -> Result<Option<Vec<Value>>> {
    let Some((alg, hexd)) = digest.split_once(':') else {
        report
            .failures
            .push(format!("descriptor with invalid digest {digest:?}"));
        return Ok(None);
    };
    let Some(blob_size) = store.blob_size(alg, hexd)? else {
        if update {
            report.in_base += 1;
            return Ok(None);
        }
        report.failures.push(format!(
            "descriptor {digest}: blob {BLOBS}/{alg}/{hexd} is missing"
        ));
        return Ok(None);
    };
    if let Some(size) = d["size"].as_u64() {
        if size != blob_size {
            report.failures.push(format!(
                "descriptor {digest}: size {size}, blob has {blob_size}"
            ));
        }
    }
    let mt = d["mediaType"].as_str().unwrap_or_default();
    let is_json = mt.contains("manifest") || mt.contains("index");
    if !is_json || blob_size > MAX_DOCUMENT {
        return Ok(None);
    }
    let body = store.read_blob(alg, hexd)?;
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        report
            .failures
            .push(format!("descriptor {digest}: {mt} is not valid JSON"));
        return Ok(None);
    };
    let mut children: Vec<Value> = Vec::new();
    children.extend(v["manifests"].as_array().into_iter().flatten().cloned());
    if v["config"].is_object() {
        children.push(v["config"].clone());
    }
    children.extend(v["layers"].as_array().into_iter().flatten().cloned());
    Ok(Some(children))
}
