//! The signature files on host0 and a joined node, through the real
//! paths: `airlift-firstboot host0` with a trust policy in appliance.json
//! writes them under its root, and `airlift-firstboot join` against it
//! writes them under the node's root from the mirror spec it received.
//! On this machine (Debian 12) the real probe with Debian's skopeo says
//! containers/image cannot verify sigstore signatures, so policy.json is
//! left alone and the warning says why; keys and admission policies are
//! written, a stale key is backed up, and a second join changes nothing.
//! And the policy.json and registries.d written where containers/image
//! can verify are read by the real skopeo against a real registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlift_appliance::{TrustPolicy, TrustedKey};
use airlift_firstboot::services::mirrors::signature_probe;
use airlift_firstboot::services::mirrors::signatures::{
    KYVERNO, POLICY_CONTROLLER, POLICY_JSON, REGISTRIES_D,
};
use airlift_firstboot::services::mirrors::{apply_with, Endpoint, MirrorSpec, Runtime, Sigstore};
use airlift_integration::host0::{self, Host0, Host0Dirs, JOIN_TOKEN};
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::sigstore::{KeyKind, PushTarget, TestKey};
use airlift_integration::tools::{binary, file_contents_under, require, run_or_stderr};

const MAC: &str = "52:54:00:5a:7e:42";

/// The user's own policy.json on the node, which must survive untouched.
const USER_POLICY: &str = "{\"default\": [{\"type\": \"insecureAcceptAnything\"}]}\n";

fn at(root: &Path, node_path: &str) -> PathBuf {
    root.join(node_path.trim_start_matches('/'))
}

/// `airlift-firstboot join` as a node, its root and state under `t`;
/// (stdout, stderr), checked to have succeeded.
fn node_join(t: &Path, dirs: &Host0Dirs) -> (String, String) {
    let cmdline = t.join("node-cmdline");
    std::fs::write(
        &cmdline,
        format!(
            "airlift.server=https://{} airlift.token={JOIN_TOKEN} airlift.mac={MAC}\n",
            dirs.host()
        ),
    )
    .unwrap();
    let out = Command::new(binary("airlift-firstboot"))
        .arg("join")
        .arg("--cmdline")
        .arg(&cmdline)
        .arg("--conf")
        .arg(t.join("no-join.conf"))
        .arg("--root")
        .arg(t.join("node-root"))
        .arg("--data")
        .arg(t.join("node-data"))
        .args(["--no-verify", "--give-up-after-secs", "20"])
        .env("AIRLIFT_LOG", "stderr")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "join: {stdout}\n{stderr}");
    (stdout, stderr)
}

/// The keys, scopes and files the admission policies must carry.
fn assert_admission_policies(root: &Path, trust: &TrustPolicy) {
    let text = std::fs::read_to_string(at(root, POLICY_CONTROLLER)).unwrap();
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    assert_eq!(docs.len(), trust.keys.len(), "{text}");
    let kyverno: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(at(root, KYVERNO)).unwrap()).unwrap();
    for (doc, key) in docs.iter().zip(&trust.keys) {
        assert_eq!(doc["kind"], "ClusterImagePolicy");
        assert_eq!(
            doc["spec"]["authorities"][0]["key"]["data"]
                .as_str()
                .unwrap()
                .trim(),
            key.public_key_pem.trim()
        );
        let globs = serde_yaml::to_string(&doc["spec"]["images"]).unwrap();
        for s in &key.scopes {
            assert!(globs.contains(&format!("{s}/**")), "{globs}");
        }
    }
    let rules = kyverno["spec"]["rules"].as_sequence().unwrap();
    assert_eq!(rules.len(), trust.keys.len());
    for (rule, key) in rules.iter().zip(&trust.keys) {
        let v = &rule["verifyImages"][0];
        let refs = serde_yaml::to_string(&v["imageReferences"]).unwrap();
        for s in &key.scopes {
            assert!(refs.contains(&format!("{s}/*")), "{refs}");
        }
        assert_eq!(
            v["attestors"][0]["entries"][0]["keys"]["publicKeys"]
                .as_str()
                .unwrap()
                .trim(),
            key.public_key_pem.trim()
        );
    }
}

#[test]
fn the_real_probe_says_debian_s_skopeo_cannot_verify_sigstore() {
    let skopeo = require("skopeo", "skopeo");
    assert_eq!(signature_probe::probe(&skopeo), Sigstore::Disabled);
}

