//! QEMU's machine protocol (QMP) on a unix socket, for tests that change
//! a running VM: put a medium into a CD drive or take it out, as a person
//! at the machine would. [`args`] gives QEMU the socket; [`Qmp::connect`]
//! negotiates; events QEMU sends meanwhile (a tray moved) are skipped.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// The QEMU arguments for a QMP server on `socket` (QEMU does not wait
/// for a client).
pub fn args(socket: &Path) -> Vec<String> {
    vec![
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ]
}

/// A negotiated QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connect to `socket` (waiting up to `timeout` for QEMU to make it),
    /// read the greeting and leave capabilities negotiation.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp> {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e).context(format!("connecting to {}", socket.display())),
            }
        };
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let writer = stream.try_clone()?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read()?;
        if greeting.get("QMP").is_none() {
            bail!("QMP greeting expected, got {greeting}");
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            bail!("QMP: QEMU closed the connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP: not JSON: {line}"))
    }

    /// Run `command` with `arguments`; its `return` value, or its error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let msg = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{msg}")?;
        loop {
            let reply = self.read()?;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                return Err(anyhow!("QMP {command}: {e}"));
            }
            // An event (DEVICE_TRAY_MOVED …): not our answer.
        }
    }

    /// Put `image` (raw, read-only) into the removable drive whose
    /// device id is `drive` (`-device ide-cd,…,id=DRIVE`).
    pub fn change_medium(&mut self, drive: &str, image: &Path) -> Result<()> {
        self.execute(
            "blockdev-change-medium",
            json!({
                "id": drive,
                "filename": image.display().to_string(),
                "format": "raw",
                "read-only-mode": "read-only",
            }),
        )
        .map(|_| ())
    }

    /// Take the medium out of `drive` (forced: the guest may hold the tray locked).
    pub fn eject(&mut self, drive: &str) -> Result<()> {
        self.execute("eject", json!({ "id": drive, "force": true }))
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_does_not_wait_for_a_client() {
        let a = args(Path::new("/t/q.sock")).join(" ");
        assert_eq!(a, "-qmp unix:/t/q.sock,server=on,wait=off");
    }
}
