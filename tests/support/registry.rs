//! A real registry for tests and benchmarks: Debian's `docker-registry`
//! (distribution 2.8) on 127.0.0.1 with a temp storage folder, optionally
//! behind htpasswd Basic auth. For tests its access log is kept so they
//! can count the requests it served; for the benchmarks it is set up as
//! Debian's default config has it, with logging off. Fixtures are pushed
//! into it with skopeo.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tools::{free_port, require, run_ok, which};

/// How to set the registry up.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// A user and password it wants Basic auth from.
    pub credentials: Option<(String, String)>,
    /// HTTPS with a self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// The benchmarks' setup: the in-memory blob descriptor cache (as
    /// Debian's default config has it), log level warn, no access log,
    /// no deletes; else the tests' (access log on, deletes allowed).
    pub bench: bool,
    /// Where its storage, config and log go: a temp folder when `None`.
    pub dir: Option<PathBuf>,
}

/// The `docker-registry` config for storage in `root` and `port`.
pub fn config_yaml(root: &Path, port: u16, bench: bool) -> String {
    let root = root.display();
    if bench {
        format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {root}\n\
             http:\n  addr: 127.0.0.1:{port}\n"
        )
    } else {
        format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n"
        )
    }
}

/// Where a registry keeps its files: its own temp folder, or the caller's.
enum Folder {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl Folder {
    fn path(&self) -> &Path {
        match self {
            Folder::Temp(t) => t.path(),
            Folder::Given(p) => p,
        }
    }
}

/// A running `docker-registry`, stopped when dropped.
pub struct TestRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    credentials: Option<(String, String)>,
    tls: bool,
    _dir: Folder,
}

impl TestRegistry {
    /// Start an open registry.
    pub fn start() -> TestRegistry {
        Self::start_inner(None, false)
    }

    /// Start a registry that wants Basic auth from `user`/`password`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> TestRegistry {
        Self::start_inner(Some((user.to_string(), password.to_string())), false)
    }

    /// Start an open registry serving HTTPS with a self-signed certificate
    /// for 127.0.0.1.
    pub fn start_tls() -> TestRegistry {
        Self::start_inner(None, true)
    }

    fn start_inner(credentials: Option<(String, String)>, tls: bool) -> TestRegistry {
        let options = RegistryOptions {
            credentials,
            tls,
            ..RegistryOptions::default()
        };
        TestRegistry::try_start(&options).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Start a registry set up as `options` say; returns once it answers.
    pub fn try_start(options: &RegistryOptions) -> Result<TestRegistry> {
        let Some(bin) = which("docker-registry") else {
            bail!("docker-registry is not installed: run `just deps` (apt-get install docker-registry)");
        };
        let dir = match &options.dir {
            Some(d) => {
                fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                Folder::Given(d.clone())
            }
            None => Folder::Temp(tempfile::tempdir().context("making a temp folder")?),
        };
        let root = dir.path().join("data");
        if root.exists() {
            fs::remove_dir_all(&root).with_context(|| format!("emptying {}", root.display()))?;
        }
        let port = free_port();
        let mut config = config_yaml(&root, port, options.bench);
        if let Some((u, p)) = &options.credentials {
            let htpasswd = dir.path().join("htpasswd");
            write_htpasswd(&htpasswd, u, p);
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: airlift-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if options.tls {
            let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
                .context("making a self-signed certificate")?;
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            fs::write(&cert, ck.cert.pem()).context("writing cert")?;
            fs::write(&key, ck.key_pair.serialize_pem()).context("writing key")?;
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log = dir.path().join("registry.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(out.try_clone().context("duplicating the log file")?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .context("starting docker-registry")?;
        let mut reg = TestRegistry {
            child,
            port,
            log,
            credentials: options.credentials.clone(),
            tls: options.tls,
            _dir: dir,
        };
        reg.wait_ready()?;
        Ok(reg)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("docker-registry exited ({status}):\n{}", self.log_text());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not answer on 127.0.0.1:{} within 30 s:\n{}",
                    self.port,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:PORT` as an address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS registry).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// Push the image `ref_name` of the OCI layout at `layout` (all
    /// platforms, digests preserved) to `REPO:TAG` here.
    pub fn push_layout(&self, layout: &Path, ref_name: &str, repo_tag: &str) {
        let skopeo = require("skopeo", "skopeo");
        let mut cmd = Command::new(skopeo);
        cmd.args(["copy", "--quiet", "--all", "--preserve-digests"])
            .arg("--dest-tls-verify=false");
        if let Some((u, p)) = &self.credentials {
            cmd.arg(format!("--dest-creds={u}:{p}"));
        }
        cmd.arg(format!("oci:{}:{ref_name}", layout.display()))
            .arg(format!("docker://{}/{repo_tag}", self.host()));
        run_ok(&mut cmd);
    }

    /// The registry's log so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many `GET` requests for blobs the access log shows.
    pub fn blob_gets(&self) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/"))
            .count()
    }

    /// A containers auth.json holding this registry's credentials.
    pub fn write_auth_file(&self, path: &Path) {
        let (u, p) = self.credentials.as_ref().expect("registry has credentials");
        let auth = base64_encode(format!("{u}:{p}").as_bytes());
        let body = serde_json::json!({ "auths": { self.host(): { "auth": auth } } });
        fs::write(path, serde_json::to_vec_pretty(&body).expect("json"))
            .expect("writing auth file");
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write a bcrypt htpasswd file (`htpasswd -B`) holding one user, as
/// `docker-registry` and `airlift-firstboot serve --htpasswd` read it.
pub fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let hash = bcrypt::hash(password, 5).expect("bcrypt");
    fs::write(path, format!("{user}:{hash}\n")).expect("writing htpasswd");
}

/// Standard base64 with padding (RFC 4648), for auth headers and files.
pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn bench_config_is_quiet_and_local() {
        let c = super::config_yaml(Path::new("/s"), 5001, true);
        assert!(c.contains("level: warn"));
        assert!(c.contains("blobdescriptor: inmemory"));
        assert!(c.contains("disabled: true"));
        assert!(c.contains("rootdirectory: /s"));
        assert!(c.contains("addr: 127.0.0.1:5001"));
        assert!(!c.contains("delete"));
        let t = super::config_yaml(Path::new("/s"), 5001, false);
        assert!(
            t.contains("disabled: false") && t.contains("enabled: true"),
            "{t}"
        );
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64_encode(b"u:p"), "dTpw");
        assert_eq!(super::base64_encode(b"user:pa"), "dXNlcjpwYQ==");
        assert_eq!(super::base64_encode(b"user:pas"), "dXNlcjpwYXM=");
    }
}
