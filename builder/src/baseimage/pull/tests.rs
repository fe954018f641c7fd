//! Reading a base image from a small OCI layout written here.

use std::io::Write;

use super::*;

const IMAGE: &str = "registry.test/base:1@sha256:test";

/// A tar holding one file.
fn tar_of(name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, body).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A layout with one linux/amd64 image (under an index) of three layers,
/// plain, gzip and zstd. `edit` may change the layers' descriptors and the
/// config's diff_ids before they are written.
fn layout(
    dir: &Path,
    edit: impl FnOnce(&mut Vec<Descriptor>, &mut Vec<Digest>),
) -> (Layout, Digest, Vec<Vec<u8>>) {
    let layout = Layout::create(dir).unwrap();
    let tars = [
        tar_of("etc/a", b"plain"),
        tar_of("etc/b", b"gzip"),
        tar_of("etc/c", b"zstd"),
    ];
    let blobs = vec![
        tars[0].clone(),
        gzip(&tars[1]),
        zstd::encode_all(&tars[2][..], 3).unwrap(),
    ];
    let types = [
        media::OCI_LAYER_TAR,
        media::DOCKER_LAYER_GZIP,
        media::OCI_LAYER_ZSTD,
    ];
    let mut descs: Vec<Descriptor> = blobs
        .iter()
        .zip(types)
        .map(|(b, mt)| {
            let (d, n) = layout.put_blob(b, None).unwrap();
            Descriptor::new(mt, d, n)
        })
        .collect();
    let mut diff_ids: Vec<Digest> = tars.iter().map(|t| Digest::sha256_of(t)).collect();
    edit(&mut descs, &mut diff_ids);
    let config = serde_json::to_vec(&serde_json::json!({
        "os": "linux", "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let (cd, cn) = layout.put_blob(&config, None).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": Descriptor::new(media::OCI_CONFIG, cd, cn),
        "layers": descs,
    }))
    .unwrap();
    let (md, mn) = layout.put_blob(&manifest, None).unwrap();
    let mut arm = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(b"absent"), 1);
    arm.platform = Some(airlift_oci::Platform {
        architecture: "arm64".into(),
        os: "linux".into(),
        os_version: None,
        os_features: Vec::new(),
        variant: None,
    });
    let mut amd = Descriptor::new(media::OCI_MANIFEST, md, mn);
    amd.platform = Some(airlift_oci::Platform {
        architecture: "amd64".into(),
        ..arm.platform.clone().unwrap()
    });
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": [arm, amd],
    }))
    .unwrap();
    let (top, _) = layout.put_blob(&index, None).unwrap();
    (layout, top, blobs)
}

/// Reads every layer to its end; the first error, as text.
fn read_all(layout: &Layout, image: &Image) -> Result<Vec<Vec<u8>>, String> {
    layers(layout, image, IMAGE)
        .map(|l| {
            let mut l = l.map_err(|e| format!("{e:#}"))?;
            let mut out = Vec::new();
            l.reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
            Ok(out)
        })
        .collect()
}

#[test]
fn the_amd64_manifest_is_picked_and_every_compression_read() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, top, _) = layout(dir.path(), |_, _| {});
    let image = read_image(&layout, &top, media::OCI_INDEX).unwrap();
    assert_eq!(image.manifest.layers.len(), 3);
    assert_ne!(image.manifest_digest, top);
    let tars = read_all(&layout, &image).unwrap();
    assert_eq!(tars[0], tar_of("etc/a", b"plain"));
    assert_eq!(tars[1], tar_of("etc/b", b"gzip"));
    assert_eq!(tars[2], tar_of("etc/c", b"zstd"));
}

#[test]
fn a_layer_whose_bytes_differ_from_its_digest_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, top, blobs) = layout(dir.path(), |_, _| {});
    let image = read_image(&layout, &top, media::OCI_INDEX).unwrap();
    // Same size, one byte changed, in the plain layer (its diff_id then
    // fails too, but the digest is checked first).
    let d = &image.manifest.layers[0].digest;
    let mut bad = blobs[0].clone();
    bad[600] ^= 1;
    std::fs::write(layout.blob_path(d), &bad).unwrap();
    let e = read_all(&layout, &image).unwrap_err();
    assert!(e.contains(&format!("layer {d} is corrupted")), "{e}");
    assert!(e.contains("compressed bytes are bytes that hash to"), "{e}");
    assert!(e.contains("the source is corrupted"), "{e}");
    assert!(e.contains(IMAGE), "{e}");
}

#[test]
fn a_truncated_layer_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, top, blobs) = layout(dir.path(), |_, _| {});
    let image = read_image(&layout, &top, media::OCI_INDEX).unwrap();
    let d = &image.manifest.layers[1].digest;
    std::fs::write(layout.blob_path(d), &blobs[1][..blobs[1].len() / 2]).unwrap();
    let e = read_all(&layout, &image).unwrap_err();
    assert!(e.contains(&format!("layer {d}")), "{e}");
    assert!(e.contains("corrupted"), "{e}");
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_is_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = Digest::sha256_of(b"another tar");
    let w = wrong.clone();
    let (layout, top, _) = layout(dir.path(), move |_, ids| ids[2] = w);
    let image = read_image(&layout, &top, media::OCI_INDEX).unwrap();
    let d = image.manifest.layers[2].digest.clone();
    let e = read_all(&layout, &image).unwrap_err();
    assert!(e.contains(&format!("layer {d} is corrupted")), "{e}");
    assert!(e.contains(&format!("diff_id {wrong}")), "{e}");
    assert!(e.contains("the source is corrupted"), "{e}");
}

#[test]
fn an_unknown_layer_media_type_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, top, _) = layout(dir.path(), |descs, _| {
        descs[1].media_type = "application/vnd.example.squashfs".into();
    });
    let image = read_image(&layout, &top, media::OCI_INDEX).unwrap();
    let d = image.manifest.layers[1].digest.clone();
    let e = read_all(&layout, &image).unwrap_err();
    assert!(e.contains(&format!("layer {d}")), "{e}");
    assert!(e.contains("\"application/vnd.example.squashfs\""), "{e}");
}

#[test]
fn layers_and_diff_ids_must_pair_up() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, top, _) = layout(dir.path(), |_, ids| {
        ids.pop();
    });
    let e = format!(
        "{:#}",
        read_image(&layout, &top, media::OCI_INDEX).unwrap_err()
    );
    assert!(
        e.contains("has 3 layers but its config lists 2 diff_ids"),
        "{e}"
    );
}

#[test]
fn media_types_map_to_compressions() {
    assert_eq!(
        Compression::of(media::OCI_LAYER_TAR),
        Some(Compression::None)
    );
    assert_eq!(
        Compression::of(media::OCI_LAYER_GZIP),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::of(media::DOCKER_LAYER_GZIP),
        Some(Compression::Gzip)
    );
    assert_eq!(
        Compression::of(media::OCI_LAYER_ZSTD),
        Some(Compression::Zstd)
    );
    assert_eq!(Compression::of("application/octet-stream"), None);
}
