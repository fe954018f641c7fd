//! Opening a connection to a server under test: TCP (no Nagle), then a
//! TLS handshake verified against the bench CA when the endpoint is TLS.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::TlsConnector;

/// A byte stream to a server: TCP or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An open connection.
pub type Conn = Box<dyn Stream>;

/// Where to connect and how.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// TLS with this configuration (its roots: the bench CA); plain
    /// HTTP when `None`.
    pub tls: Option<Arc<ClientConfig>>,
}

/// What a TLS handshake settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1_3`, ...
    pub version: String,
    /// `TLS13_AES_128_GCM_SHA256`, ...
    pub suite: String,
    /// The key exchange group (`X25519`, ...).
    pub group: String,
    /// The ALPN protocol, if the server chose one.
    pub alpn: Option<String>,
}

impl TlsInfo {
    /// One line for the notes: `TLSv1_3 TLS13_AES_128_GCM_SHA256 (X25519, ALPN http/1.1)`.
    pub fn describe(&self) -> String {
        let alpn = self.alpn.as_deref().unwrap_or("none");
        format!(
            "{} {} ({}, ALPN {alpn})",
            self.version, self.suite, self.group
        )
    }
}

impl Endpoint {
    /// Connect; for TLS also handshake and report what was negotiated.
    pub async fn connect(&self) -> Result<(Conn, Option<TlsInfo>)> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let Some(config) = &self.tls else {
            return Ok((Box::new(tcp), None));
        };
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .with_context(|| {
                format!(
                    "TLS handshake with {} (verified against the bench CA)",
                    self.addr
                )
            })?;
        let c = tls.get_ref().1;
        let info = TlsInfo {
            version: c
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "unknown".into()),
            suite: c
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_else(|| "unknown".into()),
            group: c
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name()))
                .unwrap_or_else(|| "unknown".into()),
            alpn: c
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        };
        Ok((Box::new(tls), Some(info)))
    }
}
