//! The "node start" workload: many simulated nodes at once, each on its
//! own kept-alive connection pulling every node image the way containerd
//! does at boot: the index by tag, the linux/amd64 manifest by digest,
//! the config blob, then each layer it has not fetched yet, with the
//! Accept headers containerd sends. Timed as a whole, with the server's
//! CPU time from /proc, each registry in turn (A B C A B C).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use tokio::runtime::Runtime;

use super::content::{Content, NODE_TAG};
use super::steady::{Live, Transport};
use crate::load::{Endpoint, Exchange, Request};
use crate::measure;
use crate::servers::Kind;
use crate::settings::Settings;
use crate::stats::num;

/// containerd's Accept when it resolves a tag.
pub const RESOLVE_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*";

/// How long one request may take before its node counts as failed (a
/// whole layer takes well under a second on loopback).
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// One run of every node against one registry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeRun {
    /// From the first connect to the last node done.
    pub wall_seconds: f64,
    /// Body bytes moved.
    pub bytes: u64,
    /// Requests answered 2xx.
    pub requests: u64,
    /// Nodes that failed.
    pub errors: u64,
    /// The server's CPU time during the run.
    pub cpu_seconds: f64,
}

/// One registry's runs over one transport.
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub transport: Transport,
    pub kind: Kind,
    pub runs: Vec<NodeRun>,
}

/// Every registry's node-start runs over `transport`, rounds alternating.
pub fn measure(
    rt: &Runtime,
    s: &Settings,
    live: &[Live],
    content: &Content,
    transport: Transport,
) -> Result<Vec<NodeRow>> {
    let ticks = measure::clock_ticks_per_second() as f64;
    let mut rows: Vec<NodeRow> = live
        .iter()
        .map(|l| NodeRow {
            transport,
            kind: l.server.kind(),
            runs: Vec::new(),
        })
        .collect();
    for round in 1..=s.rounds {
        for (l, row) in live.iter().zip(rows.iter_mut()) {
            let before = measure::cpu_ticks(l.server.pid())?;
            let mut run =
                rt.block_on(all_nodes(&l.endpoint, &content.node_repos, s.serve_nodes))?;
            run.cpu_seconds = (measure::cpu_ticks(l.server.pid())? - before) as f64 / ticks;
            eprintln!(
                "[serve] {} node start round {round}, {}: {} s, {} MB, {} requests, {} failed nodes",
                transport.name(),
                l.server.name(),
                num(Some(run.wall_seconds)),
                num(Some(run.bytes as f64 / 1e6)),
                run.requests,
                run.errors
            );
            row.runs.push(run);
        }
    }
    Ok(rows)
}

