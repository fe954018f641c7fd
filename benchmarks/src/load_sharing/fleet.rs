//! The simulation's moving parts: the image set (an OCI layout made once
//! and reused), three `airlift-firstboot serve` serving it, and the
//! simulated nodes as threads pulling it all at once.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::Instant;

use airlift_integration::firstboot::{ServeConfig, Server};
use airlift_integration::images::{MadeImage, TestImage};
use anyhow::{bail, Context, Result};

use super::fetch::Conn;
use super::{pull, NodeTally, Share, Sizes};
use crate::measure;
use crate::payload;
use crate::settings::Settings;
use crate::Binaries;

/// The Accept header of manifest requests (what a runtime sends).
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";

/// Three registries serving one image set, killed on drop.
pub struct Fleet {
    servers: Vec<Server>,
    /// Every request of a node's pull: a path and its Accept header.
    paths: Vec<(String, Option<&'static str>)>,
    set_bytes: u64,
}

/// The image set: `images` one-layer images with references under
/// `quay.io/bench/`, as a bundle holds them.
fn image_set(sizes: Sizes) -> Vec<TestImage> {
    (0..sizes.images)
        .map(|i| TestImage {
            gzip: true,
            ..TestImage::random(
                &format!("quay.io/bench/replicas{i}:1"),
                7000 + i as u64,
                sizes.layer_kib << 10,
            )
        })
        .collect()
}

/// A node's requests for `made`: each image's manifest by tag, then its
/// config and layers by digest.
fn requests(made: &[MadeImage]) -> Vec<(String, Option<&'static str>)> {
    let mut out = Vec::new();
    for m in made {
        let (repo, tag) = m
            .ref_name
            .rsplit_once(':')
            .unwrap_or((&m.ref_name, "latest"));
        out.push((format!("/v2/{repo}/manifests/{tag}"), Some(ACCEPT)));
        for b in &m.blobs {
            out.push((format!("/v2/{repo}/blobs/{b}"), None));
        }
    }
    out
}

impl Fleet {
    /// Make (or reuse) the image set and start the three registries on
    /// it; check each serves the whole set, which also warms the page
    /// cache.
    pub fn start(s: &Settings, bins: &Binaries, sizes: Sizes) -> Result<Fleet> {
        let dir = s.work_dir.join("replicas");
        let layout = dir.join("payload");
        let made = payload::ensure_layout(&layout, &image_set(sizes))?;
        let paths = requests(&made);
        let servers = ["host0", "replica1", "replica2"]
            .iter()
            .map(|name| start_one(bins, &dir.join(name), &layout))
            .collect::<Result<Vec<_>>>()?;
        let mut fleet = Fleet {
            servers,
            paths,
            set_bytes: 0,
        };
        let mut sizes_seen = Vec::new();
        for (r, addr) in fleet.addrs().into_iter().enumerate() {
            let mut conn = Conn::new(addr);
            let mut total = 0;
            for (p, accept) in &fleet.paths {
                total += conn
                    .get(p, *accept)
                    .with_context(|| format!("registry {r} does not serve the image set"))?;
            }
            sizes_seen.push(total);
        }
        if sizes_seen.windows(2).any(|w| w[0] != w[1]) {
            bail!("the three registries serve different bytes: {sizes_seen:?}");
        }
        fleet.set_bytes = sizes_seen[0];
        Ok(fleet)
    }

