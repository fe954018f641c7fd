//! Part 2: blob throughput and manifest requests per second of
//! `airlift-firstboot serve` beside `docker-registry`, same image pushed
//! into both with skopeo, load from `wrk`, rounds alternating A B A B.

use std::path::{Path, PathBuf};

use airlift_integration::http;
use anyhow::{bail, Context, Result};

use crate::measure;
use crate::payload;
use crate::report::Table;
use crate::servers::{self, Server};
use crate::settings::Settings;
use crate::stats::{median, mib, num, ratio, rounds};
use crate::wrk;
use crate::Binaries;

/// The repository and tag both registries serve.
pub const REPO: &str = "bench/serve";
pub const TAG: &str = "1";

/// The Accept header of manifest requests.
pub const ACCEPT: &str = "Accept: application/vnd.oci.image.manifest.v1+json, \
                          application/vnd.docker.distribution.manifest.v2+json";

/// [`ACCEPT`]'s value alone.
pub const ACCEPT_VALUE: &str = "application/vnd.oci.image.manifest.v1+json, \
                                application/vnd.docker.distribution.manifest.v2+json";

/// What a measurement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Manifest,
    Blob,
}

/// One wrk run against one server.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// Requests/s or MB/s.
    figure: f64,
    errors: u64,
    /// The figure's work (requests or MB) per CPU-second the server
    /// process used during the run.
    per_cpu_second: Option<f64>,
}

/// One (endpoint, connections) comparison.
struct Pair {
    endpoint: Endpoint,
    connections: u32,
    /// Per round, airlift then docker-registry.
    airlift: Vec<Sample>,
    docker: Vec<Sample>,
}

/// What both registries serve, as wrk requests it.
struct Target {
    manifest: String,
    blob: String,
    blob_size: u64,
}

/// Run part 2 and return its table.
pub fn run(s: &Settings, bins: &Binaries) -> Result<Table> {
    let wrk_bin = measure::require("wrk", "wrk")?;
    let skopeo = measure::require("skopeo", "skopeo")?;
    let dir = s.work_dir.join("serve");
    std::fs::create_dir_all(&dir)?;
    let (layout, target) = payload_layout(s, &dir)?;

    eprintln!("[serve] starting both registries and pushing the image with skopeo");
    let airlift = servers::start_airlift(&bins.firstboot, &dir.join("airlift"))?;
    let docker = servers::start_docker_registry(&dir.join("docker-registry"))?;
    let digest = push_to_both(&skopeo, &layout, &target, &airlift, &docker)?;
    let pairs = measure_pairs(s, &wrk_bin, &target, &airlift, &docker)?;
    let mem_a = airlift.peak_kib()?;
    let mem_d = docker.peak_kib()?;
    drop(airlift);
    drop(docker);
    Ok(table(s, target.blob_size, &pairs, mem_a, mem_d, &digest))
}

/// The one-image OCI layout pushed into both (made once, kept across
/// runs), and what wrk will request from it.
fn payload_layout(s: &Settings, dir: &Path) -> Result<(PathBuf, Target)> {
    let layout = dir.join("payload");
    // Gzip (of random bytes: no smaller), so skopeo pushes the layer as
    // is instead of compressing it on the way.
    let image = airlift_integration::images::TestImage {
        gzip: true,
        ..airlift_integration::images::TestImage::random(
            "serve",
            4242,
            (s.serve_blob_mib << 20) as usize,
        )
    };
    let made = payload::ensure_layout(&layout, &[image])?;
    let layer = made[0]
        .blobs
        .last()
        .context("the serve image has a layer")?
        .clone();
    let blob_size = std::fs::metadata(layout.join(layer.blob_path()))
        .context("the serve image's layer blob")?
        .len();
    let target = Target {
        manifest: format!("/v2/{REPO}/manifests/{TAG}"),
        blob: format!("/v2/{REPO}/blobs/{layer}"),
        blob_size,
    };
    Ok((layout, target))
}

/// Push the image into both registries, check both serve the same
/// content, and return the manifest's digest.
fn push_to_both(
    skopeo: &Path,
    layout: &Path,
    target: &Target,
    airlift: &Server,
    docker: &Server,
) -> Result<String> {
    for (server, creds) in [
        (airlift, Some(format!("bench:{}", servers::TOKEN))),
        (docker, None),
    ] {
        push(skopeo, layout, server, creds.as_deref())?;
    }
    let mut digests = Vec::new();
    for server in [airlift, docker] {
        digests.push(check_same_content(server, target)?);
    }
    if digests[0] != digests[1] {
        bail!(
            "the registries serve different manifests for {REPO}:{TAG} ({} vs {}): not comparable",
            digests[0],
            digests[1]
        );
    }
    Ok(digests.swap_remove(0))
}

