//! A QEMU process: started with the tests' common arguments and its
//! serial console in a file, holding its VM slots while it runs, killed
//! (like pulling the plug) and reaped when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use super::machine::common_args;
use super::slots::Slot;

/// A running VM.
pub struct Running {
    child: Child,
    /// QEMU's own messages (beside the serial log).
    stderr: PathBuf,
    /// `None` when the caller holds the slots (a cluster).
    _slot: Option<Slot>,
}

/// Start QEMU with `cpus` vCPUs and `args` (memory, drives, devices),
/// serial to `serial`, once `cpus` VM slots are free.
pub fn start(cpus: u32, args: &[String], serial: &Path) -> Running {
    let slot = Slot::take(cpus as usize);
    spawn(cpus, args, serial, Some(slot))
}

/// Start QEMU without taking slots: for a caller that holds them.
pub(super) fn spawn(cpus: u32, args: &[String], serial: &Path, slot: Option<Slot>) -> Running {
    let stderr = serial.with_extension("qemu-stderr");
    let err =
        File::create(&stderr).unwrap_or_else(|e| panic!("creating {}: {e}", stderr.display()));
    let child = Command::new("qemu-system-x86_64")
        .args(common_args(cpus))
        .args(args)
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("starting qemu-system-x86_64: {e} (apt-get install qemu-system-x86)")
        });
    Running {
        child,
        stderr,
        _slot: slot,
    }
}

impl Running {
    /// Stop it now (like pulling the plug); the exit is reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How QEMU exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for QEMU: {e}"))
    }

    /// What QEMU printed on stderr so far.
    pub fn stderr(&self) -> String {
        super::serial::read_lossy(&self.stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}
