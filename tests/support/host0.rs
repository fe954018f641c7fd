//! Running `airlift-firstboot host0` for tests and benchmarks without a
//! VM: an appliance file in a temp folder, the bundle folder as
//! `--media`, a temp root and state folder, the registry on 127.0.0.1.
//! Plus containerd under a temp root and the status endpoint read with curl.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use airlift_appliance::{ApplianceFile, RegistryFile, Role, Runtime, Storage, TlsMode};
use anyhow::{Context, Result};

use crate::tools::{binary, free_port, require, stdout_lines};

/// The join token the test appliance files carry.
pub const JOIN_TOKEN: &str = "host0-test-join-token-0123456789abcdef";

/// An appliance file for tests: TLS generated, podman and containerd.
pub fn appliance_file(port: u16, mirrors: &[&str]) -> ApplianceFile {
    ApplianceFile {
        schema: airlift_appliance::SCHEMA,
        name: "host0-test".into(),
        version: "0.0.1".into(),
        volume_label: "AIRLIFT_TEST".into(),
        role: Role::Host0,
        join_token: JOIN_TOKEN.into(),
        kernel_release: "6.1.0-test".into(),
        registry: RegistryFile {
            port,
            tls: TlsMode::Generate,
            tls_cert: None,
            tls_key: None,
            extra_names: vec!["registry.airlift.test".into()],
            push: false,
            allow_delete: false,
        },
        mirrors: mirrors.iter().map(|s| s.to_string()).collect(),
        runtimes: vec![Runtime::Podman, Runtime::Containerd],
        netboot: airlift_appliance::Netboot::default(),
        storage: Storage::default(),
        ha: None,
        trust: None,
        base: None,
    }
}

/// Folders of one host0 run.
#[derive(Debug, Clone)]
pub struct Host0Dirs {
    pub config: PathBuf,
    pub media: PathBuf,
    pub root: PathBuf,
    pub data: PathBuf,
    pub port: u16,
}

impl Host0Dirs {
    /// Lay out `tmp`: appliance.json, root/, data/ (the media is the caller's).
    pub fn new(tmp: &Path, media: &Path, file: &ApplianceFile) -> Host0Dirs {
        Host0Dirs::try_new(tmp, media, file).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// [`Host0Dirs::new`], failing with an error instead of a panic.
    pub fn try_new(tmp: &Path, media: &Path, file: &ApplianceFile) -> Result<Host0Dirs> {
        let config = tmp.join("appliance.json");
        std::fs::write(&config, file.render()?)
            .with_context(|| format!("writing {}", config.display()))?;
        let (root, data) = (tmp.join("root"), tmp.join("data"));
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Host0Dirs {
            config,
            media: media.to_path_buf(),
            root,
            data,
            port: file.registry.port,
        })
    }

    /// The registry's data folder.
    pub fn registry_data(&self) -> PathBuf {
        self.data.join("registry")
    }

    /// The generated CA.
    pub fn ca(&self) -> PathBuf {
        self.data.join("tls/ca.crt")
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A running `airlift-firstboot host0`.
pub struct Host0 {
    child: Child,
    /// stderr (the log) of the process.
    pub log: PathBuf,
    /// Its milestone lines (stdout), as they come, each with when it came.
    pub lines: mpsc::Receiver<(String, Instant)>,
    pub dirs: Host0Dirs,
    /// From spawning the process to its `AIRLIFT-HOST0-READY` line.
    pub ready_after: Duration,
}

impl Drop for Host0 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host0 {
    /// Start host0 with `extra` arguments (`--force-load`: copy even onto
    /// RAM); returns once it printed `AIRLIFT-HOST0-READY`.
    pub fn start(dirs: &Host0Dirs, extra: &[&str]) -> Host0 {
        let spawned = Instant::now();
        let program = binary("airlift-firstboot");
        let mut h = Host0::spawn(&program, dirs, extra, "airlift_firstboot=debug,info")
            .unwrap_or_else(|e| panic!("{e:#}"));
        h.wait_line("AIRLIFT-HOST0-READY", Duration::from_secs(120));
        h.ready_after = spawned.elapsed();
        h
    }

    /// Start `program host0` with `extra` arguments and `RUST_LOG` set to
    /// `rust_log`, without waiting for it (`ready_after` stays zero).
    pub fn spawn(
        program: &Path,
        dirs: &Host0Dirs,
        extra: &[&str],
        rust_log: &str,
    ) -> Result<Host0> {
        let log = dirs.data.with_extension("log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening host0's log {}", log.display()))?;
        let mut child = Command::new(program)
            .arg("host0")
            .arg("--config")
            .arg(&dirs.config)
            .arg("--media")
            .arg(&dirs.media)
            .arg("--root")
            .arg(&dirs.root)
            .arg("--data")
            .arg(&dirs.data)
            .arg("--listen")
            .arg(dirs.host())
            .args(extra)
            .env("AIRLIFT_LOG", "stderr")
            .env("RUST_LOG", rust_log)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {} host0", program.display()))?;
        let lines = stdout_lines(&mut child);
        Ok(Host0 {
            child,
            log,
            lines,
            dirs: dirs.clone(),
            ready_after: Duration::ZERO,
        })
    }

    /// Wait for a stdout line starting with `prefix`; returns it.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((l, _)) if l.starts_with(prefix) => return l,
                Ok(_) => {}
                Err(_) => panic!(
                    "host0 printed no {prefix} line (exit: {:?}); its log:\n{}",
                    self.child.try_wait(),
                    self.log_text()
                ),
            }
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET /airlift/v1/status` over TLS with the generated CA.
    pub fn status(&self) -> serde_json::Value {
        let out = curl(&self.dirs, &["/airlift/v1/status"], &[]);
        assert_eq!(out.0, 200, "status answered {}: {}", out.0, out.1);
        serde_json::from_str(&out.1).unwrap_or_else(|e| panic!("status JSON {e}: {}", out.1))
    }

    /// Poll the status until `state` (panics on `failed` or timeout).
    pub fn wait_state(&self, state: &str, timeout: Duration) -> serde_json::Value {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.status();
            if s["state"] == state {
                return s;
            }
            assert!(
                s["state"] != "failed" && Instant::now() < deadline,
                "status never reached {state}: {s}\nlog:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// curl `https://HOST:PORT<path>` with the generated CA; extra curl
/// arguments after. Returns (HTTP status, body).
pub fn curl(dirs: &Host0Dirs, path: &[&str], extra: &[&str]) -> (u16, String) {
    let curl = require("curl", "curl");
    let url = format!("https://{}{}", dirs.host(), path.concat());
    let out = Command::new(curl)
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(dirs.ca())
        .args(["-w", "\n%{http_code}"])
        .args(extra)
        .arg(&url)
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl {url}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, body.to_string())
}

/// A port for host0 (free now).
pub fn port() -> u16 {
    free_port()
}

pub use crate::containerd::Containerd;
