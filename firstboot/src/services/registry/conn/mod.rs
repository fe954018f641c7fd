//! A small HTTP/1.1 connection driver in front of hyper, for plain-HTTP
//! connections. It answers bodiless `GET`/`HEAD` requests itself, through
//! the same router hyper calls (same auth, routing, handlers, errors and
//! request extensions), and writes the response itself so a blob file's
//! range ([`FileRange`] in the response's extensions) goes out with
//! `sendfile(2)` instead of being copied through the process; other
//! bodies are written as they are (`Content-Length` or chunked).
//!
//! Anything else (a request with a body, HTTP/2, `Upgrade`, `Expect`,
//! an unusual or oversized head) hands the connection, with the bytes
//! already read, to hyper ([`Outcome::Handoff`], [`Rewind`]), which then
//! serves it as it would have from the start. The limits stay: the
//! header read timeout (which also ends idle keep-alive connections),
//! `Connection: close`, HTTP/1.0 closing after one answer, HEAD without
//! a body; an error in the middle of a body closes the connection.

pub mod head;
pub mod response;
mod rewind;
pub mod sendfile;

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{Method, Request, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;

use super::store::file_read::FileRange;
use head::Parse;
use response::{Context, Framing};

pub use rewind::Rewind;

/// A head longer than this goes to hyper (which answers 431 past its own
/// limit).
pub const MAX_HEAD: usize = 16 << 10;

/// Body bytes written together with the head in one write.
const COALESCE: usize = 64 << 10;

/// How a connection left the driver.
#[derive(Debug)]
pub enum Outcome {
    /// Done: closed by either side, timed out, or failed.
    Closed,
    /// hyper serves the rest, starting with these bytes.
    Handoff(Bytes),
}

/// What the driver serves: the registry's router (or an app in front of it).
pub trait Routes:
    tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> Routes for S where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Serve requests on `sock` until it closes or a request needs hyper.
pub async fn drive<S: Routes>(
    sock: &mut TcpStream,
    service: &S,
    header_timeout: Duration,
) -> Outcome
where
    S::Future: Send,
{
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let parsed = match read_head(sock, &mut buf, header_timeout).await {
            Next::Request(p) => p,
            Next::Handoff => return Outcome::Handoff(buf.freeze()),
            Next::Closed => return Outcome::Closed,
        };
        match answer(sock, service, parsed).await {
            Ok(true) => {}
            Ok(false) => return Outcome::Closed,
            Err(e) => {
                tracing::debug!("connection ended: {e}");
                return Outcome::Closed;
            }
        }
    }
}

/// What [`read_head`] found (on the stack; see [`Parse`]).
#[allow(clippy::large_enum_variant)]
enum Next {
    Request(head::Parsed),
    Handoff,
    Closed,
}

/// Read until `buf` starts with a whole head, within `timeout`.
async fn read_head(sock: &mut TcpStream, buf: &mut BytesMut, timeout: Duration) -> Next {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if !buf.is_empty() {
            match head::parse(buf) {
                Parse::Request(p, n) => {
                    let _ = buf.split_to(n);
                    return Next::Request(p);
                }
                Parse::Handoff => return Next::Handoff,
                Parse::Partial if buf.len() >= MAX_HEAD => return Next::Handoff,
                Parse::Partial => {}
            }
        }
        buf.reserve(4096);
        match tokio::time::timeout_at(deadline, sock.read_buf(buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Next::Closed,
            Ok(Ok(_)) => {}
        }
    }
}

/// Answer one request; whether the connection stays open.
async fn answer<S: Routes>(
    sock: &mut TcpStream,
    service: &S,
    parsed: head::Parsed,
) -> std::io::Result<bool>
where
    S::Future: Send,
{
    let (parts, ()) = parsed.request.into_parts();
    let cx_method = parts.method.clone();
    let version = parts.version;
    let req = Request::from_parts(parts, Body::empty());
    let resp = match service.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (mut parts, body) = resp.into_parts();
    let file = parts.extensions.remove::<FileRange>();
    let cx = Context {
        exact: body.size_hint().exact(),
        method: cx_method,
        version,
        keep_alive: parsed.keep_alive,
    };
    let (framing, keep) = response::framing(&parts, &cx);
    let mut out = Vec::with_capacity(512);
    response::encode(&parts, &cx, framing, keep, &mut out);
    match (framing, file) {
        (Framing::None, _) => sock.write_all(&out).await?,
        (Framing::Length(n), Some(range)) if n == range.len && cx.method == Method::GET => {
            sock.write_all(&out).await?;
            sendfile::send(sock, &range).await?;
        }
        (framing, _) => write_body(sock, out, body, framing).await?,
    }
    Ok(keep)
}

/// Write `head` and then `body` framed as `framing`; a body that breaks
/// or does not match its length is an error (the caller closes).
async fn write_body(
    sock: &mut TcpStream,
    mut out: Vec<u8>,
    body: Body,
    framing: Framing,
) -> std::io::Result<()> {
    let mut stream = body.into_data_stream();
    let mut sent = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        if chunk.is_empty() {
            continue;
        }
        sent += chunk.len() as u64;
        match framing {
            Framing::Chunked => {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                push(sock, &mut out, &chunk).await?;
                out.extend_from_slice(b"\r\n");
            }
            _ => push(sock, &mut out, &chunk).await?,
        }
        if let Framing::Length(n) = framing {
            if sent > n {
                return Err(std::io::Error::other("the body is longer than its length"));
            }
        }
    }
    if framing == Framing::Chunked {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    sock.write_all(&out).await?;
    match framing {
        Framing::Length(n) if sent != n => {
            Err(std::io::Error::other("the body is shorter than its length"))
        }
        _ => Ok(()),
    }
}

/// Add `chunk` to the pending bytes in `out`, writing them when large.
async fn push(sock: &mut TcpStream, out: &mut Vec<u8>, chunk: &Bytes) -> std::io::Result<()> {
    if out.len() + chunk.len() <= COALESCE {
        out.extend_from_slice(chunk);
        return Ok(());
    }
    if !out.is_empty() {
        sock.write_all(out).await?;
        out.clear();
    }
    sock.write_all(chunk).await
}
