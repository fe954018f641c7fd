//! Running `airlift-firstboot serve` for tests: start it on a free port,
//! wait until it answers, kill it (gently or with SIGKILL), and speak raw
//! HTTP/1.1 to it when a test needs byte-level control.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::registry::write_htpasswd;
use crate::tools::binary;

/// The push token the helpers configure.
pub const TOKEN: &str = "airlift-test-token-0123456789";

/// How to start the registry.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    pub data: PathBuf,
    pub layers: Vec<PathBuf>,
    /// TLS certificate and key (PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Write [`TOKEN`] to a file beside `data` and pass `--push-token-file`.
    pub push_token: bool,
    /// A user and password allowed to push: written as a bcrypt htpasswd
    /// file beside `data` and passed as `--htpasswd`.
    pub htpasswd: Option<(String, String)>,
    pub allow_delete: bool,
    /// Extra arguments (e.g. timeouts).
    pub extra: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

/// A running `airlift-firstboot serve`.
pub struct Server {
    child: Child,
    /// The bound address.
    pub addr: SocketAddr,
    /// stderr of the server.
    pub log: PathBuf,
    pub config: ServeConfig,
}

impl Server {
    /// Start on 127.0.0.1 with a free port; returns once `/v2/` answers.
    pub fn start(config: &ServeConfig) -> Server {
        Server::start_on(config, "127.0.0.1:0")
    }

    /// Start on a given address (to restart on the same port).
    pub fn start_on(config: &ServeConfig, listen: &str) -> Server {
        let mut args: Vec<OsString> = vec![
            "serve".into(),
            "--listen".into(),
            listen.into(),
            "--data".into(),
            config.data.clone().into(),
        ];
        for l in &config.layers {
            args.push("--layer".into());
            args.push(l.into());
        }
        if let Some((c, k)) = &config.tls {
            args.extend(["--tls-cert".into(), c.into(), "--tls-key".into(), k.into()]);
        }
        if config.push_token {
            let p = token_path(&config.data);
            std::fs::write(&p, TOKEN).expect("writing the push token");
            args.extend(["--push-token-file".into(), p.into()]);
        }
        if let Some((user, password)) = &config.htpasswd {
            let p = config.data.with_extension("htpasswd");
            write_htpasswd(&p, user, password);
            args.extend(["--htpasswd".into(), p.into()]);
        }
        if config.allow_delete {
            args.push("--allow-delete".into());
        }
        args.extend(config.extra.iter().map(OsString::from));
        let log = config.data.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("opening the server log");
        let mut child = Command::new(binary("airlift-firstboot"))
            .args(&args)
            .env("RUST_LOG", "airlift_firstboot=debug,info")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("starting airlift-firstboot serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "airlift-firstboot serve did not report listening; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let addr: SocketAddr = url
            .rsplit("//")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unparsable listen line {url:?}"));
        let server = Server {
            child,
            addr,
            log,
            config: config.clone(),
        };
        if config.tls.is_none() {
            let r = server.request("GET", "/v2/", &[], b"");
            assert!(
                r.status == 200 || r.status == 401,
                "/v2/ answered {}",
                r.status
            );
        }
        server
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// SIGKILL the server and reap it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The server's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One raw HTTP/1.1 request (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let mut s = self.connect();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("sending request");
        // The server may answer (and close) before the whole body is sent.
        let _ = s.write_all(body);
        read_response(&mut s)
    }

    /// A connected socket with a generous read timeout.
    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connecting to the registry");
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        s
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where [`ServeConfig::push_token`] writes the token.
pub fn token_path(data: &Path) -> PathBuf {
    data.with_extension("token")
}

/// `--dest-creds`/`--creds` value for skopeo, podman and buildah.
pub fn creds() -> String {
    format!("airlift:{TOKEN}")
}

/// A parsed HTTP response.
#[derive(Debug)]
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

/// Read a whole `Connection: close` response.
pub fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP response head in {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..text_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let mut body = raw[text_end + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
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

/// Every file under `dir`, recursively (paths relative to `dir`).
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Check that every file in `DATA/blobs/<alg>/` hashes to its name:
/// no partial blob is visible. Returns how many blobs were checked.
pub fn assert_blobs_whole(data: &Path) -> usize {
    let mut n = 0;
    for rel in files_under(&data.join("blobs")) {
        let (alg, hex) = rel.split_once('/').expect("blobs/<alg>/<hex>");
        let digest: airlift_oci::Digest = format!("{alg}:{hex}")
            .parse()
            .unwrap_or_else(|e| panic!("stray file blobs/{rel} in the data folder: {e}"));
        let f = std::fs::File::open(data.join("blobs").join(&rel)).unwrap();
        let (actual, _) = airlift_oci::digest::hash_reader(digest.algorithm(), f).unwrap();
        assert_eq!(actual, digest, "blob {rel} is not whole");
        n += 1;
    }
    n
}
