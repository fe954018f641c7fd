//! An HTTP proxy on 127.0.0.1 in front of a real registry that injects
//! faults: 503s, corrupted blob bodies, a lying `Docker-Content-Digest`,
//! or a Bearer-token gate with its own token endpoint (the Docker token
//! flow, which `docker-registry` cannot do without a JWT issuer).
//! One request per connection (`Connection: close`), upstream spoken to
//! as HTTP/1.0 so bodies are never chunked.

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
    let path = first.split(' ').nth(1).unwrap_or("/").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Request { path, headers })
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
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
        _ => {}
    }

    // Forward as HTTP/1.0 and read the whole answer.
    let mut up = TcpStream::connect(upstream)?;
    let mut fwd = format!("GET {} HTTP/1.0\r\nHost: {upstream}\r\n", req.path);
    if let Some(a) = req.header("accept") {
        fwd.push_str(&format!("Accept: {a}\r\n"));
    }
    fwd.push_str("\r\n");
    up.write_all(fwd.as_bytes())?;
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
    let status = lines
        .next()
        .and_then(|l| l.split_once(' '))
        .map(|(_, s)| s.to_string())
        .unwrap_or_else(|| "502 Bad Gateway".into());
    let mut headers: Vec<(&str, String)> = Vec::new();
    let kept: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("connection")
        })
        .collect();
    let ok = status.starts_with("200");
    match fault {
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
    respond(&mut conn, &status, &headers, &body);
    Ok(())
}
