//! `airlift verify`: check an ISO's content without mounting it. Every blob
//! under `/airlift/bundle/blobs/<alg>/<hex>` is streamed and hashed, every
//! `SHA256SUMS` line is checked, and every descriptor reachable from the
//! bundle's `index.json` must exist with its recorded size.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use crate::iso::read::{Entry, Iso, Kind};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ISO image to read.
    pub iso: PathBuf,
}

/// What verification found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub blobs_checked: usize,
    pub sums_checked: usize,
    pub descriptors_checked: usize,
    /// One line per problem, naming the blob, file or digest.
    pub failures: Vec<String>,
}

const BLOBS: &str = "airlift/bundle/blobs";

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
    let entries = iso.walk()?;

    // Blobs.
    for (p, e) in &entries {
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
        let got = hash_entry(&iso, e, alg).with_context(|| format!("reading blob {alg}:{hexd}"))?;
        if got != hexd {
            report
                .failures
                .push(format!("blob {alg}:{hexd}: content hashes to {alg}:{got}"));
        }
    }

    // SHA256SUMS.
    match iso.read_file("SHA256SUMS")? {
        None => report
            .failures
            .push("SHA256SUMS: missing at the ISO root".into()),
        Some(sums) => {
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
                        let got = hash_entry(&iso, &e, "sha256")?;
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
        }
    }

    // Descriptors reachable from index.json.
    match iso.read_file("airlift/bundle/index.json")? {
        None => report
            .failures
            .push("airlift/bundle/index.json: missing".into()),
        Some(bytes) => {
            let index: Value = airlift_oci::quiet_json::parse(&bytes, "airlift/bundle/index.json")?;
            let mut queue: Vec<Value> = index["manifests"].as_array().cloned().unwrap_or_default();
            let mut seen = std::collections::HashSet::new();
            while let Some(d) = queue.pop() {
                let digest = d["digest"].as_str().unwrap_or_default().to_string();
                if !seen.insert(digest.clone()) {
                    continue;
                }
                report.descriptors_checked += 1;
                let Some((alg, hexd)) = digest.split_once(':') else {
                    report
                        .failures
                        .push(format!("descriptor with invalid digest {digest:?}"));
                    continue;
                };
                let blob = format!("{BLOBS}/{alg}/{hexd}");
                let Some(e) = iso.lookup(&blob)? else {
                    report
                        .failures
                        .push(format!("descriptor {digest}: blob {blob} is missing"));
                    continue;
                };
                if let Some(size) = d["size"].as_u64() {
                    if size != e.size {
                        report.failures.push(format!(
                            "descriptor {digest}: size {size}, blob has {}",
                            e.size
                        ));
                    }
                }
                let mt = d["mediaType"].as_str().unwrap_or_default();
                let is_json = mt.contains("manifest") || mt.contains("index");
                if is_json && e.size <= 16 << 20 {
                    let mut body = Vec::new();
                    iso.open_file(&e)?.read_to_end(&mut body)?;
                    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                        report
                            .failures
                            .push(format!("descriptor {digest}: {mt} is not valid JSON"));
                        continue;
                    };
                    for m in v["manifests"].as_array().into_iter().flatten() {
                        queue.push(m.clone());
                    }
                    if v["config"].is_object() {
                        queue.push(v["config"].clone());
                    }
                    for l in v["layers"].as_array().into_iter().flatten() {
                        queue.push(l.clone());
                    }
                }
            }
        }
    }
    Ok(report)
}

pub fn run(args: Args) -> Result<()> {
    let r = verify(&args.iso)?;
    println!(
        "{}: {} blobs, {} SHA256SUMS entries, {} descriptors checked",
        args.iso.display(),
        r.blobs_checked,
        r.sums_checked,
        r.descriptors_checked
    );
    if r.failures.is_empty() {
        println!("OK");
        return Ok(());
    }
    for f in &r.failures {
        println!("FAILED {f}");
    }
    bail!(
        "{}: {} problem(s) found; rebuild the ISO or re-copy it",
        args.iso.display(),
        r.failures.len()
    )
}
