//! The two registries the serving benchmark compares, started by the
//! integration tests' harness (`airlift_integration::firstboot` and
//! `::registry`): `airlift-firstboot serve` and Debian's `docker-registry`
//! (distribution 2.8), both on 127.0.0.1, both with request logging off,
//! both storing under the benchmark's work folder. Each is killed when
//! its handle drops.

use std::net::SocketAddr;
use std::path::Path;

use airlift_integration::firstboot::{self, ServeConfig};
use airlift_integration::registry::{RegistryOptions, TestRegistry};
use anyhow::{Context, Result};

use crate::measure;

/// The push token `airlift-firstboot serve` is given.
pub const TOKEN: &str = firstboot::TOKEN;

/// A registry process this benchmark started.
pub enum Server {
    Airlift(firstboot::Server),
    Docker(TestRegistry),
}

impl Server {
    /// What the tables call it.
    pub fn name(&self) -> &'static str {
        match self {
            Server::Airlift(_) => "airlift-firstboot serve",
            Server::Docker(_) => "docker-registry",
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Airlift(s) => s.addr,
            Server::Docker(r) => r.addr(),
        }
    }

    /// The process id (for `VmHWM` and CPU time).
    pub fn pid(&self) -> u32 {
        match self {
            Server::Airlift(s) => s.pid(),
            Server::Docker(r) => r.pid(),
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
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("emptying {}", data.display()))?;
    }
    let config = ServeConfig {
        data,
        push_token: true,
        env: vec![("RUST_LOG".into(), "warn".into())],
        binary: Some(binary.to_path_buf()),
        ..ServeConfig::default()
    };
    Ok(Server::Airlift(firstboot::Server::try_start_on(
        &config,
        "127.0.0.1:0",
    )?))
}

/// Start `docker-registry` on a free port with empty storage under
/// `dir`, set up as Debian's default config has it, access log off.
pub fn start_docker_registry(dir: &Path) -> Result<Server> {
    let options = RegistryOptions {
        bench: true,
        dir: Some(dir.to_path_buf()),
        ..RegistryOptions::default()
    };
    Ok(Server::Docker(TestRegistry::try_start(&options)?))
}
