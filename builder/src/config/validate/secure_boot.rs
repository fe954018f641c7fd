//! `secureBoot`: in `sign` mode a PEM private key and its certificate,
//! and the UKI stub; in `shim` mode neither key nor certificate. Files
//! are read only for their PEM labels; their contents never reach a
//! message.

use crate::config::BaseSpec;
use std::path::Path;

use super::{Purpose, Validator};
use crate::config::schema::SecureBootMode;

/// Largest key or certificate file read (real ones are a few KiB).
const MAX_PEM_BYTES: u64 = 1 << 20;

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemWant {
    PrivateKey,
    Certificate,
}

/// The `-----BEGIN LABEL-----` labels of `bytes`, in order.
fn pem_labels(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("-----BEGIN "))
        .filter_map(|l| l.strip_suffix("-----"))
        .map(str::to_string)
        .collect()
}

/// Why `bytes` is not a usable PEM file of kind `want`, if it is not.
/// Names only the PEM labels found, never the contents.
pub fn pem_problem(bytes: &[u8], want: PemWant) -> Option<String> {
    let labels = pem_labels(bytes);
    let Some(first) = labels.first() else {
        return Some(match want {
            PemWant::PrivateKey => "is not a PEM private key (no -----BEGIN line); give an \
                 unencrypted PEM RSA key (`openssl pkey -in KEY -out KEY.pem`)"
                .to_string(),
            PemWant::Certificate => "is not a PEM certificate (no -----BEGIN CERTIFICATE----- \
                 line); convert a DER one with `openssl x509 -inform der -in CERT -out CERT.pem`"
                .to_string(),
        });
    };
    let encrypted = String::from_utf8_lossy(bytes).contains("Proc-Type: 4,ENCRYPTED");
    match want {
        PemWant::PrivateKey => match first.as_str() {
            "ENCRYPTED PRIVATE KEY" => Some(encrypted_key()),
            "PRIVATE KEY" | "RSA PRIVATE KEY" if encrypted => Some(encrypted_key()),
            "PRIVATE KEY" | "RSA PRIVATE KEY" => None,
            "EC PRIVATE KEY" => Some(
                "holds an EC key; UEFI firmware checks RSA signatures: give an RSA key".into(),
            ),
            other => Some(format!(
                "holds a PEM {other}, not a private key; give the PEM private key of the certificate"
            )),
        },
        PemWant::Certificate => (first != "CERTIFICATE").then(|| {
            format!("holds a PEM {first}, not a CERTIFICATE; give the X.509 certificate of the key")
        }),
    }
}

fn encrypted_key() -> String {
    "is encrypted, and sbsign cannot ask for its passphrase during a build; give a decrypted \
     copy kept as safe as the original (`openssl pkey -in KEY -out PLAIN.pem`)"
        .to_string()
}

