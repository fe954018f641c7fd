//! A real registry for tests: Debian's `docker-registry` (distribution
//! 2.8) on 127.0.0.1 with a temp storage folder, optionally behind
//! htpasswd Basic auth. Its access log is kept so tests can count the
//! requests it served. Fixtures are pushed into it with skopeo.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools::{free_port, require, run_ok};

/// A running `docker-registry`, stopped when dropped.
pub struct TestRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    credentials: Option<(String, String)>,
    tls: bool,
    _dir: tempfile::TempDir,
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
        let bin = require("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((u, p)) = &credentials {
            let htpasswd = dir.path().join("htpasswd");
            write_htpasswd(&htpasswd, u, p);
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: airlift-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if tls {
            let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
                .expect("making a self-signed certificate");
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            fs::write(&cert, ck.cert.pem()).expect("writing cert");
            fs::write(&key, ck.key_pair.serialize_pem()).expect("writing key");
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).expect("writing registry config");
        let log = dir.path().join("registry.log");
        let out = File::create(&log).expect("creating the registry log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let mut reg = TestRegistry {
            child,
            port,
            log,
            credentials,
            tls,
            _dir: dir,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("docker-registry exited ({status}):\n{}", self.log_text());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer on 127.0.0.1:{} within 30 s:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64_encode(b"u:p"), "dTpw");
        assert_eq!(super::base64_encode(b"user:pa"), "dXNlcjpwYQ==");
        assert_eq!(super::base64_encode(b"user:pas"), "dXNlcjpwYXM=");
    }
}
