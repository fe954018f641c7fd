//! `mirrors::apply` against temp roots: fresh writes, idempotent re-runs,
//! backups that never lose the user's original, merges, the containerd
//! `config_path` warning, and nothing written when any file cannot be
//! merged.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use airlift_firstboot::services::mirrors::apply::{plan_files, ORIG_SUFFIX, PREV_SUFFIX};
use airlift_firstboot::services::mirrors::{apply, Endpoint, MirrorSpec, Runtime, Sigstore};

const CA: &str = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VDQQ==\n-----END CERTIFICATE-----\n";

fn spec() -> MirrorSpec {
    MirrorSpec::new(
        vec![
            Endpoint::https("10.0.0.1:5000"),
            Endpoint::https("10.0.0.2:5000"),
        ],
        vec!["quay.io".into(), "docker.io".into()],
        Some(CA.into()),
    )
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

/// Every file under `dir`, relative, sorted (temp files included).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn fresh_root_gets_every_file_and_a_rerun_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let spec = spec();
    let report = apply(root.path(), &spec, &Runtime::ALL).unwrap();
    let planned = plan_files(&spec, &Runtime::ALL, &Sigstore::NoTools).unwrap();
    assert_eq!(report.written.len(), planned.len(), "{report:#?}");
    assert!(
        report.backups.is_empty() && report.warnings.is_empty(),
        "{report:#?}"
    );
    for f in &planned {
        let p = at(root.path(), &f.path.to_string_lossy());
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            f.content,
            "{}",
            p.display()
        );
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    assert_eq!(
        report.run_after,
        vec![vec!["update-ca-certificates".to_string()]]
    );
    let before = tree(root.path());
    assert!(
        before.iter().all(|f| !f
            .split('/')
            .any(|name| name.starts_with(airlift_oci::atomic::TEMP_PREFIX))),
        "{before:?}"
    );
    assert!(before.contains(&"etc/containers/certs.d/10.0.0.2:5000/ca.crt".to_string()));
    assert!(before.contains(&"usr/local/share/ca-certificates/airlift-ca.crt".to_string()));

    let again = apply(root.path(), &spec, &Runtime::ALL).unwrap();
    assert!(!again.changed(), "{again:#?}");
    assert_eq!(again.unchanged.len() + again.kept.len(), planned.len());
    assert!(again.run_after.is_empty());
    assert_eq!(tree(root.path()), before, "a re-run adds no files");
}

#[test]
fn replaced_files_keep_the_original_forever_and_the_previous_one() {
    let root = tempfile::tempdir().unwrap();
    let drop_in = "/etc/containers/registries.conf.d/50-airlift.conf";
    let p = put(root.path(), drop_in, "# the user's original\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();

    let r = apply(root.path(), &spec(), &[Runtime::Podman]).unwrap();
    let orig = PathBuf::from(format!("{}{ORIG_SUFFIX}", p.display()));
    assert!(r.backups.contains(&orig), "{r:#?}");
    assert_eq!(
        fs::read_to_string(&orig).unwrap(),
        "# the user's original\n"
    );
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640,
        "mode kept"
    );

    // The user edits it again; the next apply keeps that as .airlift-prev
    // and the original stays as it was.
    fs::write(&p, "# a later edit\n").unwrap();
    let r = apply(root.path(), &spec(), &[Runtime::Podman]).unwrap();
    let prev = PathBuf::from(format!("{}{PREV_SUFFIX}", p.display()));
    assert_eq!(r.backups, vec![prev.clone()]);
    assert_eq!(fs::read_to_string(&prev).unwrap(), "# a later edit\n");
    assert_eq!(
        fs::read_to_string(&orig).unwrap(),
        "# the user's original\n"
    );
    assert!(fs::read_to_string(&p)
        .unwrap()
        .contains("10.0.0.1:5000/quay.io"));
}

#[test]
fn existing_base_configs_are_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let main = put(
        root.path(),
        "/etc/containers/registries.conf",
        "unqualified-search-registries = [\"quay.io\"]\n",
    );
    let r = apply(root.path(), &spec(), &[Runtime::Crio, Runtime::Podman]).unwrap();
    assert!(
        r.kept
            .contains(&PathBuf::from("/etc/containers/registries.conf")),
        "{r:#?}"
    );
    assert_eq!(
        fs::read_to_string(main).unwrap(),
        "unqualified-search-registries = [\"quay.io\"]\n"
    );
    assert!(r.backups.is_empty());
}

