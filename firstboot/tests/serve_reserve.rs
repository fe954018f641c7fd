//! `airlift-firstboot serve --reserve-mib` is honoured: a reserve larger
//! than the data folder's filesystem refuses every upload at its start
//! (507 DENIED, the reserve named), while pulls and a server without the
//! option go on.

mod serve_support;

use serve_support::{oci_error, Serve};

#[test]
fn a_reserve_larger_than_the_disk_refuses_uploads() {
    let dir = tempfile::tempdir().unwrap();
    // 1 PiB in MiB: no test machine has that free.
    let s = Serve::start(&dir.path().join("data"), dir.path(), Some(1 << 30));
    let (code, body) = s.curl("POST", "/v2/quay.io/a/blobs/uploads/", &[]);
    assert_eq!(code, 507, "{body}");
    let (c, m) = oci_error(&body);
    assert_eq!(c, "DENIED");
    assert!(
        m.starts_with("not enough space for a new upload to quay.io/a: it needs 0 kB")
            && m.contains("1125899 GB is kept in reserve"),
        "{m}"
    );
    let (code, _) = s.curl("GET", "/v2/", &[]);
    assert_eq!(code, 200);
    assert_eq!(
        std::fs::read_dir(dir.path().join("data/uploads"))
            .unwrap()
            .count(),
        0
    );

    // --reserve-mib 0: only what does not fit at all is refused.
    let other = tempfile::tempdir().unwrap();
    let s = Serve::start(&other.path().join("data"), other.path(), Some(0));
    assert!(s.start_upload("quay.io/a").is_ok());
}
