//! Serving the router on a socket: plain HTTP or rustls TLS, HTTP/1.1
//! and HTTP/2, with a header read timeout (which also ends idle
//! keep-alive connections), a TLS handshake timeout and a cap on
//! connections served at once.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tower::util::MapRequest;

use super::conn::{self, Routes};
use super::{router, Registry, ServeOptions};

/// Bytes of TLS records a connection may queue before writing them.
const TLS_SEND_BUFFER: usize = 256 << 10;

/// Load a certificate chain and key into a rustls server config.
pub fn tls_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing the TLS certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS key {}", key.display()))?;
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .sort_by_key(|s| suite_rank(s.suite()));
    let provider = Arc::new(provider);
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("setting up TLS")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("the key does not fit the certificate {}", cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // The server's order decides, as Go's crypto/tls does on CPUs with
    // AES instructions: AES-128-GCM first. It and AES-256-GCM are both
    // secure (128-bit keys are out of reach of brute force); 128 takes
    // 10 AES rounds a block instead of 14, and bulk encryption is most
    // of what serving a blob over TLS costs.
    config.ignore_client_order = true;
    Ok(config)
}

/// The server's preference among cipher suites: TLS 1.3 before 1.2, and
/// within each AES-128-GCM, then AES-256-GCM, then ChaCha20-Poly1305.
fn suite_rank(suite: rustls::CipherSuite) -> u8 {
    use rustls::CipherSuite as C;
    match suite {
        C::TLS13_AES_128_GCM_SHA256 => 0,
        C::TLS13_AES_256_GCM_SHA384 => 1,
        C::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 3,
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 4,
        _ => 5,
    }
}

/// Open storage, bind, print `listening on <scheme>://<addr>` to stdout
/// and tell systemd `READY=1` once the socket is bound, and serve until
/// the process is stopped.
pub async fn serve(opts: ServeOptions) -> Result<()> {
    let tls = match (&opts.tls_cert, &opts.tls_key) {
        (Some(c), Some(k)) => Some(TlsAcceptor::from(Arc::new(tls_config(c, k)?))),
        _ => None,
    };
    let registry = Arc::new(Registry::open(&opts)?);
    if let Some(what) = registry.store.shared_index() {
        registry
            .store
            .refresh()
            .await
            .with_context(|| format!("loading the index from {what}"))?;
        tracing::info!("index loaded from {what}");
        let r = Arc::clone(&registry);
        tokio::spawn(async move { r.store.keep_in_sync().await });
    }
    let listener = TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("registry listening on {scheme}://{addr}");
    println!("listening on {scheme}://{addr}");
    if let Err(e) = crate::sys::notify::ready() {
        tracing::warn!("{e:#}");
    }
    let header_timeout = Duration::from_secs(opts.header_timeout_secs);
    let app = router(registry);
    accept_loop(
        listener,
        tls,
        header_timeout,
        opts.max_connections,
        |_, peer| {
            app.clone()
                .layer(axum::Extension(super::ClientAddr(peer.ip())))
        },
    )
    .await
}

/// Accept connections until the listener fails for good: at most
/// `max_connections` at once, each served by [`serve_connection`] with
/// the service `make_service` builds for it (from the socket and the
/// peer address). Transient accept errors are logged and retried.
pub async fn accept_loop<F, S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    max_connections: usize,
    mut make_service: F,
) -> Result<()>
where
    F: FnMut(&TcpStream, SocketAddr) -> S,
    S: Routes,
    S::Future: Send + 'static,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
    loop {
        let permit = slots
            .clone()
            .acquire_owned()
            .await
            .context("the connection limiter closed")?;
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let service = make_service(&sock, peer);
        tokio::spawn(serve_connection(
            sock,
            service,
            tls.clone(),
            header_timeout,
            peer,
            permit,
        ));
    }
}

/// Serve one accepted connection: TLS handshake (bounded by
/// `header_timeout`) when `tls` is set, then HTTP/1.1 or HTTP/2 with a
/// header read timeout that also ends idle keep-alive connections. A
/// plain connection starts in the [`conn`] driver (bodiless GET/HEAD,
/// blobs with sendfile), which hands it to hyper for anything else. The
/// permit is held until the connection ends.
pub async fn serve_connection<S>(
    mut sock: TcpStream,
    service: S,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) where
    S: Routes,
    S::Future: Send + 'static,
{
    let _permit = permit;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout);
    let result = match tls {
        None => match conn::drive(&mut sock, &service, header_timeout).await {
            conn::Outcome::Closed => return,
            conn::Outcome::Handoff(read) => {
                let io = TokioIo::new(conn::Rewind::new(read, sock));
                builder.serve_connection(io, to_hyper(service)).await
            }
        },
        Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(sock)).await {
            Ok(Ok(mut stream)) => {
                // Room for a whole body chunk (256 KiB) of records, so a
                // write is one large send instead of several.
                stream.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
                builder
                    .serve_connection(TokioIo::new(stream), to_hyper(service))
                    .await
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, "TLS handshake failed: {e}");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
    };
    if let Err(e) = result {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// `service` as hyper calls it (its request bodies boxed as axum's).
fn to_hyper<S>(service: S) -> ToHyper<S>
where
    S: Routes,
{
    let into_body: fn(HyperRequest) -> AxumRequest = |req| req.map(axum::body::Body::new);
    TowerToHyperService::new(MapRequest::new(service, into_body))
}

type HyperRequest = hyper::Request<hyper::body::Incoming>;
type ToHyper<S> = TowerToHyperService<MapRequest<S, fn(HyperRequest) -> AxumRequest>>;
type AxumRequest = hyper::Request<axum::body::Body>;
