//! The registries the serving benchmark compares, each on 127.0.0.1 with
//! request logging off and its storage under the benchmark's work folder:
//! `airlift-firstboot serve` (started by the integration tests' harness,
//! `airlift_integration::firstboot`), CNCF distribution v3.1.1 and
//! Debian's `docker-registry` 2.8 (both by [`crate::go_registry`]). Each
//! serves plain HTTP or TLS with the bench's certificate, and is killed
//! when its handle drops.

use std::net::SocketAddr;
use std::path::Path;

use airlift_integration::firstboot::{self, ServeConfig};
use anyhow::{Context, Result};

use crate::go_registry::{Flavour, GoRegistry};
use crate::measure;
use crate::tls_files::TlsFiles;

/// The push token `airlift-firstboot serve` is given.
pub const TOKEN: &str = firstboot::TOKEN;

/// Which registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Airlift,
    Distribution,
    DockerRegistry,
}

impl Kind {
    /// Every registry, in the order rounds visit them (A B C A B C).
    pub const ALL: [Kind; 3] = [Kind::Airlift, Kind::Distribution, Kind::DockerRegistry];

    /// What the tables call it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Airlift => "airlift",
            Kind::Distribution => "distribution v3.1.1",
            Kind::DockerRegistry => "docker-registry 2.8",
        }
    }

    /// Its folder under the work folder.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Airlift => "airlift",
            Kind::Distribution => "distribution",
            Kind::DockerRegistry => "docker-registry",
        }
    }
}

/// A registry process this benchmark started.
pub enum Server {
    Airlift(Box<firstboot::Server>),
    Go(Kind, GoRegistry),
}

impl Server {
    /// Start `kind` with its storage under `dir`: emptied first when
    /// `fresh`, else served as the last run left it. TLS with `tls`.
    pub fn start(
        kind: Kind,
        firstboot_bin: &Path,
        dir: &Path,
        tls: Option<&TlsFiles>,
        fresh: bool,
    ) -> Result<Server> {
        let data = dir.join("data");
        if fresh && data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("emptying {}", data.display()))?;
        }
        let flavour = match kind {
            Kind::Airlift => return start_airlift_with(firstboot_bin, dir, tls),
            Kind::Distribution => Flavour::Distribution,
            Kind::DockerRegistry => Flavour::DockerRegistry,
        };
        let port = airlift_integration::tools::free_port();
        Ok(Server::Go(
            kind,
            GoRegistry::start(flavour, dir, port, tls)?,
        ))
    }

    /// Which registry it is.
    pub fn kind(&self) -> Kind {
        match self {
            Server::Airlift(_) => Kind::Airlift,
            Server::Go(k, _) => *k,
        }
    }

    /// What the tables call it.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Airlift(s) => s.addr,
            Server::Go(_, r) => r.addr(),
        }
    }

    /// The process id (for `VmHWM` and CPU time).
    pub fn pid(&self) -> u32 {
        match self {
            Server::Airlift(s) => s.pid(),
            Server::Go(_, r) => r.pid(),
        }
    }

    /// Peak resident memory so far, KiB.
    pub fn peak_kib(&self) -> Result<u64> {
        measure::vm_hwm(self.pid())
    }
}

/// Start `airlift-firstboot serve` (`binary`) on a free port with an
/// empty store under `dir` and pushes allowed with [`TOKEN`].
pub fn start_airlift(binary: &Path, dir: &Path) -> Result<Server> {
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("emptying {}", data.display()))?;
    }
    start_airlift_with(binary, dir, None)
}

/// Start `airlift-firstboot serve` on the store under `dir` as it is,
/// serving TLS with `tls` when given.
fn start_airlift_with(binary: &Path, dir: &Path, tls: Option<&TlsFiles>) -> Result<Server> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let config = ServeConfig {
        data: dir.join("data"),
        push_token: true,
        tls: tls.map(|t| (t.cert.clone(), t.key.clone())),
        env: vec![("RUST_LOG".into(), "warn".into())],
        binary: Some(binary.to_path_buf()),
        ..ServeConfig::default()
    };
    let server = firstboot::Server::try_start_on(&config, "127.0.0.1:0")?;
    Ok(Server::Airlift(Box::new(server)))
}
