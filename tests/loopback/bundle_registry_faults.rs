//! Registry pulls through a fault-injecting proxy in front of a real
//! `docker-registry`: 5xx answers are retried, a corrupted blob or a
//! lying `Docker-Content-Digest` fails naming the digest and URL with the
//! output untouched, and the Docker Bearer-token flow works with
//! credentials from an auth file.

use std::fs;
use std::path::{Path, PathBuf};

use airlift_builder::bundler::{write_bundle, BundleOptions};
use airlift_builder::sources::{ImageRequest, SourceSpec};
use airlift_integration::fault_proxy::{Fault, FaultProxy};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::own_process;
use airlift_integration::registry::{base64_encode, TestRegistry};

fn opts() -> BundleOptions {
    BundleOptions {
        name: "test".into(),
        version: "1".into(),
        concurrency: 4,
        progress: false,
        ..BundleOptions::default()
    }
}

/// A registry holding `org/app:1` (two layers).
fn registry_with_image(work: &Path) -> (TestRegistry, MadeImage) {
    let src = work.join("src");
    let made = write_layout(
        &src,
        &[TestImage {
            ref_name: "a".into(),
            layers: vec![
                Layer::Random {
                    seed: 21,
                    size: 100_000,
                },
                Layer::Random {
                    seed: 22,
                    size: 5_000,
                },
            ],
            architecture: "amd64".into(),
            gzip: true,
        }],
    )
    .unwrap()
    .remove(0);
    let reg = TestRegistry::start();
    reg.push_layout(&src, "a", "org/app:1");
    (reg, made)
}

fn pull(proxy: &FaultProxy, credentials: Option<PathBuf>) -> ImageRequest {
    ImageRequest {
        reference: "quay.io/org/app:1".parse().unwrap(),
        source: SourceSpec::Registry {
            mirror: Some(proxy.url()),
            credentials,
            insecure: true,
        },
        platforms: vec![],
    }
}

#[test]
fn retries_server_errors() {
    let work = tempfile::tempdir().unwrap();
    let (reg, _) = registry_with_image(work.path());
    let proxy = FaultProxy::start(&reg.host(), Fault::Unavailable { first: 3 });
    let out = work.path().join("bundle");
    let report = write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap();
    assert_eq!(proxy.faults(), 3);
    assert_eq!(
        report.stats.fetched_blobs, 4,
        "manifest, config, two layers"
    );

    // A registry that never recovers: bounded tries, a clear error.
    let dead = FaultProxy::start(&reg.host(), Fault::Unavailable { first: usize::MAX });
    let out2 = work.path().join("bundle2");
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&dead, None)], &out2, &opts()).unwrap_err()
    );
    assert!(
        e.contains("503") && e.contains("/v2/org/app/manifests/1"),
        "{e}"
    );
    assert_eq!(dead.served(), 5, "five tries, then give up");
    assert!(!out2.exists());
}

#[test]
fn corrupted_blob_names_digest_and_url_and_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (reg, made) = registry_with_image(work.path());
    let proxy = FaultProxy::start(&reg.host(), Fault::CorruptBlobs);
    let out = work.path().join("bundle");
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap_err()
    );
    assert!(proxy.faults() > 0);
    // The config is fetched first, so its digest is the one named.
    let config = &made.blobs[0];
    assert!(e.contains(&config.to_string()), "{e}");
    assert!(
        e.contains(&format!("{}/v2/org/app/blobs/{config}", proxy.url())),
        "{e}"
    );
    assert!(
        e.contains("quay.io/org/app:1") && e.contains("mismatch"),
        "{e}"
    );
    assert!(!out.exists());
    let left: Vec<_> = fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["src"], "temp folders left behind");
}

#[test]
fn lying_docker_content_digest_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let (reg, made) = registry_with_image(work.path());
    let proxy = FaultProxy::start(&reg.host(), Fault::WrongDigestHeader);
    let out = work.path().join("bundle");
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap_err()
    );
    assert!(e.contains("Docker-Content-Digest"), "{e}");
    assert!(e.contains(&made.manifest.digest.to_string()), "{e}");
    assert!(!out.exists());
}

