//! The load client against a tiny in-test server (plain and TLS): it
//! keeps connections alive, counts bodies, verifies the certificate
//! against the bench CA and refuses one from another CA.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::{repeat, Endpoint, Exchange, Request};
use crate::tls_files::{self, Material};

/// Answer every request on every connection with a 5-byte body (none
/// for HEAD, a 404 for paths under /missing), until the test ends.
async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(a) => {
                    if let Ok(s) = a.accept(tcp).await {
                        answer(s).await;
                    }
                }
                None => answer(tcp).await,
            }
        });
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let missing = buf.starts_with(b"GET /missing");
            let head = buf.starts_with(b"HEAD ");
            buf.drain(..end + 4);
            let reply: &[u8] = if missing {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            } else if head {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            };
            if s.write_all(reply).await.is_err() {
                return;
            }
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn acceptor(m: &Material) -> TlsAcceptor {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(m.key_der.clone()));
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(m.cert_der.clone())], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

async fn start(tls: Option<TlsAcceptor>) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, tls));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_alive_and_counts_bodies_over_plain_http() {
    let addr = start(None).await;
    let ep = Endpoint { addr, tls: None };
    let mut ex = Exchange::open(&ep).await.unwrap();
    assert!(ex.tls.is_none());
    let counted = AtomicU64::new(0);
    let get = Request::new("GET", "/x", "h", &[]);
    for _ in 0..3 {
        let r = ex.send(&get, &counted, true).await.unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.close),
            (200, &b"hello"[..], false)
        );
    }
    assert_eq!(counted.into_inner(), 15, "three bodies on one connection");
    let head = ex
        .send(
            &Request::new("HEAD", "/x", "h", &[]),
            &AtomicU64::new(0),
            true,
        )
        .await
        .unwrap();
    assert_eq!(
        (head.content_length, head.body_len),
        (Some(5), 0),
        "HEAD has no body"
    );
    // The stream is still in step after the HEAD.
    assert_eq!(
        ex.send(&get, &AtomicU64::new(0), true).await.unwrap().body,
        b"hello"
    );

    let t = repeat::run(&ep, &get, 2, Duration::from_millis(300))
        .await
        .unwrap();
    assert!(t.requests > 0 && t.errors == 0, "{t:?}");
    assert_eq!(t.bytes, 5 * t.requests, "every body counted once");
    let missing = Request::new("GET", "/missing", "h", &[]);
    let t = repeat::run(&ep, &missing, 1, Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(t.requests, 0);
    assert!(
        t.errors > 0 && t.first_error.as_deref() == Some("status 404"),
        "{t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_tls_against_the_bench_ca_only() {
    let m = tls_files::generate().unwrap();
    let addr = start(Some(acceptor(&m))).await;
    let good = Endpoint {
        addr,
        tls: Some(tls_files::client_config(&m.ca_der).unwrap()),
    };
    let mut ex = Exchange::open(&good).await.unwrap();
    let info = ex.tls.clone().expect("TLS parameters");
    assert_eq!(info.version, "TLSv1_3");
    assert_eq!(info.alpn, None, "this server picks no protocol");
    // rustls follows the client's order: Go clients' first choice.
    assert_eq!(info.suite, "TLS13_AES_128_GCM_SHA256");
    let r = ex
        .send(
            &Request::new("GET", "/x", "h", &[]),
            &AtomicU64::new(0),
            true,
        )
        .await
        .unwrap();
    assert_eq!(r.body, b"hello");
    let t = repeat::run(
        &good,
        &Request::new("GET", "/x", "h", &[]),
        2,
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    assert!(
        t.requests > 0 && t.errors == 0 && t.tls == Some(info),
        "{t:?}"
    );

    let other = tls_files::generate().unwrap();
    let bad = Endpoint {
        addr,
        tls: Some(tls_files::client_config(&other.ca_der).unwrap()),
    };
    let e = Exchange::open(&bad)
        .await
        .err()
        .expect("a certificate from another CA is refused");
    assert!(format!("{e:#}").contains("TLS handshake"), "{e:#}");
}
