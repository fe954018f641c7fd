//! The registry's virtual IP: the keepalived config airlift renders is
//! accepted by Debian's real keepalived (`--config-test`, which parses
//! and checks without starting VRRP or touching any interface), broken
//! ones are refused, and `airlift-firstboot health`, the check keepalived
//! runs, tells a serving registry from a dead one. keepalived itself is
//! never started here: it would put addresses on this machine's links
//! (tests/vip_vrrp.rs runs it, VRRP and all, inside network namespaces).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlift_appliance::IpCidr;
use airlift_firstboot::services::ha::vip::{keepalived, Role, VipSettings};
use airlift_integration::firstboot::{ServeConfig, Server};
use airlift_integration::tools::{binary, require};

/// A real interface of this machine (keepalived refuses unknown ones and
/// loopback).
fn real_interface() -> String {
    let mut names: Vec<String> = airlift_firstboot::sys::net::named_addresses()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .expect("this machine has no interface besides lo; keepalived needs one")
}

/// The check as host0 would run it, with this build's binary.
fn health_cmd() -> String {
    airlift_firstboot::services::ha::vip::check_command(
        &binary("airlift-firstboot").display().to_string(),
        "https",
        5000,
    )
}

fn config_test(dir: &Path, name: &str, text: &str) -> Output {
    let keepalived = require("keepalived", "keepalived");
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    Command::new(keepalived)
        .arg("--config-test")
        .arg("-f")
        .arg(&file)
        .output()
        .expect("running keepalived --config-test")
}

