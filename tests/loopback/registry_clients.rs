//! `airlift-firstboot serve` with real clients over loopback: skopeo,
//! podman, buildah and containerd's ctr; a bundle served as a read-only
//! layer through both upstream-namespace forms; TLS with a test CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_integration::containerd::Containerd;
use airlift_integration::firstboot::{creds, ServeConfig, Server};
use airlift_integration::images::{write_layout, Layer, TestImage};
use airlift_integration::tools::{require, run_ok};

fn skopeo() -> PathBuf {
    require("skopeo", "skopeo")
}

/// A bundle: one OCI layout whose index names `quay.io/test/app:1.0`.
fn bundle(dir: &Path) -> airlift_integration::images::MadeImage {
    let image = TestImage {
        ref_name: "quay.io/test/app:1.0".to_string(),
        layers: vec![
            Layer::Busybox,
            Layer::Random {
                seed: 11,
                size: 300_000,
            },
        ],
        architecture: "amd64".to_string(),
        gzip: true,
    };
    write_layout(dir, &[image]).unwrap().remove(0)
}

fn inspect_digest(args: &[&str]) -> String {
    let out = run_ok(
        Command::new(skopeo())
            .arg("inspect")
            .arg("--no-tags")
            .args(args),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

fn server(tmp: &Path, layers: Vec<PathBuf>) -> Server {
    Server::start(&ServeConfig {
        data: tmp.join("data"),
        layers,
        push_token: true,
        ..ServeConfig::default()
    })
}

#[test]
fn skopeo_push_inspect_and_copy_back() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("src");
    // Gzipped layers: skopeo keeps them (and so the manifest) as they are.
    let image = TestImage {
        gzip: true,
        ..TestImage::random("1.0", 1, 200_000)
    };
    let made = write_layout(&layout, &[image]).unwrap();
    let srv = server(tmp.path(), vec![]);
    let host = srv.host();
    for dest in [
        format!("docker://{host}/myteam/app:1.0"),
        format!("docker://{host}/quay.io/org/app:1.0"),
    ] {
        run_ok(Command::new(skopeo()).args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds(),
            &format!("oci:{}:1.0", layout.display()),
            &dest,
        ]));
        let digest = inspect_digest(&["--tls-verify=false", &dest]);
        assert_eq!(digest, made[0].manifest.digest.to_string(), "{dest}");
        let out = tmp
            .path()
            .join(format!("out-{}", digest.len() + dest.len()));
        run_ok(Command::new(skopeo()).args([
            "copy",
            "--src-tls-verify=false",
            &dest,
            &format!("dir:{}", out.display()),
        ]));
        for blob in &made[0].blobs {
            let copied = std::fs::read(out.join(blob.hex())).unwrap();
            assert_eq!(&airlift_oci::Digest::sha256_of(&copied), blob);
        }
    }
    // Local names are stored as given; upstream names under their host.
    let data = tmp.path().join("data/repositories");
    assert!(data.join("myteam/app/_tags/1.0").is_file());
    assert!(data.join("quay.io/org/app/_tags/1.0").is_file());
    // Pushing without credentials is refused.
    let out = Command::new(skopeo())
        .args([
            "copy",
            "--dest-tls-verify=false",
            &format!("oci:{}:1.0", layout.display()),
            &format!("docker://{host}/myteam/other:1.0"),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!data.join("myteam/other").exists());
}

#[test]
fn bundle_layer_pulls_through_path_and_ns_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let made = bundle(&tmp.path().join("bundle"));
    let srv = server(tmp.path(), vec![tmp.path().join("bundle")]);
    let host = srv.host();
    // Path form, as a registries.conf mirror with a path sends it.
    let digest = inspect_digest(&[
        "--tls-verify=false",
        &format!("docker://{host}/quay.io/test/app:1.0"),
    ]);
    assert_eq!(digest, made.manifest.digest.to_string());
    // ns form, as containerd sends it.
    let r = srv.request(
        "GET",
        "/v2/test/app/manifests/1.0?ns=quay.io",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
    // And skopeo through a registries.conf mirror (location with a path).
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = \"quay.io\"\nlocation = \"quay.io\"\n\
             [[registry.mirror]]\nlocation = \"{host}/quay.io\"\ninsecure = true\n"
        ),
    )
    .unwrap();
    let digest = inspect_digest(&[
        "--registries-conf",
        conf.to_str().unwrap(),
        "docker://quay.io/test/app:1.0",
    ]);
    assert_eq!(digest, made.manifest.digest.to_string());
}

#[test]
fn podman_pulls_through_a_mirror() {
    let podman = require("podman", "podman");
    let tmp = tempfile::tempdir().unwrap();
    let made = bundle(&tmp.path().join("bundle"));
    let srv = server(tmp.path(), vec![tmp.path().join("bundle")]);
    let conf = tmp.path().join("registries.conf");
    std::fs::write(
        &conf,
        format!(
            "unqualified-search-registries = []\n[[registry]]\nprefix = \"quay.io\"\nlocation = \"quay.io\"\n\
             [[registry.mirror]]\nlocation = \"{}/quay.io\"\ninsecure = true\n",
            srv.host()
        ),
    )
    .unwrap();
    let root = tmp.path().join("root");
    let runroot = tmp.path().join("runroot");
    let podman_cmd = |args: &[&str]| {
        let mut c = Command::new(&podman);
        c.env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ])
            .args(args);
        c
    };
    run_ok(&mut podman_cmd(&["pull", "quay.io/test/app:1.0"]));
    let out = run_ok(&mut podman_cmd(&[
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        "quay.io/test/app:1.0",
    ]));
    assert_eq!(out.trim(), made.manifest.digest.to_string());
}

