//! The upload guardrail on a real small filesystem: `serve` with a 48 MiB
//! tmpfs as its data folder and an 8 MiB reserve. Uploads that would not
//! fit (declared length, or streamed without one) are refused with 507
//! DENIED and the reserve message and leave no file; a small one still
//! succeeds; pulls keep working; the reserve stays free. Needs root (it
//! mounts the tmpfs); fails (does not skip) without it, saying so.

mod serve_support;

use std::path::Path;
use std::process::Command;

use serve_support::{oci_error, Serve};
use sha2::{Digest, Sha256};

const MIB: usize = 1 << 20;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size_mib: u64) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}M"), "tmpfs"])
            .arg(at)
            .status()
            .expect("running mount");
        assert!(
            st.success(),
            "mounting a tmpfs at {} (needs root)",
            at.display()
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn assert_refused(code: u16, body: &str) {
    assert_eq!(code, 507, "{body}");
    let (c, m) = oci_error(body);
    assert_eq!(c, "DENIED", "{body}");
    assert!(
        m.starts_with("not enough space for the upload ") && m.contains("8 MB is kept in reserve"),
        "{m}"
    );
    assert!(m.contains("gc --dry-run"), "{m}");
}

fn uploads(data: &Path) -> usize {
    std::fs::read_dir(data.join("uploads")).unwrap().count()
}

#[test]
fn uploads_that_would_not_fit_are_refused_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _fs = Tmpfs::mount(&data, 48);
    let s = Serve::start(&data, dir.path(), Some(8));

    // A small blob fits.
    let small = vec![7u8; MIB];
    let small_file = dir.path().join("small");
    std::fs::write(&small_file, &small).unwrap();
    let at = format!("@{}", small_file.display());
    let path = format!("/v2/quay.io/a/blobs/uploads/?digest={}", digest(&small));
    let (code, body) = s.curl("POST", &path, &["--data-binary", &at]);
    assert_eq!(code, 201, "{body}");

    // 60 MiB with a declared length: refused before a byte is written.
    let big_file = dir.path().join("big");
    std::fs::write(&big_file, vec![1u8; 60 * MIB]).unwrap();
    let big = format!("@{}", big_file.display());
    let loc = s.start_upload("quay.io/a").unwrap();
    let (code, body) = s.curl("PATCH", &loc, &["--data-binary", &big]);
    assert_refused(code, &body);
    assert!(oci_error(&body).1.contains("it needs 62 MB"), "{body}");
    assert_eq!(uploads(&data), 0, "the refused upload's file stays");
    let (code, body) = s.curl("GET", &loc, &[]);
    assert_eq!(
        (code, oci_error(&body).0.as_str()),
        (404, "BLOB_UPLOAD_UNKNOWN")
    );

    // Streamed without a length (chunked): refused at its first window.
    let loc = s.start_upload("quay.io/a").unwrap();
    let chunked = ["-H", "Transfer-Encoding: chunked", "--data-binary", &big];
    let (code, body) = s.curl("PATCH", &loc, &chunked);
    assert_refused(code, &body);
    assert!(
        oci_error(&body).1.contains("its length not declared"),
        "{body}"
    );
    assert_eq!(uploads(&data), 0);

    // Pulls go on, and another small push still succeeds.
    let out = Command::new("curl")
        .args(["-sS", "-f"])
        .arg(format!("{}/v2/quay.io/a/blobs/{}", s.url, digest(&small)))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == small,
        "the pull failed"
    );
    let other = vec![9u8; MIB];
    std::fs::write(&small_file, &other).unwrap();
    let path = format!("/v2/quay.io/a/blobs/uploads/?digest={}", digest(&other));
    let (code, body) = s.curl("POST", &path, &["--data-binary", &at]);
    assert_eq!(code, 201, "{body}");
    let free = rustix::fs::statvfs(&data).unwrap();
    assert!(
        free.f_bavail * free.f_frsize >= 8 * MIB as u64,
        "the reserve was eaten"
    );
}
