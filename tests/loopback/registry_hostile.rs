//! Hostile input over a real socket: traversal in names, broken
//! digests, oversize manifests, truncated and stalled bodies, wrong
//! Content-Range, slow headers. Each gets a spec error (or a closed
//! connection) and nothing is stored.

use std::io::{Read, Write};
use std::net::Shutdown;

use airlift_integration::firstboot::{
    assert_blobs_whole, files_under, read_response, ServeConfig, Server, TOKEN,
};
use airlift_oci::Digest;

fn start(tmp: &std::path::Path, extra: &[&str]) -> Server {
    Server::start(&ServeConfig {
        data: tmp.join("data"),
        push_token: true,
        extra: extra.iter().map(|s| s.to_string()).collect(),
        ..ServeConfig::default()
    })
}

fn auth() -> String {
    format!("Bearer {TOKEN}")
}

#[test]
fn traversal_and_bad_digests_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path(), &[]);
    let data = tmp.path().join("data");
    let before = files_under(tmp.path());
    let a = auth();
    for path in [
        "/v2/../../etc/manifests/x",
        "/v2/%2e%2e/%2e%2e/etc/manifests/x",
        "/v2/..%2f..%2fetc/manifests/latest",
        "/v2/a/b/../../../../tmp/pwn/manifests/x",
        "/v2/x/manifests/y?ns=..%2F..",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let r = srv.request(method, path, &[("Authorization", &a)], b"{}");
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (400, "NAME_INVALID"),
                "{method} {path}"
            );
        }
        let r = srv.request(
            "POST",
            &path.replace("manifests/x", "blobs/uploads/"),
            &[("Authorization", &a)],
            b"",
        );
        assert_eq!(r.status, 400, "POST {path}");
    }
    for path in [
        "/v2/quay.io/a/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
        "/v2/quay.io/a/blobs/sha256:ABCDEF",
        "/v2/quay.io/a/manifests/sha256:0000",
    ] {
        let r = srv.request("GET", path, &[], b"");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "DIGEST_INVALID"),
            "{path}"
        );
    }
    let r = srv.request(
        "POST",
        "/v2/quay.io/a/blobs/uploads/?digest=sha256:%00",
        &[("Authorization", &a)],
        b"x",
    );
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    assert_eq!(files_under(tmp.path()), before);
    assert!(files_under(&data.join("uploads")).is_empty());
}

#[test]
fn oversize_and_malformed_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path(), &[]);
    let a = auth();
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    // Declared too big: refused from the header, before the body is read.
    let mut s = srv.connect();
    write!(
        s,
        "PUT /v2/quay.io/a/manifests/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {a}\r\n\
         Content-Type: {}\r\nContent-Length: 5000000\r\n\r\n",
        ct.1
    )
    .unwrap();
    let r = read_response(&mut s);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "MANIFEST_INVALID")
    );
    // Actually too big, sent chunked with no length up front.
    let mut s = srv.connect();
    write!(
        s,
        "PUT /v2/quay.io/a/manifests/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {a}\r\n\
         Content-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        ct.1
    )
    .unwrap();
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..5 {
        let sent = write!(s, "{:x}\r\n", chunk.len())
            .and_then(|_| s.write_all(&chunk))
            .and_then(|_| s.write_all(b"\r\n"));
        if sent.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let r = read_response(&mut s);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (413, "MANIFEST_INVALID")
    );
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"schemaVersion\":2,\"config\":7}",
        b"\xff\xfe",
    ] {
        let r = srv.request(
            "PUT",
            "/v2/quay.io/a/manifests/bad",
            &[("Authorization", &a), ct],
            body,
        );
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "MANIFEST_INVALID"),
            "{body:?}"
        );
    }
    assert!(!tmp.path().join("data/repositories/quay.io").exists());
}

