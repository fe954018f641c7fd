//! Registry replication without VMs: `airlift-firstboot host0` and
//! `airlift-firstboot replica` on 127.0.0.1 with temp roots, real skopeo.
//!
//! Asserted: the replica joins (certificate from host0's CA, checked by
//! skopeo), copies the bundle, then follows pushes and a moved tag; both
//! sides report it in sync; a push to the replica is refused and names
//! host0; with host0 killed the replica keeps serving and says the
//! source is lost; a restarted host0 (a new source) is followed again.
//! Replication lag is printed, never asserted. A node's refresh puts a
//! replica that synced into its mirror order where its MAC ranks it
//! (`airlift_appliance::mirror_order`), and rewrites nothing when
//! nothing changed. A replica gates pulls on the trust policy host0 sends
//! it, as host0 does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use airlift_appliance::{mirror_order, TrustPolicy, TrustedKey};
use airlift_integration::host0::{self, Host0, Host0Dirs, JOIN_TOKEN};
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::sigstore::{
    sig_tag, KeyKind, SignatureLayer, TestKey, SIGNATURE_ANNOTATION, SIMPLE_SIGNING,
};
use airlift_integration::tools::{binary, free_port, require, run_or_stderr, stdout_lines};

const PUSH_TOKEN: &str = "replication-test-push-token-0123456789";

/// A running `airlift-firstboot replica`, killed on drop.
struct Replica {
    child: Child,
    lines: mpsc::Receiver<(String, Instant)>,
    seen: Vec<String>,
    log: PathBuf,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    fn start(tmp: &Path, dirs: &Host0Dirs) -> Replica {
        Replica::start_on(tmp, dirs, free_port())
    }

    /// [`Replica::start`] on a given port.
    fn start_on(tmp: &Path, dirs: &Host0Dirs, port: u16) -> Replica {
        let cmdline = tmp.join("cmdline");
        std::fs::write(
            &cmdline,
            format!(
                "console=ttyS0 airlift.role=replica airlift.server=https://{} \
                 airlift.token={JOIN_TOKEN} airlift.mac=52:54:00:00:00:99\n",
                dirs.host()
            ),
        )
        .unwrap();
        let (root, data) = (tmp.join("replica-root"), tmp.join("replica-data"));
        std::fs::create_dir_all(&root).unwrap();
        let log = tmp.join("replica.log");
        let child = Command::new(binary("airlift-firstboot"))
            .arg("replica")
            .arg("--cmdline")
            .arg(&cmdline)
            .arg("--conf")
            .arg(tmp.join("no-join.conf"))
            .arg("--root")
            .arg(&root)
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&dirs.config)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--max-backoff-secs", "1"])
            .env("AIRLIFT_LOG", "stderr")
            .env("RUST_LOG", "airlift_firstboot=debug,info")
            .env_remove("NOTIFY_SOCKET")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting airlift-firstboot replica");
        let mut child = child;
        let lines = stdout_lines(&mut child);
        Replica {
            child,
            lines,
            seen: vec![],
            log,
            port,
        }
    }

    /// Wait for a stdout line containing `marker`.
    fn wait_line(&mut self, marker: &str, timeout: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(marker)) {
            return l.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((l, _)) => {
                    self.seen.push(l.clone());
                    if l.contains(marker) {
                        return l;
                    }
                }
                Err(_) => panic!(
                    "the replica printed no {marker} line (exit: {:?}); lines: {:#?}\nlog:\n{}",
                    self.child.try_wait(),
                    self.seen,
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                ),
            }
        }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A folder with host0's CA as `ca.crt`, for skopeo's `--*-cert-dir`.
fn cert_dir(dirs: &Host0Dirs, tmp: &Path) -> PathBuf {
    let d = tmp.join("certs");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(dirs.ca(), d.join("ca.crt")).unwrap();
    d
}

