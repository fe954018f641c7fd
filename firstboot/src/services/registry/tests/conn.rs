//! The plain-HTTP connection driver (`conn`) and TLS over a real loopback
//! socket: keep-alive, HEAD, ranges, sendfile, a push handed to hyper on
//! the same connection, `Connection: close`, HTTP/1.0, oversized heads,
//! slow clients, and the TLS cipher preference.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use super::*;
use crate::services::registry::conn::sendfile;
use crate::services::registry::server::{accept_loop, tls_config};
use crate::services::registry::ClientAddr;

/// Serve `env`'s router on a loopback port (TLS with `tls`).
async fn serve(env: &Env, timeout: Duration, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = env.app.clone();
    tokio::spawn(accept_loop(listener, tls, timeout, 16, move |_, peer| {
        app.clone().layer(axum::Extension(ClientAddr(peer.ip())))
    }));
    addr
}

/// A response as read off the wire.
struct Wire {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one response (bodies by `Content-Length`; none for HEAD).
async fn read_response<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    head: bool,
) -> Option<Wire> {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        if let httparse::Status::Complete(n) = r.parse(buf).unwrap() {
            let status = r.code.unwrap();
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).to_string(),
                    )
                })
                .collect();
            let mut wire = Wire {
                status,
                headers,
                body: Vec::new(),
            };
            let len: usize = if head {
                0
            } else {
                wire.header("content-length").unwrap().parse().unwrap()
            };
            while buf.len() < n + len {
                let mut more = vec![0u8; 1 << 16];
                let got = s.read(&mut more).await.unwrap();
                assert!(got > 0, "the connection closed inside a body");
                buf.extend_from_slice(&more[..got]);
            }
            wire.body = buf[n..n + len].to_vec();
            buf.drain(..n + len);
            return Some(wire);
        }
        let mut more = vec![0u8; 1 << 16];
        let got = s.read(&mut more).await.ok()?;
        if got == 0 {
            return None;
        }
        buf.extend_from_slice(&more[..got]);
    }
}

async fn send<S: AsyncWrite + Unpin>(s: &mut S, text: &str) {
    s.write_all(text.as_bytes()).await.unwrap();
}

/// Whether the server closes the connection (reads end) before `guard`.
async fn closes<S: AsyncRead + Unpin>(s: &mut S, guard: Duration) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(guard, s.read_to_end(&mut rest)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

fn big(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 977) as u8).collect()
}

#[tokio::test]
async fn keep_alive_gets_head_range_then_a_push_handed_to_hyper() {
    let env = Env::new();
    let data = big(600 << 10);
    let d = env.push_blob("a/b", &data).await;
    let (manifest, _) = env.push_image("a/b", "1", "s").await;
    let addr = serve(&env, Duration::from_secs(30), None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    let blob = format!("/v2/a/b/blobs/{d}");

    let before = sendfile::responses();
    send(&mut s, &format!("GET {blob} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the blob came back whole");
    assert!(r.header("date").is_some());
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(
        sendfile::responses() > before,
        "the blob went out with sendfile"
    );

    send(&mut s, &format!("HEAD {blob} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
    let r = read_response(&mut s, &mut buf, true).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("614400"));

    // Pipelined: two ranges in one write, a small one and a large one.
    send(
        &mut s,
        &format!(
            "GET {blob} HTTP/1.1\r\nRange: bytes=10-19\r\n\r\nGET {blob} HTTP/1.1\r\nRange: bytes=1000-\r\n\r\n"
        ),
    )
    .await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/614400"));
    assert!(r.body == data[10..20]);
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 206);
    assert!(r.body == data[1000..]);

    send(&mut s, "GET /v2/a/b/manifests/1 HTTP/1.1\r\n\r\n").await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == manifest);

    send(&mut s, "GET /v2/a/b/manifests/nope HTTP/1.1\r\n\r\n").await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 404);
    assert!(String::from_utf8_lossy(&r.body).contains("MANIFEST_UNKNOWN"));

    // A push with a body: hyper takes the connection and answers it.
    let pushed = b"pushed on a kept-alive connection".to_vec();
    let pd = Digest::sha256_of(&pushed);
    send(
        &mut s,
        &format!(
            "POST /v2/a/b/blobs/uploads/?digest={pd} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n{}",
            pushed.len(),
            String::from_utf8_lossy(&pushed)
        ),
    )
    .await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    send(&mut s, &format!("GET /v2/a/b/blobs/{pd} HTTP/1.1\r\n\r\n")).await;
    let r = read_response(&mut s, &mut buf, false).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == pushed);
}

#[tokio::test]
async fn close_and_http10_end_the_connection_after_one_answer() {
    let env = Env::new();
    let addr = serve(&env, Duration::from_secs(30), None).await;
    for req in [
        "GET /v2/a/b/manifests/1 HTTP/1.1\r\nConnection: close\r\n\r\n",
        "GET /v2/a/b/manifests/1 HTTP/1.0\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        send(&mut s, req).await;
        let r = read_response(&mut s, &mut buf, false).await.unwrap();
        assert_eq!(r.status, 404, "{req}");
        assert_eq!(r.header("connection"), Some("close"), "{req}");
        assert!(closes(&mut s, Duration::from_secs(60)).await, "{req}");
    }
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let env = Env::new();
    let addr = serve(&env, Duration::from_secs(30), None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let huge = "x".repeat(1 << 20);
    // The server may stop reading (and close) before all of it is sent.
    let _ = s
        .write_all(format!("GET /v2/ HTTP/1.1\r\nX-Big: {huge}\r\n\r\n").as_bytes())
        .await;
    let mut buf = Vec::new();
    match read_response(&mut s, &mut buf, false).await {
        None => {}
        Some(r) => assert_eq!(r.status, 431),
    }
}

#[tokio::test]
async fn a_slow_client_is_disconnected() {
    let env = Env::new();
    let addr = serve(&env, Duration::from_secs(1), None).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    send(&mut s, "GET /v2/ HTTP/1.1\r\nHost:").await;
    assert!(closes(&mut s, Duration::from_secs(60)).await);
    // An idle kept-alive connection ends the same way.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    send(&mut s, "GET /v2/a/b/manifests/1 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.unwrap().status,
        404
    );
    assert!(closes(&mut s, Duration::from_secs(60)).await);
}

#[tokio::test]
async fn tls_serves_blobs_with_aes_128_first_whatever_the_client_prefers() {
    let env = Env::new();
    let data = big(700 << 10);
    let d = env.push_blob("a/b", &data).await;
    let dir = tempfile::tempdir().unwrap();
    let material = crate::services::tls::ensure_tls(dir.path(), &[], &[]).unwrap();
    let server = tls_config(&material.cert_path(), &material.key_path()).unwrap();
    let addr = serve(&env, Duration::from_secs(30), Some(Arc::new(server).into())).await;

    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(material.ca_path()).unwrap();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut provider = rustls::crypto::ring::default_provider();
    // The client asks for AES-256 first; the server's order wins.
    provider
        .cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_256_GCM_SHA384);
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    assert_eq!(
        s.get_ref().1.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    let mut buf = Vec::new();
    for _ in 0..2 {
        send(
            &mut s,
            &format!("GET /v2/a/b/blobs/{d} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        )
        .await;
        let r = read_response(&mut s, &mut buf, false).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == data);
    }
}
