//! The operator's status page end to end: `airlift-firstboot host0` on
//! loopback with a three-image bundle (and its bundle.json), a node that
//! joined with the appliance's token, then the page rendered by headless
//! Chromium after its script ran (`--dump-dom`): the appliance, the load
//! at 100 %, every image, the node, the replicas placeholder and the
//! mirror config, and which images are signed by which trusted key. A
//! screenshot goes to
//! `target/test-output/status-page/status.png` for people to look at.
//! `airlift-firstboot status` against the same server prints the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlift_appliance::bundle_manifest::{
    BundleImage, BundleManifest, Totals, VerifiedSignature, BUNDLE_SCHEMA,
};
use airlift_appliance::{TrustPolicy, TrustedKey};
use airlift_integration::host0::{self, curl, Host0, Host0Dirs, JOIN_TOKEN};
use airlift_integration::images::{write_layout, write_multiarch, Layer, MadeImage, TestImage};
use airlift_integration::sigstore::{KeyKind, TestKey};
use airlift_integration::tools::{binary, require, workspace_root};
use airlift_oci::Layout;

const MAC: &str = "52:54:00:5a:7e:01";

fn image(ref_name: &str, arch: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers,
        architecture: arch.to_string(),
        gzip: true,
    }
}

/// Three images and the bundle.json the builder would write beside them.
fn bundle(dir: &Path) -> Vec<MadeImage> {
    let mut made = write_layout(
        dir,
        &[
            image(
                "quay.io/test/app:1.0",
                "amd64",
                vec![
                    Layer::Busybox,
                    Layer::Random {
                        seed: 1,
                        size: 600_000,
                    },
                ],
            ),
            image(
                "docker.io/library/busybox:1.36",
                "amd64",
                vec![Layer::Busybox],
            ),
        ],
    )
    .unwrap();
    made.push(
        write_multiarch(
            dir,
            "registry.k8s.io/pause:3.9",
            &[
                image(
                    "",
                    "amd64",
                    vec![Layer::Random {
                        seed: 7,
                        size: 40_000,
                    }],
                ),
                image(
                    "",
                    "arm64",
                    vec![Layer::Random {
                        seed: 8,
                        size: 40_000,
                    }],
                ),
            ],
        )
        .unwrap(),
    );
    let layout = Layout::open(dir).unwrap();
    let mut images = Vec::new();
    let mut all = std::collections::BTreeMap::new();
    let mut referenced = 0;
    for m in &made {
        let reach = layout.reachable(&m.manifest).unwrap();
        let size: u64 = reach.iter().map(|d| d.size).sum();
        referenced += size;
        for d in reach {
            all.insert(d.digest.clone(), d.size);
        }
        let platforms = if m.ref_name.starts_with("registry.k8s.io") {
            vec!["linux/amd64".into(), "linux/arm64/v8".into()]
        } else {
            vec!["linux/amd64".into()]
        };
        // The app is signed by the trusted key `release` (as the builder
        // records it after verifying); the others are not.
        let signatures = if m.ref_name.starts_with("quay.io/test/") {
            vec![VerifiedSignature {
                subject: m.manifest.digest.clone(),
                key: "release".into(),
                identity: m.ref_name.clone(),
                signature: airlift_oci::Digest::sha256_of(m.ref_name.as_bytes()),
            }]
        } else {
            Vec::new()
        };
        images.push(BundleImage {
            reference: m.ref_name.clone(),
            digest: m.manifest.digest.clone(),
            media_type: m.manifest.media_type.clone(),
            platforms,
            size,
            attachments: Vec::new(),
            signatures,
        });
    }
    let unique: u64 = all.values().sum();
    let manifest = BundleManifest {
        schema: BUNDLE_SCHEMA.into(),
        name: "host0-test".into(),
        version: "0.0.1".into(),
        images,
        totals: Totals {
            images: made.len() as u64,
            blobs: all.len() as u64,
            unique_bytes: unique,
            referenced_bytes: referenced,
            saved_bytes: referenced - unique,
        },
        base: None,
    };
    std::fs::write(
        dir.join("bundle.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    made
}

/// Where this test leaves its screenshot and DOM.
fn output_dir() -> PathBuf {
    let dir = workspace_root().join("target/test-output/status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Run headless Chromium on `url` with `args`, a fresh profile, no
/// network beyond the URL, and a hard timeout. Returns stdout.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> String {
    let bin = require("chromium", "chromium");
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
            "--no-first-run",
            "--disable-dev-shm-usage",
            // host0's certificate is signed by the CA it generated; the
            // browser has no way to be told of it, and TLS is not what
            // this test is about (the CLI check below verifies it).
            "--ignore-certificate-errors",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish with {url} in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chromium {args:?} {url} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text inside the element whose `data-testid` is `id` (its first
/// occurrence), tags stripped.
fn testid_text(dom: &str, id: &str) -> String {
    let key = format!("data-testid=\"{id}\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {key} in the DOM"));
    let open_end = at + dom[at..].find('>').unwrap() + 1;
    let tag_start = dom[..at].rfind('<').unwrap();
    let tag: String = dom[tag_start + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let close = format!("</{tag}>");
    let end = open_end + dom[open_end..].find(&close).unwrap();
    strip_tags(&dom[open_end..end])
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&").trim().to_string()
}

/// Every element (opening tag and the text up to the row's end) with
/// `data-testid="ROW"`.
fn rows<'a>(dom: &'a str, row: &str) -> Vec<&'a str> {
    let key = format!("data-testid=\"{row}\"");
    dom.match_indices(&key)
        .map(|(i, _)| {
            let end = i + dom[i..].find("</tr>").unwrap();
            &dom[i..end]
        })
        .collect()
}

fn firstboot(args: &[&str]) -> std::process::Output {
    Command::new(binary("airlift-firstboot"))
        .args(args)
        .output()
        .expect("running airlift-firstboot")
}

#[test]
fn the_page_shows_the_load_images_nodes_and_mirror_config() {
    let tmp = tempfile::tempdir().unwrap();
    let made = bundle(&tmp.path().join("media"));
    let mut file =
        host0::appliance_file(host0::port(), &["quay.io", "docker.io", "registry.k8s.io"]);
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let release = TestKey::generate(KeyKind::P256, &keys, "release").unwrap();
    file.trust = Some(TrustPolicy {
        keys: vec![TrustedKey {
            name: "release".into(),
            scopes: vec!["quay.io/test".into()],
            public_key_pem: release.public_pem.clone(),
        }],
        enforce: true,
    });
    // Built from a base image: the record host0 shows (issue #21).
    let base_digest = airlift_oci::Digest::sha256_of(b"base index");
    file.base = Some(airlift_appliance::bundle_manifest::BaseImageRecord {
        reference: "registry.airlift.test/base/demo:bookworm".into(),
        digest: base_digest.clone(),
        manifest_digest: airlift_oci::Digest::sha256_of(b"base amd64"),
        kernel_release: "6.1.0-18-amd64".into(),
        signatures: Vec::new(),
    });
    let dirs = Host0Dirs::new(tmp.path(), &tmp.path().join("media"), &file);
    let mut h = Host0::start(&dirs, &["--force-load"]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));
    h.wait_state("ready", Duration::from_secs(60));

    // A node joins with the appliance's token and says its MAC.
    let (code, body) = curl(
        &dirs,
        &["/airlift/v1/join"],
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {JOIN_TOKEN}"),
            "-H",
            "Content-Type: application/json",
            "--data",
            &format!(r#"{{"mac":"{}"}}"#, MAC.to_uppercase()),
        ],
    );
    assert_eq!(code, 200, "join: {body}");

    // The page, after its script polled the endpoints.
    let url = format!("https://{}/", dirs.host());
    let out = output_dir();
    let dom = chromium(&tmp.path().join("chromium-dom"), &url, &["--dump-dom"]);
    std::fs::write(out.join("status.html"), &dom).unwrap();

    assert_eq!(testid_text(&dom, "appliance-name"), "host0-test", "{dom}");
    assert_eq!(testid_text(&dom, "appliance-version"), "0.0.1");
    assert_eq!(testid_text(&dom, "connection"), "Live");
    assert_eq!(
        testid_text(&dom, "registry-address"),
        format!("https://{}", dirs.host())
    );
    let status = h.status();
    assert_eq!(
        testid_text(&dom, "ca-fingerprint"),
        status["ca-fingerprint"].as_str().unwrap()
    );
    // Secure Boot as host0 read it from this machine's firmware.
    let secure_boot = status["secure-boot"]
        .as_str()
        .expect("host0 reports secure-boot");
    if !Path::new("/sys/firmware/efi").is_dir() {
        assert_eq!(secure_boot, "unsupported", "no /sys/firmware/efi here");
    }
    let page_word = match secure_boot {
        "enabled" => "Enabled",
        "disabled" => "Off",
        "unsupported" => "Not available (BIOS boot)",
        "unknown" => "Unknown",
        other => panic!("secure-boot {other:?}"),
    };
    assert!(
        testid_text(&dom, "secure-boot").starts_with(page_word),
        "{}",
        testid_text(&dom, "secure-boot")
    );
    // The data folder's disk use, read when the status is read.
    let disk = &status["disk"];
    assert!(disk["total"].as_u64().unwrap() > 0, "{disk}");
    assert!(disk["available"].as_u64().unwrap() <= disk["total"].as_u64().unwrap());
    assert_eq!(disk["warn-percent"], 85, "{disk}");
    assert!(disk["used-percent"].as_u64().unwrap() <= 100, "{disk}");
    // (Read again by the page: the percent may have moved meanwhile.)
    let shown = testid_text(&dom, "disk-use");
    let (pct, rest) = shown
        .split_once(" % used · ")
        .expect("the page shows the disk use");
    assert!(pct.parse::<u8>().is_ok(), "{shown}");
    assert!(
        rest.contains(" free of ") && rest.ends_with(" kept in reserve"),
        "{shown}"
    );
    // The load: a full bar, every blob.
    assert_eq!(testid_text(&dom, "progress-percent"), "100 %");
    assert!(
        dom.contains(r#"aria-valuenow="100""#),
        "the progress bar is not at 100"
    );
    assert!(dom.contains(r#"data-state="ready""#));
    assert_eq!(
        testid_text(&dom, "progress-blobs"),
        format!("{} / {}", status["blobs-total"], status["blobs-total"])
    );
    // Every image of the bundle, with its short digest and platforms.
    let image_rows = rows(&dom, "image-row");
    assert_eq!(image_rows.len(), made.len(), "{image_rows:#?}");
    for m in &made {
        let row = image_rows
            .iter()
            .find(|r| r.contains(&format!("data-reference=\"{}\"", m.ref_name)))
            .unwrap_or_else(|| panic!("{} is not on the page", m.ref_name));
        let hex = m.manifest.digest.hex();
        assert!(row.contains(&format!("sha256:{}", &hex[..12])), "{row}");
        assert!(
            row.contains(&format!("data-digest=\"{}\"", m.manifest.digest)),
            "{row}"
        );
        assert!(row.contains("linux/amd64"), "{row}");
        // Signed by which key, or unsigned.
        if m.ref_name.starts_with("quay.io/test/") {
            assert!(row.contains(r#"data-keys="release""#), "{row}");
        } else {
            assert!(
                row.contains(r#"data-keys="""#) && row.contains("unsigned"),
                "{row}"
            );
        }
    }
    assert_eq!(testid_text(&dom, "images-count"), "(3)");
    // The trust state: the key, its scope, and why policy.json is not
    // written on this machine (Debian's skopeo has sigstore disabled).
    let trust = testid_text(&dom, "trust");
    assert!(
        trust.starts_with("Keys: release (quay.io/test). Enforced by host0's registry; containers-policy.json not written:")
            && trust.contains("sigstore disabled"),
        "{trust}"
    );
    // The base image the OS came from.
    assert_eq!(
        testid_text(&dom, "base-image"),
        format!(
            "registry.airlift.test/base/demo:bookworm@{base_digest} · kernel 6.1.0-18-amd64 · \
             no signature checked (no verify: key covers it)"
        )
    );
    // The node that joined.
    let node_rows = rows(&dom, "node-row");
    assert_eq!(node_rows.len(), 1, "{node_rows:#?}");
    assert!(
        node_rows[0].contains(&format!("data-mac=\"{MAC}\"")),
        "{}",
        node_rows[0]
    );
    assert!(node_rows[0].contains(r#"data-state="joined""#));
    assert!(node_rows[0].contains("127.0.0.1"));
    // Releases: the boot media's bundle, current.
    let release_rows = rows(&dom, "release-row");
    assert_eq!(release_rows.len(), 1, "{release_rows:#?}");
    let bundle = airlift_oci::Digest::sha256_of(
        &std::fs::read(tmp.path().join("media/index.json")).unwrap(),
    );
    assert!(
        release_rows[0].contains(r#"data-current="true""#),
        "{}",
        release_rows[0]
    );
    assert!(
        release_rows[0].contains(&format!("sha256:{}", &bundle.hex()[..12])),
        "{}",
        release_rows[0]
    );
    assert_eq!(testid_text(&dom, "release-current"), "current");
    // Replicas: the placeholder until HA lands.
    assert_eq!(
        testid_text(&dom, "replicas-empty"),
        "No replicas configured."
    );
    // The mirror config a node would get: registries.conf for this registry.
    let mirror = testid_text(&dom, "mirror-text");
    assert!(mirror.contains("registries.conf.d"), "{mirror}");
    assert!(mirror.contains(&dirs.host()), "{mirror}");
    assert!(testid_text(&dom, "mirror-summary").contains(&format!("https://{}", dirs.host())));

    // The filter box (pre-filled from `?q=`) keeps only the matching images.
    let filtered = chromium(
        &tmp.path().join("chromium-filter"),
        &format!("{url}?q=arm64"),
        &["--dump-dom"],
    );
    let only = rows(&filtered, "image-row");
    assert_eq!(only.len(), 1, "{only:#?}");
    assert!(only[0].contains("registry.k8s.io/pause:3.9"));
    assert_eq!(testid_text(&filtered, "images-count"), "(1 of 3)");

    // A screenshot for people.
    let shot = out.join("status.png");
    let _ = std::fs::remove_file(&shot);
    chromium(
        &tmp.path().join("chromium-shot"),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
    );
    let png = std::fs::read(&shot).expect("chromium wrote no screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // `airlift-firstboot status` prints the same, TLS verified with the CA.
    let server = format!("https://{}", dirs.host());
    let ca = dirs.ca();
    let ca = ca.to_str().unwrap();
    let o = firstboot(&["status", "--server", &server, "--ca", ca]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "status failed: {text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(out.join("status.txt"), text.as_bytes()).unwrap();
    assert!(text.starts_with("host0-test 0.0.1\n"), "{text}");
    assert!(text.contains("ready (bundle on disk, verified)"), "{text}");
    assert!(
        text.contains("[##############################] 100 %"),
        "{text}"
    );
    let cli_word = if secure_boot == "unsupported" {
        "unsupported (BIOS)"
    } else {
        secure_boot
    };
    assert!(
        text.contains(&format!("  secure boot  {cli_word}\n")),
        "{text}"
    );
    assert!(text.contains("Images (3)"), "{text}");
    for m in &made {
        let line = text
            .lines()
            .find(|l| l.starts_with(&m.ref_name))
            .unwrap_or_else(|| panic!("no line for {} in {text}", m.ref_name));
        assert!(
            line.contains(&format!("sha256:{}", &m.manifest.digest.hex()[..12])),
            "{line}"
        );
        let signed = if m.ref_name.starts_with("quay.io/test/") {
            "  release  "
        } else {
            "  unsigned  "
        };
        assert!(line.contains(signed), "{line}");
    }
    assert!(
        text.contains("  signatures   keys release (quay.io/test); enforced by host0's registry; containers-policy.json not written:"),
        "{text}"
    );
    assert!(text.contains("Nodes (1)"), "{text}");
    let node = text
        .lines()
        .find(|l| l.starts_with(MAC))
        .expect("node line");
    assert!(
        node.contains("127.0.0.1") && node.contains("joined"),
        "{node}"
    );

    let o = firstboot(&["status", "--server", &server, "--ca", ca, "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"]["state"], "ready");
    assert_eq!(v["images"]["images"].as_array().unwrap().len(), 3);
    assert_eq!(v["nodes"][0]["mac"], MAC);

    // Without the CA the certificate is refused, and the error says what to pass.
    let o = firstboot(&["status", "--server", &server]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--ca") && err.contains("--insecure"), "{err}");
    let o = firstboot(&["status", "--server", &dirs.host(), "--insecure"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Once host0 is gone, the CLI says which address did not answer.
    h.kill9();
    let o = firstboot(&["status", "--server", &server, "--ca", ca]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("{server}/airlift/v1/status")),
        "{err}"
    );
}
