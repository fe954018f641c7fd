//! The signature files through `mirrors::apply_with` against temp roots:
//! policy.json merged into the user's (backed up, stable on re-runs),
//! refused when malformed with nothing written, left alone where
//! containers/image cannot verify sigstore signatures (with the warning),
//! and keys only when enforcement is off.

use std::fs;
use std::path::{Path, PathBuf};

use airlift_appliance::{TrustPolicy, TrustedKey};
use airlift_firstboot::services::mirrors::apply::{ORIG_SUFFIX, PREV_SUFFIX};
use airlift_firstboot::services::mirrors::signatures::{
    KYVERNO, POLICY_CONTROLLER, POLICY_JSON, REGISTRIES_D,
};
use airlift_firstboot::services::mirrors::{apply_with, Endpoint, MirrorSpec, Runtime, Sigstore};

const P256: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERRL+kM8n3+BBPSDquKFPaYGkxWWq\nrLDLSPXGHDBUHchd/0zWvYOJc14o+08lZtGXy5M1MO2lCp+OZzihCjzk6g==\n-----END PUBLIC KEY-----\n";
const ED25519: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAmXC2gkYrqJ89R+QhHK68b/ZMXgnR6e1VLjuuF+Hz3hE=\n-----END PUBLIC KEY-----\n";

/// The user's policy.json: a default, a scope of theirs, a scope we also
/// govern, and another transport.
const USER_POLICY: &str = r#"{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "registry.example.com/mine": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/etc/pki/mine.gpg"}],
      "quay.io/example": [{"type": "insecureAcceptAnything"}]
    },
    "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
  }
}
"#;

fn trust(enforce: bool) -> TrustPolicy {
    TrustPolicy {
        keys: vec![
            TrustedKey {
                name: "release".into(),
                scopes: vec!["quay.io/example".into()],
                public_key_pem: P256.into(),
            },
            TrustedKey {
                name: "team".into(),
                scopes: vec!["ghcr.io/team".into()],
                public_key_pem: ED25519.into(),
            },
        ],
        enforce,
    }
}

fn spec(enforce: bool) -> MirrorSpec {
    MirrorSpec::new(
        vec![Endpoint::http("10.0.0.1:5000")],
        vec!["quay.io".into(), "ghcr.io".into()],
        None,
    )
    .with_trust(Some(trust(enforce)))
}

fn at(root: &Path, node_path: &str) -> PathBuf {
    root.join(node_path.trim_start_matches('/'))
}

fn put(root: &Path, node_path: &str, content: &str) -> PathBuf {
    let p = at(root, node_path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, content).unwrap();
    p
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

#[test]
fn policy_json_is_merged_backed_up_and_stable() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let policy = put(r, POLICY_JSON, USER_POLICY);
    let report = apply_with(r, &spec(true), &[Runtime::Podman], &Sigstore::Verifies).unwrap();
    assert!(report.warnings.is_empty(), "{report:#?}");
    assert_eq!(report.merged, [PathBuf::from(POLICY_JSON)], "{report:#?}");
    let orig = PathBuf::from(format!("{}{ORIG_SUFFIX}", policy.display()));
    assert!(report.backups.contains(&orig), "{report:#?}");
    assert_eq!(fs::read_to_string(&orig).unwrap(), USER_POLICY);

    let v = json(&policy);
    assert_eq!(v["default"][0]["type"], "reject", "the user's default kept");
    let docker = &v["transports"]["docker"];
    assert_eq!(docker["registry.example.com/mine"][0]["type"], "signedBy");
    assert_eq!(docker["quay.io/example"][0]["type"], "sigstoreSigned");
    assert_eq!(
        docker["quay.io/example"][0]["keyPath"],
        "/etc/airlift/keys/release.pub"
    );
    assert_eq!(
        docker["ghcr.io/team"][0]["keyPath"],
        "/etc/airlift/keys/team.pub"
    );
    assert_eq!(
        v["transports"]["docker-daemon"][""][0]["type"],
        "insecureAcceptAnything"
    );
    for (path, pem) in [
        ("/etc/airlift/keys/release.pub", P256),
        ("/etc/airlift/keys/team.pub", ED25519),
    ] {
        assert_eq!(fs::read_to_string(at(r, path)).unwrap(), pem);
    }
    let d: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(at(r, REGISTRIES_D)).unwrap()).unwrap();
    assert_eq!(
        d["docker"]["10.0.0.1:5000"]["use-sigstore-attachments"],
        true
    );
    assert!(at(r, POLICY_CONTROLLER).is_file() && at(r, KYVERNO).is_file());

    // A re-run changes nothing.
    let again = apply_with(r, &spec(true), &[Runtime::Podman], &Sigstore::Verifies).unwrap();
    assert!(!again.changed(), "{again:#?}");
    assert!(again.unchanged.contains(&PathBuf::from(POLICY_JSON)));

    // A new key for a scope: merged again, the replaced file kept as
    // .airlift-prev, the user's original untouched.
    let mut t = trust(true);
    t.keys[0].scopes.push("quay.io/other".into());
    let changed = spec(true).with_trust(Some(t));
    let r3 = apply_with(r, &changed, &[Runtime::Podman], &Sigstore::Verifies).unwrap();
    assert_eq!(r3.merged, [PathBuf::from(POLICY_JSON)], "{r3:#?}");
    let prev = PathBuf::from(format!("{}{PREV_SUFFIX}", policy.display()));
    assert_eq!(json(&prev), v);
    assert_eq!(fs::read_to_string(&orig).unwrap(), USER_POLICY);
    assert_eq!(
        json(&policy)["transports"]["docker"]["quay.io/other"][0]["type"],
        "sigstoreSigned"
    );
}