/// `skopeo copy` of `image` (an OCI layout entry) to `host`/`reference`;
/// its output and the digest of the manifest it wrote (skopeo compresses
/// the layers for a registry, so it differs from the layout's).
fn push(
    layout: &Path,
    image: &str,
    host: &str,
    reference: &str,
    certs: &Path,
) -> (std::process::Output, String) {
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("skopeo")
        .args(["copy", "--dest-cert-dir"])
        .arg(certs)
        .args(["--dest-creds", &format!("push:{PUSH_TOKEN}")])
        .arg("--digestfile")
        .arg(digest_file.path())
        .arg(format!("oci:{}:{image}", layout.display()))
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .unwrap();
    let digest = std::fs::read_to_string(digest_file.path()).unwrap_or_default();
    (out, digest.trim().to_string())
}

/// The manifest digest `host` serves for `reference`, verified TLS.
fn digest_at(host: &str, reference: &str, certs: &Path) -> Option<String> {
    let out = Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}", "--cert-dir"])
        .arg(certs)
        .arg(format!("docker://{host}/{reference}"))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Poll until `host` serves `want` for `reference`; returns how long it took.
fn wait_digest(host: &str, reference: &str, want: &str, certs: &Path) -> Duration {
    let start = Instant::now();
    loop {
        if digest_at(host, reference, certs).as_deref() == Some(want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{host} never served {reference} as {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// GET a JSON endpoint with host0's CA.
fn json(host: &str, path: &str, dirs: &Host0Dirs) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "10", "--cacert"])
        .arg(dirs.ca())
        .arg(format!("https://{host}{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path} on {host}");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_replica_copies_follows_survives_and_rejoins_host0() {
    require("skopeo", "skopeo");
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let media = t.join("media");
    let bundle = write_layout(
        &media,
        &[
            TestImage::random("quay.io/test/app:1.0", 1, 300_000),
            TestImage::random("docker.io/library/tool:2", 2, 100_000),
        ],
    )
    .unwrap();
    let mut file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    file.registry.push = true;
    file.storage.allow_ram_push = true;
    let dirs = Host0Dirs::new(t, &media, &file);
    std::fs::write(t.join("push-token"), PUSH_TOKEN).unwrap();
    let mut h0 = Host0::start(&dirs, &["--force-load"]);
    let certs = cert_dir(&dirs, t);

    // The replica copies the bundle, served under TLS host0's CA signed.
    let mut r = Replica::start(t, &dirs);
    let synced = r.wait_line("AIRLIFT-REPLICA-SYNCED", Duration::from_secs(120));
    eprintln!("{synced}");
    for (reference, made) in [
        ("quay.io/test/app:1.0", &bundle[0]),
        ("docker.io/library/tool:2", &bundle[1]),
    ] {
        assert_eq!(
            digest_at(&r.host(), reference, &certs).as_deref(),
            Some(made.manifest.digest.to_string().as_str()),
            "{reference} on the replica"
        );
    }
    let pulled = t.join("pulled");
    let out = Command::new("skopeo")
        .args(["copy", "--src-cert-dir"])
        .arg(&certs)
        .arg(format!("docker://{}/quay.io/test/app:1.0", r.host()))
        .arg(format!("dir:{}", pulled.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pulling from the replica: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A push to host0 arrives; then a moved tag.
    let layout = t.join("pushes");
    write_layout(
        &layout,
        &[
            TestImage::random("first", 10, 250_000),
            TestImage::random("second", 11, 250_000),
            TestImage::random("third", 12, 50_000),
        ],
    )
    .unwrap();
    let mut last = String::new();
    for image in ["first", "second"] {
        let (out, digest) = push(
            &layout,
            image,
            &dirs.host(),
            "quay.io/test/pushed:1.0",
            &certs,
        );
        assert!(
            out.status.success(),
            "push {image} to host0: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lag = wait_digest(&r.host(), "quay.io/test/pushed:1.0", &digest, &certs);
        last = digest;
        eprintln!("push of {image} visible on the replica after {lag:.2?} (polled every 0.1 s)");
    }
    let table = json(&dirs.host(), "/airlift/v1/replicas", &dirs);
    let row = &table[0];
    assert_eq!(row["url"], format!("https://{}", r.host()), "{table}");
    assert_eq!(row["state"], "in-sync", "{table}");
    assert_eq!(
        row["applied-generation"], row["source-generation"],
        "{table}"
    );
    let rs = json(&r.host(), "/airlift/v1/status", &dirs);
    assert_eq!(rs["state"], "ready", "{rs}");
    assert_eq!(rs["replication"]["state"], "in-sync", "{rs}");
    assert_eq!(rs["registry"], format!("https://{}", r.host()), "{rs}");

    // Pushes to the replica are refused, naming host0.
    let (out, _) = push(&layout, "third", &r.host(), "quay.io/test/other:1", &certs);
    assert!(!out.status.success(), "a push to the replica was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replica") && err.contains(&dirs.host()),
        "the refusal should name host0: {err}"
    );

    // host0 dies: the replica serves on and says the source is lost.
    h0.kill9();
    r.wait_line("AIRLIFT-REPLICA-SOURCE-LOST", Duration::from_secs(60));
    assert_eq!(
        digest_at(&r.host(), "quay.io/test/pushed:1.0", &certs),
        Some(last)
    );
    let rs = json(&r.host(), "/airlift/v1/status", &dirs);
    assert_eq!(rs["replication"]["state"], "source-unreachable", "{rs}");

    // host0 comes back (a new process, so a new source): followed again.
    let _h0 = Host0::start(&dirs, &[]);
    r.wait_line("AIRLIFT-REPLICA-SOURCE-BACK", Duration::from_secs(60));
    let (out, digest) = push(
        &layout,
        "third",
        &dirs.host(),
        "quay.io/test/after:1",
        &certs,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_digest(&r.host(), "quay.io/test/after:1", &digest, &certs);
}

/// `airlift-firstboot join` as a node with `mac` (and `extra` arguments),
/// its root and state under `t`; stdout, checked to have succeeded.
fn node_join(t: &Path, dirs: &Host0Dirs, mac: &str, extra: &[&str]) -> String {
    let cmdline = t.join("node-cmdline");
    std::fs::write(
        &cmdline,
        format!(
            "airlift.server=https://{} airlift.token={JOIN_TOKEN} airlift.mac={mac}\n",
            dirs.host()
        ),
    )
    .unwrap();
    let root = t.join("node-root");
    std::fs::create_dir_all(&root).unwrap();
    let out = Command::new(binary("airlift-firstboot"))
        .arg("join")
        .arg("--cmdline")
        .arg(&cmdline)
        .arg("--conf")
        .arg(t.join("no-join.conf"))
        .arg("--root")
        .arg(&root)
        .arg("--data")
        .arg(t.join("node-data"))
        .args(["--no-verify", "--give-up-after-secs", "20"])
        .args(extra)
        .env("AIRLIFT_LOG", "stderr")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "join {extra:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The registries of the node config the node saved.
fn node_registries(t: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("node-data/node-config.json")).unwrap())
            .unwrap();
    serde_json::from_value(v["registries"].clone()).unwrap()
}

/// The positions of `hosts` in `text`, which must hold each.
fn positions(text: &str, hosts: &[&str]) -> Vec<usize> {
    hosts
        .iter()
        .map(|h| {
            text.find(h)
                .unwrap_or_else(|| panic!("{h} not in:\n{text}"))
        })
        .collect()
}

#[test]
fn a_node_reorders_its_mirrors_only_when_a_replica_syncs() {
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let media = t.join("media");
    write_layout(
        &media,
        &[TestImage::random("quay.io/test/app:1.0", 1, 50_000)],
    )
    .unwrap();
    let file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    let dirs = Host0Dirs::new(t, &media, &file);
    let _h0 = Host0::start(&dirs, &[]);
    let host0_url = format!("https://{}", dirs.host());
    // A MAC that ranks the replica first, so that the new order differs
    // from host0-first.
    let port = free_port();
    let replica_url = format!("https://127.0.0.1:{port}");
    let mac = (0..=255u8)
        .map(|i| format!("52:54:00:00:00:{i:02x}"))
        .find(|m| {
            let key = mirror_order::node_key(Some(m), [0u8; 4].into());
            mirror_order::node_order(&key, &[&host0_url, &replica_url], &[])[0] == replica_url
        })
        .expect("a MAC that ranks the replica first");
    let mac = mac.as_str();

    // Alone, host0 is the node's only registry.
    let out = node_join(t, &dirs, mac, &[]);
    assert!(out.contains("AIRLIFT-JOIN-CONFIGURED"), "{out}");
    assert_eq!(node_registries(t), std::slice::from_ref(&host0_url));

    // A replica in sync joins the node's order where its MAC ranks it.
    let mut r = Replica::start_on(t, &dirs, port);
    r.wait_line("AIRLIFT-REPLICA-SYNCED", Duration::from_secs(120));
    assert_eq!(replica_url, format!("https://{}", r.host()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while json(&dirs.host(), "/airlift/v1/replicas", &dirs)[0]["state"] != "in-sync" {
        assert!(
            Instant::now() < deadline,
            "host0 never saw the replica in sync"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = node_join(t, &dirs, mac, &["--refresh"]);
    assert!(out.contains("AIRLIFT-JOIN-UPDATED"), "{out}");
    let key = mirror_order::node_key(Some(mac), [0u8; 4].into());
    let want = mirror_order::node_order(&key, &[&host0_url, &replica_url], &[]);
    assert_eq!(want, [replica_url.clone(), host0_url.clone()]);
    assert_eq!(node_registries(t), want);
    // The runtimes' files list the registries in that order.
    let root = t.join("node-root");
    let files = [
        root.join("etc/containers/registries.conf.d/50-airlift.conf"),
        root.join("etc/containerd/certs.d/quay.io/hosts.toml"),
    ];
    let hosts: Vec<&str> = want.iter().map(|u| &u["https://".len()..]).collect();
    let before: Vec<(String, std::time::SystemTime)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let p = positions(&text, &hosts);
            assert!(
                p[0] < p[1],
                "{} lists {hosts:?} out of order:\n{text}",
                f.display()
            );
            (text, std::fs::metadata(f).unwrap().modified().unwrap())
        })
        .collect();

    // Nothing changed: the refresh rewrites nothing.
    let out = node_join(t, &dirs, mac, &["--refresh"]);
    assert!(!out.contains("AIRLIFT-JOIN-UPDATED"), "{out}");
    assert_eq!(node_registries(t), want);
    for (f, (text, mtime)) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read_to_string(f).unwrap(), text);
        assert_eq!(
            &std::fs::metadata(f).unwrap().modified().unwrap(),
            mtime,
            "{}",
            f.display()
        );
    }
}

/// The blob file `d` under `root` (any `blobs/<alg>/<hex>`), if any.
fn blob_file(root: &Path, d: &str) -> Option<PathBuf> {
    let (alg, hex) = d.split_once(':')?;
    let want = Path::new("blobs").join(alg).join(hex);
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).ok()?.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if p.ends_with(&want) {
                return Some(p);
            }
        }
    }
    None
}

/// A manifest's digest and those of its config and layers, read from `root`.
fn manifest_blobs(root: &Path, manifest: &str) -> Vec<String> {
    let path = blob_file(root, manifest).expect("the manifest's blob");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut out = vec![manifest.to_string()];
    out.push(m["config"]["digest"].as_str().unwrap().to_string());
    for l in m["layers"].as_array().unwrap() {
        out.push(l["digest"].as_str().unwrap().to_string());
    }
    out
}

#[test]
fn a_replica_collects_the_blobs_of_a_manifest_deleted_on_host0() {
    require("skopeo", "skopeo");
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let media = t.join("media");
    write_layout(
        &media,
        &[TestImage::random("quay.io/test/app:1.0", 1, 50_000)],
    )
    .unwrap();
    let mut file = host0::appliance_file(host0::port(), &["quay.io"]);
    file.registry.push = true;
    file.registry.allow_delete = true;
    file.storage.allow_ram_push = true;
    let dirs = Host0Dirs::new(t, &media, &file);
    std::fs::write(t.join("push-token"), PUSH_TOKEN).unwrap();
    let _h0 = Host0::start(&dirs, &["--force-load"]);
    let certs = cert_dir(&dirs, t);
    let mut r = Replica::start(t, &dirs);
    r.wait_line("AIRLIFT-REPLICA-SYNCED", Duration::from_secs(120));

    let layout = t.join("pushes");
    write_layout(
        &layout,
        &[
            TestImage::random("keep", 30, 60_000),
            TestImage::random("drop", 31, 60_000),
        ],
    )
    .unwrap();
    let mut pushed = Vec::new();
    for name in ["keep", "drop"] {
        let reference = format!("gc/{name}:1");
        let (out, digest) = push(&layout, name, &dirs.host(), &reference, &certs);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_digest(&r.host(), &reference, &digest, &certs);
        pushed.push(digest);
    }
    let replica_data = t.join("replica-data");
    let keep = manifest_blobs(&replica_data, &pushed[0]);
    let drop = manifest_blobs(&replica_data, &pushed[1]);
    assert!(
        drop.iter().all(|d| !keep.contains(d)),
        "the two images share no blob"
    );

    let out = Command::new("curl")
        .args([
            "-fsS",
            "-X",
            "DELETE",
            "-u",
            &format!("push:{PUSH_TOKEN}"),
            "--cacert",
        ])
        .arg(dirs.ca())
        .arg(format!(
            "https://{}/v2/gc/drop/manifests/{}",
            dirs.host(),
            pushed[1]
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "DELETE on host0: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let line = r.wait_line("AIRLIFT-GC freed", Duration::from_secs(60));
    let left: Vec<PathBuf> = drop
        .iter()
        .filter_map(|d| blob_file(&replica_data, d))
        .collect();
    assert!(
        line.contains(&format!("freed {} blobs", drop.len())),
        "{line}; left: {left:?} of {drop:?}"
    );
    for d in &drop {
        assert!(
            blob_file(&replica_data, d).is_none(),
            "{d} of the deleted image is still on the replica"
        );
    }
    for d in &keep {
        assert!(
            blob_file(&replica_data, d).is_some(),
            "{d} of a kept image is gone"
        );
    }
    for reference in ["gc/keep:1", "quay.io/test/app:1.0"] {
        let out = Command::new("skopeo")
            .args(["copy", "--src-cert-dir"])
            .arg(&certs)
            .arg(format!("docker://{}/{reference}", r.host()))
            .arg(format!(
                "dir:{}",
                t.join(format!("pulled-{}", reference.replace(['/', ':'], "-")))
                    .display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pulling {reference} from the replica: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `curl` against host0 over TLS with its CA and the push token: a
/// request's HTTP status.
fn curl_push(dirs: &Host0Dirs, method: &str, path: &str, ctype: &str, body: &Path) -> u16 {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(dirs.ca())
        .args([
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {PUSH_TOKEN}"),
        ])
        .args(["-H", &format!("Content-Type: {ctype}"), "--data-binary"])
        .arg(format!("@{}", body.display()))
        .arg(format!("https://{}{path}", dirs.host()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Push a cosign `.sig` manifest for `digest` into `repo` on host0 (over
/// TLS, so with curl rather than `PushTarget`), signed by `key`.
fn sign_on_host0(t: &Path, dirs: &Host0Dirs, repo: &str, digest: &str, key: &TestKey) {
    let layer = SignatureLayer::new(key, repo, digest);
    let file = |name: &str, bytes: &[u8]| {
        let p = t.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let mut descs = Vec::new();
    for (name, bytes) in [("payload", &layer.payload[..]), ("config", &b"{}"[..])] {
        let d = airlift_oci::Digest::sha256_of(bytes).to_string();
        let status = curl_push(
            dirs,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            "application/octet-stream",
            &file(name, bytes),
        );
        assert_eq!(status, 201, "pushing the signature's {name}");
        descs.push((d, bytes.len()));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": descs[1].0, "size": descs[1].1},
        "layers": [{"mediaType": SIMPLE_SIGNING, "digest": descs[0].0, "size": descs[0].1,
                    "annotations": {SIGNATURE_ANNOTATION: layer.signature_b64}}],
    }))
    .unwrap();
    let status = curl_push(
        dirs,
        "PUT",
        &format!("/v2/{repo}/manifests/{}", sig_tag(digest)),
        "application/vnd.oci.image.manifest.v1+json",
        &file("sig-manifest", &manifest),
    );
    assert_eq!(status, 201, "pushing the .sig manifest");
}

/// `skopeo copy` from `host` into a fresh folder; skopeo's stderr on failure.
fn pull_from(t: &Path, host: &str, reference: &str, certs: &Path) -> Result<(), String> {
    let out_dir = t.join("gate-pulled");
    let _ = std::fs::remove_dir_all(&out_dir);
    run_or_stderr(
        Command::new("skopeo")
            .args(["copy", "--quiet", "--src-cert-dir"])
            .arg(certs)
            .arg(format!("docker://{host}/{reference}"))
            .arg(format!("dir:{}", out_dir.display())),
    )
}

/// host0 gates pulls on its trust policy and hands it to the replica in
/// the mirror spec (the replica's own appliance file has none): the
/// replica serves the signed image and refuses the unsigned one in scope.
#[test]
fn a_replica_gates_pulls_on_host0s_trust_policy() {
    require("skopeo", "skopeo");
    require("curl", "curl");
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let media = t.join("media");
    write_layout(
        &media,
        &[TestImage::random("docker.io/library/tool:2", 2, 10_000)],
    )
    .unwrap();
    let key = TestKey::generate(KeyKind::P256, t, "team").unwrap();
    let mut file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    file.registry.push = true;
    file.storage.allow_ram_push = true;
    let replica_file = file.clone();
    file.trust = Some(TrustPolicy {
        keys: vec![TrustedKey {
            name: "team".into(),
            scopes: vec!["quay.io/signed".into()],
            public_key_pem: key.public_pem.clone(),
        }],
        enforce: true,
    });
    let dirs = Host0Dirs::new(t, &media, &file);
    std::fs::write(t.join("push-token"), PUSH_TOKEN).unwrap();
    let _h0 = Host0::start(&dirs, &[]);
    let certs = cert_dir(&dirs, t);

    let layout = t.join("pushes");
    write_layout(
        &layout,
        &[
            TestImage::random("good", 91, 20_000),
            TestImage::random("bare", 92, 20_000),
        ],
    )
    .unwrap();
    let (out, bare) = push(
        &layout,
        "bare",
        &dirs.host(),
        "quay.io/signed/bare:1.0",
        &certs,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (out, good) = push(
        &layout,
        "good",
        &dirs.host(),
        "quay.io/signed/app:1.0",
        &certs,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sign_on_host0(t, &dirs, "quay.io/signed/app", &good, &key);

    // The replica reads an appliance file without `trust`.
    let replica_dirs = Host0Dirs {
        config: t.join("replica-appliance.json"),
        ..dirs.clone()
    };
    std::fs::write(&replica_dirs.config, replica_file.render().unwrap()).unwrap();
    let mut r = Replica::start(t, &replica_dirs);
    r.wait_line("AIRLIFT-REPLICA-SYNCED", Duration::from_secs(120));
    // Synced: everything pushed before the join is there.
    pull_from(t, &r.host(), "quay.io/signed/app:1.0", &certs)
        .unwrap_or_else(|e| panic!("the signed image from the replica: {e}"));
    let e = pull_from(t, &r.host(), "quay.io/signed/bare:1.0", &certs).unwrap_err();
    for want in ["denied", "team", &bare, "no signature"] {
        assert!(
            e.contains(want),
            "{want:?} not in the replica's refusal: {e}"
        );
    }
    pull_from(t, &r.host(), "docker.io/library/tool:2", &certs)
        .unwrap_or_else(|e| panic!("out of scope, from the replica: {e}"));
    let rs = json(&r.host(), "/airlift/v1/status", &dirs);
    assert_eq!(rs["refused-pulls"], 1, "{rs}");
}
