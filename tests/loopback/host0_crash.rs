//! Crash safety of host0's background load: a bundle of a few hundred
//! blobs (~200 MB), `kill -9` while the copy is under way, start again:
//! the load completes, every blob in the data store hashes to its name,
//! none is missing, and no temp file is left.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use airlift_integration::firstboot::{assert_blobs_whole, files_under};
use airlift_integration::host0::{self, Host0, Host0Dirs};
use airlift_integration::images::{write_layout, Layer, TestImage};

#[test]
fn kill9_during_the_load_then_restart_completes_with_every_blob_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    // 50 images x 4 layers of 1 MB (random, so incompressible and distinct).
    let images: Vec<TestImage> = (0..50u64)
        .map(|i| TestImage {
            ref_name: format!("quay.io/crash/app{i}:1.0"),
            layers: (0..4u64)
                .map(|l| Layer::Random {
                    seed: 1000 + i * 10 + l,
                    size: 1_000_000,
                })
                .collect(),
            architecture: "amd64".to_string(),
            gzip: false,
        })
        .collect();
    let made = write_layout(&media, &images).unwrap();
    let distinct: BTreeSet<_> = made
        .iter()
        .flat_map(|m| m.blobs.iter().chain([&m.manifest.digest]))
        .cloned()
        .collect();
    assert!(distinct.len() >= 300);

    let file = host0::appliance_file(host0::port(), &["quay.io"]);
    let dirs = Host0Dirs::new(tmp.path(), &media, &file);
    let mut h = Host0::start(&dirs, &["--force-load"]);
    eprintln!(
        "ready (serving from the media) {:.0?} after start with {} blobs",
        h.ready_after,
        distinct.len()
    );

    // Kill it once some, but not all, blobs are in.
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        let s = h.status();
        let (done, total) = (
            s["blobs-done"].as_u64().unwrap(),
            s["blobs-total"].as_u64().unwrap(),
        );
        if done >= 20 && done < total {
            h.kill9();
            break done;
        }
        assert!(
            done < total && Instant::now() < deadline,
            "the load finished before it could be interrupted: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    eprintln!("killed after {killed_at} of {} blobs", distinct.len());
    drop(h);

    // What survived the kill is whole (verified before rename).
    let survived = assert_blobs_whole_or_temp(&dirs.registry_data());
    assert!(survived >= killed_at as usize, "{survived} < {killed_at}");

    let mut h = Host0::start(&dirs, &["--force-load"]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(300));
    let s = h.wait_state("ready", Duration::from_secs(60));
    assert_eq!(s["blobs-done"], distinct.len(), "{s}");

    let data = dirs.registry_data();
    assert_eq!(assert_blobs_whole(&data), distinct.len());
    let on_disk: BTreeSet<String> = files_under(&data.join("blobs"))
        .into_iter()
        .map(|rel| rel.replacen('/', ":", 1))
        .collect();
    let want: BTreeSet<String> = distinct.iter().map(|d| d.to_string()).collect();
    assert_eq!(on_disk, want, "blobs lost or extra");
    assert!(
        !files_under(&dirs.data)
            .iter()
            .any(|f| f.rsplit('/').next().is_some_and(|n| n.starts_with('.'))),
        "temp files left: {:?}",
        files_under(&dirs.data)
    );
    // The bundle is recorded as the current release (its layout on the
    // disk, blobs linked to the registry's), and every image is served
    // by tag from it; the data metadata holds pushed content only.
    let index = std::fs::read(media.join("index.json")).unwrap();
    let bundle = airlift_oci::Digest::sha256_of(&index);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs.data.join("releases/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["current"], bundle.to_string(), "{state}");
    let release = dirs.data.join("releases").join(bundle.hex());
    assert_eq!(std::fs::read(release.join("index.json")).unwrap(), index);
    assert!(release.join("blobs/sha256").is_dir());
    for m in &made {
        let repo = m.ref_name.trim_end_matches(":1.0");
        let tag = data.join("repositories").join(repo).join("_tags/1.0");
        assert!(
            !tag.exists(),
            "{} registered in the data metadata",
            m.ref_name
        );
        let (code, head) = host0::curl(
            &dirs,
            &["/v2/", repo, "/manifests/1.0"],
            &[
                "-I",
                "-H",
                "Accept: application/vnd.oci.image.manifest.v1+json",
            ],
        );
        assert_eq!(code, 200, "{}: {head}", m.ref_name);
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("docker-content-digest: {}", m.manifest.digest)),
            "{}: {head}",
            m.ref_name
        );
    }
}

/// Blobs visible after a kill: every named file hashes to its name; temp
/// files (dot-names) may exist and are ignored here. Returns the count.
fn assert_blobs_whole_or_temp(data: &std::path::Path) -> usize {
    let mut n = 0;
    for rel in files_under(&data.join("blobs")) {
        let name = rel.rsplit('/').next().unwrap();
        if name.starts_with('.') {
            continue;
        }
        let digest: airlift_oci::Digest = rel.replacen('/', ":", 1).parse().unwrap();
        let bytes = std::fs::read(data.join("blobs").join(&rel)).unwrap();
        assert_eq!(
            airlift_oci::Digest::sha256_of(&bytes),
            digest,
            "{rel} is not whole"
        );
        n += 1;
    }
    n
}
