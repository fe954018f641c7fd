//! Running several QEMU machines at once for the end-to-end tests: each
//! VM's serial log followed with the host time each line appeared, and
//! waits that fail with every VM's tail. TCG, `-smp 1` each (three VMs
//! on two host cores).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::qemu;

/// A running VM, killed and reaped on drop.
pub struct Running(pub Child);

impl Running {
    /// Stop it now (like pulling the plug); the exit is reaped.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A VM's serial log, with the host time each line first appeared.
#[derive(Clone)]
pub struct Serial {
    pub name: &'static str,
    path: PathBuf,
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
}

impl Serial {
    /// Start following `path` (lines timed against `t0`).
    pub fn follow(name: &'static str, path: PathBuf, t0: Instant) -> Serial {
        let s = Serial {
            name,
            path,
            lines: Arc::default(),
        };
        let me = s.clone();
        std::thread::spawn(move || {
            let mut seen = 0usize;
            loop {
                let bytes = std::fs::read(&me.path).unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes);
                let whole = text.rfind('\n').map_or(0, |i| i + 1);
                let new: Vec<String> = text[..whole]
                    .lines()
                    .skip(seen)
                    .map(|l| l.trim_end_matches('\r').to_string())
                    .collect();
                if !new.is_empty() {
                    seen += new.len();
                    let at = t0.elapsed();
                    me.lines
                        .lock()
                        .unwrap()
                        .extend(new.into_iter().map(|l| (at, l)));
                }
                if Arc::strong_count(&me.lines) == 1 {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        s
    }

    /// The first line containing `marker`, with its time.
    pub fn find(&self, marker: &str) -> Option<(Duration, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains(marker))
            .cloned()
    }

    /// Every line containing `marker`.
    pub fn all(&self, marker: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.contains(marker))
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// The whole log.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.path).unwrap_or_default()).into_owned()
    }
}

/// Start QEMU with the cluster defaults and `args`, serial to `serial`.
pub fn spawn(args: &[String], serial: &Path) -> Running {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-accel",
        &qemu::accel(),
        "-cpu",
        "qemu64,+rdrand",
        "-smp",
        "1",
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-nodefaults",
        "-vga",
        "std",
    ])
    .args(args)
    .arg("-serial")
    .arg(format!("file:{}", serial.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    Running(cmd.spawn().expect("starting qemu-system-x86_64"))
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
        let hit = serial
            .lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| markers.iter().all(|m| l.contains(m)))
            .cloned();
        if let Some(hit) = hit {
            return hit;
        }
        for (s, r) in vms.iter_mut() {
            if let Some(status) = r.0.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) while waiting for {markers:?} on {}\n{}",
                    s.name,
                    serial.name,
                    qemu::tail(&s.text(), 80)
                );
            }
        }
        if t0.elapsed() > limit {
            let tails: Vec<String> = vms
                .iter()
                .map(|(s, _)| format!("--- {} ---\n{}", s.name, qemu::tail(&s.text(), 60)))
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
