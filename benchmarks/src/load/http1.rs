//! One HTTP/1.1 exchange at a time on a kept-alive connection: the
//! request pre-rendered once, the response head parsed with httparse, the
//! body read to its Content-Length and counted (kept only when asked,
//! for the small documents a node reads).

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::{Conn, Endpoint, TlsInfo};

/// Read buffer per connection: large reads keep the client cheap.
const BUFFER: usize = 256 << 10;
/// Response heads larger than this are refused.
const MAX_HEAD: usize = 64 << 10;
/// Headers parsed per response.
const MAX_HEADERS: usize = 48;

/// A request, rendered once and sent many times.
#[derive(Debug, Clone)]
pub struct Request {
    bytes: Vec<u8>,
    /// HEAD: the response has no body whatever its Content-Length says.
    head_only: bool,
}

impl Request {
    /// `METHOD path HTTP/1.1` with `Host` and `headers`.
    pub fn new(method: &str, path: &str, host: &str, headers: &[(&str, &str)]) -> Request {
        let mut s =
            format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: airlift-bench\r\n");
        for (k, v) in headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        Request {
            bytes: s.into_bytes(),
            head_only: method.eq_ignore_ascii_case("HEAD"),
        }
    }

    /// The bytes sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (refused: the servers measured send
    /// lengths).
    pub chunked: bool,
    /// The server will close the connection after this response.
    pub close: bool,
    /// Bytes of the head, blank line included.
    pub len: usize,
}

/// Parse a response head from the start of `buf`: `None` while it is
/// incomplete, an error when it is not HTTP/1.1.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf).context("an unparsable HTTP response head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let mut head = Head {
        status: r.code.context("a response without a status")?,
        content_length: None,
        chunked: false,
        close: r.version == Some(0),
        len,
    };
    for h in r.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("");
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse()
                .context("a Content-Length that is not a number")?;
            head.content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some(head))
}

/// What one exchange returned.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The Content-Length header (for HEAD: what GET would send).
    pub content_length: Option<u64>,
    /// Body bytes received.
    pub body_len: u64,
    /// The body, when asked to keep it.
    pub body: Vec<u8>,
    /// The connection cannot be reused.
    pub close: bool,
}

/// A connection with its read buffer.
pub struct Exchange {
    conn: Conn,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// What the TLS handshake settled on (`None` for plain HTTP).
    pub tls: Option<TlsInfo>,
}

impl Exchange {
    /// Connect to `endpoint`.
    pub async fn open(endpoint: &Endpoint) -> Result<Exchange> {
        let (conn, tls) = endpoint.connect().await?;
        Ok(Exchange {
            conn,
            buf: vec![0; BUFFER],
            start: 0,
            end: 0,
            tls,
        })
    }

    /// Send `req` and read its whole response. Body bytes are added to
    /// `counted` as they arrive; the body is returned when `keep`.
    pub async fn send(
        &mut self,
        req: &Request,
        counted: &AtomicU64,
        keep: bool,
    ) -> Result<Response> {
        self.conn
            .write_all(req.bytes())
            .await
            .context("sending a request")?;
        // TLS: rustls may still hold the record when the socket was full;
        // without a flush the server never sees the request.
        self.conn.flush().await.context("sending a request")?;
        let head = self.read_head().await?;
        let no_body =
            req.head_only || head.status == 204 || head.status == 304 || head.status < 200;
        let length = match (no_body, head.content_length, head.chunked) {
            (true, _, _) => 0,
            (false, Some(n), false) => n,
            (false, _, true) => bail!("a chunked response (status {}): not measured", head.status),
            (false, None, false) => {
                bail!("a response (status {}) without Content-Length", head.status)
            }
        };
        let mut body = Vec::new();
        let mut left = length;
        let buffered = (self.end - self.start).min(left as usize);
        if keep {
            body.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        }
        self.start += buffered;
        left -= buffered as u64;
        counted.fetch_add(buffered as u64, Ordering::Relaxed);
        while left > 0 {
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = self
                .conn
                .read(&mut self.buf[..want])
                .await
                .context("reading a body")?;
            if n == 0 {
                bail!("the server closed the connection {left} bytes short of the body");
            }
            if keep {
                body.extend_from_slice(&self.buf[..n]);
            }
            left -= n as u64;
            counted.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(Response {
            status: head.status,
            content_length: head.content_length,
            body_len: length,
            body,
            close: head.close,
        })
    }

    /// Read until a whole head is buffered; consume it.
    async fn read_head(&mut self) -> Result<Head> {
        loop {
            if let Some(head) = parse_head(&self.buf[self.start..self.end])? {
                self.start += head.len;
                return Ok(head);
            }
            if self.end - self.start >= MAX_HEAD {
                bail!("a response head over {MAX_HEAD} bytes");
            }
            if self.end == self.buf.len() || self.start == self.end {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let n = self
                .conn
                .read(&mut self.buf[self.end..])
                .await
                .context("reading a response head")?;
            if n == 0 {
                bail!("the server closed the connection before a response");
            }
            self.end += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests() {
        let r = Request::new(
            "GET",
            "/v2/a/manifests/1",
            "127.0.0.1:5000",
            &[("Accept", "x/y")],
        );
        assert_eq!(
            std::str::from_utf8(r.bytes()).unwrap(),
            "GET /v2/a/manifests/1 HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: airlift-bench\r\nAccept: x/y\r\n\r\n"
        );
        assert!(!r.head_only);
        assert!(Request::new("HEAD", "/", "h", &[]).head_only);
    }

    #[test]
    fn parses_heads() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\nDocker-Content-Digest: sha256:x\r\n\r\nbody";
        let h = parse_head(raw).unwrap().unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                content_length: Some(42),
                chunked: false,
                close: false,
                len: raw.len() - 4,
            }
        );
        assert_eq!(parse_head(&raw[..20]).unwrap(), None, "a partial head");
        let c = parse_head(
            b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(c.chunked && c.close && c.status == 404 && c.content_length.is_none());
        let old = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(old.close, "HTTP/1.0 closes unless told otherwise");
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n").is_err());
    }
}
