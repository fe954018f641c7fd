//! Reading a VM's serial console from its log file: the whole log, its
//! tail for failure messages, a wait for a marker line, and a follower
//! that notes the host time each line appeared (for timelines).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::running::Running;

/// The file as text (empty while it does not exist).
pub fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of a serial log, framed for a failure message.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "--- serial log, last {} of {} lines ---\n{}\n--- end of serial log ---",
        lines.len() - from,
        lines.len(),
        lines[from..].join("\n")
    )
}

/// Wait for a line of `serial` containing `marker`; returns it. QEMU must
/// keep running: panics with the log's tail if it exits or `timeout` passes.
pub fn wait_serial(qemu: &mut Running, serial: &Path, marker: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let log = read_lossy(serial);
        if let Some(line) = log.lines().find(|l| l.contains(marker)) {
            return line.trim_end().to_string();
        }
        if let Some(status) = qemu.exited() {
            panic!(
                "QEMU exited ({status}) before {marker:?}\nqemu stderr:\n{}\n{}",
                qemu.stderr(),
                tail(&log, 80)
            );
        }
        assert!(
            start.elapsed() < timeout,
            "no {marker:?} on the serial console within {timeout:?}\n{}",
            tail(&log, 80)
        );
        std::thread::sleep(Duration::from_millis(250));
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
                let text = read_lossy(&me.path);
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

    /// The first line containing every one of `markers`, with its time.
    pub fn find_all(&self, markers: &[&str]) -> Option<(Duration, String)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| markers.iter().all(|m| l.contains(m)))
            .cloned()
    }

    /// The first line containing `marker`, with its time.
    pub fn find(&self, marker: &str) -> Option<(Duration, String)> {
        self.find_all(&[marker])
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
        read_lossy(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines() {
        let t = tail("a\nb\nc\n", 2);
        assert!(t.contains("last 2 of 3") && t.contains("b\nc"), "{t}");
    }
}
