//! The build's signature check, through the real `airlift` binary: images
//! pushed to Debian's docker-registry, signed in cosign's format by the
//! harness (P-256 and Ed25519 keys made here), bundled with a config
//! whose `verify:` section names the public keys. A signed image in a
//! key's scope is bundled with its signature recorded; every kind of bad
//! signature fails the build naming the image, the key and the reason,
//! writing no bundle and no ISO; bad key files are config errors naming
//! `verify.keys[0].publicKey`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlift_integration::fake_base::{self, put};
use airlift_integration::images::{write_layout, MadeImage, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::sigstore::{KeyKind, PushTarget, SignatureLayer, TestKey};
use airlift_integration::tools::binary;
use base64::Engine as _;

const BASE: &str = "base:\n  kernel: base/vmlinuz\n  rootfs: base/rootfs\n  modules: []\n  \
    rootOn: initramfs\n  bootloader:\n    isolinux: base/isolinux\n    efi: \
    base/efi/systemd-bootx64.efi\n    shim: base/efi/shimx64.efi\n    grub: \
    base/efi/grubx64.efi\noutput:\n  volumeLabel: SIGNED\n";

/// A registry holding test images, two trusted keys (`team`, P-256, for
/// `<registry>/team`; `edge`, Ed25519, for `<registry>/edge`) and a
/// stranger's key, all in a temp folder.
struct Fixture {
    dir: tempfile::TempDir,
    reg: TestRegistry,
    target: PushTarget,
    layout: PathBuf,
    made: Vec<MadeImage>,
    team: TestKey,
    edge: TestKey,
    stranger: TestKey,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fake_base::write(&d.join("base"));
        let layout = d.join("layout");
        let made = write_layout(
            &layout,
            &[
                TestImage::random("a", 81, 8_000),
                TestImage::random("b", 82, 8_000),
            ],
        )
        .unwrap();
        let keys = d.join("keys");
        fs::create_dir(&keys).unwrap();
        let reg = TestRegistry::start();
        let target = PushTarget {
            addr: reg.addr(),
            basic: None,
        };
        Fixture {
            team: TestKey::generate(KeyKind::P256, &keys, "team").unwrap(),
            edge: TestKey::generate(KeyKind::Ed25519, &keys, "edge").unwrap(),
            stranger: TestKey::generate(KeyKind::P256, &keys, "stranger").unwrap(),
            dir,
            reg,
            target,
            layout,
            made,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Push layout image `ref_name` (`a` or `b`) as `repo:1.0`; its full
    /// reference and top digest.
    fn push(&self, ref_name: &str, repo: &str) -> (String, String) {
        self.reg
            .push_layout(&self.layout, ref_name, &format!("{repo}:1.0"));
        let made = self.made.iter().find(|m| m.ref_name == ref_name).unwrap();
        (
            format!("{}/{repo}:1.0", self.reg.host()),
            made.manifest.digest.to_string(),
        )
    }

    /// A config bundling `refs` from the registry, with the two trusted
    /// keys (`keys/team.pub` and `keys/edge.pub` unless `verify` is given)
    /// and, for `airlift build`, the stand-in base.
    fn config(&self, name: &str, refs: &[&str], verify: Option<&str>, build: bool) -> PathBuf {
        let mut yaml = format!(
            "apiVersion: airlift/v1alpha1\nkind: Appliance\nmetadata: {{ name: {name}, version: \
             '1' }}\nimages:\n"
        );
        for r in refs {
            yaml.push_str(&format!(
                "  - ref: {r}\n    from: {{ registry: {{ mirror: '{}', insecure: true }} }}\n",
                self.reg.url()
            ));
        }
        let host = self.reg.host();
        let default_verify = format!(
            "verify:\n  keys:\n    - publicKey: keys/team.pub\n      scopes: [{host}/team]\n    - \
             publicKey: keys/edge.pub\n      scopes: [{host}/edge]\n"
        );
        yaml.push_str(verify.unwrap_or(&default_verify));
        if build {
            yaml.push_str(BASE);
        }
        let p = self.path(&format!("{name}.yaml"));
        put(&p, yaml.as_bytes());
        p
    }
}

/// Run the real `airlift` with `args` in `dir`.
fn airlift(dir: &Path, args: &[&str]) -> Output {
    Command::new(binary("airlift"))
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `airlift bundle CONFIG -o OUT`, expected to fail: its output, after
/// checking the exit code and that no bundle (and no temp folder) was
/// left beside `out`.
fn bundle_fails(f: &Fixture, config: &Path, out: &str) -> String {
    let o = airlift(
        f.dir.path(),
        &["bundle", config.to_str().unwrap(), "-o", out],
    );
    let t = text(&o);
    assert!(!o.status.success(), "airlift bundle succeeded:\n{t}");
    assert!(!f.path(out).exists(), "a bundle was written:\n{t}");
    let stray: Vec<_> = fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(stray.is_empty(), "temp folders left: {stray:?}");
    t
}

#[test]
fn signed_images_in_scope_are_bundled_and_recorded() {
    let f = Fixture::new();
    let (team_app, team_digest) = f.push("a", "team/app");
    let (edge_db, edge_digest) = f.push("b", "edge/db");
    let (free, _) = f.push("b", "free/tool");
    // team/app signed for its repository, edge/db for its exact tag.
    let host = f.reg.host();
    let team_sig = f
        .target
        .sign(
            "team/app",
            &team_digest,
            &format!("{host}/team/app"),
            &f.team,
        )
        .unwrap();
    f.target
        .sign("edge/db", &edge_digest, &edge_db, &f.edge)
        .unwrap();
    // free/tool is in no scope and unsigned.
    let config = f.config("signed", &[&team_app, &edge_db, &free], None, true);
    let o = airlift(
        f.dir.path(),
        &[
            "build",
            config.to_str().unwrap(),
            "-o",
            "signed.iso",
            "--firstboot",
            "/bin/true",
            "--no-cache",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // bundle.json in the ISO, as `airlift inspect --json` reads it.
    let o = airlift(f.dir.path(), &["inspect", "--json", "signed.iso"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let images = v["images"].as_array().unwrap();
    let sigs = |r: &str| -> Vec<(String, String)> {
        let image = images
            .iter()
            .find(|i| i["reference"] == r)
            .unwrap_or_else(|| panic!("{r} not in {images:?}"));
        image["signatures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().to_string(),
                    s["identity"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        sigs(&team_app),
        [("team".to_string(), format!("{host}/team/app"))]
    );
    assert_eq!(sigs(&edge_db), [("edge".to_string(), edge_db.clone())]);
    assert_eq!(sigs(&free), []);
    // The text form says it too.
    let o = airlift(f.dir.path(), &["inspect", "signed.iso"]);
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "signed by key team for {host}/team/app ({team_sig})"
        )),
        "{t}"
    );
    // And bundle.json, from `airlift bundle`, names the `.sig` manifest.
    let o = airlift(
        f.dir.path(),
        &["bundle", config.to_str().unwrap(), "-o", "bundle"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let manifest: airlift_appliance::BundleManifest =
        serde_json::from_slice(&fs::read(f.path("bundle/bundle.json")).unwrap()).unwrap();
    let team = manifest
        .images
        .iter()
        .find(|i| i.reference == team_app)
        .unwrap();
    assert_eq!(team.signatures.len(), 1);
    assert_eq!(team.signatures[0].signature.to_string(), team_sig);
    assert_eq!(team.signatures[0].subject.to_string(), team_digest);
}

/// How a case signs its image: `(repo, digest)`.
type SignWith<'a> = Box<dyn Fn(&str, &str) + 'a>;

#[test]
fn bad_signatures_fail_the_build_naming_image_key_and_reason() {
    let f = Fixture::new();
    let host = f.reg.host();
    // Unsigned, through `airlift build`: no ISO is written.
    let (unsigned, _) = f.push("a", "team/unsigned");
    let config = f.config("unsigned", &[&unsigned], None, true);
    let o = airlift(
        f.dir.path(),
        &[
            "build",
            config.to_str().unwrap(),
            "-o",
            "out.iso",
            "--firstboot",
            "/bin/true",
            "--no-cache",
        ],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(!f.path("out.iso").exists(), "an ISO was written:\n{t}");
    for want in [
        format!("image {unsigned} (sha256:"),
        format!("key \"team\" (scope {host}/team)"),
        "it has no signature".to_string(),
        "cosign sign --key".to_string(),
    ] {
        assert!(t.contains(&want), "lacks {want:?}:\n{t}");
    }

    // The rest through `airlift bundle`, one image each.
    let cases: Vec<(&str, SignWith, &str)> = vec![
        (
            "team/other-key",
            Box::new(|repo: &str, digest: &str| {
                f.target
                    .sign(repo, digest, &format!("{host}/{repo}"), &f.stranger)
                    .unwrap();
            }),
            "none of its 1 signature(s) verifies with the key",
        ),
        (
            "team/other-identity",
            Box::new(|repo: &str, digest: &str| {
                f.target
                    .sign(repo, digest, "quay.io/someone/else", &f.team)
                    .unwrap();
            }),
            "its signature is for another image name, \"quay.io/someone/else\"",
        ),
        (
            // The signature annotation altered after signing.
            "team/altered-signature",
            Box::new(|repo: &str, digest: &str| {
                let mut layer = SignatureLayer::new(&f.team, &format!("{host}/{repo}"), digest);
                let b64 = base64::engine::general_purpose::STANDARD;
                let mut raw = b64.decode(&layer.signature_b64).unwrap();
                let n = raw.len();
                raw[n - 2] ^= 0x40;
                layer.signature_b64 = b64.encode(raw);
                f.target.push_signatures(repo, digest, &[layer]).unwrap();
            }),
            "none of its 1 signature(s) verifies with the key",
        ),
        (
            // The payload edited after it was signed (a blob whose bytes
            // differ from its digest cannot be stored: see below).
            "team/edited-payload",
            Box::new(|repo: &str, digest: &str| {
                let mut layer = SignatureLayer::new(&f.team, &format!("{host}/{repo}"), digest);
                let text = String::from_utf8(layer.payload).unwrap();
                layer.payload = text
                    .replace("\"optional\":null", "\"optional\":{}")
                    .into_bytes();
                f.target.push_signatures(repo, digest, &[layer]).unwrap();
            }),
            "none of its 1 signature(s) verifies with the key",
        ),
        (
            // By the right key, but over another manifest.
            "team/other-digest",
            Box::new(|repo: &str, digest: &str| {
                let other = f.made[1].manifest.digest.to_string();
                assert_ne!(other, digest);
                let layer = SignatureLayer::new(&f.team, &format!("{host}/{repo}"), &other);
                f.target.push_signatures(repo, digest, &[layer]).unwrap();
            }),
            "its signature is over another manifest",
        ),
        (
            // An Ed25519 scope, signed by the P-256 key.
            "edge/wrong-algorithm",
            Box::new(|repo: &str, digest: &str| {
                f.target
                    .sign(repo, digest, &format!("{host}/{repo}"), &f.team)
                    .unwrap();
            }),
            "none of its 1 signature(s) verifies with the key",
        ),
    ];
    // An earlier good bundle at the output path is left as it was.
    let (free, _) = f.push("b", "free/tool");
    let earlier = f.config("earlier", &[&free], None, false);
    let o = airlift(
        f.dir.path(),
        &["bundle", earlier.to_str().unwrap(), "-o", "kept"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let kept_before = fs::read(f.path("kept/bundle.json")).unwrap();
    let kept_index = fs::read(f.path("kept/index.json")).unwrap();

    for (repo, sign, reason) in &cases {
        let (reference, digest) = f.push("a", repo);
        sign(repo, &digest);
        let key = if repo.starts_with("edge/") {
            "edge"
        } else {
            "team"
        };
        let config = f.config(&repo.replace('/', "-"), &[&reference, &free], None, false);
        let t = bundle_fails(&f, &config, "out");
        for want in [
            format!("image {reference} ({digest})"),
            format!("key \"{key}\""),
            reason.to_string(),
        ] {
            assert!(t.contains(&want), "{repo}: lacks {want:?}:\n{t}");
        }
        // The same refusal over a bundle already there: it is kept.
        let o = airlift(
            f.dir.path(),
            &["bundle", config.to_str().unwrap(), "-o", "kept"],
        );
        assert!(!o.status.success(), "{repo}: {}", text(&o));
        assert_eq!(fs::read(f.path("kept/bundle.json")).unwrap(), kept_before);
        assert_eq!(fs::read(f.path("kept/index.json")).unwrap(), kept_index);
    }

    // Several refused images: each gets its line.
    let refs: Vec<String> = ["team/other-key", "team/other-identity"]
        .iter()
        .map(|r| format!("{host}/{r}:1.0"))
        .chain([unsigned.clone()])
        .collect();
    let config = f.config(
        "several",
        &refs.iter().map(String::as_str).collect::<Vec<_>>(),
        None,
        false,
    );
    let t = bundle_fails(&f, &config, "out");
    assert!(t.contains("3 images in the scope of a verify: key"), "{t}");
    for r in &refs {
        assert!(t.contains(&format!("  - image {r} (")), "lacks {r}:\n{t}");
    }
}

#[test]
fn docker_registry_refuses_a_blob_that_does_not_match_its_digest() {
    // Measured so the corrupted-payload case above is honest: a payload
    // whose bytes differ from its digest cannot be stored in the source
    // registry (the bundler would refuse such a blob anyway, and the
    // bundle's own copy is checked in the unit tests).
    let reg = TestRegistry::start();
    let r = airlift_integration::http::request(
        reg.addr(),
        "POST",
        "/v2/team/x/blobs/uploads/",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 202);
    let location = r.header("Location").unwrap().to_string();
    let path = &location[location.find("/v2/").unwrap()..];
    let sep = if path.contains('?') { '&' } else { '?' };
    let claimed = airlift_oci::Digest::sha256_of(b"the signed payload");
    let r = airlift_integration::http::request(
        reg.addr(),
        "PUT",
        &format!("{path}{sep}digest={claimed}"),
        &[("Content-Type", "application/octet-stream")],
        b"an edited payload",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("DIGEST_INVALID"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

#[test]
fn bad_key_files_are_config_errors_naming_the_field() {
    let f = Fixture::new();
    let (img, _) = f.push("a", "team/app");
    let host = f.reg.host();
    // An RSA public key, made by openssl.
    let rsa = f.path("keys/rsa.pub");
    let key = Command::new(airlift_integration::tools::require("openssl", "openssl"))
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .unwrap();
    assert!(key.status.success());
    let mut pubout = Command::new("openssl")
        .args(["pkey", "-pubout", "-out"])
        .arg(&rsa)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    pubout.stdin.take().unwrap().write_all(&key.stdout).unwrap();
    assert!(pubout.wait().unwrap().success());
    for (file, why) in [
        ("keys/missing.pub", "missing.pub"),
        ("keys/team.key", "this is a private key"),
        ("keys/rsa.pub", "the key's algorithm is RSA"),
    ] {
        let verify =
            format!("verify:\n  keys:\n    - publicKey: {file}\n      scopes: [{host}/team]\n");
        let config = f.config("badkey", &[&img], Some(&verify), false);
        for cmd in [
            vec!["validate", "--for", "bundle", config.to_str().unwrap()],
            vec!["bundle", config.to_str().unwrap(), "-o", "out"],
        ] {
            let o = airlift(f.dir.path(), &cmd);
            let t = text(&o);
            assert!(!o.status.success(), "{cmd:?} {file}:\n{t}");
            assert!(
                t.contains("field verify.keys[0].publicKey"),
                "{cmd:?} {file}:\n{t}"
            );
            assert!(t.contains(file), "{cmd:?} names the file:\n{t}");
            assert!(t.contains(why), "{cmd:?} {file}:\n{t}");
            for line in fs::read_to_string(f.path(file)).unwrap_or_default().lines() {
                if !line.starts_with("-----") && line.len() > 8 {
                    assert!(!t.contains(line), "{cmd:?} echoes the key file:\n{t}");
                }
            }
            assert!(!f.path("out").exists());
        }
    }
}
