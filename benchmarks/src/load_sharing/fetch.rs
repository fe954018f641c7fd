//! A simulated node's HTTP/1.1 client: one keep-alive connection per
//! registry, GETs whose bodies are counted and dropped as they stream in,
//! so 60 nodes pulling 200 MB each never hold a body in memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long a read or a connect may stall before the request fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// One registry as a node sees it: an address and, once used, an open
/// connection.
pub struct Conn {
    addr: SocketAddr,
    open: Option<BufReader<TcpStream>>,
    buf: Vec<u8>,
}

impl Conn {
    /// A registry at `addr`, not yet connected.
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            open: None,
            buf: vec![0; 256 << 10],
        }
    }

    /// `GET path` (with `accept` as the Accept header): the body's length
    /// once it has all been read. A connection that was reused and fails
    /// is retried once on a fresh one (the server may have closed it).
    pub fn get(&mut self, path: &str, accept: Option<&str>) -> Result<u64> {
        let reused = self.open.is_some();
        match self.try_get(path, accept) {
            Err(_) if reused => self.try_get(path, accept),
            r => r,
        }
    }

    fn try_get(&mut self, path: &str, accept: Option<&str>) -> Result<u64> {
        let r = self.request(path, accept);
        if r.is_err() {
            self.open = None;
        }
        r.with_context(|| format!("GET http://{}{path}", self.addr))
    }

    fn request(&mut self, path: &str, accept: Option<&str>) -> Result<u64> {
        if self.open.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, PATIENCE)?;
            s.set_read_timeout(Some(PATIENCE))?;
            s.set_nodelay(true)?;
            self.open = Some(BufReader::with_capacity(64 << 10, s));
        }
        let Some(r) = self.open.as_mut() else {
            bail!("no connection");
        };
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(a) = accept {
            head.push_str(&format!("Accept: {a}\r\n"));
        }
        head.push_str("\r\n");
        r.get_mut().write_all(head.as_bytes())?;
        let (status, length, close) = read_head(r)?;
        if status != 200 {
            bail!("answered {status}");
        }
        let mut body = r.by_ref().take(length);
        let mut got = 0u64;
        loop {
            let n = body.read(&mut self.buf)?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        if got != length {
            bail!("the body ended after {got} of {length} bytes");
        }
        if close {
            self.open = None;
        }
        Ok(got)
    }
}

/// The status, `Content-Length` and whether the server closes after this
/// response, from a response head.
fn read_head(r: &mut impl BufRead) -> Result<(u16, u64, bool)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status line: {:?}", line.trim()))?;
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            bail!("the connection closed inside a response head");
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("content-length") {
                length = v.parse().ok();
            } else if k.eq_ignore_ascii_case("connection") {
                close = v.eq_ignore_ascii_case("close");
            } else if k.eq_ignore_ascii_case("transfer-encoding") {
                bail!("a chunked answer; this client counts Content-Length bodies only");
            }
        }
    }
    let length = length.context("an answer without Content-Length")?;
    Ok((status, length, close))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads() {
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx: y\r\n\r\nbody";
        assert_eq!(read_head(&mut r).unwrap(), (200, 12, false));
        assert_eq!(r, b"body");
        let mut r: &[u8] =
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        assert_eq!(read_head(&mut r).unwrap(), (404, 0, true));
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(read_head(&mut r).is_err());
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\n\r\n";
        assert!(read_head(&mut r).is_err(), "no length");
        let mut r: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n";
        assert!(read_head(&mut r).is_err(), "cut short");
        let mut r: &[u8] = b"garbage\r\n\r\n";
        assert!(read_head(&mut r).is_err());
    }
}
