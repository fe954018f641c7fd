//! The serving benchmark's TLS material: one test CA and one server
//! certificate for 127.0.0.1 (an IP SAN) signed by it, written as PEM for
//! the three servers, and a client configuration that trusts that CA and
//! nothing else, so every TLS figure includes a verified handshake.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, SupportedCipherSuite};

/// What the servers and the client are given.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM).
    pub key: PathBuf,
    /// The test CA's certificate (DER): the client's only trust root.
    pub ca_der: Vec<u8>,
}

/// The address every server certificate names.
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A fresh CA and server certificate, in memory.
#[derive(Debug, Clone)]
pub struct Material {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8.
    pub key_der: Vec<u8>,
    pub ca_der: Vec<u8>,
}

/// Make a CA and a server certificate for [`SERVER_IP`] signed by it.
pub fn generate() -> Result<Material> {
    let ca_key = KeyPair::generate().context("making the test CA's key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "airlift-bench test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).context("signing the test CA")?;

    let key = KeyPair::generate().context("making the server key")?;
    let mut server = CertificateParams::new(vec![SERVER_IP.to_string()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, "airlift-bench server");
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server
        .signed_by(&key, &ca_cert, &ca_key)
        .context("signing the server certificate")?;
    Ok(Material {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        ca_pem: ca_cert.pem(),
        cert_der: cert.der().to_vec(),
        key_der: key.serialize_der(),
        ca_der: ca_cert.der().to_vec(),
    })
}

/// Make fresh material and write the server's PEM files (and the CA's,
/// for curl or skopeo by hand) into `dir`.
pub fn make(dir: &Path) -> Result<TlsFiles> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let m = generate()?;
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
        ca_der: m.ca_der.clone(),
    };
    write(&files.cert, &m.cert_pem)?;
    write(&files.key, &m.key_pem)?;
    write(&dir.join("ca.pem"), &m.ca_pem)?;
    Ok(files)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A rustls client configuration whose only root is the CA `ca_der`,
/// offering HTTP/1.1 by ALPN (so the Go servers do not switch to HTTP/2)
/// and the cipher suites in the order Go clients (containerd, crane,
/// skopeo: what pulls from a registry) offer on AES hardware: AES-128-GCM,
/// then AES-256-GCM, then ChaCha20-Poly1305, TLS 1.3 before 1.2. A server
/// that follows the client's order then picks what it would in the field.
pub fn client_config(ca_der: &[u8]) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca_der.to_vec()))
        .context("the test CA is not a usable trust root")?;
    let mut provider = tokio_rustls::rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| go_client_rank(*s));
    let provider = Arc::new(provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the client's TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Where a Go client on AES hardware puts `suite` in its offer.
fn go_client_rank(suite: SupportedCipherSuite) -> (u8, u8) {
    let version = match suite {
        SupportedCipherSuite::Tls13(_) => 0,
        _ => 1,
    };
    let name = format!("{:?}", suite.suite());
    let cipher = if name.contains("AES_128_GCM") {
        0
    } else if name.contains("AES_256_GCM") {
        1
    } else {
        2
    };
    (version, cipher)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_rustls::rustls::client::danger::ServerCertVerifier;
    use tokio_rustls::rustls::client::WebPkiServerVerifier;
    use tokio_rustls::rustls::pki_types::{ServerName, UnixTime};

    fn verify(m: &Material, trusted_ca: &[u8], name: ServerName<'static>) -> bool {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(trusted_ca.to_vec()))
            .unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap();
        let cert = CertificateDer::from(m.cert_der.clone());
        verifier
            .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn the_server_certificate_verifies_against_its_ca_only() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let ip = ServerName::IpAddress(SERVER_IP.into());
        assert!(verify(&a, &a.ca_der, ip.clone()));
        assert!(!verify(&a, &b.ca_der, ip), "another CA must not verify it");
        let other = ServerName::try_from("example.com").unwrap();
        assert!(!verify(&a, &a.ca_der, other), "it names 127.0.0.1 only");
        assert!(client_config(b"not a certificate").is_err());
    }

    #[test]
    fn offers_suites_in_go_clients_order() {
        let m = generate().unwrap();
        let config = client_config(&m.ca_der).unwrap();
        let names: Vec<String> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            names[..3],
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert!(
            names[3].starts_with("TLS_ECDHE_") && names[3].contains("AES_128_GCM"),
            "{names:?}"
        );
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn writes_the_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = make(dir.path()).unwrap();
        let cert = std::fs::read_to_string(&f.cert).unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        let key = std::fs::read_to_string(&f.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(dir.path().join("ca.pem").is_file());
        assert!(!f.ca_der.is_empty());
    }
}
