//! `airlift build` with `secureBoot: mode: sign` and bad signing inputs,
//! as a user runs it: each is a clear error naming the file or field,
//! never showing a key's contents, and no ISO (nor work folder) is left.
//! Uses the host's systemd-boot and stub (`systemd-boot-efi`), sbsigntool,
//! faketime and Debian's OVMF test key (`just deps`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const SNAKEOIL_KEY: &str = "/usr/share/ovmf/PkKek-1-snakeoil.key";

/// A base good enough to reach signing: real EFI binaries, the rest
/// placeholders; the test keys of `src/signing/fixtures/test-keys.sh`.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["base/rootfs/etc", "base/isolinux", "out"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(d.join("base/vmlinuz"), b"kernel").unwrap();
    for f in ["isolinux.bin", "ldlinux.c32", "isohdpfx.bin"] {
        fs::write(d.join("base/isolinux").join(f), b"x").unwrap();
    }
    fs::copy(SYSTEMD_BOOT, d.join("base/systemd-bootx64.efi")).unwrap();
    fs::copy(STUB, d.join("base/linuxx64.efi.stub")).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/signing/fixtures/test-keys.sh"
    );
    let ok = Command::new("sh").arg(script).arg(d).status().unwrap();
    assert!(ok.success(), "{script} failed");
    dir
}

fn config(secure_boot: &str, stub: bool) -> String {
    format!(
        "apiVersion: airlift/v1alpha1
kind: Appliance
metadata: {{ name: signed, version: '1' }}
base:
  kernel: base/vmlinuz
  rootfs: base/rootfs
  rootOn: initramfs
  modules: []
  bootloader:
    isolinux: base/isolinux
    efi: base/systemd-bootx64.efi
{}{secure_boot}",
        if stub {
            "    stub: base/linuxx64.efi.stub\n"
        } else {
            ""
        }
    )
}

/// Runs `airlift build` on `text`; returns its stderr and asserts it
/// failed and left nothing in `out/`.
fn build_fails(d: &Path, text: &str) -> String {
    let file = d.join("signed.yaml");
    fs::write(&file, text).unwrap();
    let iso: PathBuf = d.join("out/signed.iso");
    let out = Command::new(env!("CARGO_BIN_EXE_airlift"))
        .arg("build")
        .arg(&file)
        .arg("-o")
        .arg(&iso)
        .arg("--firstboot")
        .arg("/bin/true")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("running airlift");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "the build passed:\n{stderr}");
    let left: Vec<_> = fs::read_dir(d.join("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
    stderr
}

#[test]
fn a_key_that_does_not_match_its_certificate() {
    let dir = fixture();
    let d = dir.path();
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: db.key, certificate: other.crt }\n",
            true,
        ),
    );
    assert!(e.contains("does not match the certificate"), "{e}");
    assert!(e.contains(&d.join("db.key").display().to_string()), "{e}");
    assert!(
        e.contains(&d.join("other.crt").display().to_string()),
        "{e}"
    );
    let key = fs::read_to_string(d.join("db.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!e.contains(body), "the key's contents were shown:\n{e}");
}

#[test]
fn unreadable_or_non_pem_key_and_certificate() {
    let dir = fixture();
    let d = dir.path();
    fs::write(d.join("junk.key"), b"SECRET-MARKER not a key").unwrap();
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: junk.key, certificate: base }\n",
            true,
        ),
    );
    assert!(
        e.contains("field secureBoot.key: ") && e.contains("junk.key is not a PEM private key"),
        "{e}"
    );
    assert!(
        e.contains("field secureBoot.certificate: ") && e.contains("base is not a regular file"),
        "{e}"
    );
    assert!(!e.contains("SECRET-MARKER"), "{e}");
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: db.crt, certificate: db.key }\n",
            true,
        ),
    );
    assert!(
        e.contains("db.crt holds a PEM CERTIFICATE, not a private key"),
        "{e}"
    );
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: nope.key, certificate: db.crt }\n",
            true,
        ),
    );
    assert!(e.contains("nope.key"), "{e}");
    // Debian's test key as shipped is encrypted.
    let e = build_fails(
        d,
        &config(
            &format!("secureBoot: {{ mode: sign, key: {SNAKEOIL_KEY}, certificate: db.crt }}\n"),
            true,
        ),
    );
    assert!(e.contains("is encrypted"), "{e}");
}

#[test]
fn sign_mode_without_key_certificate_or_stub() {
    let dir = fixture();
    let d = dir.path();
    let e = build_fails(d, &config("secureBoot:\n  mode: sign\n", true));
    assert!(
        e.contains(":13:1: field secureBoot: `mode: sign` needs key:"),
        "{e}"
    );
    assert!(e.contains("needs certificate:"), "{e}");
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: db.key, certificate: db.crt }\n",
            false,
        ),
    );
    assert!(
        e.contains("field base.bootloader: ") && e.contains("base.bootloader.stub"),
        "{e}"
    );
    fs::remove_file(d.join("base/systemd-bootx64.efi")).unwrap();
    let e = build_fails(
        d,
        &config(
            "secureBoot: { mode: sign, key: db.key, certificate: db.crt }\n",
            true,
        ),
    );
    assert!(
        e.contains("field base.bootloader.efi: ")
            && e.contains("systemd-bootx64.efi does not exist"),
        "{e}"
    );
}
