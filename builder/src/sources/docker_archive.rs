//! Source: a `docker save` archive (`manifest.json` listing `Config`,
//! `RepoTags` and `Layers`; layers as legacy `<id>/layer.tar`, skopeo's
//! `<hex>.tar`, or Docker 25's `blobs/sha256/<hex>`).
//!
//! The image is converted to an **OCI image manifest**: the config blob is
//! the config JSON exactly as in the archive (Docker's config format is
//! what the OCI config format was taken from, so every client reads it
//! under the OCI config media type), and each layer is stored exactly as
//! in the archive. Layers of `docker save` are uncompressed tars; the OCI
//! spec names that media type (`…layer.v1.tar`) while Docker schema 2
//! only defines gzip layers, so OCI is the format in which storing them
//! as they are (no CPU spent compressing, digests equal to the config's
//! `diff_ids`) is plainly valid. A layer that already is gzip or zstd
//! gets the matching OCI media type. The manifest is serialised the same
//! way every run, so its digest is stable for unchanged input.

use std::io::Read;
use std::path::Path;

use airlift_oci::documents::{media, Descriptor};
use airlift_oci::{Digest, Reference};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::local::MAX_DOCUMENT;
use super::platform;
use super::safe_tar::TarIndex;
use super::Ingested;
use crate::store::Store;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OciManifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

/// Copy the image `reference` picks (a `RepoTags` entry) out of the
/// docker archive at `path`, as an OCI manifest.
pub fn ingest(
    path: &Path,
    reference: Option<&str>,
    platforms: &[String],
    store: &Store,
) -> Result<Ingested> {
    let Picked {
        tar,
        label,
        entry,
        config,
    } = open_entry(path, reference)?;
    let source = label.clone();
    let config_digest = Digest::sha256_of(&config);
    if let Some(named) = digest_in_name(&entry.config) {
        if named != config_digest {
            bail!(
                "config {:?} in {label} hashes to {config_digest}, not the {named} its name says",
                entry.config
            );
        }
    }
    let p = platform::of_config(&config);
    platform::check_single(p.as_ref(), &platform::parse_filters(platforms)?)
        .with_context(|| format!("image from {source}"))?;
    let config_desc = Descriptor::new(media::OCI_CONFIG, config_digest, config.len() as u64);
    store.put_bytes(&config_desc, &config, &source)?;

    let mut layers = Vec::new();
    for name in &entry.layers {
        let mut head = [0u8; 4];
        let n = tar.open_member(name)?.read(&mut head).unwrap_or(0);
        let media_type = layer_media_type(&head[..n]);
        let size = tar.size(name)?;
        let member_source = format!("{source}, member {name}");
        let desc = match layer_digest_in_name(name) {
            // The name states the digest: verified while copying.
            Some(d) => {
                let desc = Descriptor::new(media_type, d, size);
                store.copy_from(&desc, tar.open_member(name)?, &member_source)?;
                desc
            }
            None => {
                let (d, s) = store.put_unknown(tar.open_member(name)?, &member_source)?;
                Descriptor::new(media_type, d, s)
            }
        };
        layers.push(desc);
    }

    let manifest = serde_json::to_vec(&OciManifest {
        schema_version: 2,
        media_type: media::OCI_MANIFEST,
        config: &config_desc,
        layers: &layers,
    })
    .context("encoding the OCI manifest")?;
    let root = Descriptor::new(
        media::OCI_MANIFEST,
        Digest::sha256_of(&manifest),
        manifest.len() as u64,
    );
    store.put_bytes(&root, &manifest, &source)?;
    Ok(Ingested {
        root,
        platforms: p.map(|p| vec![p.spec()]).unwrap_or_default(),
    })
}

/// What `airlift validate` checks without copying: the archive indexes
/// safely, `manifest.json` parses, `reference` picks an entry, and the
/// config and every layer it names are members, and the config's platform
/// passes the `platforms` filter.
pub fn check(path: &Path, reference: Option<&str>, platforms: &[String]) -> Result<()> {
    let Picked { label, config, .. } = open_entry(path, reference)?;
    platform::check_single(
        platform::of_config(&config).as_ref(),
        &platform::parse_filters(platforms)?,
    )
    .with_context(|| format!("image from {label}"))
}

/// An archive indexed, its `manifest.json` read, the entry `reference`
/// picks checked against the members, and that entry's config read: what
/// [`ingest`] and [`check`] both start with.
struct Picked {
    tar: TarIndex,
    label: String,
    entry: Entry,
    config: Vec<u8>,
}

