//! sbsign and objcopy for real, on systemd's stub from the host
//! (`systemd-boot-efi`, a `just deps` package) and Debian's OVMF test key.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::pe;

const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const SNAKEOIL_KEY: &str = "/usr/share/ovmf/PkKek-1-snakeoil.key";

/// Test keys in `dir` (`fixtures/test-keys.sh`): the snakeoil key
/// decrypted with its certificate, and an unrelated certificate.
fn keys(dir: &Path) -> (SigningKey, PathBuf) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/signing/fixtures/test-keys.sh"
    );
    let ok = Command::new("sh").arg(script).arg(dir).status().unwrap();
    assert!(ok.success(), "{script} failed");
    let k = SigningKey {
        key: dir.join("db.key"),
        certificate: dir.join("db.crt"),
    };
    (k, dir.join("other.crt"))
}

#[test]
fn faketime_stamp_is_utc() {
    assert_eq!(faketime_stamp(0), "1970-01-01 00:00:00");
    assert_eq!(faketime_stamp(1_700_000_000), "2023-11-14 22:13:20");
}

#[test]
fn signs_reproducibly_and_names_the_signer() {
    let dir = tempfile::tempdir().unwrap();
    let (k, _) = keys(dir.path());
    let a = dir.path().join("a.efi");
    let b = dir.path().join("b.efi");
    sign(&k, Path::new(STUB), &a, 1_700_000_000).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sign(&k, Path::new(STUB), &b, 1_700_000_000).unwrap();
    let a = std::fs::read(a).unwrap();
    assert_eq!(a, std::fs::read(b).unwrap(), "same inputs, same signature");
    let signers = pe::authenticode::signers_of_pe(&a).unwrap();
    assert_eq!(signers.len(), 1);
    assert!(signers[0].subject.contains("O=SnakeOil"), "{signers:?}");
    assert!(
        pe::authenticode::signers_of_pe(&std::fs::read(STUB).unwrap())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (k, other) = keys(dir.path());
    let wrong = SigningKey {
        key: k.key.clone(),
        certificate: other.clone(),
    };
    let out = dir.path().join("x.efi");
    let e = format!("{:#}", sign(&wrong, Path::new(STUB), &out, 0).unwrap_err());
    assert!(e.contains("does not match the certificate"), "{e}");
    assert!(e.contains("db.key") && e.contains("other.crt"), "{e}");
    // An encrypted key fails at once instead of asking for a passphrase.
    let enc = SigningKey {
        key: PathBuf::from(SNAKEOIL_KEY),
        certificate: k.certificate.clone(),
    };
    let e = format!("{:#}", sign(&enc, Path::new(STUB), &out, 0).unwrap_err());
    assert!(e.contains("sbsign could not sign"), "{e}");
}

#[test]
fn uki_has_its_sections_and_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, bytes: &[u8]| {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let osrel = write("osrel", uki::os_release("t", "1").as_bytes());
    let cmdline = write("cmdline", b"console=ttyS0");
    let kernel = write("kernel", &[7u8; 100_000]);
    let initrd = write("initrd", &[9u8; 70_000]);
    let parts = uki::Parts {
        stub: Path::new(STUB),
        os_release: &osrel,
        cmdline: &cmdline,
        kernel: &kernel,
        initrd: &initrd,
    };
    let (a, b) = (d.join("a.efi"), d.join("b.efi"));
    uki::build(&parts, &a, 1_700_000_000).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    uki::build(&parts, &b, 1_700_000_000).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap(), "same inputs, same UKI");
    let h = pe::Headers::parse(&bytes).unwrap();
    let names: Vec<&str> = h.sections.iter().map(|s| s.name.as_str()).collect();
    assert!(
        names.ends_with(&[".osrel", ".cmdline", ".linux", ".initrd"]),
        "{names:?}"
    );
    let linux = &h.sections[names.len() - 2];
    let at = linux.raw_offset as usize;
    assert_eq!(&bytes[at..at + 100_000], &[7u8; 100_000][..]);
    let stamp = &bytes[h.timestamp_at()..h.timestamp_at() + 4];
    assert_eq!(stamp, 1_700_000_000u32.to_le_bytes());
    let sum = u32::from_le_bytes(
        bytes[h.checksum_at()..h.checksum_at() + 4]
            .try_into()
            .unwrap(),
    );
    assert_eq!(sum, pe::checksum(&bytes, h.checksum_at()));
}
