//! Small container images made locally, deterministically, for tests and
//! benchmarks: OCI image layouts whose layers are tarballs of seeded
//! pseudo-random bytes (incompressible) and, optionally, busybox-static.
//! Nothing comes from the internet.

use std::collections::BTreeMap;
use std::path::Path;

use airlift_oci::documents::{media, Descriptor, Index, Platform, REF_NAME};
use airlift_oci::{Digest, Layout};
use anyhow::{Context, Result};

/// One layer of a test image.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A file of `size` seeded pseudo-random bytes; the same seed and size
    /// make the same layer, so images can share layers.
    Random { seed: u64, size: usize },
    /// `/bin/busybox` from the host's busybox-static package, plus a `sh` link.
    Busybox,
}

/// A test image to make.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The `org.opencontainers.image.ref.name` to record in `index.json`
    /// (a tag like `1.0`, or a full reference).
    pub ref_name: String,
    pub layers: Vec<Layer>,
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// Gzip the layers (`tar+gzip`) instead of plain `tar`.
    pub gzip: bool,
}

impl TestImage {
    /// A one-layer amd64 image of `size` random bytes.
    pub fn random(ref_name: &str, seed: u64, size: usize) -> Self {
        TestImage {
            ref_name: ref_name.to_string(),
            layers: vec![Layer::Random { seed, size }],
            architecture: "amd64".to_string(),
            gzip: false,
        }
    }
}

/// What was made.
#[derive(Debug, Clone)]
pub struct MadeImage {
    pub ref_name: String,
    pub manifest: Descriptor,
    /// Digests of the config and layers.
    pub blobs: Vec<Digest>,
}

/// Write `images` into the OCI layout at `dir` (created if needed), one
/// `index.json` entry per image.
pub fn write_layout(dir: &Path, images: &[TestImage]) -> Result<Vec<MadeImage>> {
    let layout = Layout::create(dir)?;
    let mut index = layout.read_index()?;
    let mut made = Vec::new();
    for image in images {
        let (mut desc, blobs) = write_image(&layout, image)?;
        desc.annotations
            .insert(REF_NAME.to_string(), image.ref_name.clone());
        index
            .manifests
            .retain(|d| d.ref_name() != Some(&image.ref_name));
        index.manifests.push(desc.clone());
        made.push(MadeImage {
            ref_name: image.ref_name.clone(),
            manifest: desc,
            blobs,
        });
    }
    layout.write_index(&index)?;
    Ok(made)
}

/// Write a multi-arch image: one manifest per architecture under one OCI
/// index named `ref_name`.
pub fn write_multiarch(dir: &Path, ref_name: &str, per_arch: &[TestImage]) -> Result<MadeImage> {
    let layout = Layout::create(dir)?;
    let mut children = Vec::new();
    let mut blobs = Vec::new();
    for image in per_arch {
        let (mut desc, b) = write_image(&layout, image)?;
        desc.platform = Some(Platform {
            architecture: image.architecture.clone(),
            os: "linux".to_string(),
            os_version: None,
            os_features: Vec::new(),
            variant: (image.architecture == "arm64").then(|| "v8".to_string()),
        });
        blobs.push(desc.digest.clone());
        blobs.extend(b);
        children.push(desc);
    }
    let mut idx = Index::empty();
    idx.manifests = children;
    let bytes = serde_json::to_vec(&idx)?;
    let (digest, size) = layout.put_blob(&bytes, None)?;
    let desc = tag(
        &layout,
        Descriptor::new(media::OCI_INDEX, digest, size),
        ref_name,
    )?;
    Ok(MadeImage {
        ref_name: ref_name.to_string(),
        manifest: desc,
        blobs,
    })
}

fn write_image(layout: &Layout, image: &TestImage) -> Result<(Descriptor, Vec<Digest>)> {
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &image.layers {
        let tar = layer_tar(layer)?;
        diff_ids.push(Digest::sha256_of(&tar).to_string());
        let (bytes, mt) = if image.gzip {
            (gzip(&tar)?, media::OCI_LAYER_GZIP)
        } else {
            (tar, media::OCI_LAYER_TAR)
        };
        let (d, s) = layout.put_blob(&bytes, None)?;
        layer_descs.push(Descriptor::new(mt, d, s));
    }
    let (manifest, cd) = put_manifest(
        layout,
        &layer_descs,
        diff_ids,
        &image.architecture,
        "/bin/sh",
    )?;
    let mut blobs = vec![cd];
    blobs.extend(layer_descs.iter().map(|d| d.digest.clone()));
    Ok((manifest, blobs))
}

