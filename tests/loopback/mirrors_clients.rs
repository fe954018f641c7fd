//! The rendered mirror config used by the runtimes' own tools, against
//! `airlift-firstboot serve` over HTTPS with the appliance's own CA
//! (`tls::ensure_tls`), serving a bundle layer that holds
//! `quay.io/test/app:1.0` and `docker.io/library/busybox:1.36`.
//!
//! The config is written by `mirrors::apply` into a temp root; the tools
//! are pointed at the files there. Nothing can come from the real
//! upstreams (no internet), so a successful pull went through the mirror.
//!
//! For the host0/join work: [`Appliance`] is the whole set-up in one
//! call; reuse its pattern for end-to-end tests on a booted node.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_firstboot::services::mirrors::{self, apply, Endpoint, MirrorSpec, Runtime};
use airlift_firstboot::services::tls::ensure_tls;
use airlift_integration::containerd::Containerd;
use airlift_integration::firstboot::{ServeConfig, Server};
use airlift_integration::images::{write_layout, Layer, MadeImage, TestImage};
use airlift_integration::tools::{free_port, require, run_ok};

/// A registry with the appliance's TLS, and a node root configured for it.
struct Appliance {
    server: Server,
    root: PathBuf,
    app: MadeImage,
    busybox: MadeImage,
}

fn image(ref_name: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers,
        architecture: "amd64".to_string(),
        gzip: true,
    }
}

/// How the appliance is reached.
#[derive(Clone, Copy)]
struct Setup {
    /// HTTPS with the appliance CA (else plain HTTP).
    tls: bool,
    /// List a registry that is down before the live one (a replica
    /// failing over).
    dead_first: bool,
}

const HTTPS: Setup = Setup {
    tls: true,
    dead_first: false,
};

impl Appliance {
    fn start(tmp: &Path, runtimes: &[Runtime], setup: Setup) -> Appliance {
        let bundle = tmp.join("bundle");
        let mut made = write_layout(
            &bundle,
            &[
                image(
                    "quay.io/test/app:1.0",
                    vec![Layer::Random {
                        seed: 5,
                        size: 100_000,
                    }],
                ),
                image("docker.io/library/busybox:1.36", vec![Layer::Busybox]),
            ],
        )
        .unwrap();
        let tls = ensure_tls(&tmp.join("tls"), &[], &[]).unwrap();
        let server = Server::start(&ServeConfig {
            data: tmp.join("data"),
            layers: vec![bundle],
            tls: setup.tls.then(|| (tls.cert_path(), tls.key_path())),
            ..ServeConfig::default()
        });
        let endpoint = |host: &str| match setup.tls {
            true => Endpoint::https(host),
            false => Endpoint::http(host),
        };
        let mut registries = vec![endpoint(&server.host())];
        if setup.dead_first {
            // A port nothing listens on: connection refused at once.
            registries.insert(0, endpoint(&format!("127.0.0.1:{}", free_port())));
        }
        let spec = MirrorSpec::new(
            registries,
            vec!["quay.io".into(), "docker.io".into()],
            tls.ca_pem.clone().filter(|_| setup.tls),
        );
        let root = tmp.join("root");
        let report = apply(&root, &spec, runtimes).unwrap();
        assert!(report.warnings.is_empty(), "{report:#?}");
        let busybox = made.remove(1);
        let app = made.remove(0);
        Appliance {
            server,
            root,
            app,
            busybox,
        }
    }

    fn path(&self, node_path: &str) -> PathBuf {
        self.root.join(node_path.trim_start_matches('/'))
    }

    /// containers/image's per-host CA folder, as rendered.
    fn containers_cert_dir(&self) -> PathBuf {
        self.path(&format!("/etc/containers/certs.d/{}", self.server.host()))
    }

    /// The main registries.conf followed by the drop-in: what
    /// containers/image reads on a node (podman 4.3 has no variable for the
    /// drop-in folder, so the two are joined into one file).
    fn full_registries_conf(&self, tmp: &Path) -> PathBuf {
        let main = std::fs::read_to_string(self.path(mirrors::registries_conf::MAIN)).unwrap();
        let drop_in =
            std::fs::read_to_string(self.path(mirrors::registries_conf::DROP_IN)).unwrap();
        let p = tmp.join("registries.conf");
        std::fs::write(&p, format!("{main}\n{drop_in}")).unwrap();
        p
    }
}

