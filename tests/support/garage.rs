//! A real S3 server for tests: a single-node Garage on 127.0.0.1 (free
//! ports, temp metadata and data folders; config as in FIELD-NOTES:
//! lmdb, replication factor 1, region `garage`). `garage server
//! --single-node --default-bucket` lays the node out and creates the
//! bucket and an access key allowed to read, write and own it. Killed
//! when dropped. Garage comes from `just garage` (`cargo install garage`).

use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::free_port;

/// A running Garage with one bucket.
pub struct Garage {
    child: Child,
    /// `http://127.0.0.1:PORT`, the S3 API.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The config file, for `garage -c`.
    pub config: PathBuf,
    /// Garage's log.
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("reading /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `garage` binary: on PATH or in ~/.cargo/bin; panics with how to
/// install it (tests never skip silently).
pub fn garage_binary() -> PathBuf {
    if let Some(p) = crate::tools::which("garage") {
        return p;
    }
    let cargo_bin = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin/garage"))
        .filter(|p| p.is_file());
    cargo_bin.unwrap_or_else(|| {
        panic!("garage is not installed: run `just garage` (cargo install garage --locked ...)")
    })
}

impl Garage {
    /// Start Garage with bucket `bucket`; returns once the bucket answers.
    pub fn start(bucket: &str) -> Garage {
        let bin = garage_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let (s3, rpc, admin) = (free_port(), free_port(), free_port());
        let config = dir.path().join("garage.toml");
        fs::write(
            &config,
            format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"lmdb\"\n\
                 replication_factor = 1\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                 rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                meta = dir.path().join("meta").display(),
                data = dir.path().join("data").display(),
                secret = random_hex(32),
            ),
        )
        .expect("writing garage.toml");
        let access_key_id = format!("GK{}", random_hex(12));
        let secret_access_key = random_hex(32);
        let log = dir.path().join("garage.log");
        let out = fs::File::create(&log).expect("creating the garage log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&config)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key_id)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret_access_key)
            .env("GARAGE_DEFAULT_BUCKET", bucket)
            .env("RUST_LOG", "garage=info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("starting garage server");
        let g = Garage {
            child,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket: bucket.to_string(),
            region: "garage".to_string(),
            access_key_id,
            secret_access_key,
            config,
            log,
            _dir: dir,
        };
        g.wait_ready();
        g
    }

    /// A `garage -c CONFIG ...` command.
    pub fn cli(&self) -> Command {
        let mut c = Command::new(garage_binary());
        c.arg("-c").arg(&self.config);
        c
    }

    fn wait_ready(&self) {
        for _ in 0..300 {
            let out = self.cli().args(["bucket", "info", &self.bucket]).output();
            if let Ok(o) = out {
                let text = String::from_utf8_lossy(&o.stdout);
                if o.status.success() && text.contains(&self.access_key_id) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "garage did not come up with bucket {}; its log:\n{}",
            self.bucket,
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// Environment variables giving a client this bucket's key.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                self.secret_access_key.clone(),
            ),
        ]
    }

    /// `airlift-firstboot serve` arguments for this bucket.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-bucket".into(),
            self.bucket.clone(),
            "--s3-region".into(),
            self.region.clone(),
        ]
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
