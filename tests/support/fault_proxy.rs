//! An HTTP proxy on 127.0.0.1 in front of a real registry that injects
//! faults: 503s, corrupted blob bodies, a lying `Docker-Content-Digest`,
//! a wrong status on blob `HEAD`s, an endless chunked manifest, a body
//! that stalls half-way, or a Bearer-token gate with its own
//! token endpoint (the Docker token flow, which `docker-registry` cannot
//! do without a JWT issuer). Requests pass with their method, headers and
//! body (a chunked body is sent on with a length), one per connection
//! (`Connection: close`); upstream is spoken to as HTTP/1.0 so response
//! bodies are never chunked.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// What the proxy does to traffic.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer the first `first` requests with 503.
    Unavailable { first: usize },
    /// Flip one byte in every blob body.
    CorruptBlobs,
    /// Send a wrong `Docker-Content-Digest` with manifests.
    WrongDigestHeader,
    /// Answer a blob `HEAD` that found the blob with this status line
    /// instead of `200 OK` (e.g. `"202 Accepted"`).
    BlobHeadStatus(&'static str),
    /// Answer manifest `GET`s with an endless chunked body (no length),
    /// cut at 256 MiB or when the client goes away.
    EndlessManifest,
    /// For the first `first` `GET`s whose path contains `path`, send the
    /// headers and half the body, then stall (hold the connection idle
    /// for a minute).
    Stall { path: &'static str, first: usize },
    /// Demand `Authorization: Bearer TOKEN`; `GET /token` hands TOKEN out
    /// for Basic `user:password`.
    Bearer {
        user: String,
        password: String,
        token: String,
    },
}

/// A running proxy; stops accepting when dropped.
pub struct FaultProxy {
    port: u16,
    served: Arc<AtomicUsize>,
    faults: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Proxy to `upstream` (`127.0.0.1:PORT`) with `fault`.
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy");
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let faults = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, f, st) = (served.clone(), faults.clone(), stop.clone());
        let upstream = upstream.to_string();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let n = s.fetch_add(1, Ordering::SeqCst);
                let (up, fault, f) = (upstream.clone(), fault.clone(), f.clone());
                let port = port;
                thread::spawn(move || {
                    let _ = handle(conn, &up, &fault, n, &f, port);
                });
            }
        });
        FaultProxy {
            port,
            served,
            faults,
            stop,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests received.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    /// Responses the fault changed (503s sent, bodies corrupted, 401s, ...).
    pub fn faults(&self) -> usize {
        self.faults.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        if conn.read(&mut byte)? == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("GET").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Request {
        method,
        path,
        headers,
    })
}

/// The request body: `Content-Length` bytes, or a chunked body joined;
/// `None` when the request has neither.
fn read_body(conn: &mut TcpStream, req: &Request) -> std::io::Result<Option<Vec<u8>>> {
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if !chunked {
        let Some(len) = req.header("content-length") else {
            return Ok(None);
        };
        let len: usize = len.parse().map_err(|_| bad("content-length"))?;
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body)?;
        return Ok(Some(body));
    }
    let mut body = Vec::new();
    loop {
        let line = read_line(conn)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("chunk size"))?;
        if size == 0 {
            // Trailer fields, up to the empty line.
            while !read_line(conn)?.is_empty() {}
            return Ok(Some(body));
        }
        let start = body.len();
        body.resize(start + size, 0);
        conn.read_exact(&mut body[start..])?;
        read_line(conn)?;
    }
}

fn read_line(conn: &mut TcpStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Err(bad("body ended early"));
        }
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("bad request {what}"),
    )
}