/// Start `nodes` nodes at once and wait for all of them.
async fn all_nodes(endpoint: &Endpoint, repos: &[String], nodes: usize) -> Result<NodeRun> {
    let bytes = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..nodes {
        let (endpoint, repos) = (endpoint.clone(), repos.to_vec());
        let (bytes, requests) = (bytes.clone(), requests.clone());
        tasks.push(tokio::spawn(async move {
            one_node(&endpoint, &repos, &bytes, &requests).await
        }));
    }
    let mut errors = 0;
    for t in tasks {
        if let Err(e) = t.await? {
            errors += 1;
            if let Ok(mut f) = first_error.lock() {
                f.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let wall_seconds = start.elapsed().as_secs_f64();
    if let Some(e) = first_error.lock().ok().and_then(|mut f| f.take()) {
        eprintln!("[serve] node start: {errors} nodes failed, the first: {e}");
    }
    Ok(NodeRun {
        wall_seconds,
        bytes: bytes.load(Ordering::Relaxed),
        requests: requests.load(Ordering::Relaxed),
        errors,
        cpu_seconds: 0.0,
    })
}

/// One node: every image, on one connection.
async fn one_node(
    endpoint: &Endpoint,
    repos: &[String],
    bytes: &AtomicU64,
    requests: &AtomicU64,
) -> Result<()> {
    let mut node = Node {
        ex: Exchange::open(endpoint).await?,
        host: endpoint.addr.to_string(),
        bytes,
        requests,
    };
    let mut have = HashSet::new();
    for repo in repos {
        let index = node
            .get(
                &format!("/v2/{repo}/manifests/{NODE_TAG}"),
                RESOLVE_ACCEPT,
                true,
            )
            .await?;
        let (digest, media_type) = pick_platform(&index)?;
        let accept = format!("{media_type}, */*");
        let manifest = node
            .get(&format!("/v2/{repo}/manifests/{digest}"), &accept, true)
            .await?;
        for (digest, media_type) in blobs_of(&manifest)? {
            if have.insert(digest.clone()) {
                let accept = format!("{media_type}, */*");
                node.get(&format!("/v2/{repo}/blobs/{digest}"), &accept, false)
                    .await?;
            }
        }
    }
    Ok(())
}

/// A simulated node's connection and the run's counters.
struct Node<'a> {
    ex: Exchange,
    host: String,
    bytes: &'a AtomicU64,
    requests: &'a AtomicU64,
}

impl Node<'_> {
    /// GET `path` with `accept`; the body when `keep`. Anything but 200
    /// fails the node.
    async fn get(&mut self, path: &str, accept: &str, keep: bool) -> Result<Vec<u8>> {
        let req = Request::new("GET", path, &self.host, &[("Accept", accept)]);
        let r = tokio::time::timeout(STALL, self.ex.send(&req, self.bytes, keep))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {} s", STALL.as_secs()))
            .and_then(|r| r)
            .with_context(|| format!("GET {path}"))?;
        if r.status != 200 {
            bail!("GET {path} answered {}", r.status);
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(r.body)
    }
}

/// The linux/amd64 entry of an image index: its digest and media type.
pub fn pick_platform(index: &[u8]) -> Result<(String, String)> {
    let v: Value = serde_json::from_slice(index).context("the index is not JSON")?;
    let entries = v["manifests"]
        .as_array()
        .context("the index has no manifests list")?;
    let entry = entries
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64" && m["platform"]["os"] == "linux")
        .context("the index has no linux/amd64 manifest")?;
    let field = |k: &str| entry[k].as_str().map(str::to_string);
    Ok((
        field("digest").context("the amd64 entry has no digest")?,
        field("mediaType").context("the amd64 entry has no mediaType")?,
    ))
}

/// The config and layers of an image manifest: digests and media types.
pub fn blobs_of(manifest: &[u8]) -> Result<Vec<(String, String)>> {
    let v: Value = serde_json::from_slice(manifest).context("the manifest is not JSON")?;
    let layers = v["layers"]
        .as_array()
        .context("the manifest has no layers list")?;
    std::iter::once(&v["config"])
        .chain(layers)
        .map(|d| {
            let digest = d["digest"]
                .as_str()
                .context("a descriptor without a digest")?;
            let media = d["mediaType"]
                .as_str()
                .context("a descriptor without a mediaType")?;
            Ok((digest.to_string(), media.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_amd64_from_an_index() {
        let index = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"m/arm","digest":"sha256:a","size":1,"platform":{"architecture":"arm64","os":"linux"}},
            {"mediaType":"m/oci","digest":"sha256:b","size":1,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        assert_eq!(
            pick_platform(index).unwrap(),
            ("sha256:b".into(), "m/oci".into())
        );
        let none = br#"{"manifests":[{"digest":"sha256:a","platform":{"architecture":"arm64","os":"linux"}}]}"#;
        assert!(format!("{:#}", pick_platform(none).unwrap_err()).contains("amd64"));
        assert!(pick_platform(b"<html>").is_err());
    }

    #[test]
    fn lists_config_then_layers() {
        let m = br#"{"config":{"mediaType":"c","digest":"sha256:c"},
            "layers":[{"mediaType":"l","digest":"sha256:1"},{"mediaType":"l","digest":"sha256:2"}]}"#;
        let b = blobs_of(m).unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0], ("sha256:c".into(), "c".into()));
        assert_eq!(b[2].0, "sha256:2");
        assert!(blobs_of(br#"{"config":{"digest":"sha256:c"},"layers":[]}"#).is_err());
        assert!(blobs_of(br#"{"config":{}}"#).is_err());
    }
}