#[test]
fn bearer_token_flow_with_credentials_file() {
    let work = tempfile::tempdir().unwrap();
    let (reg, _) = registry_with_image(work.path());
    let proxy = FaultProxy::start(
        &reg.host(),
        Fault::Bearer {
            user: "robot".into(),
            password: "t0ken-pass".into(),
            token: "opaque-token-123".into(),
        },
    );
    let out = work.path().join("bundle");

    // No credentials: the token endpoint refuses; the error says what to set.
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap_err()
    );
    assert!(
        e.contains("token service") && e.contains("credentials"),
        "{e}"
    );
    assert!(!out.exists());

    let auth = work.path().join("auth.json");
    let entry = base64_encode(b"robot:t0ken-pass");
    fs::write(
        &auth,
        format!(r#"{{"auths":{{"{}":{{"auth":"{entry}"}}}}}}"#, proxy.host()),
    )
    .unwrap();
    let report = write_bundle(&[pull(&proxy, Some(auth))], &out, &opts()).unwrap();
    assert_eq!(report.manifest.images[0].reference, "quay.io/org/app:1");
    assert_eq!(report.stats.fetched_blobs, 4);
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let work = tempfile::tempdir().unwrap();
    let port = airlift_integration::tools::free_port();
    let req = ImageRequest {
        reference: "quay.io/org/app:1".parse().unwrap(),
        source: SourceSpec::Registry {
            mirror: Some(format!("http://127.0.0.1:{port}")),
            credentials: None,
            insecure: true,
        },
        platforms: vec![],
    };
    let out = work.path().join("bundle");
    let e = format!("{:#}", write_bundle(&[req], &out, &opts()).unwrap_err());
    assert!(
        e.contains(&format!(
            "GET http://127.0.0.1:{port}/v2/org/app/manifests/1 failed after 5 tries"
        )),
        "{e}"
    );
    assert!(!out.exists());
}

/// Whether to run the stall test's body here: it wants an idle read
/// timeout of 2 s instead of the default 30, and the env var is read when
/// a registry client is made, so the test runs in a process of its own
/// with it set (see `own_process`): no other test sees it.
fn short_idle_timeout(test: &str) -> bool {
    own_process::with_env(
        &format!("bundle_registry_faults::{test}"),
        &[("AIRLIFT_REGISTRY_IDLE_TIMEOUT", "2")],
    )
}

#[test]
fn endless_manifest_is_cut_at_the_cap() {
    let work = tempfile::tempdir().unwrap();
    let (reg, _) = registry_with_image(work.path());
    let proxy = FaultProxy::start(&reg.host(), Fault::EndlessManifest);
    let out = work.path().join("bundle");
    let t = std::time::Instant::now();
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap_err()
    );
    assert!(
        e.contains("/v2/org/app/manifests/1") && e.contains("4194304 bytes"),
        "{e}"
    );
    assert!(t.elapsed().as_secs() < 20, "took {:?}", t.elapsed());
    assert!(!out.exists());
}

#[test]
fn a_stalled_manifest_or_blob_times_out_and_is_retried() {
    if !short_idle_timeout("a_stalled_manifest_or_blob_times_out_and_is_retried") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (reg, made) = registry_with_image(work.path());

    // Stalls once, mid-body: retried, then the pull succeeds.
    for path in ["/manifests/", "/blobs/"] {
        let proxy = FaultProxy::start(&reg.host(), Fault::Stall { path, first: 1 });
        let out = work.path().join("once");
        let report = write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap();
        assert_eq!(proxy.faults(), 1, "{path}");
        assert_eq!(report.stats.fetched_blobs, 4, "{path}");
        fs::remove_dir_all(&out).unwrap();
    }

    // Stalls every time: bounded tries, an error naming the URL.
    let proxy = FaultProxy::start(
        &reg.host(),
        Fault::Stall {
            path: "/blobs/",
            first: usize::MAX,
        },
    );
    let out = work.path().join("bundle");
    let t = std::time::Instant::now();
    let e = format!(
        "{:#}",
        write_bundle(&[pull(&proxy, None)], &out, &opts()).unwrap_err()
    );
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
    assert!(e.contains("/v2/org/app/blobs/sha256:"), "{e}");
    assert!(e.contains("stalled") || e.contains("timed out"), "{e}");
    let _ = made;
    assert!(!out.exists());
}
