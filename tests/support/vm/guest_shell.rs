//! A root command channel into a VM, for tests that must run commands on
//! the appliance itself (`airlift-firstboot rollback`, `gc`, `backup`…):
//! the VM's second serial port (ttyS1) is a unix socket on the host
//! ([`args`]), and the test-only `overlays/e2e-update` runs
//! `/usr/lib/airlift/e2e-shell` on it. A request is one line,
//! `ID BASE64(command)`; the answer is the command's output between
//! `AIRLIFT-E2E-CMD-BEGIN ID` and `AIRLIFT-E2E-CMD-END ID rc=N`.
//!
//! Everything sent and received is also appended to a transcript file
//! beside the serial logs, which a failing test keeps.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const READY: &str = "AIRLIFT-E2E-SHELL-READY";
const BEGIN: &str = "AIRLIFT-E2E-CMD-BEGIN ";
const END: &str = "AIRLIFT-E2E-CMD-END ";

/// QEMU arguments: a serial port at ttyS1's address (index 1) whose
/// other end is a unix socket server at `socket` (QEMU does not wait).
/// Put them before the test's `-serial` (ttyS0 stays the console).
pub fn args(socket: &Path) -> Vec<String> {
    vec![
        "-chardev".into(),
        format!(
            "socket,id=e2eshell,path={},server=on,wait=off",
            socket.display()
        ),
        "-device".into(),
        "isa-serial,chardev=e2eshell,index=1".into(),
    ]
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub rc: i32,
    /// stdout and stderr, interleaved as written.
    pub text: String,
}

/// One VM's channel.
pub struct GuestShell {
    name: String,
    stream: UnixStream,
    /// Received, not yet consumed.
    pending: String,
    /// The whole exchange, for failure messages and the kept logs.
    transcript: File,
    transcript_path: PathBuf,
    /// Request ids: unique within this VM's life (a shell restarted by
    /// systemd may see a stale request; its answer names another id).
    session: u64,
    next: u64,
}

impl GuestShell {
    /// Connect to `socket` as soon as QEMU has made it (within 30 s), so
    /// that nothing the guest sends is missed; `name` names the VM in
    /// messages, `transcript` is the file the exchange is appended to.
    pub fn connect(name: &str, socket: &Path, transcript: &Path) -> GuestShell {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(30),
                        "{name}: connecting to the command channel {}: {e}",
                        socket.display()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(250)))
            .expect("setting a read timeout");
        let file = File::create(transcript)
            .unwrap_or_else(|e| panic!("creating {}: {e}", transcript.display()));
        let session = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() % 100_000);
        GuestShell {
            name: name.to_string(),
            stream,
            pending: String::new(),
            transcript: file,
            transcript_path: transcript.to_path_buf(),
            session,
            next: 0,
        }
    }

    /// Read what has arrived (up to 250 ms); false once QEMU has gone.
    fn pump(&mut self) -> bool {
        let mut buf = [0u8; 65536];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                let _ = self.transcript.write_all(&buf[..n]);
                self.pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                true
            }
            Err(_) => false,
        }
    }

    /// Wait until the guest's shell says it is open (within `timeout`).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        while !self.pending.contains(READY) {
            if !self.pump() {
                return Err(format!("{}: the VM went away", self.name));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: no {READY} on the command channel within {timeout:?}",
                    self.name
                ));
            }
        }
        if let Some(i) = self.pending.rfind(READY) {
            let rest = self.pending[i..].find('\n').map_or(i, |n| i + n + 1);
            self.pending.drain(..rest);
        }
        Ok(())
    }

    /// Run `command` (bash) in the guest; its exit code and output, or
    /// why there is none (timeout, VM gone).
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<Output, String> {
        self.next += 1;
        let id = format!("{}-{}", self.session, self.next);
        let b64 = crate::registry::base64_encode(command.as_bytes());
        let _ = writeln!(self.transcript, "\n>>> [{id}] {command}");
        self.stream
            .write_all(format!("{id} {b64}\n").as_bytes())
            .map_err(|e| format!("{}: sending a command: {e}", self.name))?;
        let begin = format!("{BEGIN}{id}\n");
        let end = format!("{END}{id} rc=");
        let start = Instant::now();
        loop {
            if let Some(e) = self.pending.find(&end) {
                if let Some(nl) = self.pending[e..].find('\n') {
                    let rc_text = &self.pending[e + end.len()..e + nl];
                    let rc = rc_text.trim().parse::<i32>().unwrap_or(-1);
                    let from = self.pending[..e]
                        .find(&begin)
                        .map_or(0, |b| b + begin.len());
                    let text = self.pending[from..e].to_string();
                    self.pending.drain(..e + nl + 1);
                    return Ok(Output { rc, text });
                }
            }
            if !self.pump() {
                return Err(format!(
                    "{}: the VM went away while running {command:?}",
                    self.name
                ));
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "{}: {command:?} did not finish within {timeout:?}; output so far:\n{}",
                    self.name, self.pending
                ));
            }
        }
    }

    /// [`GuestShell::run`], which must exit 0; its output. Panics with
    /// the output otherwise.
    pub fn ok(&mut self, command: &str, timeout: Duration) -> String {
        match self.run(command, timeout) {
            Ok(o) if o.rc == 0 => o.text,
            Ok(o) => panic!("{}: `{command}` exited {}:\n{}", self.name, o.rc, o.text),
            Err(e) => panic!("{e}"),
        }
    }

    /// The transcript's path.
    pub fn transcript(&self) -> &Path {
        &self.transcript_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_base64_as_coreutils_reads_it() {
        use crate::registry::base64_encode;
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"echo hi; ls /"), "ZWNobyBoaTsgbHMgLw==");
    }

    #[test]
    fn the_channel_is_ttys1() {
        let a = args(Path::new("/t/s.sock")).join(" ");
        assert!(a.contains("path=/t/s.sock,server=on,wait=off"), "{a}");
        assert!(a.contains("isa-serial,chardev=e2eshell,index=1"), "{a}");
    }
}