/// Every (endpoint, connections) comparison, rounds alternating airlift
/// and docker-registry.
fn measure_pairs(
    s: &Settings,
    wrk_bin: &Path,
    target: &Target,
    airlift: &Server,
    docker: &Server,
) -> Result<Vec<Pair>> {
    let ticks = measure::clock_ticks_per_second();
    let mut pairs = Vec::new();
    for endpoint in [Endpoint::Manifest, Endpoint::Blob] {
        for &c in &s.serve_connections {
            let mut pair = Pair {
                endpoint,
                connections: c,
                airlift: Vec::new(),
                docker: Vec::new(),
            };
            for round in 1..=s.rounds {
                for (server, into) in [(airlift, &mut pair.airlift), (docker, &mut pair.docker)] {
                    let sample = measure_once(wrk_bin, server, endpoint, c, s, target, ticks)?;
                    eprintln!(
                        "[serve] round {round}: {:?} c={c} {}: {} ({} errors), {} per server CPU-second",
                        endpoint,
                        server.name(),
                        num(Some(sample.figure)),
                        sample.errors,
                        num(sample.per_cpu_second),
                    );
                    into.push(sample);
                }
            }
            pairs.push(pair);
        }
    }
    Ok(pairs)
}

fn push(skopeo: &Path, layout: &Path, server: &Server, creds: Option<&str>) -> Result<()> {
    let src = format!("oci:{}:serve", layout.display());
    let dst = format!("docker://{}/{REPO}:{TAG}", server.addr());
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "copy".as_ref(),
        "--quiet".as_ref(),
        "--dest-tls-verify=false".as_ref(),
    ];
    if let Some(c) = creds {
        args.push("--dest-creds".as_ref());
        args.push(c.as_ref());
    }
    args.push(src.as_ref());
    args.push(dst.as_ref());
    measure::output(skopeo, &args)
        .with_context(|| format!("pushing the bench image into {} with skopeo", server.name()))?;
    Ok(())
}

/// Both endpoints answer 200 with the expected sizes; returns the
/// manifest's digest.
fn check_same_content(server: &Server, target: &Target) -> Result<String> {
    let Target {
        manifest,
        blob,
        blob_size,
    } = target;
    let m = http::request(
        server.addr(),
        "GET",
        manifest,
        &[("Accept", ACCEPT_VALUE)],
        b"",
    )?;
    if m.status != 200 {
        bail!("{} answered {} to GET {manifest}", server.name(), m.status);
    }
    let b = http::request(server.addr(), "HEAD", blob, &[], b"")?;
    let len: Option<u64> = b.header("content-length").and_then(|v| v.parse().ok());
    if b.status != 200 || len != Some(*blob_size) {
        bail!(
            "{} answered {} (Content-Length {len:?}, want {blob_size}) to HEAD {blob}",
            server.name(),
            b.status
        );
    }
    Ok(m.header("docker-content-digest")
        .unwrap_or("(no digest header)")
        .to_string())
}

/// One wrk run, with the server's CPU time read before and after.
fn measure_once(
    wrk_bin: &Path,
    server: &Server,
    endpoint: Endpoint,
    connections: u32,
    s: &Settings,
    target: &Target,
    ticks: u64,
) -> Result<Sample> {
    let (path, header, timeout) = match endpoint {
        Endpoint::Manifest => (&target.manifest, Some(ACCEPT), 10),
        Endpoint::Blob => (&target.blob, None, 120),
    };
    let url = format!("http://{}{path}", server.addr());
    let cpu_before = measure::cpu_ticks(server.pid())?;
    let r = wrk::run(wrk_bin, &url, connections, s.wrk_seconds, header, timeout)?;
    let cpu_seconds = (measure::cpu_ticks(server.pid())? - cpu_before) as f64 / ticks as f64;
    let work = match endpoint {
        Endpoint::Manifest => r.requests as f64,
        Endpoint::Blob => r.requests as f64 * target.blob_size as f64 / 1e6,
    };
    let figure = match endpoint {
        Endpoint::Manifest => r.requests_per_sec,
        Endpoint::Blob => work / r.seconds,
    };
    Ok(Sample {
        figure,
        errors: r.errors(),
        per_cpu_second: (cpu_seconds > 0.0).then(|| work / cpu_seconds),
    })
}