#[test]
fn containerd_config_without_config_path_is_not_edited_but_warned_about() {
    let root = tempfile::tempdir().unwrap();
    let user = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.9\"\n";
    let cfg = put(root.path(), "/etc/containerd/config.toml", user);
    let r = apply(root.path(), &spec(), &[Runtime::Containerd]).unwrap();
    assert_eq!(
        fs::read_to_string(&cfg).unwrap(),
        user,
        "config.toml untouched"
    );
    assert_eq!(r.warnings.len(), 1, "{r:#?}");
    assert!(
        r.warnings[0].contains("[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\""),
        "{}",
        r.warnings[0]
    );
    assert!(r
        .kept
        .contains(&PathBuf::from("/etc/containerd/config.toml")));
    assert!(at(root.path(), "/etc/containerd/certs.d/quay.io/hosts.toml").is_file());

    // With the line present: no warning.
    let root = tempfile::tempdir().unwrap();
    put(
        root.path(),
        "/etc/containerd/config.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    );
    assert!(apply(root.path(), &spec(), &[Runtime::Containerd])
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn k3s_registries_yaml_is_merged_keeping_the_users_mirror() {
    let root = tempfile::tempdir().unwrap();
    let user = "mirrors:\n  registry.example.com:\n    endpoint:\n    - https://registry.example.com:5443\n";
    let p = put(root.path(), "/etc/rancher/k3s/registries.yaml", user);
    let r = apply(root.path(), &spec(), &[Runtime::K3s]).unwrap();
    assert_eq!(
        r.merged,
        vec![PathBuf::from("/etc/rancher/k3s/registries.yaml")],
        "{r:#?}"
    );
    let v: serde_yaml::Value = serde_yaml::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(
        v["mirrors"]["registry.example.com"]["endpoint"][0],
        "https://registry.example.com:5443"
    );
    assert_eq!(
        v["mirrors"]["docker.io"]["endpoint"][1],
        "https://10.0.0.2:5000"
    );
    assert_eq!(
        fs::read_to_string(format!("{}{ORIG_SUFFIX}", p.display())).unwrap(),
        user,
        "the original is backed up"
    );
    let again = apply(root.path(), &spec(), &[Runtime::K3s]).unwrap();
    assert!(!again.changed(), "{again:#?}");
}

#[test]
fn daemon_json_is_merged_keeping_other_keys() {
    let root = tempfile::tempdir().unwrap();
    let p = put(
        root.path(),
        "/etc/docker/daemon.json",
        "{\"data-root\": \"/srv/docker\", \"registry-mirrors\": [\"https://mine.example.com\"]}",
    );
    let r = apply(root.path(), &spec(), &[Runtime::Docker]).unwrap();
    assert_eq!(r.merged, vec![PathBuf::from("/etc/docker/daemon.json")]);
    let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
    assert_eq!(v["data-root"], "/srv/docker");
    assert_eq!(
        v["registry-mirrors"],
        serde_json::json!([
            "https://10.0.0.1:5000",
            "https://10.0.0.2:5000",
            "https://mine.example.com"
        ])
    );
    assert!(at(root.path(), "/etc/docker/certs.d/10.0.0.1:5000/ca.crt").is_file());
    assert!(!apply(root.path(), &spec(), &[Runtime::Docker])
        .unwrap()
        .changed());
}

#[test]
fn one_unmergeable_file_means_nothing_is_written() {
    let root = tempfile::tempdir().unwrap();
    put(root.path(), "/etc/docker/daemon.json", "{ not json");
    let err = apply(root.path(), &spec(), &Runtime::ALL).unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("/etc/docker/daemon.json"), "{msg}");
    assert_eq!(
        tree(root.path()),
        vec!["etc/docker/daemon.json".to_string()],
        "no partial config"
    );
}

#[test]
fn symlinks_and_bad_specs_are_refused_before_writing() {
    let root = tempfile::tempdir().unwrap();
    let link = at(
        root.path(),
        "/etc/containers/registries.conf.d/50-airlift.conf",
    );
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("/nonexistent", &link).unwrap();
    let msg = format!(
        "{:#}",
        apply(root.path(), &spec(), &[Runtime::Podman]).unwrap_err()
    );
    assert!(msg.contains("symlink"), "{msg}");

    let root = tempfile::tempdir().unwrap();
    let mut bad = spec();
    bad.registries.clear();
    assert!(apply(root.path(), &bad, &[Runtime::Podman]).is_err());
    assert!(tree(root.path()).is_empty());
}

#[test]
fn linked_base_configs_are_read_through_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let real = put(
        root.path(),
        "/opt/cfg/containerd.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
    );
    let link = at(root.path(), "/etc/containerd/config.toml");
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = apply(root.path(), &spec(), &[Runtime::Containerd]).unwrap();
    assert!(r.warnings.is_empty(), "{r:#?}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "link kept"
    );
    assert!(r
        .kept
        .contains(&PathBuf::from("/etc/containerd/config.toml")));
}
