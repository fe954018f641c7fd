//! `airlift validate` as a user runs it: the built binary on a good and
//! on a bad config.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn airlift(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_airlift"))
        .args(args)
        .current_dir(cwd)
        .env_remove("AIRLIFT_BASE")
        .output()
        .expect("running airlift")
}

const GOOD: &str = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata: { name: cli-test, version: '1' }
images:
  - ref: nginx:1.25
  - ref: quay.io/test/app:1
    from:
      ociArchive: { path: app.tar }
";

/// A one-image oci-archive at `path` (validate opens it as bundle would).
fn oci_archive(path: &Path) {
    use airlift_oci::Digest;
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer".to_vec();
    let desc = |mt: &str, b: &[u8]| serde_json::json!({"mediaType": mt, "digest": Digest::sha256_of(b).to_string(), "size": b.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "config": desc("application/vnd.oci.image.config.v1+json", &config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", &layer)],
    }))
    .unwrap();
    let top = desc("application/vnd.oci.image.manifest.v1+json", &manifest);
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]})).unwrap();
    let mut members: Vec<(String, Vec<u8>)> = vec![
        (
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".into(), index),
    ];
    for b in [config, layer, manifest] {
        members.push((Digest::sha256_of(&b).blob_path(), b));
    }
    let mut b = tar::Builder::new(fs::File::create(path).unwrap());
    for (name, bytes) in &members {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn cli_validate_good_config_says_ok() {
    let dir = tempfile::tempdir().unwrap();
    oci_archive(&dir.path().join("app.tar"));
    fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    let out = airlift(&["validate", "--for", "bundle", "good.yaml"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.starts_with(
            "good.yaml: ok (2 images (1 pulled from registries, 1 from local files), no base"
        ),
        "{stdout}"
    );
    let quiet = airlift(
        &["validate", "--quiet", "--for", "bundle", "good.yaml"],
        dir.path(),
    );
    assert!(
        quiet.status.success() && quiet.stdout.is_empty(),
        "{quiet:?}"
    );
    // For `airlift build`, the same config lacks `base`.
    let build = airlift(&["validate", "good.yaml"], dir.path());
    assert!(!build.status.success());
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        stderr.contains("good.yaml:1:1: field base: is missing"),
        "{stderr}"
    );
}

#[test]
fn cli_validate_bad_config_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace("name: cli-test", "name: CLI")
        .replace("nginx:1.25", "quay.io/test/app:1");
    fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    let out = airlift(&["validate", "--for", "bundle", "bad.yaml"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(
        lines[0].starts_with("bad.yaml:3:13: field metadata.name: \"CLI\" is not a DNS label"),
        "{stderr}"
    );
    assert!(
        lines[1]
            .starts_with("bad.yaml:6:5: field images[1].ref: quay.io/test/app:1 is listed twice"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("bad.yaml:8:21: field images[1].from.ociArchive.path: "),
        "{stderr}"
    );
    assert!(lines[2].contains("app.tar does not exist"), "{stderr}");
    assert_eq!(lines[3], "error: bad.yaml: 3 problems");
}

#[test]
fn cli_validate_config_parse_errors_and_unset_variables() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("typo.yaml"),
        GOOD.replace("metadata:", "metdata:"),
    )
    .unwrap();
    let out = airlift(&["validate", "typo.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("typo.yaml:3:1: field metdata: unknown field `metdata`, expected one of `apiVersion`, `kind`, `metadata`"), "{stderr}");

    let text = GOOD.replace("path: app.tar", "path: \"${AIRLIFT_BASE}/app.tar\"");
    fs::write(dir.path().join("var.yaml"), text).unwrap();
    let out = airlift(&["validate", "--for", "bundle", "var.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("var.yaml:8:21: field images[1].from.ociArchive.path: environment variable AIRLIFT_BASE"),
        "{stderr}"
    );

    let out = airlift(&["validate", "missing.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("reading image config missing.yaml"),
        "{stderr}"
    );
}

#[test]
fn cli_validate_config_registry_pull_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = airlift(
        &[
            "validate",
            "--for",
            "bundle",
            "image-configs/registry-pull.yaml",
        ],
        &root,
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("image-configs/registry-pull.yaml: ok (4 images (4 pulled"),
        "{stdout}"
    );
}

/// A config path that is not a regular file, or is far too large for a
/// config, is refused at once naming it (validate /dev/zero used to read
/// without end).
#[test]
fn cli_validate_refuses_non_regular_and_oversized_configs() {
    let dir = tempfile::tempdir().unwrap();
    let start = std::time::Instant::now();
    let out = airlift(&["validate", "/dev/zero"], dir.path());
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("/dev/zero") && stderr.contains("not a regular file"),
        "{stderr}"
    );
    let big = dir.path().join("big.yaml");
    let mut text = String::from("# padding\n");
    while text.len() <= 5 << 20 {
        text.push_str("# more padding to make this config far too large\n");
    }
    fs::write(&big, text).unwrap();
    let out = airlift(&["validate", "big.yaml"], dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("big.yaml") && stderr.contains("4 MiB"),
        "{stderr}"
    );
}
