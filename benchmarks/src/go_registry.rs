//! The two Go registries the serving benchmark compares with, started
//! the same way: CNCF distribution v3.1.1 (`registry`, built by
//! `../shared/peers/build.sh` into ~/.cache/airlift-peers/bin) and
//! Debian's `docker-registry` 2.8. Same config (filesystem storage in
//! the bench's work folder, in-memory blob descriptor cache, log level
//! warn, access log off, OpenTelemetry export off); TLS by `REGISTRY_HTTP_TLS_CERTIFICATE`/`_KEY`.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::tls_files::TlsFiles;

/// Which Go registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// distribution v3.1.1.
    Distribution,
    /// Debian's docker-registry 2.8.
    DockerRegistry,
}

/// A running Go registry, killed when dropped.
pub struct GoRegistry {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

/// The config both registries read: storage under `root`, quiet logs.
pub fn config_yaml(root: &Path, addr: SocketAddr) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  cache:\n    blobdescriptor: inmemory\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: {addr}\n",
        root.display()
    )
}

/// The distribution v3 binary `../shared/peers/build.sh` makes, or an
/// error saying how to build it.
pub fn distribution_binary() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    let bin = Path::new(&home).join(".cache/airlift-peers/bin/registry");
    if !bin.is_file() {
        bail!(
            "{} is missing: run ../shared/peers/build.sh (`just bench` does when it is absent)",
            bin.display()
        );
    }
    Ok(bin)
}

impl GoRegistry {
    /// Start `flavour` on 127.0.0.1:`port` with storage in `dir/data`
    /// (kept if it is there: a restart serves what was pushed before),
    /// serving TLS with `tls` when given.
    pub fn start(
        flavour: Flavour,
        dir: &Path,
        port: u16,
        tls: Option<&TlsFiles>,
    ) -> Result<GoRegistry> {
        let bin = match flavour {
            Flavour::Distribution => distribution_binary()?,
            Flavour::DockerRegistry => {
                crate::measure::require("docker-registry", "docker-registry")?
            }
        };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = dir.join("config.yml");
        std::fs::write(&config, config_yaml(&dir.join("data"), addr))
            .with_context(|| format!("writing {}", config.display()))?;
        let log = dir.join("registry.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(&bin);
        // distribution v3 traces every request with OpenTelemetry and
        // exports to localhost:4318 unless told not to: off, like logs.
        cmd.arg("serve")
            .arg(&config)
            .env("OTEL_TRACES_EXPORTER", "none")
            .env("OTEL_SDK_DISABLED", "true");
        if let Some(t) = tls {
            cmd.env("REGISTRY_HTTP_TLS_CERTIFICATE", &t.cert)
                .env("REGISTRY_HTTP_TLS_KEY", &t.key);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut r = GoRegistry { child, addr, log };
        r.wait_listening()?;
        Ok(r)
    }

    fn wait_listening(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!("the registry exited ({status}):\n{}", self.log_text());
            }
            if Instant::now() > deadline {
                bail!(
                    "the registry did not listen on {} within 30 s:\n{}",
                    self.addr,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GoRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_quiet_local_and_cached() {
        let c = config_yaml(
            Path::new("/w/data"),
            SocketAddr::from(([127, 0, 0, 1], 5123)),
        );
        assert!(c.contains("level: warn"));
        assert!(c.contains("disabled: true"), "access log off: {c}");
        assert!(c.contains("blobdescriptor: inmemory"));
        assert!(c.contains("rootdirectory: /w/data"));
        assert!(c.contains("addr: 127.0.0.1:5123"));
        assert!(!c.contains("tls"), "TLS comes from the environment");
    }
}