fn open_entry(path: &Path, reference: Option<&str>) -> Result<Picked> {
    let tar = TarIndex::open(path)?;
    let label = format!("docker-archive {}", path.display());
    let bytes = tar
        .read_member("manifest.json", MAX_DOCUMENT)
        .with_context(|| format!("{label} is not a docker save archive"))?;
    let entries: Vec<Entry> =
        airlift_oci::quiet_json::parse(&bytes, &format!("manifest.json in {label} is malformed"))?;
    let entry = pick(&entries, reference, &label)?.clone();
    check_entry(&tar, &entry, &label)?;
    let config = tar.read_member(&entry.config, MAX_DOCUMENT)?;
    Ok(Picked {
        tar,
        label,
        entry,
        config,
    })
}

/// The config and layers `entry` names are members of `tar`.
fn check_entry(tar: &TarIndex, entry: &Entry, label: &str) -> Result<()> {
    for name in std::iter::once(&entry.config).chain(&entry.layers) {
        if !tar.contains(name) {
            bail!("{label}: manifest.json names {name:?}, which the archive does not hold");
        }
    }
    Ok(())
}

fn pick<'a>(entries: &'a [Entry], wanted: Option<&str>, label: &str) -> Result<&'a Entry> {
    let tags = || {
        let v: Vec<String> = entries
            .iter()
            .flat_map(|e| e.repo_tags.clone().unwrap_or_default())
            .collect();
        if v.is_empty() {
            "no RepoTags".to_string()
        } else {
            v.join(", ")
        }
    };
    let Some(wanted) = wanted else {
        return match entries {
            [one] => Ok(one),
            _ => bail!(
                "{label} holds {} images; set `ref` to one of its RepoTags ({})",
                entries.len(),
                tags()
            ),
        };
    };
    let normal = |s: &str| s.parse::<Reference>().ok();
    let want = normal(wanted);
    entries
        .iter()
        .find(|e| {
            e.repo_tags
                .iter()
                .flatten()
                .any(|t| t == wanted || (want.is_some() && normal(t) == want))
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{label} has no image tagged {wanted:?} (it has: {})",
                tags()
            )
        })
}

/// `blobs/sha256/<hex>` or `<hex>.json` -> the digest the name states.
fn digest_in_name(name: &str) -> Option<Digest> {
    if let Some(rest) = name.strip_prefix("blobs/") {
        let (alg, hex) = rest.split_once('/')?;
        return format!("{alg}:{hex}").parse().ok();
    }
    let stem = name.strip_suffix(".json")?;
    format!("sha256:{stem}").parse().ok()
}

/// A layer member named by its digest: Docker 25's `blobs/sha256/<hex>`
/// or skopeo's `<hex>.tar`. The content is verified against it when
/// copied; when the bundle (or the previous one) already has that blob,
/// the member is not read at all, as for layout sources.
fn layer_digest_in_name(name: &str) -> Option<Digest> {
    if name.starts_with("blobs/") {
        return digest_in_name(name);
    }
    let stem = name.strip_suffix(".tar")?;
    format!("sha256:{stem}").parse().ok()
}

/// The OCI media type for a layer by its first bytes.
fn layer_media_type(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        media::OCI_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        media::OCI_LAYER_ZSTD
    } else {
        media::OCI_LAYER_TAR
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_state_digests() {
        let hex = "a".repeat(64);
        assert_eq!(
            digest_in_name(&format!("blobs/sha256/{hex}"))
                .unwrap()
                .hex(),
            hex
        );
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name("abc/layer.tar").is_none());
        assert!(digest_in_name(&format!("{hex}.tar")).is_none());
        assert!(layer_digest_in_name(&format!("{hex}.tar")).is_some());
        assert!(layer_digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(layer_digest_in_name(&format!("{hex}/layer.tar")).is_none());
    }

    #[test]
    fn media_types_by_magic() {
        assert_eq!(layer_media_type(&[0x1f, 0x8b, 8, 0]), media::OCI_LAYER_GZIP);
        assert_eq!(layer_media_type(b"bin/"), media::OCI_LAYER_TAR);
        assert_eq!(
            layer_media_type(&[0x28, 0xb5, 0x2f, 0xfd]),
            media::OCI_LAYER_ZSTD
        );
    }

    #[test]
    fn picks_by_repo_tag() {
        let e = |t: &str| Entry {
            config: "c.json".into(),
            repo_tags: Some(vec![t.into()]),
            layers: vec![],
        };
        let entries = vec![e("docker.io/foo/bar:1"), e("quay.io/x/y:2")];
        assert_eq!(
            pick(&entries, Some("foo/bar:1"), "a").unwrap().repo_tags,
            entries[0].repo_tags
        );
        let err = pick(&entries, None, "a").unwrap_err().to_string();
        assert!(err.contains("docker.io/foo/bar:1, quay.io/x/y:2"), "{err}");
        assert!(pick(&entries, Some("quay.io/x/y:3"), "a").is_err());
    }
}
