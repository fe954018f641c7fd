//! Booting one [`Vm`] until a marker shows on its serial console. The VM
//! is stopped once the marker is seen (after a short grace period for a
//! guest that powers itself off), on timeout, and when dropped.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::machine::{qemu_args, Vm};
use super::running;
use super::serial::{read_lossy, tail};

/// What a boot that reached its marker produced.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The whole serial log.
    pub serial: String,
    /// The first line holding the marker.
    pub marker_line: String,
    /// From QEMU start to the marker.
    pub elapsed: Duration,
}

/// Boots `vm` and waits for a serial line containing `marker`. Fails with
/// the tail of the serial log on timeout or when QEMU exits first.
pub fn boot_until(vm: &Vm, marker: &str) -> Result<Boot> {
    let dir = tempfile::Builder::new()
        .prefix("airlift-qemu-")
        .tempdir()
        .context("making a temp folder for the VM")?;
    let serial = dir.path().join("serial.log");
    let vars = match vm.firmware.vars_template() {
        Some(template) => {
            let v = dir.path().join("OVMF_VARS.fd");
            fs::copy(template, &v)
                .with_context(|| format!("copying {template} (apt-get install ovmf)"))?;
            Some(v)
        }
        None => None,
    };
    let mut running = running::start(vm.cpus, &qemu_args(vm, vars.as_deref()), &serial);
    let start = Instant::now();
    let label = format!("{}+{} {}", vm.firmware, vm.media, vm.image.display());
    let found = |log: &str| {
        log.lines()
            .find(|l| l.contains(marker))
            .map(|l| l.trim_end().to_string())
    };

    loop {
        if let Some(marker_line) = found(&read_lossy(&serial)) {
            let elapsed = start.elapsed();
            // Give a guest that powers off after the marker a moment to
            // finish its output; then stop it.
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(5) && running.exited().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            drop(running);
            return Ok(Boot {
                serial: read_lossy(&serial),
                marker_line,
                elapsed,
            });
        }
        if let Some(status) = running.exited() {
            let log = read_lossy(&serial);
            if let Some(marker_line) = found(&log) {
                return Ok(Boot {
                    marker_line,
                    serial: log,
                    elapsed: start.elapsed(),
                });
            }
            bail!(
                "{label}: QEMU exited ({status}) before {marker:?} after {:.0?}\nqemu stderr:\n{}\n{}",
                start.elapsed(),
                running.stderr(),
                tail(&log, 60)
            );
        }
        if start.elapsed() > vm.timeout {
            drop(running);
            bail!(
                "{label}: no {marker:?} on the serial console within {:?}; killed\n{}",
                vm.timeout,
                tail(&read_lossy(&serial), 60)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