#[test]
fn host0_and_a_joined_node_get_keys_and_admission_policies_not_policy_json() {
    require("skopeo", "skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let media = t.join("media");
    write_layout(
        &media,
        &[TestImage::random("docker.io/library/plain:1", 1, 20_000)],
    )
    .unwrap();
    let keys = t.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let release = TestKey::generate(KeyKind::P256, &keys, "release").unwrap();
    let team = TestKey::generate(KeyKind::Ed25519, &keys, "team").unwrap();
    let trust = TrustPolicy {
        keys: vec![
            TrustedKey {
                name: "release".into(),
                scopes: vec!["quay.io/example".into()],
                public_key_pem: release.public_pem.clone(),
            },
            TrustedKey {
                name: "team".into(),
                scopes: vec!["ghcr.io/team".into()],
                public_key_pem: team.public_pem.clone(),
            },
        ],
        enforce: true,
    };
    let mut file = host0::appliance_file(host0::port(), &["quay.io", "ghcr.io", "docker.io"]);
    file.trust = Some(trust.clone());
    let dirs = Host0Dirs::new(t, &media, &file);
    let mut h = Host0::start(&dirs, &[]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));

    // host0's own root: keys and admission policies, policy.json not written.
    for k in &trust.keys {
        assert_eq!(
            std::fs::read_to_string(at(&dirs.root, &k.path()))
                .unwrap()
                .trim(),
            k.public_key_pem.trim()
        );
    }
    assert_admission_policies(&dirs.root, &trust);
    assert!(!at(&dirs.root, POLICY_JSON).exists());
    assert!(!at(&dirs.root, REGISTRIES_D).exists());
    let status = h.status();
    let st = &status["trust"];
    assert_eq!(st["enforce"], true, "{status}");
    assert_eq!(st["policy-json"], false, "{status}");
    assert!(
        st["policy-json-reason"]
            .as_str()
            .unwrap()
            .contains("sigstore disabled"),
        "{status}"
    );
    assert_eq!(st["keys"][1]["name"], "team");
    assert_eq!(st["keys"][1]["scopes"][0], "ghcr.io/team");
    let log = std::fs::read_to_string(dirs.data.with_extension("log")).unwrap();
    assert!(
        log.contains("/etc/containers/policy.json not written"),
        "host0's log has no warning:\n{log}"
    );

    // The node: a stale key of its own and the user's policy.json.
    let node = t.join("node-root");
    let stale = at(&node, "/etc/airlift/keys/release.pub");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "an old key\n").unwrap();
    let user_policy = at(&node, POLICY_JSON);
    std::fs::create_dir_all(user_policy.parent().unwrap()).unwrap();
    std::fs::write(&user_policy, USER_POLICY).unwrap();

    let (stdout, stderr) = node_join(t, &dirs);
    assert!(stdout.contains("AIRLIFT-JOIN-CONFIGURED"), "{stdout}");
    assert!(stdout.contains("(written)"), "{stdout}");
    // The spec the node saved carries the trust policy.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("node-data/node-config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["mirror"]["trust"]["keys"][0]["name"], "release");
    for k in &trust.keys {
        assert_eq!(
            std::fs::read_to_string(at(&node, &k.path()))
                .unwrap()
                .trim(),
            k.public_key_pem.trim()
        );
    }
    assert_eq!(
        std::fs::read_to_string(at(&node, "/etc/airlift/keys/release.pub.airlift-orig")).unwrap(),
        "an old key\n",
        "the replaced key is backed up"
    );
    assert_admission_policies(&node, &trust);
    assert_eq!(std::fs::read_to_string(&user_policy).unwrap(), USER_POLICY);
    assert!(!at(&node, REGISTRIES_D).exists());
    assert!(
        stderr.contains("/etc/containers/policy.json not written")
            && stderr.contains("sigstore disabled")
            && stderr.contains("host0's registry enforces"),
        "{stderr}"
    );

    // A second join changes nothing on the node.
    let before = file_contents_under(&node);
    let (again, _) = node_join(t, &dirs);
    assert!(again.contains("already in place"), "{again}");
    assert_eq!(file_contents_under(&node), before);
}

/// `skopeo copy docker://<reg>/<repo>:1.0` with the policy.json and
/// registries.d airlift rendered under `root`; stderr on failure.
fn pull_with_rendered(root: &Path, reg: &TestRegistry, repo: &str) -> Result<(), String> {
    let out_dir = root.join("pulled");
    let _ = std::fs::remove_dir_all(&out_dir);
    run_or_stderr(
        Command::new(require("skopeo", "skopeo"))
            .arg("--policy")
            .arg(at(root, POLICY_JSON))
            .arg("--registries.d")
            .arg(at(root, "/etc/containers/registries.d"))
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/{repo}:1.0", reg.host()))
            .arg(format!("oci:{}:x", out_dir.display())),
    )
}

#[test]
fn skopeo_reads_the_rendered_policy_json_and_registries_d() {
    // The files as written where containers/image verifies sigstore,
    // read by Debian's real skopeo: the policy parses, an image out of
    // scope copies, one in scope without a signature is refused for the
    // missing signature, and a signed one is found through registries.d
    // (use-sigstore-attachments) and reaches the sigstore check, which
    // Debian's build then refuses ("sigstore disabled").
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let reg = TestRegistry::start();
    let layout = t.join("layout");
    let made = write_layout(&layout, &[TestImage::random("app", 91, 4096)]).unwrap();
    let digest = made[0].manifest.digest.to_string();
    for repo in ["signed/good", "signed/bare", "free/app"] {
        reg.push_layout(&layout, "app", &format!("{repo}:1.0"));
    }
    let key = TestKey::generate(KeyKind::P256, t, "release").unwrap();
    PushTarget {
        addr: reg.addr(),
        basic: None,
    }
    .sign(
        "signed/good",
        &digest,
        &format!("{}/signed/good:1.0", reg.host()),
        &key,
    )
    .unwrap();
    let spec = MirrorSpec::new(
        vec![Endpoint::http(&reg.host())],
        vec!["quay.io".into()],
        None,
    )
    .with_trust(Some(TrustPolicy {
        keys: vec![TrustedKey {
            name: "release".into(),
            scopes: vec![format!("{}/signed", reg.host())],
            public_key_pem: key.public_pem.clone(),
        }],
        enforce: true,
    }));
    let root = t.join("root");
    std::fs::create_dir_all(&root).unwrap();
    apply_with(&root, &spec, &[Runtime::Podman], &Sigstore::Verifies).unwrap();

    pull_with_rendered(&root, &reg, "free/app")
        .unwrap_or_else(|e| panic!("an image out of scope refused: {e}"));
    let e = pull_with_rendered(&root, &reg, "signed/bare").unwrap_err();
    assert!(e.contains("no signature exists"), "{e}");
    let e = pull_with_rendered(&root, &reg, "signed/good").unwrap_err();
    assert!(
        e.contains("sigstore disabled"),
        "the signature was not found through registries.d, or skopeo now verifies: {e}"
    );
}
