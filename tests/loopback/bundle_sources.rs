//! `airlift bundle` end to end: images from every source kind (an OCI
//! layout folder, an oci-archive, a docker-archive made by skopeo, and a
//! real `docker-registry` on 127.0.0.1, with a multi-arch platform filter
//! and Basic auth) land in one OCI layout that skopeo reads back; a rerun
//! fetches nothing; bad inputs fail clearly and leave the output as it was.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_appliance::bundle_manifest::BUNDLE_MANIFEST_FILE;
use airlift_appliance::BundleManifest;
use airlift_builder::bundler::{write_bundle, BundleOptions, BundleReport};
use airlift_builder::sources::{ImageRequest, SourceSpec};
use airlift_integration::images::{write_layout, write_multiarch, Layer, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::tools::{require, run_ok};
use airlift_oci::{Digest, Layout, Reference};

const SHARED: Layer = Layer::Random {
    seed: 42,
    size: 300_000,
};

fn image(ref_name: &str, arch: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers,
        architecture: arch.to_string(),
        gzip: false,
    }
}

fn opts() -> BundleOptions {
    BundleOptions {
        name: "test".into(),
        version: "1".into(),
        concurrency: 4,
        progress: false,
        ..BundleOptions::default()
    }
}

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

fn layout_req(reference: &str, path: &Path, name: Option<&str>) -> ImageRequest {
    ImageRequest {
        reference: r(reference),
        source: SourceSpec::OciLayout {
            path: path.to_path_buf(),
            reference: name.map(str::to_string),
        },
        platforms: vec![],
    }
}

fn registry_req(reference: &str, reg: &TestRegistry, creds: Option<PathBuf>) -> ImageRequest {
    ImageRequest {
        reference: r(reference),
        source: SourceSpec::Registry {
            mirror: Some(reg.url()),
            credentials: creds,
            insecure: true,
        },
        platforms: vec![],
    }
}

fn skopeo() -> PathBuf {
    require("skopeo", "skopeo")
}

/// skopeo must inspect and copy the image out of the bundle by its full reference.
fn skopeo_reads(bundle: &Path, reference: &str, arch: Option<(&str, &str)>) -> serde_json::Value {
    let arch_args = |cmd: &mut Command| {
        if let Some((a, v)) = arch {
            cmd.args(["--override-arch", a, "--override-variant", v]);
        }
    };
    let mut inspect = Command::new(skopeo());
    arch_args(&mut inspect);
    inspect
        .arg("inspect")
        .arg(format!("oci:{}:{reference}", bundle.display()));
    let out = run_ok(&mut inspect);
    let dest = tempfile::tempdir().unwrap();
    let mut copy = Command::new(skopeo());
    arch_args(&mut copy);
    copy.args(["copy", "--quiet"])
        .arg(format!("oci:{}:{reference}", bundle.display()))
        .arg(format!("dir:{}", dest.path().display()));
    run_ok(&mut copy);
    assert!(dest.path().join("manifest.json").is_file());
    serde_json::from_str(&out).unwrap()
}