#[test]
fn buildah_pushes() {
    let buildah = require("buildah", "buildah");
    let tmp = tempfile::tempdir().unwrap();
    // buildah names an oci: image after its path, which must be lowercase.
    let lower = tempfile::Builder::new()
        .prefix("airlift-buildah-")
        .rand_bytes(0)
        .suffix(&std::process::id().to_string())
        .tempdir()
        .unwrap();
    let layout = lower.path().join("src");
    write_layout(&layout, &[TestImage::random("1.0", 5, 100_000)]).unwrap();
    let srv = server(tmp.path(), vec![]);
    let root = tmp.path().join("root");
    let runroot = tmp.path().join("runroot");
    let buildah_cmd = |args: &[&str]| {
        let mut c = Command::new(&buildah);
        c.arg("--root")
            .arg(&root)
            .arg("--runroot")
            .arg(&runroot)
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    };
    run_ok(&mut buildah_cmd(&[
        "pull",
        &format!("oci:{}:1.0", layout.display()),
    ]));
    let images = run_ok(&mut buildah_cmd(&["images", "--format", "{{.ID}}"]));
    let id = images.lines().next().expect("one image").trim().to_string();
    let dest = format!("docker://{}/quay.io/built/app:2.0", srv.host());
    run_ok(&mut buildah_cmd(&[
        "push",
        "--tls-verify=false",
        "--creds",
        &creds(),
        &id,
        &dest,
    ]));
    let out =
        run_ok(Command::new(skopeo()).args(["inspect", "--no-tags", "--tls-verify=false", &dest]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert!(tmp
        .path()
        .join("data/repositories/quay.io/built/app/_tags/2.0")
        .is_file());
}

#[test]
fn containerd_pulls_with_ns_parameter() {
    let tmp = tempfile::tempdir().unwrap();
    let made = bundle(&tmp.path().join("bundle"));
    let srv = server(tmp.path(), vec![tmp.path().join("bundle")]);
    let cd = Containerd::start(&tmp.path().join("containerd"));
    let hosts = tmp.path().join("hosts");
    std::fs::create_dir_all(hosts.join("quay.io")).unwrap();
    std::fs::write(
        hosts.join("quay.io/hosts.toml"),
        format!(
            "server = \"https://quay.io\"\n\n[host.\"http://{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            srv.host()
        ),
    )
    .unwrap();
    cd.pull(&hosts, "quay.io/test/app:1.0");
    let line = cd.listed("quay.io/test/app:1.0");
    assert!(line.contains(&made.manifest.digest.to_string()), "{line}");
    // The mirror requests came with ?ns=quay.io and the path without the host.
    let log = srv.log_text();
    assert!(
        log.contains("/v2/test/app/manifests/1.0?ns=quay.io"),
        "{log}"
    );
}

/// A self-signed certificate for 127.0.0.1 and localhost.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.key_pair.serialize_pem()).unwrap();
    (c, k)
}

#[test]
fn tls_with_a_verified_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let made = bundle(&tmp.path().join("bundle"));
    let (cert, key) = self_signed(tmp.path());
    let certs = tmp.path().join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(&cert, certs.join("ca.crt")).unwrap();
    let srv = Server::start(&ServeConfig {
        data: tmp.path().join("data"),
        layers: vec![tmp.path().join("bundle")],
        tls: Some((cert, key)),
        push_token: true,
        ..ServeConfig::default()
    });
    let image = format!("docker://{}/quay.io/test/app:1.0", srv.host());
    let cert_dir = certs.to_str().unwrap();
    let digest = inspect_digest(&["--cert-dir", cert_dir, "--tls-verify=true", &image]);
    assert_eq!(digest, made.manifest.digest.to_string());
    // Push over TLS too.
    let layout = tmp.path().join("src");
    write_layout(&layout, &[TestImage::random("1.0", 9, 50_000)]).unwrap();
    run_ok(Command::new(skopeo()).args([
        "copy",
        "--dest-cert-dir",
        cert_dir,
        "--dest-creds",
        &creds(),
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker://{}/quay.io/tls/app:1.0", srv.host()),
    ]));
    // Without the CA, verification fails.
    let out = Command::new(skopeo())
        .args(["inspect", "--no-tags", "--tls-verify=true", &image])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn tells_systemd_ready_once_bound() {
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let srv = Server::start(&ServeConfig {
        data: tmp.path().join("data"),
        env: vec![("NOTIFY_SOCKET".into(), sock_path.display().to_string())],
        ..ServeConfig::default()
    });
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 from the registry");
    assert_eq!(&buf[..n], b"READY=1");
    // Ready means answering.
    assert_eq!(srv.request("GET", "/v2/", &[], b"").status, 200);
}
