//! The appliance's TLS material: a CA of its own and a server certificate
//! it signs, for the registry on host0 and its replicas.
//!
//! [`ensure_tls`] makes them once (ECDSA P-256) and reuses them on later
//! boots; the server certificate is re-issued, under the same CA, when the
//! set of names and addresses changes, so nodes that trust the CA keep
//! working. [`use_supplied`] installs a certificate and key given in the
//! config instead.
//!
//! Files under the folder: `ca.crt`, `ca.key` (0600), `server.crt`,
//! `server.key` (0600), and `server.sans`, the SAN list the server
//! certificate was issued for (one per line), which decides re-issuing.

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest as _, Sha256};

use airlift_oci::atomic::write_with_mode;

/// The TLS folder's name under the state folder.
pub const TLS_DIR: &str = "tls";

/// The CA's common name.
pub const CA_COMMON_NAME: &str = "airlift appliance CA";

/// The CA certificate file name.
pub const CA_CERT: &str = "ca.crt";
/// The CA key file name (mode 0600).
pub const CA_KEY: &str = "ca.key";
/// The server certificate file name.
pub const SERVER_CERT: &str = "server.crt";
/// The server key file name (mode 0600).
pub const SERVER_KEY: &str = "server.key";
/// The SANs the server certificate was issued for.
pub const SERVER_SANS: &str = "server.sans";

/// The TLS files in use, as PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// The CA certificate (what nodes must trust); `None` when a supplied
    /// certificate came without one.
    pub ca_pem: Option<String>,
    /// `sha256:<hex>` of the CA certificate's DER encoding.
    pub ca_sha256: Option<String>,
    /// The server certificate (chain).
    pub cert_pem: String,
    /// The server's private key.
    pub key_pem: String,
    /// Did this call create or re-issue anything?
    pub issued: bool,
}

impl TlsMaterial {
    /// `server.crt`'s path.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(SERVER_CERT)
    }

    /// `server.key`'s path.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(SERVER_KEY)
    }

    /// `ca.crt`'s path.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }
}

/// Make (first call) or reuse (later calls) the CA and a server
/// certificate for `names` and `ips` (plus `localhost` and `127.0.0.1`).
pub fn ensure_tls(dir: &Path, names: &[String], ips: &[IpAddr]) -> Result<TlsMaterial> {
    let sans = san_set(names, ips)?;
    let sans_text: String = sans.iter().map(|s| format!("{s}\n")).collect();
    let mut issued = false;

    let (ca_pem, ca_key) = match (read_opt(&dir.join(CA_CERT))?, read_opt(&dir.join(CA_KEY))?) {
        (Some(cert), Some(key)) => {
            let key = KeyPair::from_pem(&key)
                .with_context(|| format!("parsing {}", dir.join(CA_KEY).display()))?;
            (cert, key)
        }
        (None, None) => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the CA key")?;
            let cert = ca_params().self_signed(&key).context("self-signing the CA")?;
            write_with_mode(&dir.join(CA_KEY), key.serialize_pem().as_bytes(), 0o600)?;
            write_with_mode(&dir.join(CA_CERT), cert.pem().as_bytes(), 0o644)?;
            issued = true;
            (cert.pem(), key)
        }
        (Some(_), None) | (None, Some(_)) => bail!(
            "{} holds only one of {CA_CERT} and {CA_KEY}; restore the missing one, or remove both to \
             make a new CA (nodes trusting the old one must then be updated)",
            dir.display()
        ),
    };

    let current = (
        read_opt(&dir.join(SERVER_CERT))?,
        read_opt(&dir.join(SERVER_KEY))?,
        read_opt(&dir.join(SERVER_SANS))?,
    );
    let (cert_pem, key_pem) = match current {
        (Some(c), Some(k), Some(s)) if s == sans_text && !issued => (c, k),
        _ => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .context("generating the server key")?;
            // Re-created from its parameters and key, the CA signs exactly as
            // the one in ca.crt: same subject, same key identifier.
            let ca = ca_params().self_signed(&ca_key).context("loading the CA")?;
            let cert = server_params(&sans)?
                .signed_by(&key, &ca, &ca_key)
                .context("signing the server certificate")?;
            write_with_mode(&dir.join(SERVER_KEY), key.serialize_pem().as_bytes(), 0o600)?;
            write_with_mode(&dir.join(SERVER_CERT), cert.pem().as_bytes(), 0o644)?;
            write_with_mode(&dir.join(SERVER_SANS), sans_text.as_bytes(), 0o644)?;
            issued = true;
            (cert.pem(), key.serialize_pem())
        }
    };
    Ok(TlsMaterial {
        dir: dir.to_path_buf(),
        ca_sha256: Some(
            fingerprint(&ca_pem)
                .with_context(|| format!("reading {}", dir.join(CA_CERT).display()))?,
        ),
        ca_pem: Some(ca_pem),
        cert_pem,
        key_pem,
        issued,
    })
}