fn table(
    s: &Settings,
    blob_size: u64,
    pairs: &[Pair],
    mem_a: u64,
    mem_d: u64,
    digest: &str,
) -> Table {
    let mut t = Table::new(
        &format!(
            "2. Serving on loopback: airlift-firstboot serve vs docker-registry 2.8, wrk {} s per run, median of {} rounds",
            s.wrk_seconds, s.rounds
        ),
        &[
            "measure",
            "connections",
            "airlift",
            "docker-registry",
            "airlift ÷ docker-registry",
            "errors (a / d)",
            "airlift rounds",
            "docker-registry rounds",
        ],
    );
    let losses: Vec<String> = pairs.iter().filter_map(|p| pair_rows(&mut t, p)).collect();
    t.row(vec![
        "peak memory (VmHWM, MiB) over all runs".into(),
        String::new(),
        mib(mem_a << 10),
        mib(mem_d << 10),
        ratio(Some(mem_a as f64), Some(mem_d as f64)),
    ]);
    notes(&mut t, blob_size, digest, &losses, mem_a < mem_d);
    t
}

/// The figure row and the per-CPU-second row of one comparison; returns
/// the miss when airlift's median is under twice docker-registry's.
fn pair_rows(t: &mut Table, p: &Pair) -> Option<String> {
    let fa: Vec<f64> = p.airlift.iter().map(|x| x.figure).collect();
    let fd: Vec<f64> = p.docker.iter().map(|x| x.figure).collect();
    let (ma, md) = (median(&fa), median(&fd));
    let ea: u64 = p.airlift.iter().map(|x| x.errors).sum();
    let ed: u64 = p.docker.iter().map(|x| x.errors).sum();
    let (what, per_cpu) = match p.endpoint {
        Endpoint::Manifest => (
            "manifest GET by tag, requests/s",
            "  manifest GETs per server CPU-second",
        ),
        Endpoint::Blob => (
            "blob GET (MB/s, 10⁶ bytes)",
            "  blob MB per server CPU-second",
        ),
    };
    t.row(vec![
        what.into(),
        p.connections.to_string(),
        num(ma),
        num(md),
        ratio(ma, md),
        format!("{ea} / {ed}"),
        rounds(&fa),
        rounds(&fd),
    ]);
    let ca: Vec<f64> = p.airlift.iter().filter_map(|x| x.per_cpu_second).collect();
    let cd: Vec<f64> = p.docker.iter().filter_map(|x| x.per_cpu_second).collect();
    let (mca, mcd) = (median(&ca), median(&cd));
    t.row(vec![
        per_cpu.into(),
        p.connections.to_string(),
        num(mca),
        num(mcd),
        ratio(mca, mcd),
        String::new(),
        rounds(&ca),
        rounds(&cd),
    ]);
    match (ma, md) {
        (Some(a), Some(d)) if a < 2.0 * d => Some(format!(
            "{what} at {} connections: {:.2}×",
            p.connections,
            a / d
        )),
        _ => None,
    }
}

/// What was measured and how, then the verdicts against the aims.
fn notes(t: &mut Table, blob_size: u64, digest: &str, losses: &[String], lower_memory: bool) {
    t.note(format!(
        "Same image in both (pushed with skopeo from one OCI layout; manifest {digest}); blob of {} bytes. \
         wrk: -t2 (-t1 at one connection), blob runs with --timeout 120s. Both servers log warnings only \
         (docker-registry access log off). wrk, both servers and this driver share the machine's cores.",
        blob_size
    ));
    t.note(
        "Per server CPU-second: the requests or MB of the run divided by the user + system CPU time the \
         server process (all its threads) used during it (/proc/PID/stat). Throughput on loopback is \
         capped by the machine, not the server: wrk's own receive copy and the kernel's loopback copy run \
         on the same cores, and both servers copy each blob byte from the page cache into the socket the \
         same way (read and write; docker-registry does not use sendfile, checked with strace -c here). \
         The per-CPU-second rows show what each server costs under that cap.",
    );
    if losses.is_empty() {
        t.note("Aim ≥ 2× docker-registry on every row: met.");
    } else {
        t.note(format!(
            "AIRLIFT MISSES the ≥ 2× aim on: {}.",
            losses.join("; ")
        ));
    }
    t.note(if lower_memory {
        "Memory: airlift peaks lower than docker-registry (aim met).".to_string()
    } else {
        "Memory: AIRLIFT PEAKS HIGHER than docker-registry (aim missed).".to_string()
    });
}

#[cfg(test)]
/// The table text `just bench` prints and RESULTS.md records, from fixed
/// figures: the literals were rendered by the table code before it was
/// split into row groups (#16), so the split is checked byte for byte.
mod table_tests {
    use super::*;

    fn sample(figure: f64, errors: u64, per_cpu_second: Option<f64>) -> Sample {
        Sample {
            figure,
            errors,
            per_cpu_second,
        }
    }

    fn settings() -> Settings {
        Settings::from_vars(|_| None, Path::new("/r")).unwrap()
    }

