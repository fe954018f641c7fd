//! Part 3: `airlift-firstboot host0` with a folder standing in for the
//! media: seconds from start to the first successful pull (a manifest GET
//! through its registry answering 200), and to the background load
//! complete (its `AIRLIFT-HOST0-LOADED` line, then `state: ready`).

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlift_appliance::TlsMode;
use airlift_integration::host0::{self, Host0, Host0Dirs};
use airlift_integration::http;
use airlift_integration::images::{Layer, TestImage};
use anyhow::{bail, Context, Result};

use crate::payload;
use crate::report::Table;
use crate::settings::Settings;
use crate::stats::{median, num, rounds};
use crate::Binaries;

/// The repository and tag pulled (path form of the bundle's full reference).
const PULL_PATH: &str = "/v2/registry.airlift.test/bench/first0/manifests/1";

/// The media payload for `mib` MiB: images of at most 256 MiB each, full
/// references as a bundle carries them.
pub fn media_images(mib: u64) -> Vec<TestImage> {
    let count = mib.div_ceil(256).max(1);
    (0..count)
        .map(|i| {
            let size = mib / count + u64::from(i < mib % count);
            TestImage {
                ref_name: format!("registry.airlift.test/bench/first{i}:1"),
                layers: vec![Layer::Random {
                    seed: 5000 + i,
                    size: (size << 20) as usize,
                }],
                architecture: "amd64".to_string(),
                gzip: false,
            }
        })
        .collect()
}

/// One host0 start.
#[derive(Debug, Clone, Copy)]
struct Times {
    ready_line: f64,
    first_pull: f64,
    loaded: f64,
}

/// Part 3's table.
pub fn run(s: &Settings, bins: &Binaries) -> Result<Table> {
    if !host0_available(bins) {
        let mut t = table(s);
        for m in &s.first_boot_mib {
            let why = "not yet measured: `airlift-firstboot host0` is not in this build";
            t.row(vec![format!("{m} MiB"), why.into(), why.into(), why.into()]);
        }
        return Ok(t);
    }
    let dir = s.work_dir.join("firstboot");
    let mut medias = Vec::new();
    for &m in &s.first_boot_mib {
        eprintln!("[firstboot] media of {m} MiB");
        let media = dir.join(format!("media-{m}"));
        payload::ensure_layout(&media, &media_images(m))?;
        medias.push((m, media, Vec::new()));
    }
    for round in 1..=s.rounds {
        for (m, media, into) in medias.iter_mut() {
            let t = start_once(&bins.firstboot, media, &dir.join("run"))
                .with_context(|| format!("round {round}: host0 with {m} MiB"))?;
            eprintln!(
                "[firstboot] round {round}: {m} MiB: ready line {:.3}s, first pull {:.3}s, loaded {:.2}s",
                t.ready_line, t.first_pull, t.loaded
            );
            into.push(t);
        }
    }
    let mut t = table(s);
    for (m, _, times) in &medias {
        let col = |f: fn(&Times) -> f64| times.iter().map(f).collect::<Vec<_>>();
        let (r, p, l) = (
            col(|t| t.ready_line),
            col(|t| t.first_pull),
            col(|t| t.loaded),
        );
        t.row(vec![
            format!("{m} MiB"),
            format!("{} ({})", num(median(&r)), rounds(&r)),
            format!("{} ({})", num(median(&p)), rounds(&p)),
            format!("{} ({})", num(median(&l)), rounds(&l)),
        ]);
    }
    t.note(
        "From spawning `airlift-firstboot host0 --media DIR --force-load` (plain HTTP on 127.0.0.1, no runtimes, \
         empty data folder each round): its `AIRLIFT-HOST0-READY` line; the first manifest GET answering 200 \
         (polled every 2 ms); its `AIRLIFT-HOST0-LOADED` line with `/airlift/v1/status` at `ready` (every blob \
         copied to the data folder and verified). Media and data folder are on the same disk; the media \
         folder is in the page cache (a real CD or USB stick reads slower).",
    );
    Ok(t)
}

fn table(s: &Settings) -> Table {
    Table::new(
        &format!(
            "3. First boot: airlift-firstboot host0 from a folder standing in for the media, median of {} rounds (each round's figure in brackets)",
            s.rounds
        ),
        &[
            "media payload",
            "start → ready line (s)",
            "start → first pull (s)",
            "start → background load complete (s)",
        ],
    )
}

/// Whether the built `airlift-firstboot` has a `host0` subcommand.
pub fn host0_available(bins: &Binaries) -> bool {
    Command::new(&bins.firstboot)
        .args(["host0", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// One host0 run: `airlift-firstboot host0` started by the integration
/// tests' harness with plain HTTP, no runtimes and `RUST_LOG=warn`.
fn start_once(binary: &Path, media: &Path, run: &Path) -> Result<Times> {
    if run.exists() {
        std::fs::remove_dir_all(run).with_context(|| format!("clearing {}", run.display()))?;
    }
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut file = host0::appliance_file(port, &[]);
    file.registry.tls = TlsMode::Off;
    file.runtimes.clear();
    let dirs = Host0Dirs::try_new(run, media, &file)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let start = Instant::now();
    let h0 = Host0::spawn(binary, &dirs, &["--force-load"], "warn")?;
    let deadline = start + Duration::from_secs(600);

    let first_pull = loop {
        let accept = [("Accept", crate::serving::ACCEPT_VALUE)];
        if let Ok(r) = http::request(addr, "GET", PULL_PATH, &accept, b"") {
            if r.status == 200 {
                break start.elapsed().as_secs_f64();
            }
        }
        if Instant::now() > deadline {
            bail!(
                "host0 never answered 200 to GET {PULL_PATH}; its log:\n{}",
                h0.log_text()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut ready_line = None;
    let loaded = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match h0.lines.recv_timeout(left) {
            Ok((l, at)) if l.starts_with("AIRLIFT-HOST0-READY") => {
                ready_line = Some((at - start).as_secs_f64())
            }
            Ok((l, at)) if l.starts_with("AIRLIFT-HOST0-LOADED") => {
                break (at - start).as_secs_f64()
            }
            Ok(_) => {}
            Err(_) => bail!(
                "host0 printed no AIRLIFT-HOST0-LOADED line; its log:\n{}",
                h0.log_text()
            ),
        }
    };
    let status = http::request(addr, "GET", "/airlift/v1/status", &[], b"")?;
    let body = String::from_utf8_lossy(&status.body);
    if status.status != 200 || !body.contains("\"ready\"") {
        bail!(
            "after AIRLIFT-HOST0-LOADED, /airlift/v1/status answered {}: {body}",
            status.status
        );
    }
    drop(h0);
    Ok(Times {
        ready_line: ready_line.context("no AIRLIFT-HOST0-READY line before the load completed")?,
        first_pull,
        loaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(images: &[TestImage]) -> u64 {
        images
            .iter()
            .flat_map(|i| &i.layers)
            .map(|l| match l {
                Layer::Random { size, .. } => *size as u64,
                Layer::Busybox => 0,
            })
            .sum()
    }

    #[test]
    fn media_payload_sizes() {
        let small = media_images(100);
        assert_eq!(small.len(), 1);
        assert_eq!(total(&small), 100 << 20);
        let big = media_images(2048);
        assert_eq!(big.len(), 8);
        assert_eq!(total(&big), 2048 << 20);
        assert_eq!(total(&media_images(300)), 300 << 20);
        assert_eq!(big[0].ref_name, "registry.airlift.test/bench/first0:1");
    }
}
