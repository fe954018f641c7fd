//! `airlift-firstboot host0` without a VM: a bundle folder as the media,
//! a temp root and state folder, the registry on 127.0.0.1 over TLS with
//! the CA it generates. Real clients pull through the mirror config it
//! wrote (skopeo with the registries.conf drop-in, containerd's ctr with
//! the hosts.toml files); the status endpoint reaches `ready` with every
//! blob verified on disk; the join endpoint answers only the token.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use airlift_integration::firstboot::{assert_blobs_whole, files_under};
use airlift_integration::host0::{self, curl, Containerd, Host0, Host0Dirs, JOIN_TOKEN};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::tools::{require, run_ok};
use airlift_oci::Digest;

fn image(ref_name: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers,
        architecture: "amd64".to_string(),
        gzip: true,
    }
}

/// The two-image bundle of the brief.
fn bundle(dir: &Path) -> Vec<MadeImage> {
    write_layout(
        dir,
        &[
            image(
                "quay.io/test/app:1.0",
                vec![
                    Layer::Busybox,
                    Layer::Random {
                        seed: 1,
                        size: 300_000,
                    },
                ],
            ),
            image("docker.io/library/busybox:1.36", vec![Layer::Busybox]),
        ],
    )
    .unwrap()
}

fn start(tmp: &Path, extra: &[&str]) -> (Host0, Vec<MadeImage>) {
    let made = bundle(&tmp.join("media"));
    let file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    let dirs = Host0Dirs::new(tmp, &tmp.join("media"), &file);
    (Host0::start(&dirs, extra), made)
}

/// A full registries.conf: skopeo 1.9.3 reads no drop-ins beside a
/// `--registries-conf` file, so the main file and the drop-in are joined.
fn full_registries_conf(root: &Path, out: &Path) {
    let main = std::fs::read_to_string(root.join("etc/containers/registries.conf")).unwrap();
    let drop_in =
        std::fs::read_to_string(root.join("etc/containers/registries.conf.d/50-airlift.conf"))
            .unwrap();
    std::fs::write(out, format!("{main}\n{drop_in}")).unwrap();
}

fn sha256_file(p: &Path) -> Digest {
    Digest::sha256_of(&std::fs::read(p).unwrap())
}

#[test]
fn serves_loads_and_clients_pull_through_the_written_mirror_config() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, made) = start(tmp.path(), &["--force-load"]);
    let dirs = h.dirs.clone();
    eprintln!("ready {:.0?} after start", h.ready_after);

    // The load finishes: every blob copied and verified, then served from disk.
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));
    let s = h.wait_state("ready", Duration::from_secs(60));
    assert_eq!(s["blobs-done"], s["blobs-total"], "{s}");
    assert_eq!(s["bytes-done"], s["bytes-total"], "{s}");
    assert_eq!(s["serving-from"], "disk", "{s}");
    assert_eq!(s["appliance"]["name"], "host0-test");
    assert_eq!(s["registry"], format!("https://{}", dirs.host()));
    assert!(s["ca-fingerprint"].as_str().unwrap().starts_with("sha256:"));
    let distinct: std::collections::BTreeSet<_> = made
        .iter()
        .flat_map(|m| m.blobs.iter().chain([&m.manifest.digest]))
        .collect();
    assert_eq!(s["blobs-total"], distinct.len());
    assert_eq!(assert_blobs_whole(&dirs.registry_data()), distinct.len());
    assert!(h.log_text().contains("the media can be ejected"));

    // The media is no longer needed: hide it, then pull.
    std::fs::rename(tmp.path().join("media"), tmp.path().join("media-ejected")).unwrap();

    // skopeo through the registries.conf drop-in, TLS verified with the CA
    // host0 wrote into certs.d for its own address.
    let skopeo = require("skopeo", "skopeo");
    let conf = tmp.path().join("registries.conf");
    full_registries_conf(&dirs.root, &conf);
    let cert_dir = dirs.root.join("etc/containers/certs.d").join(dirs.host());
    assert!(cert_dir.join("ca.crt").is_file());
    let out = tmp.path().join("skopeo-out");
    run_ok(
        Command::new(&skopeo)
            .arg("--registries-conf")
            .arg(&conf)
            .args(["copy", "--src-cert-dir"])
            .arg(&cert_dir)
            .arg("docker://quay.io/test/app:1.0")
            .arg(format!("dir:{}", out.display())),
    );
    let app = made
        .iter()
        .find(|m| m.ref_name == "quay.io/test/app:1.0")
        .unwrap();
    assert_eq!(sha256_file(&out.join("manifest.json")), app.manifest.digest);
    // (Offline, with the media gone: only the disk copy can have served it.)

    // containerd through the hosts.toml files (their CA path rewritten to
    // the temp root's copy, since ctr reads it from the real /etc).
    let cd = Containerd::start(&tmp.path().join("containerd"));
    let hosts = tmp.path().join("hosts");
    let certs_d = dirs.root.join("etc/containerd/certs.d");
    let ca_in_root = certs_d.join("airlift-ca.crt");
    assert!(ca_in_root.is_file());
    for rel in files_under(&certs_d) {
        let text = std::fs::read_to_string(certs_d.join(&rel)).unwrap();
        let dest = hosts.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(
            dest,
            text.replace(
                "/etc/containerd/certs.d/airlift-ca.crt",
                ca_in_root.to_str().unwrap(),
            ),
        )
        .unwrap();
    }
    for reference in ["quay.io/test/app:1.0", "docker.io/library/busybox:1.36"] {
        cd.pull(&hosts, reference);
    }
    let line = cd.listed("quay.io/test/app:1.0");
    assert!(line.contains(&app.manifest.digest.to_string()), "{line}");
}