#[test]
fn skopeo_reads_the_drop_in_and_pulls_through_the_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Appliance::start(tmp.path(), &[Runtime::Podman], HTTPS);
    let out = run_ok(
        Command::new(require("skopeo", "skopeo"))
            .arg("--registries-conf")
            .arg(a.path(mirrors::registries_conf::DROP_IN))
            .args(["inspect", "--no-tags", "--cert-dir"])
            .arg(a.containers_cert_dir())
            .arg("docker://quay.io/test/app:1.0"),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Digest"], a.app.manifest.digest.to_string());
    let log = std::fs::read_to_string(&a.server.log).unwrap_or_default();
    assert!(log.contains("quay.io/test/app"), "{log}");
}

#[test]
fn podman_pulls_a_short_name_and_a_quay_image_through_the_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let podman = podman_pulls(tmp.path(), HTTPS);

    // The same check fails on a malformed file: podman does parse it.
    let broken = tmp.path().join("broken.conf");
    std::fs::write(&broken, "[[registry]]\nprefix = \"quay.io\"\nlocation = \n").unwrap();
    let out = podman(&["info"])
        .env("CONTAINERS_REGISTRIES_CONF", &broken)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "podman accepted a malformed registries.conf"
    );
}

#[test]
fn podman_fails_over_to_the_next_mirror_over_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let _podman = podman_pulls(
        tmp.path(),
        Setup {
            tls: false,
            dead_first: true,
        },
    );
}

/// Pull `busybox:1.36` (a short name) and `quay.io/test/app:1.0` with
/// podman through the rendered config; returns a podman command maker.
fn podman_pulls(tmp: &Path, setup: Setup) -> impl Fn(&[&str]) -> Command {
    let a = Appliance::start(tmp, &[Runtime::Podman, Runtime::Crio], setup);
    let conf = a.full_registries_conf(tmp);
    let storage = tmp.join("storage");
    let run = tmp.join("run");
    let podman = move |args: &[&str]| {
        let mut c = Command::new(require("podman", "podman"));
        c.env("CONTAINERS_REGISTRIES_CONF", &conf)
            .arg("--root")
            .arg(&storage)
            .arg("--runroot")
            .arg(&run)
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    };
    let cert_dir = a.containers_cert_dir();
    // `busybox` -> docker.io/library/busybox via unqualified-search-registries,
    // then the docker.io mirror `HOST/docker.io`. Plain HTTP works only
    // through the mirror's `insecure = true`: no TLS flag is given.
    for name in ["busybox:1.36", "quay.io/test/app:1.0"] {
        let mut args = vec!["pull"];
        if setup.tls {
            args.extend(["--cert-dir", cert_dir.to_str().unwrap()]);
        }
        args.push(name);
        run_ok(&mut podman(&args));
    }
    let out = run_ok(&mut podman(&[
        "images",
        "--digests",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.Digest}}",
    ]));
    for (name, made) in [
        ("docker.io/library/busybox:1.36", &a.busybox),
        ("quay.io/test/app:1.0", &a.app),
    ] {
        let line = format!("{name} {}", made.manifest.digest);
        assert!(out.lines().any(|l| l == line), "{line} not in:\n{out}");
    }
    podman
}

#[test]
fn ctr_pulls_through_the_rendered_hosts_toml() {
    ctr_pulls(HTTPS);
}

#[test]
fn ctr_fails_over_to_the_next_mirror_over_plain_http() {
    ctr_pulls(Setup {
        tls: false,
        dead_first: true,
    });
}

fn ctr_pulls(setup: Setup) {
    let tmp = tempfile::tempdir().unwrap();
    let a = Appliance::start(tmp.path(), &[Runtime::Containerd], setup);
    // hosts.toml names the CA by its path on the node; this root is not
    // `/`, so the one path is re-pointed into it. Nothing else changes.
    let hosts_dir = a.path(mirrors::containerd::CERTS_D);
    let ca_in_root = a.path(mirrors::containerd::CA);
    for upstream in ["quay.io", "docker.io"] {
        let p = hosts_dir.join(upstream).join("hosts.toml");
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.contains(mirrors::containerd::CA), setup.tls, "{text}");
        std::fs::write(
            &p,
            text.replace(mirrors::containerd::CA, ca_in_root.to_str().unwrap()),
        )
        .unwrap();
    }
    let cd = Containerd::start(&tmp.path().join("containerd"));
    for (name, made) in [
        ("quay.io/test/app:1.0", &a.app),
        ("docker.io/library/busybox:1.36", &a.busybox),
    ] {
        cd.pull(&hosts_dir, name);
        let line = cd.listed(name);
        assert!(line.contains(&made.manifest.digest.to_string()), "{line}");
    }
    let log = std::fs::read_to_string(&a.server.log).unwrap_or_default();
    assert!(
        log.contains("ns=quay.io"),
        "containerd's mirror form expected in the log:\n{log}"
    );
}