#[test]
fn a_fresh_machine_gets_a_policy_json_that_accepts_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let report = apply_with(r, &spec(true), &[Runtime::Crio], &Sigstore::Verifies).unwrap();
    assert!(report.written.contains(&PathBuf::from(POLICY_JSON)));
    let v = json(&at(r, POLICY_JSON));
    assert_eq!(v["default"][0]["type"], "insecureAcceptAnything");
    assert_eq!(
        v["transports"]["docker"]["quay.io/example"][0]["signedIdentity"]["type"],
        "matchRepository"
    );
}

#[test]
fn a_malformed_policy_json_is_named_and_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let policy = put(r, POLICY_JSON, "{\"default\": [ private-looking words");
    let err = apply_with(r, &spec(true), &[Runtime::Podman], &Sigstore::Verifies).unwrap_err();
    let e = format!("{err:#}");
    assert!(
        e.contains(&policy.display().to_string()) && e.contains("not valid JSON"),
        "{e}"
    );
    assert!(
        !e.contains("private-looking"),
        "the file is not echoed: {e}"
    );
    assert!(!at(r, "/etc/airlift").exists(), "no key written");
    assert!(!at(r, REGISTRIES_D).exists());
    assert!(!at(r, "/etc/containers/registries.conf.d").exists());
    assert_eq!(
        fs::read_to_string(&policy).unwrap(),
        "{\"default\": [ private-looking words"
    );
}

#[test]
fn where_sigstore_is_disabled_policy_json_is_left_alone_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let policy = put(r, POLICY_JSON, USER_POLICY);
    let report = apply_with(r, &spec(true), &[Runtime::Podman], &Sigstore::Disabled).unwrap();
    assert_eq!(fs::read_to_string(&policy).unwrap(), USER_POLICY);
    assert!(!at(r, REGISTRIES_D).exists());
    assert!(at(r, "/etc/airlift/keys/release.pub").is_file());
    assert!(at(r, POLICY_CONTROLLER).is_file() && at(r, KYVERNO).is_file());
    assert_eq!(report.warnings.len(), 1, "{report:#?}");
    let w = &report.warnings[0];
    assert!(
        w.contains(POLICY_JSON) && w.contains("sigstore disabled"),
        "{w}"
    );
    assert!(w.contains("host0's registry enforces"), "{w}");
}

#[test]
fn enforcement_off_writes_the_keys_only() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let report = apply_with(r, &spec(false), &[Runtime::Podman], &Sigstore::Verifies).unwrap();
    assert!(report.warnings.is_empty(), "{report:#?}");
    assert!(at(r, "/etc/airlift/keys/team.pub").is_file());
    assert!(!at(r, "/etc/airlift/policy").exists());
    assert!(!at(r, POLICY_JSON).exists());
    assert!(!at(r, REGISTRIES_D).exists());
}
