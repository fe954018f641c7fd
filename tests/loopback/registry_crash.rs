//! Crash safety of `airlift-firstboot serve`: SIGKILL in the middle of
//! uploads and after a push, then a restart on the same data folder.
//! Pushed tags survive, no partial blob is ever visible.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use airlift_integration::firstboot::{
    assert_blobs_whole, creds, files_under, ServeConfig, Server, TOKEN,
};
use airlift_integration::images::{random_bytes, write_layout, TestImage};
use airlift_integration::tools::{require, run_ok};
use airlift_oci::Digest;

fn inspect_digest(host: &str, image: &str) -> String {
    let out = run_ok(Command::new(require("skopeo", "skopeo")).args([
        "inspect",
        "--no-tags",
        "--tls-verify=false",
        &format!("docker://{host}/{image}"),
    ]));
    serde_json::from_str::<serde_json::Value>(&out).unwrap()["Digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Wait (bounded) until some upload file has at least `bytes` bytes.
fn wait_for_upload_bytes(data: &Path, bytes: u64) {
    for _ in 0..600 {
        let biggest = std::fs::read_dir(data.join("uploads"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .map(|m| m.len())
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        if biggest >= bytes {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server never received {bytes} bytes of an upload");
}

#[test]
fn kill9_mid_upload_and_after_push_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let layout = tmp.path().join("src");
    let image = TestImage {
        gzip: true,
        ..TestImage::random("1.0", 3, 500_000)
    };
    let made = write_layout(&layout, &[image]).unwrap();
    let config = ServeConfig {
        data: data.clone(),
        push_token: true,
        ..ServeConfig::default()
    };
    let mut srv = Server::start(&config);
    run_ok(Command::new(require("skopeo", "skopeo")).args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(),
        &format!("oci:{}:1.0", layout.display()),
        &format!("docker://{}/quay.io/org/app:1.0", srv.host()),
    ]));
    let auth = format!("Bearer {TOKEN}");

    // A chunked upload whose PATCH body is cut off by the kill.
    let r = srv.request(
        "POST",
        "/v2/quay.io/org/app/blobs/uploads/",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 202);
    let location = r.header("Location").unwrap().to_string();
    let mut patch = srv.connect();
    write!(
        patch,
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 8000000\r\n\r\n"
    )
    .unwrap();
    patch.write_all(&random_bytes(1, 1_000_000)).unwrap();

    // A monolithic upload of a blob whose digest is declared up front.
    let whole = random_bytes(2, 4_000_000);
    let digest = Digest::sha256_of(&whole);
    let mut mono = srv.connect();
    write!(
        mono,
        "POST /v2/quay.io/org/app/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n\
         Authorization: {auth}\r\nContent-Length: {}\r\n\r\n",
        whole.len()
    )
    .unwrap();
    mono.write_all(&whole[..2_000_000]).unwrap();
    wait_for_upload_bytes(&data, 1_000_000);

    srv.kill9();
    drop((patch, mono));

    // Nothing partial is visible: every blob file hashes to its name.
    let blobs = assert_blobs_whole(&data);
    assert!(blobs >= 3, "the pushed image's blobs are there ({blobs})");
    assert!(!data.join(digest.blob_path()).exists());

    // Restart: the tag is back, the dead uploads are gone.
    let srv = Server::start(&config);
    assert!(files_under(&data.join("uploads")).is_empty());
    assert_eq!(
        inspect_digest(&srv.host(), "quay.io/org/app:1.0"),
        made[0].manifest.digest.to_string()
    );
    let out = tmp.path().join("out");
    run_ok(Command::new(require("skopeo", "skopeo")).args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/quay.io/org/app:1.0", srv.host()),
        &format!("dir:{}", out.display()),
    ]));
    for blob in &made[0].blobs {
        assert!(out.join(blob.hex()).is_file(), "{blob} copied back");
    }
    let r = srv.request("GET", &location, &[("Authorization", &auth)], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "BLOB_UPLOAD_UNKNOWN");
}