impl Validator<'_> {
    /// `mode: shim` builds boot through shim and GRUB: both must be named
    /// (that they exist is checked with the other boot-loader files).
    fn shim_chain(&mut self) {
        let Some(b) = self.app.base.as_ref().and_then(BaseSpec::paths) else {
            return;
        };
        for (field, set, what) in [
            (
                "base.bootloader.shim",
                b.bootloader.shim.is_some(),
                "shim signed by Microsoft's UEFI CA (the base's efi/shimx64.efi)",
            ),
            (
                "base.bootloader.grub",
                b.bootloader.grub.is_some(),
                "GRUB signed for shim (the base's efi/grubx64.efi)",
            ),
        ] {
            if !set {
                self.problem(
                    field,
                    format!(
                        "is not set, and the UEFI boot chain (secureBoot.mode: shim, the \
                         default) needs it: point it at {what}"
                    ),
                );
            }
        }
    }

    pub(super) fn secure_boot(&mut self, purpose: Purpose) {
        let sb = &self.app.secure_boot;
        if sb.mode == SecureBootMode::Shim {
            for (field, path) in [
                ("secureBoot.key", &sb.key),
                ("secureBoot.certificate", &sb.certificate),
            ] {
                if path.is_some() {
                    self.problem(
                        field,
                        "is used only with `mode: sign`; set secureBoot.mode: sign to sign with \
                         your own key, or remove it",
                    );
                }
            }
            if purpose == Purpose::Build {
                self.shim_chain();
            }
            return;
        }
        if purpose != Purpose::Build {
            return;
        }
        for (field, path, want, what) in [
            (
                "secureBoot.key",
                &sb.key,
                PemWant::PrivateKey,
                "key: the PEM private key to sign the boot loader and kernel with",
            ),
            (
                "secureBoot.certificate",
                &sb.certificate,
                PemWant::Certificate,
                "certificate: the PEM X.509 certificate of that key",
            ),
        ] {
            match path {
                None => self.problem("secureBoot", format!("`mode: sign` needs {what}")),
                Some(p) => self.pem_file(field, p, want),
            }
        }
        if let Some(b) = self.app.base.as_ref().and_then(BaseSpec::paths) {
            if b.bootloader.stub.is_none() {
                self.problem(
                    "base.bootloader",
                    "secureBoot `mode: sign` builds a unified kernel image and needs \
                     base.bootloader.stub: systemd's EFI stub (Debian: systemd-boot-efi, \
                     linuxx64.efi.stub)",
                );
            }
        }
    }

    /// `path` is a readable PEM file of kind `want`.
    fn pem_file(&mut self, field: &str, path: &Path, want: PemWant) {
        let what = match want {
            PemWant::PrivateKey => "Secure Boot signing key",
            PemWant::Certificate => "Secure Boot certificate",
        };
        match crate::small_file::read(path, MAX_PEM_BYTES, what, "give a PEM file") {
            Err(e) => self.problem(field, format!("{e:#}")),
            Ok(bytes) => {
                if let Some(why) = pem_problem(&bytes, want) {
                    self.problem(field, format!("{} {why}", path.display()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::tests::{fixture, load, problems, GOOD};
    use super::*;
    use crate::config::validate::validate;

    const KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----\n";
    const CERT: &[u8] = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

    #[test]
    fn pem_labels_decide() {
        use PemWant::*;
        assert_eq!(pem_problem(KEY, PrivateKey), None);
        assert_eq!(pem_problem(CERT, Certificate), None);
        let rsa = b"-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(pem_problem(rsa, PrivateKey), None);
        let old_enc = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nx\n";
        for enc in [&b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n"[..], old_enc] {
            let e = pem_problem(enc, PrivateKey).unwrap();
            assert!(
                e.contains("is encrypted") && e.contains("openssl pkey"),
                "{e}"
            );
        }
        let e = pem_problem(CERT, PrivateKey).unwrap();
        assert!(
            e.contains("holds a PEM CERTIFICATE, not a private key"),
            "{e}"
        );
        let e = pem_problem(KEY, Certificate).unwrap();
        assert!(
            e.contains("holds a PEM PRIVATE KEY, not a CERTIFICATE"),
            "{e}"
        );
        assert!(pem_problem(b"-----BEGIN EC PRIVATE KEY-----\n", PrivateKey)
            .unwrap()
            .contains("RSA"));
        for junk in [&b"\x30\x82\x01\x00binary"[..], b"", b"hello"] {
            assert!(pem_problem(junk, PrivateKey)
                .unwrap()
                .contains("not a PEM private key"));
            assert!(pem_problem(junk, Certificate)
                .unwrap()
                .contains("not a PEM certificate"));
        }
    }

    fn with(extra: &str) -> String {
        GOOD.replace(
            "    ipxe: ${BASE}/ipxe\n",
            "    ipxe: ${BASE}/ipxe\n    stub: ${BASE}/efi/linuxx64.efi.stub\n",
        ) + extra
    }

    #[test]
    fn sign_mode_needs_key_certificate_and_stub() {
        let dir = fixture();
        let d = dir.path();
        fs::write(d.join("base/efi/linuxx64.efi.stub"), b"MZ").unwrap();
        fs::write(d.join("db.key"), KEY).unwrap();
        fs::write(d.join("db.crt"), CERT).unwrap();
        let good = with("secureBoot: { mode: sign, key: db.key, certificate: db.crt }\n");
        let app = load(d, &good);
        assert_eq!(
            app.secure_boot.key.as_deref(),
            Some(d.join("db.key").as_path())
        );
        assert_eq!(validate(&app, Purpose::Build), Ok(()));
        // Swapped files: each names its field, line and column, and the
        // key's bytes are never shown.
        let swapped = with("secureBoot: { mode: sign, key: db.crt, certificate: db.key }\n");
        let ps: Vec<String> = validate(&load(d, &swapped), Purpose::Build)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(
            ps[0].contains(":54:27: field secureBoot.key: ")
                && ps[0].contains("db.crt holds a PEM CERTIFICATE"),
            "{}",
            ps[0]
        );
        assert!(
            ps[1].contains("field secureBoot.certificate: ")
                && ps[1].contains("db.key holds a PEM PRIVATE KEY"),
            "{}",
            ps[1]
        );
        assert!(!ps.concat().contains("SECRETBYTES"));
        // Missing and unreadable files.
        let missing = with("secureBoot: { mode: sign, key: nope.key, certificate: /proc }\n");
        let ps = validate(&load(d, &missing), Purpose::Build).unwrap_err();
        assert_eq!(ps.len(), 2, "{ps:#?}");
        assert!(ps[0].to_string().contains("nope.key"), "{}", ps[0]);
        assert!(
            ps[1].to_string().contains("/proc is not a regular file"),
            "{}",
            ps[1]
        );
        // Bundling does not sign.
        assert_eq!(validate(&load(d, &missing), Purpose::Bundle), Ok(()));
    }

    #[test]
    fn sign_mode_without_its_parts() {
        let ps = problems(
            &format!("{GOOD}secureBoot: {{ mode: sign }}\n"),
            Purpose::Build,
        );
        assert_eq!(ps.len(), 3, "{ps:#?}");
        assert!(
            ps[0].contains("field secureBoot: `mode: sign` needs key:"),
            "{}",
            ps[0]
        );
        assert!(ps[1].contains("needs certificate:"), "{}", ps[1]);
        assert!(
            ps[2].contains("field base.bootloader: ") && ps[2].contains("base.bootloader.stub"),
            "{}",
            ps[2]
        );
        let ps = problems(
            &format!("{GOOD}secureBoot: {{ key: k.pem }}\n"),
            Purpose::Build,
        );
        assert_eq!(ps.len(), 1, "{ps:#?}");
        assert!(
            ps[0].contains("field secureBoot.key: is used only with `mode: sign`"),
            "{}",
            ps[0]
        );
        let ps = problems(
            &format!("{GOOD}secureBoot: {{ mode: shim }}\n"),
            Purpose::Build,
        );
        assert_eq!(ps, Vec::<String>::new());
        let e = crate::config::parse(
            &format!("{GOOD}secureBoot: {{ mode: pgp }}\n"),
            Path::new("a.yaml"),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("secureBoot.mode"), "{e:#}");
    }
}
