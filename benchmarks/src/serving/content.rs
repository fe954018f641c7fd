//! What every registry serves, pushed the same way into each (skopeo
//! from OCI layouts made once and kept across runs): the one-layer image
//! whose manifest and big blob the steady rows request, and the
//! multi-platform images the simulated nodes pull at start. Checked over
//! the load client before measuring: every registry serves the same bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use airlift_integration::images::{write_multiarch, Layer, TestImage};
use airlift_oci::Digest;
use anyhow::{bail, Context, Result};

use crate::load::{Endpoint, Exchange, Request, TlsInfo};
use crate::measure;
use crate::payload;
use crate::servers::{self, Kind, Server};
use crate::settings::Settings;

/// The repository and tag of the steady rows' image.
pub const REPO: &str = "bench/serve";
pub const TAG: &str = "1";

/// The Accept header of the steady rows' manifest requests.
pub const ACCEPT_VALUE: &str = "application/vnd.oci.image.manifest.v1+json, \
                                application/vnd.docker.distribution.manifest.v2+json";

/// The tag of every node image.
pub const NODE_TAG: &str = "1";

/// The layouts and what the load asks for.
pub struct Content {
    serve_layout: PathBuf,
    node_layout: PathBuf,
    /// `/v2/bench/serve/manifests/1`.
    pub manifest: String,
    /// `/v2/bench/serve/blobs/sha256:…` (the big layer).
    pub blob: String,
    pub blob_size: u64,
    /// The node images' repositories (`node/img0`, ...), tag [`NODE_TAG`].
    pub node_repos: Vec<String>,
}

/// The sizes of one node image's layers (MiB) and how many images.
fn node_shape(s: &Settings) -> (usize, usize, usize) {
    if s.quick {
        // Enough bytes (~11 MiB a node) that the servers' CPU time moves.
        (2, 2, 4)
    } else {
        // 6 images of a shared 8 MiB base, a unique 12 MiB layer and a
        // unique 256 KiB one: ~82 MiB per node.
        (6, 8, 12)
    }
}

/// Make (or reuse) both layouts under `dir`.
pub fn prepare(s: &Settings, dir: &Path) -> Result<Content> {
    let serve_layout = dir.join("payload");
    // Gzip (of random bytes: no smaller), so skopeo pushes the layer as
    // is instead of compressing it on the way.
    let image = TestImage {
        gzip: true,
        ..TestImage::random("serve", 4242, (s.serve_blob_mib << 20) as usize)
    };
    let made = payload::ensure_layout(&serve_layout, &[image])?;
    let layer = made[0]
        .blobs
        .last()
        .context("the serve image has a layer")?
        .clone();
    let blob_size = std::fs::metadata(serve_layout.join(layer.blob_path()))
        .context("the serve image's layer blob")?
        .len();
    let node_layout = dir.join("node-payload");
    let node_repos = node_layout_images(s, &node_layout)?;
    Ok(Content {
        serve_layout,
        node_layout,
        manifest: format!("/v2/{REPO}/manifests/{TAG}"),
        blob: format!("/v2/{REPO}/blobs/{layer}"),
        blob_size,
        node_repos,
    })
}

