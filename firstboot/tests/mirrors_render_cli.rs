//! `airlift-firstboot render` prints exactly what the golden files hold,
//! and refuses bad arguments with a message naming them.

use std::path::Path;
use std::process::Command;

const CA: &str = "-----BEGIN CERTIFICATE-----\nTUlJQmZha2VDQQ==\n-----END CERTIFICATE-----\n";

fn render(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_airlift-firstboot"))
        .arg("render")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn render_prints_the_golden_output() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("ca.crt");
    std::fs::write(&ca, CA).unwrap();
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/two-https");
    for runtime in ["crio", "podman", "containerd", "k3s", "rke2", "docker"] {
        let out = render(&[
            "--runtime",
            runtime,
            "--server",
            "https://10.0.0.1:5000",
            "--server",
            "https://host1.airlift:5000/",
            "--ca",
            ca.to_str().unwrap(),
            "--upstream",
            "quay.io",
            "--upstream",
            "docker.io",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read_to_string(golden.join(format!("{runtime}.txt"))).unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            expected,
            "{runtime}"
        );
    }
}

#[test]
fn render_defaults_to_the_common_upstreams() {
    let out = render(&[
        "--runtime",
        "containerd",
        "--server",
        "http://10.0.0.1:5000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for u in [
        "docker.io",
        "quay.io",
        "registry.k8s.io",
        "ghcr.io",
        "gcr.io",
    ] {
        assert!(
            text.contains(&format!("# ===== /etc/containerd/certs.d/{u}/hosts.toml")),
            "{u}:\n{text}"
        );
    }
}

#[test]
fn render_refuses_bad_arguments() {
    let out = render(&["--runtime", "crio", "--server", "10.0.0.1:5000"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("https://"));
    let out = render(&[
        "--runtime",
        "crio",
        "--server",
        "https://a:1",
        "--ca",
        "/nonexistent.crt",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.crt"));
}