fn blob_files(bundle: &Path) -> BTreeMap<String, u64> {
    fs::read_dir(bundle.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect()
}

fn read_manifest(bundle: &Path) -> BundleManifest {
    serde_json::from_slice(&fs::read(bundle.join(BUNDLE_MANIFEST_FILE)).unwrap()).unwrap()
}

#[test]
fn bundles_every_source_kind_and_skopeo_reads_them_back() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let made = write_layout(
        &src,
        &[
            image("1.0", "amd64", vec![Layer::Busybox, SHARED]),
            image(
                "web",
                "amd64",
                vec![
                    SHARED,
                    Layer::Random {
                        seed: 2,
                        size: 50_000,
                    },
                ],
            ),
            image(
                "tool",
                "amd64",
                vec![
                    SHARED,
                    Layer::Random {
                        seed: 3,
                        size: 40_000,
                    },
                ],
            ),
            image(
                "pinned",
                "amd64",
                vec![Layer::Random {
                    seed: 6,
                    size: 10_000,
                }],
            ),
        ],
    )
    .unwrap();
    let multi = write_multiarch(
        &src,
        "multi",
        &[
            image(
                "",
                "amd64",
                vec![
                    Layer::Random {
                        seed: 4,
                        size: 60_000,
                    },
                    SHARED,
                ],
            ),
            image(
                "",
                "arm64",
                vec![
                    Layer::Random {
                        seed: 5,
                        size: 70_000,
                    },
                    SHARED,
                ],
            ),
        ],
    )
    .unwrap();

    // oci-archive: a plain tar of the layout.
    let oci_archive = work.path().join("layout.tar");
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&oci_archive)
            .arg("."),
    );
    // docker-archive, made by skopeo.
    let docker_archive = work.path().join("tool.docker.tar");
    run_ok(
        Command::new(skopeo())
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:tool", src.display()))
            .arg(format!(
                "docker-archive:{}:registry.example/team/tool:2",
                docker_archive.display()
            )),
    );
    // A real registry holding the multi-arch index and a single image.
    let reg = TestRegistry::start();
    reg.push_layout(&src, "multi", "org/multi:1");
    reg.push_layout(&src, "pinned", "org/pinned:latest");
    let pinned_digest = made[3].manifest.digest.clone();

    let mut multi_req = registry_req("quay.io/org/multi:1", &reg, None);
    multi_req.platforms = vec!["linux/arm64".into()];
    let pinned_ref = format!("quay.io/org/pinned@{pinned_digest}");
    let requests = vec![
        layout_req("quay.io/org/app:1.0", &src, Some("1.0")),
        ImageRequest {
            reference: r("nginx:1.25"),
            source: SourceSpec::OciArchive {
                path: oci_archive.clone(),
                reference: Some("web".into()),
            },
            platforms: vec![],
        },
        ImageRequest {
            reference: r("registry.example/team/tool:2"),
            source: SourceSpec::DockerArchive {
                path: docker_archive.clone(),
                reference: None,
            },
            platforms: vec![],
        },
        multi_req,
        registry_req(&pinned_ref, &reg, None),
    ];
    let out = work.path().join("out").join("bundle");
    fs::create_dir(work.path().join("out")).unwrap();
    let report = write_bundle(&requests, &out, &opts()).unwrap();

    // Every image is readable by a real client under its full reference.
    let refs = [
        "quay.io/org/app:1.0",
        "docker.io/library/nginx:1.25",
        "registry.example/team/tool:2",
        pinned_ref.as_str(),
    ];
    for reference in refs {
        let info = skopeo_reads(&out, reference, None);
        assert_eq!(info["Architecture"], "amd64", "{reference}");
    }
    let info = skopeo_reads(&out, "quay.io/org/multi:1", Some(("arm64", "v8")));
    assert_eq!(info["Architecture"], "arm64");

    // index.json names each image by its full reference.
    let index = Layout::open(&out).unwrap().read_index().unwrap();
    let names: Vec<_> = index
        .manifests
        .iter()
        .map(|d| d.ref_name().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        vec![
            "quay.io/org/app:1.0",
            "docker.io/library/nginx:1.25",
            "registry.example/team/tool:2",
            "quay.io/org/multi:1",
            pinned_ref.as_str(),
        ]
    );

    // The multi-arch index is the original (same digest), only arm64 kept.
    let m = &report.manifest;
    assert_eq!(m, &read_manifest(&out));
    let multi_entry = &m.images[3];
    assert_eq!(multi_entry.digest, multi.manifest.digest);
    assert_eq!(multi_entry.platforms, vec!["linux/arm64/v8"]);
    let amd64_child = &multi.blobs[0];
    let files = blob_files(&out);
    assert!(files.contains_key(multi.manifest.digest.hex()));
    assert!(
        !files.contains_key(amd64_child.hex()),
        "the dropped platform was fetched"
    );
    assert_eq!(m.images[0].platforms, vec!["linux/amd64"]);
    assert_eq!(m.images[4].digest, pinned_digest);

    // Shared layers are stored once: 4 blobs for app, 3 new for web
    // (manifest, config, own layer), 3 for tool, 4 for multi (index, arm64
    // manifest, config, own layer), 3 for pinned.
    assert_eq!(files.len(), 17, "{files:?}");
    let shared = Digest::sha256_of(&airlift_integration::images::layer_tar(&SHARED).unwrap());
    assert!(files.contains_key(shared.hex()));
    let t = &m.totals;
    assert_eq!(t.images, 5);
    assert_eq!(t.blobs, 17);
    assert_eq!(t.unique_bytes, files.values().sum::<u64>());
    assert_eq!(
        t.referenced_bytes,
        m.images.iter().map(|i| i.size).sum::<u64>()
    );
    assert_eq!(t.saved_bytes, t.referenced_bytes - t.unique_bytes);
    let shared_size = files[shared.hex()];
    assert!(t.saved_bytes >= 3 * shared_size, "{t:?}");
    assert_eq!(report.stats.reused_blobs, 0);
    assert_eq!(report.stats.fetched_blobs, 17);

    // A rerun with unchanged inputs fetches nothing from the registry.
    let gets_before = reg.blob_gets();
    // Requests for the pinned image itself; what refers to it (referrers,
    // cosign tags) is looked up again on every run: signatures and SBOMs
    // may be added to a digest after it was first bundled.
    let pinned_gets = |reg: &TestRegistry| {
        reg.log_text()
            .lines()
            .filter(|l| l.contains("\"GET /v2/org/pinned/"))
            .filter(|l| !l.contains("/referrers/") && !l.contains("/manifests/sha256-"))
            .count()
    };
    let pinned_before = pinned_gets(&reg);
    assert!(pinned_before > 0);
    assert!(gets_before > 0);
    let again: BundleReport = write_bundle(&requests, &out, &opts()).unwrap();
    assert_eq!(again.stats.fetched_blobs, 0, "{:?}", again.stats);
    assert_eq!(again.stats.reused_blobs, 17);
    assert_eq!(reg.blob_gets(), gets_before, "the rerun downloaded blobs");
    assert_eq!(
        pinned_gets(&reg),
        pinned_before,
        "a digest-pinned image already bundled needs no request"
    );
    assert_eq!(again.manifest, report.manifest);
    assert_eq!(blob_files(&out), files);
    let siblings: Vec<_> = fs::read_dir(work.path().join("out")).unwrap().collect();
    assert_eq!(
        siblings.len(),
        1,
        "temp or old folders left beside the bundle"
    );
}