#[test]
fn truncated_stalled_and_misranged_uploads_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path(), &["--body-stall-secs", "1"]);
    let data = tmp.path().join("data");
    let a = auth();
    let whole = vec![7u8; 100_000];
    let digest = Digest::sha256_of(&whole);

    // Declared length, half the bytes, then the client hangs up its side.
    let mut s = srv.connect();
    write!(
        s,
        "POST /v2/quay.io/a/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Authorization: {a}\r\nContent-Length: {}\r\n\r\n",
        whole.len()
    )
    .unwrap();
    s.write_all(&whole[..50_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(raw.is_empty() || text.starts_with("HTTP/1.1 400"), "{text}");

    // Fewer bytes with a matching length: the digest does not match.
    let r = srv.request(
        "POST",
        &format!("/v2/quay.io/a/blobs/uploads/?digest={digest}"),
        &[("Authorization", &a)],
        &whole[..99_999],
    );
    assert_eq!((r.status, r.error_code().as_str()), (400, "DIGEST_INVALID"));

    // A chunk that stalls: 400 after the stall limit, and the chunk is rolled back.
    let r = srv.request(
        "POST",
        "/v2/quay.io/a/blobs/uploads/",
        &[("Authorization", &a)],
        b"",
    );
    let loc = r.header("Location").unwrap().to_string();
    let mut s = srv.connect();
    write!(
        s,
        "PATCH {loc} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {a}\r\nContent-Length: 100\r\n\r\n"
    )
    .unwrap();
    s.write_all(&[1u8; 10]).unwrap();
    let r = read_response(&mut s);
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "BLOB_UPLOAD_INVALID")
    );
    let r = srv.request("GET", &loc, &[("Authorization", &a)], b"");
    assert_eq!((r.status, r.header("Range")), (204, Some("0-0")));

    // Out-of-order and mismatched Content-Range.
    let r = srv.request(
        "PATCH",
        &loc,
        &[("Authorization", &a), ("Content-Range", "5-9")],
        b"12345",
    );
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (416, "BLOB_UPLOAD_INVALID")
    );
    let r = srv.request(
        "PATCH",
        &loc,
        &[("Authorization", &a), ("Content-Range", "0-99")],
        b"12345",
    );
    assert_eq!(r.status, 416);
    let r = srv.request(
        "PATCH",
        &loc,
        &[("Authorization", &a), ("Content-Range", "0-4")],
        b"12345",
    );
    assert_eq!((r.status, r.header("Range")), (202, Some("0-4")));

    assert!(!data.join(digest.blob_path()).exists());
    assert_eq!(assert_blobs_whole(&data), 0);
}

#[test]
fn slow_headers_are_cut_off() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = start(tmp.path(), &["--header-timeout-secs", "1"]);
    let mut s = srv.connect();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n").unwrap();
    // The server closes the connection (the socket's read timeout is 60 s,
    // so a server that waited forever would fail this read with an error).
    let mut buf = Vec::new();
    let res = s.read_to_end(&mut buf);
    assert!(res.is_ok(), "server kept the connection open: {res:?}");
    // An idle keep-alive connection is closed too.
    let mut s = srv.connect();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let res = s.read_to_end(&mut buf);
    assert!(res.is_ok(), "server kept the idle connection open: {res:?}");
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 401"));
    // It still serves others.
    assert_eq!(
        srv.request("GET", "/v2/", &[("Authorization", &auth())], b"")
            .status,
        200
    );
}

/// One request to the registry at `to` (another address of the same server).
fn request_to(
    to: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> airlift_integration::firstboot::RawResponse {
    let mut s = std::net::TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\n\
         Content-Length: {}\r\n\r\n",
        auth(),
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s)
}

#[test]
fn abandoned_uploads_are_capped_per_client_and_expire() {
    let tmp = tempfile::tempdir().unwrap();
    let srv = Server::start_on(
        &ServeConfig {
            data: tmp.path().join("data"),
            push_token: true,
            extra: ["--max-uploads-per-client", "3", "--upload-idle-secs", "2"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..ServeConfig::default()
        },
        "[::]:0",
    );
    let port = srv.addr.port();
    let (v4, v6) = (
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
    );
    let uploads = tmp.path().join("data/uploads");

    // One client opens uploads and abandons them: the fourth is refused.
    let mut abandoned = Vec::new();
    for _ in 0..3 {
        let r = request_to(v4, "POST", "/v2/quay.io/a/blobs/uploads/", b"");
        assert_eq!(r.status, 202);
        let loc = r.header("Location").unwrap().to_string();
        assert_eq!(request_to(v4, "PATCH", &loc, b"abc").status, 202);
        abandoned.push(loc);
    }
    let r = request_to(v4, "POST", "/v2/quay.io/a/blobs/uploads/", b"");
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (429, "TOOMANYREQUESTS")
    );
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("max-uploads-per-client 3"), "{text}");

    // Another client still pushes and pulls.
    let blob = b"pushed by another client";
    let d = Digest::sha256_of(blob);
    let r = request_to(
        v6,
        "POST",
        &format!("/v2/quay.io/b/blobs/uploads/?digest={d}"),
        blob,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = request_to(v6, "GET", &format!("/v2/quay.io/b/blobs/{d}"), b"");
    assert_eq!((r.status, &r.body[..]), (200, &blob[..]));

    // Left idle, the abandoned uploads expire with their files.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !files_under(&uploads).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "idle uploads still there after 30 s: {:?}",
            files_under(&uploads)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for loc in &abandoned {
        let r = request_to(v4, "GET", loc, b"");
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN")
        );
    }
    assert_eq!(
        request_to(v4, "POST", "/v2/quay.io/a/blobs/uploads/", b"").status,
        202
    );
}