fn shown(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn settings(addr: &str, interface: &str) -> VipSettings {
    VipSettings {
        address: addr.parse::<IpCidr>().unwrap(),
        interface: interface.to_string(),
        virtual_router_id: 51,
    }
}

#[test]
fn keepalived_accepts_the_rendered_configs() {
    let dir = tempfile::tempdir().unwrap();
    let iface = real_interface();
    for (addr, role) in [
        ("10.77.0.50/24", Role::Host0),
        ("10.77.0.50/24", Role::Replica),
        ("fd77::50/64", Role::Host0),
    ] {
        let text = keepalived::render(&settings(addr, &iface), role, &health_cmd());
        let out = config_test(dir.path(), "keepalived.conf", &text);
        assert!(
            out.status.success(),
            "keepalived refused the config for {role:?} {addr}:\n{text}\n{}",
            shown(&out)
        );
    }
}

#[test]
fn keepalived_refuses_broken_configs() {
    let dir = tempfile::tempdir().unwrap();
    let iface = real_interface();
    let good = keepalived::render(
        &settings("10.77.0.50/24", &iface),
        Role::Host0,
        &health_cmd(),
    );
    // The control: the same text passes.
    assert!(config_test(dir.path(), "good.conf", &good).status.success());

    let no_such_interface =
        good.replace(&format!("interface {iface}\n"), "interface airlift-nope0\n");
    assert_ne!(no_such_interface, good);
    let router_id_0 = good.replace("virtual_router_id 51\n", "virtual_router_id 0\n");
    assert_ne!(router_id_0, good);
    let missing_check = good.replace(
        &binary("airlift-firstboot").display().to_string(),
        "/nonexistent/airlift-firstboot",
    );
    assert_ne!(missing_check, good);
    for (name, text, says) in [
        ("interface.conf", no_such_interface, "airlift-nope0"),
        ("router-id.conf", router_id_0, "virtual router id"),
        ("check.conf", missing_check, "airlift_registry"),
    ] {
        let out = config_test(dir.path(), name, &text);
        assert!(!out.status.success(), "{name} passed:\n{}", shown(&out));
        assert!(shown(&out).contains(says), "{name}: {}", shown(&out));
    }
}

/// `airlift-firstboot health ARGS`: (exit code, stderr).
fn health(args: &[&str]) -> (i32, String) {
    let out = Command::new(binary("airlift-firstboot"))
        .arg("health")
        .args(args)
        .output()
        .expect("running airlift-firstboot health");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A CA and a server certificate for 127.0.0.1, made by the appliance's
/// own TLS code, under `dir`.
fn tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let t = airlift_firstboot::services::tls::ensure_tls(dir, &[], &[]).unwrap();
    (t.ca_path(), t.cert_path(), t.key_path())
}

#[test]
fn health_passes_against_a_serving_registry() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls(&dir.path().join("tls"));
    let server = Server::start(&ServeConfig {
        data: dir.path().join("data"),
        tls: Some((cert, key)),
        ..Default::default()
    });
    let url = format!("https://{}", server.host());
    let ca = ca.to_str().unwrap();
    // Verified with the appliance's CA.
    let (code, err) = health(&["--url", &url, "--ca", ca]);
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    // No CA file: loopback is checked without verification.
    let (code, err) = health(&["--url", &url, "--ca", "/nonexistent/ca.crt"]);
    assert_eq!(code, 0, "{err}");
    // A CA file that did not sign the certificate: verification fails.
    let (other_ca, _, _) = tls(&dir.path().join("other"));
    let (code, err) = health(&["--url", &url, "--ca", other_ca.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    // Plain HTTP.
    let plain = Server::start(&ServeConfig {
        data: dir.path().join("data-plain"),
        ..Default::default()
    });
    let (code, err) = health(&["--url", &format!("http://{}", plain.host())]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn health_fails_with_one_line_on_a_closed_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let (code, err) = health(&["--url", &url, "--timeout-secs", "2"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(&format!("GET {url}/v2/")), "{err}");
}

/// A one-shot HTTP server that answers every request with `status`.
fn answer_with(status: &str) -> (String, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let h = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        assert!(
            seen.starts_with(b"GET /v2/ "),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        s.write_all(reply.as_bytes()).unwrap();
    });
    (url, h)
}

#[test]
fn health_counts_401_as_up_and_503_as_down() {
    let (url, h) = answer_with("401 Unauthorized");
    let (code, err) = health(&["--url", &url]);
    h.join().unwrap();
    assert_eq!(code, 0, "{err}");

    let (url, h) = answer_with("503 Service Unavailable");
    let (code, err) = health(&["--url", &url]);
    h.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("answered 503"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn host0_puts_the_vip_in_its_certificate_and_writes_keepalived_config() {
    use airlift_appliance::{Ha, VirtualIp};
    use airlift_integration::host0::{self, Host0, Host0Dirs};
    use airlift_integration::images::{write_layout, Layer, TestImage};
    use std::time::{Duration, Instant};

    let tmp = tempfile::tempdir().unwrap();
    let media = tmp.path().join("media");
    write_layout(
        &media,
        &[TestImage {
            ref_name: "quay.io/test/app:1.0".to_string(),
            layers: vec![Layer::Random {
                seed: 7,
                size: 1000,
            }],
            architecture: "amd64".to_string(),
            gzip: true,
        }],
    )
    .unwrap();
    let mut file = host0::appliance_file(host0::port(), &["quay.io"]);
    let iface = real_interface();
    file.ha = Some(Ha {
        virtual_ip: Some(VirtualIp {
            address: "10.77.0.50/24".parse().unwrap(),
            interface: Some(iface.clone()),
            virtual_router_id: 42,
        }),
    });
    let dirs = Host0Dirs::new(tmp.path(), &media, &file);
    let h = Host0::start(&dirs, &[]);

    // The generated certificate names the virtual IP.
    let sans = std::fs::read_to_string(dirs.data.join("tls/server.sans")).unwrap();
    assert!(sans.lines().any(|l| l == "ip:10.77.0.50"), "{sans}");

    // keepalived's config, written under host0's root in the background.
    let conf = dirs
        .root
        .join(airlift_firstboot::services::ha::vip::CONFIG_PATH);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !conf.is_file() {
        assert!(
            Instant::now() < deadline,
            "no {}; host0's log:\n{}",
            conf.display(),
            h.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let settings = VipSettings {
        address: "10.77.0.50/24".parse().unwrap(),
        interface: iface,
        virtual_router_id: 42,
    };
    let expected = keepalived::render(
        &settings,
        Role::Host0,
        &airlift_firstboot::services::ha::vip::health_command(&file),
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), expected);
    assert!(expected.contains("priority 150"));
    // The root has no keepalived: host0 says so and keeps serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !h.log_text().contains("keepalived is not installed") {
        assert!(Instant::now() < deadline, "{}", h.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }

    // The check passes against host0 itself, verified with its CA.
    let url = format!("https://{}", dirs.host());
    let (code, err) = health(&["--url", &url, "--ca", dirs.ca().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}