/// Hop-by-hop and framing headers the proxy sets itself.
fn forwarded(name: &str) -> bool {
    ![
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "content-length",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    respond_len(conn, status, headers, body, body.len() as u64);
}

/// Respond declaring `len` bytes (a `HEAD` answer declares the length
/// of the body it leaves out).
fn respond_len(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    len: u64,
) {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.write_all(body);
}

fn handle(
    mut conn: TcpStream,
    upstream: &str,
    fault: &Fault,
    n: usize,
    faults: &AtomicUsize,
    port: u16,
) -> std::io::Result<()> {
    let req = read_request(&mut conn)?;
    let req_body = read_body(&mut conn, &req)?;
    match fault {
        Fault::Unavailable { first } if n < *first => {
            faults.fetch_add(1, Ordering::SeqCst);
            respond(&mut conn, "503 Service Unavailable", &[], b"try later");
            return Ok(());
        }
        Fault::Bearer {
            user,
            password,
            token,
        } => {
            if req.path.starts_with("/token") {
                let want = format!(
                    "Basic {}",
                    crate::registry::base64_encode(format!("{user}:{password}").as_bytes())
                );
                if req.header("authorization") == Some(want.as_str())
                    && req.path.contains("scope=repository")
                    && req.path.contains("service=fault-proxy")
                {
                    let body = format!("{{\"token\":\"{token}\"}}");
                    respond(
                        &mut conn,
                        "200 OK",
                        &[("Content-Type", "application/json".into())],
                        body.as_bytes(),
                    );
                } else {
                    faults.fetch_add(1, Ordering::SeqCst);
                    respond(&mut conn, "401 Unauthorized", &[], b"bad credentials");
                }
                return Ok(());
            }
            if req.header("authorization") != Some(format!("Bearer {token}").as_str()) {
                faults.fetch_add(1, Ordering::SeqCst);
                let challenge = format!(
                    "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fault-proxy\",scope=\"repository:x:pull\""
                );
                respond(
                    &mut conn,
                    "401 Unauthorized",
                    &[("WWW-Authenticate", challenge)],
                    b"{}",
                );
                return Ok(());
            }
        }
        Fault::EndlessManifest if req.method == "GET" && req.path.contains("/manifests/") => {
            faults.fetch_add(1, Ordering::SeqCst);
            endless(&mut conn);
            return Ok(());
        }
        _ => {}
    }

    // Forward as HTTP/1.0 and read the whole answer.
    let mut up = TcpStream::connect(upstream)?;
    let mut fwd = format!(
        "{} {} HTTP/1.0\r\nHost: {upstream}\r\n",
        req.method, req.path
    );
    for (k, v) in req.headers.iter().filter(|(k, _)| forwarded(k)) {
        fwd.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = &req_body {
        fwd.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    fwd.push_str("\r\n");
    up.write_all(fwd.as_bytes())?;
    up.write_all(req_body.as_deref().unwrap_or_default())?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(split);
    let head = String::from_utf8_lossy(head).into_owned();
    let mut body = body.to_vec();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let mut status = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| "502 Bad Gateway".into());
    let mut headers: Vec<(&str, String)> = Vec::new();
    let mut declared_len = 0;
    let kept: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, v)| {
            if k.eq_ignore_ascii_case("content-length") {
                declared_len = v.parse().unwrap_or(0);
            }
            !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection")
        })
        .collect();
    let ok = status.starts_with("200");
    let is_head = req.method == "HEAD";
    match fault {
        Fault::BlobHeadStatus(to) if ok && is_head && req.path.contains("/blobs/") => {
            faults.fetch_add(1, Ordering::SeqCst);
            status = to.to_string();
        }
        Fault::CorruptBlobs if ok && req.path.contains("/blobs/") && !body.is_empty() => {
            faults.fetch_add(1, Ordering::SeqCst);
            let mid = body.len() / 2;
            body[mid] ^= 0x01;
        }
        _ => {}
    }
    for (k, v) in &kept {
        let v = match fault {
            Fault::WrongDigestHeader
                if ok
                    && k.eq_ignore_ascii_case("docker-content-digest")
                    && req.path.contains("/manifests/") =>
            {
                faults.fetch_add(1, Ordering::SeqCst);
                format!("sha256:{}", "0".repeat(64))
            }
            _ => v.clone(),
        };
        headers.push((k.as_str(), v));
    }
    let len = if is_head {
        declared_len
    } else {
        body.len() as u64
    };
    if let Fault::Stall { path, first } = fault {
        if ok && req.method == "GET" && req.path.contains(path) && !body.is_empty() {
            let n = faults.fetch_add(1, Ordering::SeqCst);
            if n < *first {
                respond_len(&mut conn, &status, &headers, &body[..body.len() / 2], len);
                let _ = conn.flush();
                thread::sleep(std::time::Duration::from_secs(60));
                return Ok(());
            }
            faults.fetch_sub(1, Ordering::SeqCst);
        }
    }
    respond_len(&mut conn, &status, &headers, &body, len);
    Ok(())
}

/// A `200` manifest answer whose chunked body never ends (JSON
/// whitespace), cut at 256 MiB or when a write fails.
fn endless(conn: &mut TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut chunk = b"10000\r\n".to_vec();
    chunk.extend(std::iter::repeat_n(b' ', 0x10000));
    chunk.extend_from_slice(b"\r\n");
    for _ in 0..(256 << 20) / 0x10000 {
        if conn.write_all(&chunk).is_err() {
            return;
        }
    }
}
