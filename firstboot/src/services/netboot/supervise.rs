//! Running dnsmasq as a child: its log lines go to ours (and DHCP
//! answers into the node table); when it dies it is restarted after a
//! growing pause (1 s doubling to 30 s, back to 1 s after a minute up).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::track::Track;

/// The pause before restart number `attempt` (0-based): 1 s doubling, at most 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64.checked_shl(attempt.min(5)).unwrap_or(32).min(30))
}

/// A run this long counts as healthy: the next failure starts the backoff over.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Run `binary -C config` until the process ends, restarting it.
pub async fn supervise(binary: PathBuf, config: PathBuf, track: Track) {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let child = Command::new(&binary)
            .arg("-C")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn();
        let why = match child {
            Err(e) => format!("could not start {}: {e}", binary.display()),
            Ok(mut child) => {
                tracing::info!("dnsmasq started (pid {:?})", child.id());
                let out = child.stdout.take().map(|o| forward(o, track.clone()));
                let err = child.stderr.take().map(|e| forward(e, track.clone()));
                let status = child.wait().await;
                for t in [out, err].into_iter().flatten() {
                    let _ = t.await;
                }
                match status {
                    Ok(s) => format!("dnsmasq exited ({s})"),
                    Err(e) => format!("waiting for dnsmasq failed: {e}"),
                }
            }
        };
        if started.elapsed() >= HEALTHY_RUN {
            attempt = 0;
        }
        let pause = backoff(attempt);
        attempt = attempt.saturating_add(1);
        tracing::error!("{why}; restarting it in {pause:?} (netboot DHCP/TFTP is down until then)");
        println!("AIRLIFT-NETBOOT-DNSMASQ-DIED {why}; restart in {pause:?}");
        tokio::time::sleep(pause).await;
    }
}

fn forward<R>(stream: R, track: Track) -> tokio::task::JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::info!(target: "dnsmasq", "{line}");
            if let Some(said) = track.line(&line) {
                println!("{said}");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        let s: Vec<u64> = (0..8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX).as_secs(), 30);
    }

    #[tokio::test]
    async fn a_dying_child_is_restarted_and_its_lines_read() {
        // A stand-in that prints a DHCPACK line and dies at once.
        let tmp = tempfile::tempdir().unwrap();
        let script = tmp.path().join("fake-dnsmasq");
        let count = tmp.path().join("count");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> {}\necho 'dnsmasq-dhcp[1]: DHCPACK(eth0) 10.0.0.5 52:54:00:00:00:05' >&2\nexit 3\n",
                count.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let nodes = super::super::nodes::Nodes::new();
        let track = Track {
            nodes: nodes.clone(),
            netboot: std::sync::Arc::new(super::super::config::Netboot::default()),
        };
        let task = tokio::spawn(supervise(script, tmp.path().join("conf"), track));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        task.abort();
        let runs = std::fs::read_to_string(&count).unwrap().lines().count();
        assert!(runs >= 2, "restarted {runs} times");
        assert_eq!(nodes.list()[0].mac, "52:54:00:00:00:05");
    }
}
