//! Several VMs at once on one private link, for the netboot end-to-end
//! tests: TCG, `-smp 1` each (three VMs on two host cores, so a cluster
//! takes every VM slot), the link a QEMU multicast hub on 127.0.0.1, and
//! host0 booted from its ISO with a second, restricted user-mode NIC
//! whose registry port is forwarded to the host. Waits fail with every
//! VM's tail.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::running::{self, Running};
use super::serial::{tail, Serial};
use super::slots::Slot;
use crate::tools::{free_port, require};

/// The VMs of one test: their folder, clock and private link.
pub struct Cluster {
    /// Serial logs and whatever else the test keeps.
    pub dir: tempfile::TempDir,
    /// When the cluster started: the timeline's zero.
    pub t0: Instant,
    /// The `-netdev` of the private link (`id=priv`).
    pub hub: String,
    /// No other VM or build of this process runs meanwhile.
    _machine: Slot,
}

impl Cluster {
    /// Wait for the whole machine, then make the folder (`prefix` names
    /// it) and a private link on a free port of our own.
    pub fn new(prefix: &str) -> Cluster {
        require("qemu-system-x86_64", "qemu-system-x86");
        let machine = Slot::whole_machine();
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("making the cluster's temp folder");
        let hub = format!(
            "socket,id=priv,mcast=230.0.0.1:{},localaddr=127.0.0.1",
            free_port()
        );
        Cluster {
            dir,
            t0: Instant::now(),
            hub,
            _machine: machine,
        }
    }

    /// Start a VM called `name` with `args` (memory, boot order, NICs),
    /// its serial log followed.
    pub fn spawn(&self, name: &'static str, args: &[String]) -> (Running, Serial) {
        let serial = self.dir.path().join(format!("{name}.log"));
        let mut all: Vec<String> = vec!["-vga".into(), "std".into()];
        all.extend_from_slice(args);
        let vm = running::spawn(1, &all, &serial, None);
        (vm, Serial::follow(name, serial, self.t0))
    }

    /// Boot host0 from `iso` (BIOS, CD, 2 GiB): NIC `mac` on the private
    /// link, and a second NIC whose port 5000 is forwarded to
    /// 127.0.0.1:`fwd`. Returns once it serves netboot, within `limit`.
    pub fn host0(&self, iso: &Path, mac: &str, fwd: u16, limit: Duration) -> (Running, Serial) {
        let (mut vm, serial) = self.spawn(
            "host0",
            &[
                "-m".into(),
                "2048".into(),
                "-drive".into(),
                format!(
                    "file={},media=cdrom,readonly=on,if=ide,index=2",
                    iso.display()
                ),
                "-boot".into(),
                "d".into(),
                "-netdev".into(),
                self.hub.clone(),
                "-device".into(),
                format!("virtio-net-pci,netdev=priv,mac={mac},addr=0x4,romfile="),
                "-netdev".into(),
                format!("user,id=up,restrict=on,hostfwd=tcp:127.0.0.1:{fwd}-:5000"),
                "-device".into(),
                "virtio-net-pci,netdev=up,addr=0x5,romfile=".into(),
            ],
        );
        wait_for(
            &serial,
            &["AIRLIFT-NETBOOT-READY"],
            self.t0,
            limit,
            &mut [(&serial, &mut vm)],
        );
        (vm, serial)
    }
}

/// Wait until `serial` shows a line with every one of `markers`; panic
/// with every VM's tail if a VM exits or `limit` passes.
pub fn wait_for(
    serial: &Serial,
    markers: &[&str],
    t0: Instant,
    limit: Duration,
    vms: &mut [(&Serial, &mut Running)],
) -> (Duration, String) {
    loop {
        if let Some(hit) = serial.find_all(markers) {
            return hit;
        }
        for (s, r) in vms.iter_mut() {
            if let Some(status) = r.exited() {
                panic!(
                    "{} exited ({status}) while waiting for {markers:?} on {}\n{}",
                    s.name,
                    serial.name,
                    tail(&s.text(), 80)
                );
            }
        }
        if t0.elapsed() > limit {
            let tails: Vec<String> = vms
                .iter()
                .map(|(s, _)| format!("--- {} ---\n{}", s.name, tail(&s.text(), 60)))
                .collect();
            panic!(
                "no {markers:?} on {} within {limit:?}\n{}",
                serial.name,
                tails.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `curl -fsSk https://127.0.0.1:PORT/PATH` as JSON (the CA is checked elsewhere).
pub fn get_json(port: u16, path: &str) -> Result<serde_json::Value, String> {
    let out = Command::new("curl")
        .args(["-fsSk", "--max-time", "20"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .map_err(|e| format!("running curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "GET {path}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("GET {path}: {e}"))
}