/// A server certificate and key for another machine (a registry
/// replica), signed by the CA in `dir` that [`ensure_tls`] made. Nothing
/// is written. Fails if `dir` has no CA key (a supplied certificate).
pub fn issue_for(dir: &Path, names: &[String], ips: &[IpAddr]) -> Result<(String, String)> {
    let key_path = dir.join(CA_KEY);
    let ca_key = read_opt(&key_path)?.with_context(|| {
        format!(
            "{} is missing: replicas need certificates signed by the appliance's own CA \
             (registry.tls.mode: generate)",
            key_path.display()
        )
    })?;
    let ca_key =
        KeyPair::from_pem(&ca_key).with_context(|| format!("parsing {}", key_path.display()))?;
    let ca = ca_params().self_signed(&ca_key).context("loading the CA")?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating a replica's server key")?;
    let cert = server_params(&san_set(names, ips)?)?
        .signed_by(&key, &ca, &ca_key)
        .context("signing a replica's server certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Install a certificate (chain) and key supplied by the config, and the
/// CA that signed them if given, as the files [`ensure_tls`] would write.
pub fn use_supplied(dir: &Path, cert: &Path, key: &Path, ca: Option<&Path>) -> Result<TlsMaterial> {
    let read = |p: &Path| {
        fs::read_to_string(p).with_context(|| format!("reading the TLS file {}", p.display()))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    if CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .is_none()
    {
        bail!("{} holds no PEM certificate", cert.display());
    }
    rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let ca_pem = ca.map(read).transpose()?;
    let ca_sha256 = match (&ca_pem, ca) {
        (Some(pem), Some(p)) => {
            Some(fingerprint(pem).with_context(|| format!("reading {}", p.display()))?)
        }
        _ => None,
    };
    let mut issued = false;
    let mut put = |name: &str, content: &str, mode: u32| -> Result<()> {
        let path = dir.join(name);
        if read_opt(&path)?.as_deref() != Some(content) {
            write_with_mode(&path, content.as_bytes(), mode)?;
            issued = true;
        }
        Ok(())
    };
    put(SERVER_KEY, &key_pem, 0o600)?;
    put(SERVER_CERT, &cert_pem, 0o644)?;
    if let Some(ca) = &ca_pem {
        put(CA_CERT, ca, 0o644)?;
    }
    Ok(TlsMaterial {
        dir: dir.to_path_buf(),
        ca_pem,
        ca_sha256,
        cert_pem,
        key_pem,
        issued,
    })
}

/// `sha256:<hex>` of the first certificate in `pem`.
pub fn fingerprint(pem: &str) -> Result<String> {
    let der = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .context("no PEM certificate found")?
        .context("malformed PEM certificate")?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(der.as_ref()))
    ))
}

/// The SANs, sorted and deduplicated, as `dns:NAME` / `ip:ADDR`.
fn san_set(names: &[String], ips: &[IpAddr]) -> Result<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    for n in names.iter().map(String::as_str).chain(["localhost"]) {
        let n = n.trim().to_ascii_lowercase();
        if n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*')
        {
            bail!("TLS name {n:?} is not a DNS name (letters, digits, '-', '.')");
        }
        set.insert(format!("dns:{n}"));
    }
    for ip in ips.iter().copied().chain([IpAddr::V4(Ipv4Addr::LOCALHOST)]) {
        set.insert(format!("ip:{ip}"));
    }
    Ok(set)
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Air-gapped appliances often have wrong clocks: a wide window.
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 12, 31);
    p
}

fn server_params(sans: &BTreeSet<String>) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "airlift registry");
    p.distinguished_name = dn;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2099, 12, 31);
    for s in sans {
        let san = if let Some(n) = s.strip_prefix("dns:") {
            SanType::DnsName(
                n.to_string()
                    .try_into()
                    .with_context(|| format!("TLS name {n:?}"))?,
            )
        } else {
            let ip = s.trim_start_matches("ip:");
            SanType::IpAddress(ip.parse().with_context(|| format!("TLS address {ip:?}"))?)
        };
        p.subject_alt_names.push(san);
    }
    Ok(p)
}

fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_certificate_chains_to_the_ca_for_its_address() {
        use rustls::client::danger::ServerCertVerifier;
        use tokio_rustls::rustls;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        assert!(issue_for(dir.path(), &[], &[]).is_err(), "no CA yet");
        let t = ensure_tls(dir.path(), &[], &["10.0.0.1".parse().unwrap()]).unwrap();
        let (cert, key) = issue_for(dir.path(), &[], &["10.0.0.7".parse().unwrap()]).unwrap();
        assert!(key.contains("PRIVATE KEY"));
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(t.ca_pem.unwrap().as_bytes()).unwrap())
            .unwrap();
        let verifier = rustls::client::WebPkiServerVerifier::builder(roots.into())
            .build()
            .unwrap();
        let leaf = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let now = rustls_pki_types::UnixTime::now();
        let name = |ip: &str| {
            rustls_pki_types::ServerName::IpAddress(ip.parse::<IpAddr>().unwrap().into())
        };
        assert!(verifier
            .verify_server_cert(&leaf, &[], &name("10.0.0.7"), &[], now)
            .is_ok());
        assert!(verifier
            .verify_server_cert(&leaf, &[], &name("10.0.0.8"), &[], now)
            .is_err());
        // host0's own files are untouched.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(SERVER_CERT)).unwrap(),
            t.cert_pem
        );
    }

    #[test]
    fn san_set_adds_localhost_and_sorts() {
        let s = san_set(
            &["Host0.airlift".into(), "localhost".into()],
            &["10.0.0.1".parse().unwrap()],
        )
        .unwrap();
        let v: Vec<_> = s.into_iter().collect();
        assert_eq!(
            v,
            [
                "dns:host0.airlift",
                "dns:localhost",
                "ip:10.0.0.1",
                "ip:127.0.0.1"
            ]
        );
        assert!(san_set(&["bad name".into()], &[]).is_err());
    }
}
