//! Starting the two registries the serving benchmark compares:
//! `airlift-firstboot serve` and Debian's `docker-registry` (distribution
//! 2.8), both on 127.0.0.1, both with request logging off. Each is killed
//! when its handle drops.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::http;
use crate::measure;

/// The push token given to `airlift-firstboot serve`.
pub const TOKEN: &str = "airlift-bench-token-0123456789abcdef";

/// A registry process this benchmark started.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Server {
    /// The process id (for `VmHWM`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far, KiB.
    pub fn peak_kib(&self) -> Result<u64> {
        measure::vm_hwm(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `airlift-firstboot serve` on a free port with an empty store and
/// pushes allowed with [`TOKEN`]; returns once it printed its address.
pub fn start_airlift(binary: &Path, dir: &Path) -> Result<Server> {
    std::fs::create_dir_all(dir)?;
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    let token = dir.join("push-token");
    std::fs::write(&token, TOKEN)?;
    let log = dir.join("airlift-firstboot.log");
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .arg("--push-token-file")
        .arg(&token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {} serve", binary.display()))?;
    let stdout = child.stdout.take().context("piped stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(u) => u,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "airlift-firstboot serve did not print `listening on`; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
    };
    let addr: SocketAddr = url
        .rsplit("//")
        .next()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("unparsable listen line {url:?}"))?;
    let server = Server {
        name: "airlift-firstboot serve",
        addr,
        child,
        log,
    };
    wait_ready(&server)?;
    Ok(server)
}

/// The `docker-registry` config: filesystem storage with the in-memory
/// blob descriptor cache (as Debian's default config has it), loopback,
/// log level warn, access log off.
pub fn docker_registry_config(root: &Path, port: u16) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        root.display()
    )
}

/// Start `docker-registry serve CONFIG.yml` on a free port with empty
/// storage; returns once `/v2/` answers.
pub fn start_docker_registry(dir: &Path) -> Result<Server> {
    let bin = measure::require("docker-registry", "docker-registry")?;
    std::fs::create_dir_all(dir)?;
    let root = dir.join("storage");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let config = dir.join("config.yml");
    std::fs::write(&config, docker_registry_config(&root, port))?;
    let log = dir.join("docker-registry.log");
    let out = File::create(&log)?;
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .context("starting docker-registry")?;
    let server = Server {
        name: "docker-registry",
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        child,
        log,
    };
    wait_ready(&server)?;
    Ok(server)
}

fn wait_ready(server: &Server) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http::request(server.addr, "GET", "/v2/", &[]) {
            Ok(r) if r.status == 200 || r.status == 401 => return Ok(()),
            _ if Instant::now() > deadline => bail!(
                "{} at {} did not answer /v2/ within 30 s; its log:\n{}",
                server.name,
                server.addr,
                std::fs::read_to_string(&server.log).unwrap_or_default()
            ),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_registry_config_is_quiet_and_local() {
        let c = docker_registry_config(Path::new("/s"), 5001);
        assert!(c.contains("level: warn"));
        assert!(c.contains("blobdescriptor: inmemory"));
        assert!(c.contains("disabled: true"));
        assert!(c.contains("rootdirectory: /s"));
        assert!(c.contains("addr: 127.0.0.1:5001"));
    }
}