/// The node images: each an index of an amd64 manifest (the shared base,
/// a unique layer and a small unique one) and an arm64 one (one small
/// layer, never pulled): what a node resolves by platform.
fn node_layout_images(s: &Settings, layout: &Path) -> Result<Vec<String>> {
    let (count, base_mib, unique_mib) = node_shape(s);
    let images: Vec<(String, Vec<TestImage>)> = (0..count)
        .map(|i| {
            let i = i as u64;
            let arch = |architecture: &str, layers: Vec<Layer>| TestImage {
                ref_name: format!("img{i}"),
                layers,
                architecture: architecture.to_string(),
                gzip: true,
            };
            let amd64 = arch(
                "amd64",
                vec![
                    Layer::Random {
                        seed: 7000,
                        size: base_mib << 20,
                    },
                    Layer::Random {
                        seed: 7001 + i,
                        size: unique_mib << 20,
                    },
                    Layer::Random {
                        seed: 8001 + i,
                        size: 256 << 10,
                    },
                ],
            );
            let arm64 = arch(
                "arm64",
                vec![Layer::Random {
                    seed: 9001 + i,
                    size: 64 << 10,
                }],
            );
            (format!("img{i}"), vec![amd64, arm64])
        })
        .collect();
    let stamp_path = layout.join(".airlift-bench-stamp");
    let stamp = format!("{images:?}");
    if std::fs::read_to_string(&stamp_path).ok().as_deref() != Some(stamp.as_str()) {
        if layout.exists() {
            std::fs::remove_dir_all(layout)
                .with_context(|| format!("clearing {}", layout.display()))?;
        }
        for (name, per_arch) in &images {
            write_multiarch(layout, name, per_arch).with_context(|| {
                format!("writing the node image {name} into {}", layout.display())
            })?;
        }
        std::fs::write(&stamp_path, stamp)?;
    }
    Ok(images
        .iter()
        .map(|(name, _)| format!("node/{name}"))
        .collect())
}

/// Push everything into `server` with skopeo (all platforms, digests
/// preserved), the same way for every registry.
pub fn push(skopeo: &Path, content: &Content, server: &Server) -> Result<()> {
    let creds = (server.kind() == Kind::Airlift).then(|| format!("bench:{}", servers::TOKEN));
    let mut copies = vec![(
        &content.serve_layout,
        "serve".to_string(),
        format!("{REPO}:{TAG}"),
    )];
    for repo in &content.node_repos {
        let name = repo.trim_start_matches("node/").to_string();
        copies.push((&content.node_layout, name, format!("{repo}:{NODE_TAG}")));
    }
    for (layout, name, dest) in copies {
        let src = format!("oci:{}:{name}", layout.display());
        let dst = format!("docker://{}/{dest}", server.addr());
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "copy".as_ref(),
            "--quiet".as_ref(),
            "--all".as_ref(),
            "--preserve-digests".as_ref(),
            "--dest-tls-verify=false".as_ref(),
        ];
        if let Some(c) = &creds {
            args.push("--dest-creds".as_ref());
            args.push(c.as_ref());
        }
        args.push(src.as_ref());
        args.push(dst.as_ref());
        measure::output(skopeo, &args)
            .with_context(|| format!("pushing {dest} into {} with skopeo", server.name()))?;
    }
    Ok(())
}

/// The manifest answers 200 and the blob's HEAD gives its size, through
/// the load client (over TLS: verified); returns the manifest's digest
/// as computed from the bytes served, and the TLS parameters.
pub async fn check(
    endpoint: &Endpoint,
    content: &Content,
    name: &str,
) -> Result<(Digest, Option<TlsInfo>)> {
    let host = endpoint.addr.to_string();
    let mut ex = Exchange::open(endpoint)
        .await
        .with_context(|| format!("connecting to {name}"))?;
    let count = AtomicU64::new(0);
    let get = Request::new("GET", &content.manifest, &host, &[("Accept", ACCEPT_VALUE)]);
    let m = ex.send(&get, &count, true).await?;
    if m.status != 200 {
        bail!("{name} answered {} to GET {}", m.status, content.manifest);
    }
    let head = Request::new("HEAD", &content.blob, &host, &[]);
    let b = ex.send(&head, &count, false).await?;
    if b.status != 200 || b.content_length != Some(content.blob_size) {
        bail!(
            "{name} answered {} (Content-Length {:?}, want {}) to HEAD {}",
            b.status,
            b.content_length,
            content.blob_size,
            content.blob
        );
    }
    let get = Request::new("GET", &content.blob, &host, &[]);
    let b = ex.send(&get, &count, false).await?;
    if b.status != 200 || b.body_len != content.blob_size {
        bail!(
            "{name} answered {} with {} bytes (want {}) to GET {}",
            b.status,
            b.body_len,
            content.blob_size,
            content.blob
        );
    }
    Ok((Digest::sha256_of(&m.body), ex.tls.take()))
}
