//! containerd's own daemon (Debian's package) under a temp root, with the
//! CRI plugin off, and the `ctr` steps the tests share: pull through a
//! hosts.toml folder, then read the listed digest.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::tools::{require, run_ok};

/// A running containerd; killed and reaped on drop.
pub struct Containerd {
    child: Child,
    /// Its socket.
    pub sock: PathBuf,
    ctr: PathBuf,
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Containerd {
    /// Start it in `dir`; returns once `ctr version` answers.
    pub fn start(dir: &Path) -> Containerd {
        let bin = require("containerd", "containerd");
        let ctr = require("ctr", "containerd");
        std::fs::create_dir_all(dir).unwrap();
        let sock = dir.join("containerd.sock");
        let cfg = dir.join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n",
                root = dir.join("root").display(),
                state = dir.join("state").display(),
                sock = sock.display()
            ),
        )
        .unwrap();
        let log_path = dir.join("containerd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // Wrapped at once so Drop kills and reaps it on every path.
        let daemon = Containerd {
            child: Command::new(bin)
                .arg("--config")
                .arg(&cfg)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting containerd"),
            sock,
            ctr,
        };
        for _ in 0..600 {
            if daemon.sock.exists()
                && daemon
                    .ctr()
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return daemon;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "containerd did not come up: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    /// `ctr --address SOCK`, ready for more arguments.
    pub fn ctr(&self) -> Command {
        let mut c = Command::new(&self.ctr);
        c.arg("--address").arg(&self.sock);
        c
    }

    /// `ctr images pull --hosts-dir HOSTS REFERENCE` (native snapshotter);
    /// panics with ctr's output if it fails.
    pub fn pull(&self, hosts_dir: &Path, reference: &str) {
        run_ok(
            self.ctr()
                .args(["images", "pull", "--hosts-dir"])
                .arg(hosts_dir)
                .args(["--snapshotter", "native", reference]),
        );
    }

    /// The `ctr images ls` line of `reference`; panics naming it if absent.
    pub fn listed(&self, reference: &str) -> String {
        let out = run_ok(self.ctr().args(["images", "ls"]));
        out.lines()
            .find(|l| l.starts_with(reference))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{reference} not listed by ctr:\n{out}"))
    }
}