    /// Stop registry `r` for good (SIGKILL): its port refuses from now on.
    pub fn stop(&mut self, r: usize) {
        if let Some(s) = self.servers.get_mut(r) {
            s.kill9();
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    /// The registries' URLs, host0 first.
    pub fn urls(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("http://{}", s.host()))
            .collect()
    }

    /// Bytes of one node's pull (manifests, configs, layers).
    pub fn set_bytes(&self) -> u64 {
        self.set_bytes
    }

    /// Every node pulls the set at once, node `i` in `orders[i]`: the
    /// wall time until the last is done, each registry's share, and the
    /// failovers seen.
    pub fn run_nodes(&self, orders: &[Vec<usize>]) -> Result<(f64, Vec<Share>, u64)> {
        let addrs = self.addrs();
        let pids: Vec<u32> = self.servers.iter().map(Server::pid).collect();
        let before: Vec<(Option<u64>, Option<u64>)> = pids.iter().map(|&p| usage(p)).collect();
        let barrier = Barrier::new(orders.len() + 1);
        let (wall, tallies) = std::thread::scope(|scope| {
            let handles: Vec<_> = orders
                .iter()
                .map(|order| {
                    let (addrs, barrier, paths) = (&addrs, &barrier, &self.paths);
                    scope.spawn(move || {
                        let mut conns: Vec<Conn> = addrs.iter().map(|a| Conn::new(*a)).collect();
                        barrier.wait();
                        pull(order, paths, addrs.len(), |r, p, a| conns[r].get(p, a))
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let tallies: Vec<Result<NodeTally>> = handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a node thread panicked")))
                })
                .collect();
            (start.elapsed().as_secs_f64(), tallies)
        });
        let tallies = tallies.into_iter().collect::<Result<Vec<_>>>()?;
        let tick = measure::clock_ticks_per_second() as f64;
        let shares = (0..addrs.len())
            .map(|r| {
                let (w1, c1) = usage(pids[r]);
                let (w0, c0) = before[r];
                Share {
                    first_of: orders.iter().filter(|o| o.first() == Some(&r)).count(),
                    requests: tallies.iter().map(|t| t.requests[r]).sum(),
                    bytes: tallies.iter().map(|t| t.bytes[r]).sum(),
                    written: w1.zip(w0).map(|(a, b)| a.saturating_sub(b)),
                    cpu_secs: c1.zip(c0).map(|(a, b)| a.saturating_sub(b) as f64 / tick),
                }
            })
            .collect();
        let failovers = tallies.iter().map(|t| t.failovers).sum();
        Ok((wall, shares, failovers))
    }
}

/// Start one `serve` on a free port, an empty store under `dir` and the
/// image set as its read-only layer.
fn start_one(bins: &Binaries, dir: &Path, layout: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data: PathBuf = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("emptying {}", data.display()))?;
    }
    let config = ServeConfig {
        data,
        layers: vec![layout.to_path_buf()],
        env: vec![("RUST_LOG".into(), "warn".into())],
        binary: Some(bins.firstboot.clone()),
        ..ServeConfig::default()
    };
    Server::try_start_on(&config, "127.0.0.1:0")
}

/// A process's bytes written so far (`/proc/PID/io` wchar) and CPU
/// ticks, each if readable.
fn usage(pid: u32) -> (Option<u64>, Option<u64>) {
    let written = std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|t| parse_wchar(&t));
    (written, measure::cpu_ticks(pid).ok())
}

/// The `wchar:` line of `/proc/PID/io`.
pub fn parse_wchar(io: &str) -> Option<u64> {
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::Digest;

    #[test]
    fn wchar_from_proc_io() {
        let io = "rchar: 10\nwchar: 2048\nsyscr: 1\n";
        assert_eq!(parse_wchar(io), Some(2048));
        assert_eq!(parse_wchar("rchar: 1\n"), None);
    }

    #[test]
    fn a_node_asks_for_each_manifest_then_its_blobs() {
        let d = |s: &[u8]| Digest::sha256_of(s);
        let made = vec![MadeImage {
            ref_name: "quay.io/bench/replicas0:1".into(),
            manifest: airlift_oci::Descriptor::new(
                airlift_oci::documents::media::OCI_MANIFEST,
                d(b"m"),
                1,
            ),
            blobs: vec![d(b"c"), d(b"l")],
        }];
        let r = requests(&made);
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0],
            (
                "/v2/quay.io/bench/replicas0/manifests/1".to_string(),
                Some(ACCEPT)
            )
        );
        assert_eq!(
            r[2],
            (
                format!("/v2/quay.io/bench/replicas0/blobs/{}", d(b"l")),
                None
            )
        );
        let set = image_set(Sizes {
            images: 5,
            layer_kib: 4,
            nodes: 1,
        });
        assert_eq!(set.len(), 5);
        assert_eq!(set[4].ref_name, "quay.io/bench/replicas4:1");
    }
}