    #[test]
    fn table_text_with_a_miss_and_a_win() {
        let pairs = [
            Pair {
                endpoint: Endpoint::Manifest,
                connections: 16,
                airlift: vec![
                    sample(9000.0, 0, Some(30000.0)),
                    sample(9500.0, 2, Some(31000.0)),
                ],
                docker: vec![sample(5000.0, 1, Some(8000.0)), sample(5200.0, 0, None)],
            },
            Pair {
                endpoint: Endpoint::Blob,
                connections: 1,
                airlift: vec![
                    sample(2500.0, 0, Some(900.0)),
                    sample(2600.0, 0, Some(950.5)),
                ],
                docker: vec![
                    sample(1000.0, 0, Some(400.0)),
                    sample(1100.0, 0, Some(420.0)),
                ],
            },
        ];
        let t = table(&settings(), 64 << 20, &pairs, 20_000, 30_000, "sha256:abc");
        assert_eq!(
            t.markdown(),
            r#"### 2. Serving on loopback: airlift-firstboot serve vs docker-registry 2.8, wrk 10 s per run, median of 3 rounds

| measure | connections | airlift | docker-registry | airlift ÷ docker-registry | errors (a / d) | airlift rounds | docker-registry rounds |
|---|---|---|---|---|---|---|---|
| manifest GET by tag, requests/s | 16 | 9250 | 5100 | 1.81× | 2 / 1 | 9000 / 9500 | 5000 / 5200 |
|   manifest GETs per server CPU-second | 16 | 30500 | 8000 | 3.81× |  | 30000 / 31000 | 8000 |
| blob GET (MB/s, 10⁶ bytes) | 1 | 2550 | 1050 | 2.43× | 0 / 0 | 2500 / 2600 | 1000 / 1100 |
|   blob MB per server CPU-second | 1 | 925 | 410 | 2.26× |  | 900 / 950 | 400 / 420 |
| peak memory (VmHWM, MiB) over all runs |  | 19.5 | 29.3 | 0.67× |  |  |  |

- Same image in both (pushed with skopeo from one OCI layout; manifest sha256:abc); blob of 67108864 bytes. wrk: -t2 (-t1 at one connection), blob runs with --timeout 120s. Both servers log warnings only (docker-registry access log off). wrk, both servers and this driver share the machine's cores.
- Per server CPU-second: the requests or MB of the run divided by the user + system CPU time the server process (all its threads) used during it (/proc/PID/stat). Throughput on loopback is capped by the machine, not the server: wrk's own receive copy and the kernel's loopback copy run on the same cores, and both servers copy each blob byte from the page cache into the socket the same way (read and write; docker-registry does not use sendfile, checked with strace -c here). The per-CPU-second rows show what each server costs under that cap.
- AIRLIFT MISSES the ≥ 2× aim on: manifest GET by tag, requests/s at 16 connections: 1.81×.
- Memory: airlift peaks lower than docker-registry (aim met).
"#
        );
    }

    #[test]
    fn table_text_with_missing_figures() {
        let pairs = [Pair {
            endpoint: Endpoint::Blob,
            connections: 64,
            airlift: vec![],
            docker: vec![sample(1.0, 0, None)],
        }];
        let t = table(&settings(), 7, &pairs, 30_000, 30_000, "sha256:def");
        assert_eq!(
            t.markdown(),
            r#"### 2. Serving on loopback: airlift-firstboot serve vs docker-registry 2.8, wrk 10 s per run, median of 3 rounds

| measure | connections | airlift | docker-registry | airlift ÷ docker-registry | errors (a / d) | airlift rounds | docker-registry rounds |
|---|---|---|---|---|---|---|---|
| blob GET (MB/s, 10⁶ bytes) | 64 | n/a | 1.00 | n/a | 0 / 0 |  | 1.00 |
|   blob MB per server CPU-second | 64 | n/a | n/a | n/a |  |  |  |
| peak memory (VmHWM, MiB) over all runs |  | 29.3 | 29.3 | 1.00× |  |  |  |

- Same image in both (pushed with skopeo from one OCI layout; manifest sha256:def); blob of 7 bytes. wrk: -t2 (-t1 at one connection), blob runs with --timeout 120s. Both servers log warnings only (docker-registry access log off). wrk, both servers and this driver share the machine's cores.
- Per server CPU-second: the requests or MB of the run divided by the user + system CPU time the server process (all its threads) used during it (/proc/PID/stat). Throughput on loopback is capped by the machine, not the server: wrk's own receive copy and the kernel's loopback copy run on the same cores, and both servers copy each blob byte from the page cache into the socket the same way (read and write; docker-registry does not use sendfile, checked with strace -c here). The per-CPU-second rows show what each server costs under that cap.
- Aim ≥ 2× docker-registry on every row: met.
- Memory: AIRLIFT PEAKS HIGHER than docker-registry (aim missed).
"#
        );
    }
}