/// An image config (linux, `architecture`, running `cmd`, these
/// `diff_ids`) and its manifest over `layers`, written into `layout`:
/// the manifest's descriptor and the config's digest.
pub fn put_manifest(
    layout: &Layout,
    layers: &[Descriptor],
    diff_ids: Vec<String>,
    architecture: &str,
    cmd: &str,
) -> Result<(Descriptor, Digest)> {
    let config = serde_json::json!({
        "architecture": architecture,
        "os": "linux",
        "config": { "Cmd": [cmd] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": [],
    });
    let (cd, cs) = layout.put_blob(&serde_json::to_vec(&config)?, None)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": Descriptor::new(media::OCI_CONFIG, cd.clone(), cs),
        "layers": layers,
    });
    let (md, ms) = layout.put_blob(&serde_json::to_vec(&manifest)?, None)?;
    Ok((Descriptor::new(media::OCI_MANIFEST, md, ms), cd))
}

/// Names `desc` `ref_name` in `layout`'s index.json (replacing an entry
/// of that name); the descriptor as listed.
pub fn tag(layout: &Layout, mut desc: Descriptor, ref_name: &str) -> Result<Descriptor> {
    desc.annotations
        .insert(REF_NAME.to_string(), ref_name.to_string());
    let mut index = layout.read_index()?;
    index.manifests.retain(|d| d.ref_name() != Some(ref_name));
    index.manifests.push(desc.clone());
    layout.write_index(&index)?;
    Ok(desc)
}

/// The uncompressed tar of one layer. Deterministic: fixed mtimes and owners.
pub fn layer_tar(layer: &Layer) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], mode: u32| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, data)?;
        Ok(())
    };
    match layer {
        Layer::Random { seed, size } => {
            add(
                &format!("data/random-{seed}.bin"),
                &random_bytes(*seed, *size),
                0o644,
            )?;
        }
        Layer::Busybox => {
            let bb = std::fs::read("/bin/busybox")
                .context("reading /bin/busybox (install the busybox-static package)")?;
            add("bin/busybox", &bb, 0o755)?;
        }
    }
    if let Layer::Busybox = layer {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(0);
        builder.append_link(&mut h, "bin/sh", "busybox")?;
    }
    Ok(builder.into_inner()?)
}

/// `size` pseudo-random bytes from `seed` (xorshift64*): incompressible,
/// reproducible, and fast enough for gigabytes.
pub fn random_bytes(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(size);
    out
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::fast());
    e.write_all(data)?;
    Ok(e.finish()?)
}

/// Labels by digest, handy in assertions.
pub fn by_digest(made: &[MadeImage]) -> BTreeMap<Digest, String> {
    made.iter()
        .map(|m| (m.manifest.digest.clone(), m.ref_name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_reproducible_and_seeded() {
        assert_eq!(random_bytes(1, 100), random_bytes(1, 100));
        assert_ne!(random_bytes(1, 100), random_bytes(2, 100));
        assert_eq!(random_bytes(3, 13).len(), 13);
    }

    #[test]
    fn shared_layers_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Layer::Random {
            seed: 7,
            size: 1000,
        };
        let a = TestImage {
            ref_name: "a".into(),
            layers: vec![shared.clone(), Layer::Random { seed: 1, size: 10 }],
            architecture: "amd64".into(),
            gzip: true,
        };
        let b = TestImage {
            ref_name: "b".into(),
            layers: vec![shared, Layer::Random { seed: 2, size: 10 }],
            ..a.clone()
        };
        let made = write_layout(dir.path(), &[a, b]).unwrap();
        assert_eq!(made[0].blobs[1], made[1].blobs[1]);
        let layout = Layout::open(dir.path()).unwrap();
        assert_eq!(layout.read_index().unwrap().manifests.len(), 2);
        for m in &made {
            assert_eq!(layout.reachable(&m.manifest).unwrap().len(), 4);
        }
    }
}
