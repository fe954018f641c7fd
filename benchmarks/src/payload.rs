//! The payloads: OCI layouts of seeded random (incompressible) layers,
//! made with the integration tests' image helpers and reused between runs
//! when the sizes have not changed.

use std::path::Path;

use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use anyhow::{Context, Result};

/// The images of the build payload: `count` images, each with a unique
/// layer of `layer_mib` MiB and (if `shared_mib` > 0) one shared layer.
pub fn build_images(count: usize, layer_mib: u64, shared_mib: u64) -> Vec<TestImage> {
    (0..count)
        .map(|i| {
            let mut layers = Vec::new();
            if shared_mib > 0 {
                layers.push(Layer::Random {
                    seed: 1_000_000,
                    size: (shared_mib << 20) as usize,
                });
            }
            layers.push(Layer::Random {
                seed: i as u64 + 1,
                size: (layer_mib << 20) as usize,
            });
            TestImage {
                ref_name: format!("img{i}"),
                layers,
                architecture: "amd64".to_string(),
                gzip: false,
            }
        })
        .collect()
}

/// Write `images` into the layout `dir`, unless a previous run already
/// wrote the same ones there (a stamp file records what was made).
pub fn ensure_layout(dir: &Path, images: &[TestImage]) -> Result<Vec<MadeImage>> {
    let stamp_path = dir.join(".airlift-bench-stamp");
    let stamp = format!("{images:?}");
    let made_path = dir.join(".airlift-bench-made");
    if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str()) {
        if let Ok(text) = std::fs::read_to_string(&made_path) {
            if let Some(made) = decode_made(&text) {
                return Ok(made);
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let made = write_layout(dir, images)
        .with_context(|| format!("writing the payload layout {}", dir.display()))?;
    std::fs::write(&made_path, encode_made(&made))?;
    std::fs::write(&stamp_path, stamp)?;
    Ok(made)
}

/// `ref manifest-digest blob-digest…` per line.
fn encode_made(made: &[MadeImage]) -> String {
    made.iter()
        .map(|m| {
            let mut l = format!("{} {} {}", m.ref_name, m.manifest.digest, m.manifest.size);
            for b in &m.blobs {
                l.push(' ');
                l.push_str(&b.to_string());
            }
            l.push('\n');
            l
        })
        .collect()
}

fn decode_made(text: &str) -> Option<Vec<MadeImage>> {
    use airlift_oci::documents::media;
    use airlift_oci::{Descriptor, Digest};
    text.lines()
        .map(|l| {
            let mut f = l.split(' ');
            let ref_name = f.next()?.to_string();
            let digest: Digest = f.next()?.parse().ok()?;
            let size: u64 = f.next()?.parse().ok()?;
            let blobs = f.map(|b| b.parse().ok()).collect::<Option<Vec<Digest>>>()?;
            Some(MadeImage {
                ref_name,
                manifest: Descriptor::new(media::OCI_MANIFEST, digest, size),
                blobs,
            })
        })
        .collect()
}
