//! Raw HTTP/1.1 over one `Connection: close` socket: for tests that need
//! byte-level control of what a registry is sent, for readiness checks,
//! and for the first-boot benchmark's polls of what host0 serves (the
//! serving benchmark has its own load client, `airlift_bench::load`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result};

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The spec error code of an error body.
    pub fn error_code(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// A socket to `addr` with a generous read timeout.
pub fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .with_context(|| format!("setting a read timeout on the socket to {addr}"))?;
    Ok(s)
}

/// One request on a fresh connection (`Connection: close`). The server
/// may answer (and close) before the whole body is sent.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<RawResponse> {
    let mut s = connect(addr)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())
        .with_context(|| format!("sending {method} {path} to {addr}"))?;
    let _ = s.write_all(body);
    let raw = read_all(&mut s);
    parse(&raw).with_context(|| {
        format!(
            "{method} {path} at {addr}: no HTTP response in {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Read a whole `Connection: close` response; panics without one.
pub fn read_response(s: &mut TcpStream) -> RawResponse {
    let raw = read_all(s);
    parse(&raw).unwrap_or_else(|| {
        panic!(
            "no HTTP response head in {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// What the peer sent until it closed (or the read failed: a server
/// may reset the connection after answering).
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    raw
}

/// Parse a whole response, the body de-chunked when it is chunked.
pub fn parse(raw: &[u8]) -> Option<RawResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + size]);
        b = &b[pos + 2 + size + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let r = parse(b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:ab\r\nX: y\r\n\r\nbody")
            .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("docker-content-digest"), Some("sha256:ab"));
        assert_eq!(r.body, b"body");
        assert!(parse(b"garbage").is_none());
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!(chunked.body, b"abc");
    }
}
