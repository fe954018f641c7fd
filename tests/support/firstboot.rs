//! Running `airlift-firstboot serve` for tests and benchmarks: start it
//! on a free port, wait until it answers, kill it (gently or with
//! SIGKILL), and speak raw HTTP/1.1 to it when a test needs byte-level
//! control.

use std::ffi::OsString;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use crate::http::{read_response, RawResponse};
use crate::registry::write_htpasswd;
use crate::tools::{binary, stdout_lines};

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
    /// Extra environment variables (`RUST_LOG` here replaces the default).
    pub env: Vec<(String, String)>,
    /// The `airlift-firstboot` to run: the workspace's build beside the
    /// running test when `None`.
    pub binary: Option<PathBuf>,
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
        Server::try_start_on(config, listen).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// [`Server::start_on`], failing with an error instead of a panic.
    pub fn try_start_on(config: &ServeConfig, listen: &str) -> Result<Server> {
        let program = match &config.binary {
            Some(b) => b.clone(),
            None => binary("airlift-firstboot"),
        };
        let log = config.data.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening the server log {}", log.display()))?;
        let mut child = Command::new(&program)
            .args(serve_args(config, listen)?)
            .env("RUST_LOG", "airlift_firstboot=debug,info")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} serve", program.display()))?;
        let lines = stdout_lines(&mut child);
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        let listening = std::iter::from_fn(|| {
            lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .find_map(|(l, _)| l.strip_prefix("listening on ").map(str::to_string));
        let Some(url) = listening else {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "airlift-firstboot serve did not report listening; its log:\n{}",
                log_text()
            );
        };
        let Some(addr) = url.rsplit("//").next().and_then(|a| a.parse().ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("unparsable listen line {url:?}");
        };
        let server = Server {
            child,
            addr,
            log: log.clone(),
            config: config.clone(),
        };
        if config.tls.is_none() {
            let r = crate::http::request(addr, "GET", "/v2/", &[], b"")?;
            if r.status != 200 && r.status != 401 {
                bail!("/v2/ answered {}; the log:\n{}", r.status, log_text());
            }
        }
        Ok(server)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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
        crate::http::request(self.addr, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// A connected socket with a generous read timeout.
    pub fn connect(&self) -> TcpStream {
        crate::http::connect(self.addr).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `serve` command line for `config`, writing the token and
/// htpasswd files it names.
fn serve_args(config: &ServeConfig, listen: &str) -> Result<Vec<OsString>> {
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
        std::fs::write(&p, TOKEN)
            .with_context(|| format!("writing the push token {}", p.display()))?;
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
    Ok(args)
}

/// Where [`ServeConfig::push_token`] writes the token.
pub fn token_path(data: &Path) -> PathBuf {
    data.with_extension("token")
}

/// `--dest-creds`/`--creds` value for skopeo, podman and buildah.
pub fn creds() -> String {
    format!("airlift:{TOKEN}")
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