#[test]
fn pulls_with_basic_auth_from_a_credentials_file() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write_layout(
        &src,
        &[image(
            "a",
            "amd64",
            vec![Layer::Random {
                seed: 9,
                size: 20_000,
            }],
        )],
    )
    .unwrap();
    let reg = TestRegistry::start_with_basic_auth("airlift", "s3cret");
    reg.push_layout(&src, "a", "team/a:1");
    let out = work.path().join("bundle");

    // Without credentials: a clear error, nothing written.
    let e = write_bundle(
        &[registry_req("quay.io/team/a:1", &reg, None)],
        &out,
        &opts(),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("credentials") && msg.contains("quay.io/team/a:1"),
        "{msg}"
    );
    assert!(!out.exists());
    assert_eq!(fs::read_dir(work.path()).unwrap().count(), 1);

    let auth = work.path().join("auth.json");
    reg.write_auth_file(&auth);
    let report = write_bundle(
        &[registry_req("quay.io/team/a:1", &reg, Some(auth))],
        &out,
        &opts(),
    )
    .unwrap();
    assert_eq!(report.manifest.images.len(), 1);
    skopeo_reads(&out, "quay.io/team/a:1", None);
}

#[test]
fn legacy_docker_save_layout_with_id_folders() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let made = write_layout(&src, &[image("x", "amd64", vec![Layer::Busybox])])
        .unwrap()
        .remove(0);
    let layout = Layout::open(&src).unwrap();
    let config = layout.read_blob(&made.blobs[0]).unwrap();
    let layer = layout.read_blob(&made.blobs[1]).unwrap();
    // `docker save` before Docker 25: <id>/layer.tar, <hex>.json, manifest.json.
    let archive = work.path().join("legacy.tar");
    let mut b = tar::Builder::new(fs::File::create(&archive).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    };
    let id = "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
    add(&format!("{id}/VERSION"), b"1.0");
    add(&format!("{id}/json"), b"{}");
    add(&format!("{id}/layer.tar"), &layer);
    let config_name = format!("{}.json", made.blobs[0].hex());
    add(&config_name, &config);
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["example.org/legacy:1"],
        "Layers": [format!("{id}/layer.tar")],
    }]);
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    b.into_inner().unwrap();

    let out = work.path().join("bundle");
    let report = write_bundle(
        &[ImageRequest {
            reference: r("example.org/legacy:1"),
            source: SourceSpec::DockerArchive {
                path: archive,
                reference: Some("example.org/legacy:1".into()),
            },
            platforms: vec![],
        }],
        &out,
        &opts(),
    )
    .unwrap();
    let info = skopeo_reads(&out, "example.org/legacy:1", None);
    // The layer is stored as it was, so its digest equals the diff_id.
    assert_eq!(info["Layers"][0], made.blobs[1].to_string());
    let files = blob_files(&out);
    assert_eq!(files.len(), 3, "manifest, config, layer");
    assert!(
        files.contains_key(made.blobs[0].hex()),
        "config bytes kept as is"
    );
    assert_eq!(report.manifest.images[0].platforms, vec!["linux/amd64"]);
}

#[test]
fn tls_mirror_with_a_self_signed_certificate_needs_insecure() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write_layout(
        &src,
        &[image(
            "a",
            "amd64",
            vec![Layer::Random {
                seed: 31,
                size: 9_000,
            }],
        )],
    )
    .unwrap();
    let reg = TestRegistry::start_tls();
    reg.push_layout(&src, "a", "org/tls:1");
    let out = work.path().join("bundle");
    let pull = |insecure: bool, mirror: String| ImageRequest {
        reference: r("quay.io/org/tls:1"),
        source: SourceSpec::Registry {
            mirror: Some(mirror),
            credentials: None,
            insecure,
        },
        platforms: vec![],
    };
    assert!(reg.url().starts_with("https://"));

    // Verified TLS refuses the self-signed certificate.
    let e = format!(
        "{:#}",
        write_bundle(&[pull(false, reg.url())], &out, &opts()).unwrap_err()
    );
    assert!(e.contains(&reg.url()), "{e}");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(!out.exists());

    // Plain HTTP needs `insecure: true` too.
    let e = format!(
        "{:#}",
        write_bundle(
            &[pull(false, format!("http://{}", reg.host()))],
            &out,
            &opts()
        )
        .unwrap_err()
    );
    assert!(e.contains("plain HTTP") && e.contains("insecure"), "{e}");

    write_bundle(&[pull(true, reg.url())], &out, &opts()).unwrap();
    skopeo_reads(&out, "quay.io/org/tls:1", None);
}