#[test]
fn join_endpoint_answers_the_token_only() {
    let tmp = tempfile::tempdir().unwrap();
    let (h, _) = start(tmp.path(), &[]);
    let dirs = h.dirs.clone();

    let bearer = format!("Authorization: Bearer {JOIN_TOKEN}");
    let (code, body) = curl(&dirs, &["/airlift/v1/join"], &["-X", "POST", "-H", &bearer]);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["registries"][0], format!("https://{}", dirs.host()));
    assert_eq!(v["mirror"]["registries"][0]["host"], dirs.host());
    assert_eq!(
        v["mirror"]["upstreams"],
        serde_json::json!(["quay.io", "docker.io"])
    );
    let ca = std::fs::read_to_string(dirs.ca()).unwrap();
    assert_eq!(v["ca-pem"].as_str().unwrap(), ca);
    assert_eq!(v["runtimes"], serde_json::json!(["podman", "containerd"]));

    // The token in a JSON body works too.
    let body_json = format!("{{\"token\":\"{JOIN_TOKEN}\"}}");
    let (code, _) = curl(
        &dirs,
        &["/airlift/v1/join"],
        &["-X", "POST", "-d", &body_json],
    );
    assert_eq!(code, 200);

    // Wrong and missing tokens: 403, logged with the peer's address.
    let wrong = format!("Authorization: Bearer {JOIN_TOKEN}x");
    let (code, body) = curl(&dirs, &["/airlift/v1/join"], &["-X", "POST", "-H", &wrong]);
    assert_eq!(code, 403, "{body}");
    assert!(!body.contains("BEGIN CERTIFICATE"));
    let (code, _) = curl(&dirs, &["/airlift/v1/join"], &[]);
    assert_eq!(code, 403);
    let log = h.log_text();
    assert!(
        log.contains("join refused: a wrong join token from 127.0.0.1:")
            && log.contains("join refused: no join token from 127.0.0.1:"),
        "{log}"
    );
}

#[test]
fn a_rerun_after_success_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, _) = start(tmp.path(), &["--force-load"]);
    h.wait_line("AIRLIFT-HOST0-LOADED", Duration::from_secs(120));
    let dirs = h.dirs.clone();
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        files_under(dir)
            .into_iter()
            .map(|rel| {
                let bytes = std::fs::read(dir.join(&rel)).unwrap();
                (rel, bytes)
            })
            .collect()
    };
    let root_before = snapshot(&dirs.root);
    let tls_before = snapshot(&dirs.data.join("tls"));
    drop(h);

    let h = Host0::start(&dirs, &["--force-load"]);
    // Loaded before: straight to ready, from the disk.
    let s = h.status();
    assert_eq!(s["state"], "ready", "{s}");
    assert_eq!(s["serving-from"], "disk", "{s}");
    assert_eq!(snapshot(&dirs.root), root_before);
    assert_eq!(snapshot(&dirs.data.join("tls")), tls_before);
    assert!(h.log_text().contains("already point at this registry"));
    assert!(!files_under(&dirs.root)
        .iter()
        .any(|f| f.contains(".airlift-")));
}

#[test]
fn data_in_ram_without_a_data_disk_serves_from_the_media_only() {
    // /dev/shm is tmpfs: without --force-load nothing is copied.
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "/dev/shm is missing");
    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    bundle(&media);
    let state = tempfile::Builder::new()
        .prefix("airlift-host0-")
        .tempdir_in(shm)
        .unwrap();
    let file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    let mut dirs = Host0Dirs::new(state.path(), &media, &file);
    dirs.root = tmp.path().join("root");
    std::fs::create_dir_all(&dirs.root).unwrap();
    let h = Host0::start(&dirs, &[]);
    let s = h.status();
    assert_eq!(s["state"], "media-only", "{s}");
    assert_eq!(s["serving-from"], "media");
    assert!(s["message"].as_str().unwrap().contains("no data disk"));
    assert_eq!(assert_blobs_whole(&dirs.registry_data()), 0);
    // And it serves.
    let (code, body) = curl(&dirs, &["/v2/quay.io/test/app/manifests/1.0"], &[]);
    assert_eq!(code, 200, "{body}");
}

/// host0 keeps `storage.reserveMiB` free: an upload that would eat into it
/// is refused with 507, and the refusal says what garbage collection
/// would free (worked out from host0's own files: nothing here).
#[test]
fn an_upload_into_the_reserve_is_refused_naming_what_gc_would_free() {
    let tmp = tempfile::tempdir().unwrap();
    bundle(&tmp.path().join("media"));
    let mut file = host0::appliance_file(host0::port(), &["quay.io", "docker.io"]);
    file.registry.push = true;
    file.storage.allow_ram_push = true;
    file.storage.reserve_mib = Some(1 << 30); // 1 PiB: more than any disk here
    let dirs = Host0Dirs::new(tmp.path(), &tmp.path().join("media"), &file);
    let token = "reserve-test-push-token";
    std::fs::write(dirs.config.parent().unwrap().join("push-token"), token).unwrap();
    let mut h = Host0::start(&dirs, &[]);
    let auth = format!("Authorization: Bearer {token}");
    let (code, body) = curl(
        &dirs,
        &["/v2/quay.io/test/pushed/blobs/uploads/"],
        &["-X", "POST", "-H", &auth],
    );
    assert_eq!(code, 507, "{body}");
    assert!(
        body.contains("DENIED") && body.contains("kept in reserve"),
        "{body}"
    );
    assert!(
        body.contains("garbage collection would free nothing"),
        "the refusal must say what gc would free: {body}"
    );
    // Pulls go on.
    let (code, _) = curl(&dirs, &["/v2/quay.io/test/app/manifests/1.0"], &[]);
    assert_eq!(code, 200);
    h.kill9();
}
