//! Golden-file tests for the mirror-config renderers: each runtime's
//! rendered files (the text `airlift-firstboot render` prints) compared
//! with checked-in expected output under `tests/golden/`.
//!
//! `AIRLIFT_UPDATE_GOLDEN=1 cargo test -p airlift-firstboot --test mirrors_golden`
//! rewrites them; review the diff before committing.

use std::path::{Path, PathBuf};

use airlift_firstboot::services::mirrors::{
    self, docker, files_for, rancher, Endpoint, FileKind, MirrorSpec, Runtime,
};

const CA: &str = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VDQQ==\n-----END CERTIFICATE-----\n";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compare `actual` with the golden file, or rewrite it when asked.
fn check_golden(rel: &str, actual: &str) {
    let path = golden_dir().join(rel);
    if std::env::var_os("AIRLIFT_UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} unreadable ({e}); run with AIRLIFT_UPDATE_GOLDEN=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the rendered output (AIRLIFT_UPDATE_GOLDEN=1 rewrites it).\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn upstreams() -> Vec<String> {
    vec!["quay.io".into(), "docker.io".into()]
}

/// The cases: one endpoint, two endpoints, HTTP only, HTTPS + HTTP.
/// Every case mirrors docker.io (the special case) and quay.io.
fn cases() -> Vec<(&'static str, MirrorSpec)> {
    vec![
        (
            "one-https",
            MirrorSpec::new(
                vec![Endpoint::https("10.0.0.1:5000")],
                upstreams(),
                Some(CA.into()),
            ),
        ),
        (
            "two-https",
            MirrorSpec::new(
                vec![
                    Endpoint::https("10.0.0.1:5000"),
                    Endpoint::https("host1.airlift:5000"),
                ],
                upstreams(),
                Some(CA.into()),
            ),
        ),
        (
            "one-http",
            MirrorSpec::new(vec![Endpoint::http("10.0.0.1:5000")], upstreams(), None),
        ),
        (
            "mixed",
            MirrorSpec::new(
                vec![
                    Endpoint::https("10.0.0.1:5000"),
                    Endpoint::http("10.0.0.2:5000"),
                ],
                upstreams(),
                Some(CA.into()),
            ),
        ),
    ]
}

#[test]
fn every_runtime_matches_its_golden_files() {
    for (case, spec) in cases() {
        spec.validate().unwrap();
        for runtime in Runtime::ALL {
            let text = mirrors::render_text(&spec, runtime);
            check_golden(&format!("{case}/{}.txt", runtime.name()), &text);
        }
    }
}

#[test]
fn rendered_files_parse_in_their_formats() {
    for (case, spec) in cases() {
        for runtime in Runtime::ALL {
            for f in files_for(&spec, runtime) {
                let p = f.path.to_string_lossy();
                let ctx = format!("{case}/{} {p}", runtime.name());
                if p.ends_with(".toml") || p.ends_with(".conf") {
                    toml::from_str::<toml::Value>(&f.content)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                } else if p.ends_with(".yaml") {
                    serde_yaml::from_str::<serde_yaml::Value>(&f.content)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                } else if p.ends_with(".json") {
                    serde_json::from_str::<serde_json::Value>(&f.content)
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                } else {
                    assert!(p.ends_with(".crt"), "{ctx}: unexpected file");
                    assert_eq!(f.content, CA, "{ctx}");
                }
            }
        }
    }
}

#[test]
fn crio_and_podman_share_one_config() {
    for (_, spec) in cases() {
        assert_eq!(
            files_for(&spec, Runtime::Crio),
            files_for(&spec, Runtime::Podman)
        );
    }
}

#[test]
fn docker_io_is_special_where_the_runtime_needs_it() {
    let (_, spec) = cases().remove(0);
    let conf = mirrors::registries_conf::render(&spec);
    assert!(
        conf.contains("prefix = \"docker.io\"\nlocation = \"docker.io\""),
        "{conf}"
    );
    assert!(
        conf.contains("location = \"10.0.0.1:5000/docker.io\""),
        "{conf}"
    );
    let hosts = mirrors::containerd::render_hosts(&spec, "docker.io");
    assert!(
        hosts.contains("server = \"https://registry-1.docker.io\""),
        "{hosts}"
    );
}

#[test]
fn merges_match_their_golden_files() {
    let (_, spec) = cases().remove(1);
    let user_yaml =
        std::fs::read_to_string(golden_dir().join("merge/k3s-registries.in.yaml")).unwrap();
    let merged = rancher::merge(&user_yaml, &spec, rancher::Flavour::K3s).unwrap();
    check_golden("merge/k3s-registries.out.yaml", &merged);
    let v: serde_yaml::Value = serde_yaml::from_str(&merged).unwrap();
    assert_eq!(
        v["mirrors"]["registry.example.com"]["endpoint"][0],
        "https://registry.example.com:5443"
    );
    assert_eq!(
        v["configs"]["registry.example.com:5443"]["auth"]["username"],
        "robot"
    );

    let user_json = std::fs::read_to_string(golden_dir().join("merge/daemon.in.json")).unwrap();
    let merged = docker::merge(&user_json, &spec).unwrap();
    check_golden("merge/daemon.out.json", &merged);
    let v: serde_json::Value = serde_json::from_str(&merged).unwrap();
    assert_eq!(v["log-driver"], "journald");
    assert_eq!(
        v["registry-mirrors"],
        serde_json::json!([
            "https://10.0.0.1:5000",
            "https://host1.airlift:5000",
            "https://mirror.example.com"
        ])
    );
}

#[test]
fn merged_kinds_are_the_files_users_own() {
    let (_, spec) = cases().remove(0);
    let kind = |r, path: &str| {
        files_for(&spec, r)
            .into_iter()
            .find(|f| f.path == Path::new(path))
            .map(|f| f.kind)
    };
    assert_eq!(
        kind(Runtime::K3s, "/etc/rancher/k3s/registries.yaml"),
        Some(FileKind::MergeRancher)
    );
    assert_eq!(
        kind(Runtime::Rke2, "/etc/rancher/rke2/registries.yaml"),
        Some(FileKind::MergeRancher)
    );
    assert_eq!(
        kind(Runtime::Docker, "/etc/docker/daemon.json"),
        Some(FileKind::MergeDocker)
    );
    assert_eq!(
        kind(Runtime::Podman, "/etc/containers/registries.conf"),
        Some(FileKind::IfAbsent)
    );
    assert_eq!(
        kind(Runtime::Containerd, "/etc/containerd/config.toml"),
        Some(FileKind::ContainerdConfig)
    );
}
