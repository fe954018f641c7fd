//! The appliance's TLS material: a rustls client that trusts only ca.crt
//! completes a handshake with server.crt/server.key (loaded the way the
//! registry loads them) for every SAN and for no other name; keys are
//! 0600; a second call is a no-op; a changed SAN set re-issues the server
//! certificate under the same CA. `openssl verify` cross-checks when present.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use airlift_firstboot::services::registry::server::tls_config;
use airlift_firstboot::services::tls::{ensure_tls, fingerprint, use_supplied, TlsMaterial};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, ServerConnection};

/// A full TLS handshake in memory between a client trusting `ca_pem`
/// and the registry's server config for `dir`'s server.crt/key.
fn handshake(ca_pem: &str, dir: &Path, name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let client_cfg = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_cfg = tls_config(&dir.join("server.crt"), &dir.join("server.key")).unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = ClientConnection::new(Arc::new(client_cfg), name)?;
    let mut server = ServerConnection::new(Arc::new(server_cfg))?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish");
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn ca(m: &TlsMaterial) -> &str {
    m.ca_pem.as_deref().unwrap()
}

#[test]
fn server_cert_verifies_for_every_san_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["host0.airlift".to_string()];
    let ips = vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
    let m = ensure_tls(dir.path(), &names, &ips).unwrap();
    assert!(m.issued);
    for san in [
        "host0.airlift",
        "localhost",
        "10.0.0.1",
        "127.0.0.1",
        "fd00::1",
    ] {
        handshake(ca(&m), dir.path(), san).unwrap_or_else(|e| panic!("{san}: {e}"));
    }
    for other in ["host1.airlift", "10.0.0.2"] {
        let err = handshake(ca(&m), dir.path(), other).unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{other}: {err}"
        );
    }
    // A client trusting a different CA refuses the server.
    let other = tempfile::tempdir().unwrap();
    let m2 = ensure_tls(other.path(), &names, &ips).unwrap();
    assert!(handshake(ca(&m2), dir.path(), "localhost").is_err());

    assert_eq!(mode(&dir.path().join("ca.key")), 0o600);
    assert_eq!(mode(&dir.path().join("server.key")), 0o600);
    assert_eq!(mode(&dir.path().join("ca.crt")), 0o644);
    assert!(ca(&m).contains("BEGIN CERTIFICATE"));
    assert_eq!(
        m.ca_sha256.as_deref().unwrap(),
        fingerprint(ca(&m)).unwrap()
    );
    assert_eq!(fs::read_to_string(m.cert_path()).unwrap(), m.cert_pem);
}

#[test]
fn second_call_is_a_no_op_and_new_sans_reissue_under_the_same_ca() {
    let dir = tempfile::tempdir().unwrap();
    let names = vec!["host0.airlift".to_string()];
    let first = ensure_tls(dir.path(), &names, &["10.0.0.1".parse().unwrap()]).unwrap();
    let before = snapshot(dir.path());
    let again = ensure_tls(dir.path(), &names, &["10.0.0.1".parse().unwrap()]).unwrap();
    assert!(!again.issued);
    assert_eq!(
        again,
        TlsMaterial {
            issued: false,
            ..first.clone()
        }
    );
    assert_eq!(snapshot(dir.path()), before, "no file changed");

    let moved = ensure_tls(dir.path(), &names, &["10.0.0.9".parse().unwrap()]).unwrap();
    assert!(moved.issued);
    assert_eq!(moved.ca_pem, first.ca_pem, "the CA is kept");
    assert_eq!(moved.ca_sha256, first.ca_sha256);
    assert_ne!(moved.cert_pem, first.cert_pem);
    handshake(ca(&first), dir.path(), "10.0.0.9").unwrap();
    assert!(
        handshake(ca(&first), dir.path(), "10.0.0.1").is_err(),
        "old address dropped"
    );
}

#[test]
fn half_a_ca_is_an_error_naming_the_files() {
    let dir = tempfile::tempdir().unwrap();
    ensure_tls(dir.path(), &[], &[]).unwrap();
    fs::remove_file(dir.path().join("ca.key")).unwrap();
    let msg = format!("{:#}", ensure_tls(dir.path(), &[], &[]).unwrap_err());
    assert!(msg.contains("ca.key") && msg.contains("ca.crt"), "{msg}");
}

#[test]
fn supplied_material_is_installed_and_verified() {
    let made = tempfile::tempdir().unwrap();
    let m = ensure_tls(made.path(), &["reg.example".into()], &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = use_supplied(
        dir.path(),
        &made.path().join("server.crt"),
        &made.path().join("server.key"),
        Some(&made.path().join("ca.crt")),
    )
    .unwrap();
    assert!(s.issued);
    assert_eq!(s.ca_sha256, m.ca_sha256);
    assert_eq!(mode(&dir.path().join("server.key")), 0o600);
    handshake(ca(&m), dir.path(), "reg.example").unwrap();
    let again = use_supplied(
        dir.path(),
        &made.path().join("server.crt"),
        &made.path().join("server.key"),
        None,
    )
    .unwrap();
    assert!(!again.issued);
    let msg = format!(
        "{:#}",
        use_supplied(
            dir.path(),
            &made.path().join("ca.key"),
            &made.path().join("server.key"),
            None
        )
        .unwrap_err()
    );
    assert!(
        msg.contains("ca.key") && msg.contains("no PEM certificate"),
        "{msg}"
    );
}

#[test]
fn openssl_agrees_when_installed() {
    let Ok(out) = Command::new("openssl").arg("version").output() else {
        eprintln!("openssl not installed; skipping the cross-check");
        return;
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let m = ensure_tls(
        dir.path(),
        &["host0.airlift".into()],
        &["10.0.0.1".parse().unwrap()],
    )
    .unwrap();
    let d = dir.path();
    let verify = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(d.join("ca.crt"))
        .arg(d.join("server.crt"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    for (flag, value) in [
        ("-verify_hostname", "host0.airlift"),
        ("-verify_ip", "10.0.0.1"),
    ] {
        let o = Command::new("openssl")
            .args(["verify", flag, value, "-CAfile"])
            .arg(d.join("ca.crt"))
            .arg(d.join("server.crt"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{flag} {value}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let fp = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(d.join("ca.crt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&fp.stdout);
    let hex: String = text
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(m.ca_sha256.unwrap(), format!("sha256:{hex}"));
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(d.join("ca.crt"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&subject.stdout).contains("airlift appliance CA"));
}
