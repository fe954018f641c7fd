//! The steady rows as the results table: medians per registry, ratios
//! airlift ÷ distribution and airlift ÷ docker-registry, peak memory,
//! notes on what was measured, and the aims printed as met or MISSED.
//! Pure: figures in, text out.

use super::steady::{Row, Sample, Transport, What};
use crate::report::Table;
use crate::servers::Kind;
use crate::stats::{median, mib, num, ratio, rounds};

/// Peak memory of the three registries over one transport, KiB, in
/// [`Kind::ALL`] order.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub transport: Transport,
    pub kib: [u64; 3],
}

/// What the notes say besides the figures.
#[derive(Debug, Clone)]
pub struct Context {
    pub seconds: u64,
    pub rounds: usize,
    pub blob_size: u64,
    /// The manifest's digest, the same from every registry.
    pub digest: String,
    /// Per registry ([`Kind::ALL`] order): the TLS parameters negotiated.
    pub tls: [String; 3],
}

/// Connections the aims are judged at.
pub const AIM_CONNECTIONS: u32 = 64;

/// The whole steady table.
pub fn table(ctx: &Context, rows: &[Row], memory: &[Memory]) -> Table {
    let mut t = Table::new(
        &format!(
            "2. Serving on loopback: airlift-firstboot serve vs distribution v3.1.1 and docker-registry 2.8, \
             plain HTTP and TLS, {} s per run, median of {} rounds",
            ctx.seconds, ctx.rounds
        ),
        &[
            "measure",
            "transport",
            "connections",
            Kind::Airlift.name(),
            Kind::Distribution.name(),
            Kind::DockerRegistry.name(),
            "airlift ÷ distribution",
            "airlift ÷ docker-registry",
            "errors (a / dist / docker)",
            "rounds (airlift; distribution; docker-registry)",
        ],
    );
    for r in rows {
        row_pair(&mut t, r);
    }
    for m in memory {
        let [a, d, r] = m.kib.map(|k| Some(k as f64));
        t.row(vec![
            "peak memory (VmHWM, MiB) over all runs".into(),
            m.transport.name().into(),
            String::new(),
            mib(m.kib[0] << 10),
            mib(m.kib[1] << 10),
            mib(m.kib[2] << 10),
            ratio(a, d),
            ratio(a, r),
        ]);
    }
    notes(&mut t, ctx);
    for line in aims(rows, memory) {
        t.note(line);
    }
    t
}

/// The figure row and the per-CPU-second row of one comparison.
fn row_pair(t: &mut Table, r: &Row) {
    let (what, per_cpu) = match r.what {
        What::Manifest => (
            "manifest GET by tag, requests/s",
            "  manifest GETs per server CPU-second",
        ),
        What::Blob => (
            "blob GET, MB/s (10⁶ bytes)",
            "  blob MB per server CPU-second",
        ),
    };
    let figures: Vec<Vec<f64>> = r
        .samples
        .iter()
        .map(|s| s.iter().map(|x| x.figure).collect())
        .collect();
    let errors: Vec<String> = r
        .samples
        .iter()
        .map(|s| s.iter().map(|x| x.errors).sum::<u64>().to_string())
        .collect();
    let mut cells = cells_of(what, r, &figures);
    cells.push(errors.join(" / "));
    cells.push(all_rounds(&figures));
    t.row(cells);
    let per: Vec<Vec<f64>> = r.samples.iter().map(|s| per_cpu_values(s)).collect();
    let mut cells = cells_of(per_cpu, r, &per);
    cells.push(String::new());
    cells.push(all_rounds(&per));
    t.row(cells);
}

fn per_cpu_values(s: &[Sample]) -> Vec<f64> {
    s.iter().filter_map(|x| x.per_cpu_second).collect()
}

/// measure, transport, connections, three medians, two ratios.
fn cells_of(what: &str, r: &Row, values: &[Vec<f64>]) -> Vec<String> {
    let m: Vec<Option<f64>> = values.iter().map(|v| median(v)).collect();
    vec![
        what.into(),
        r.transport.name().into(),
        r.connections.to_string(),
        num(m[0]),
        num(m[1]),
        num(m[2]),
        ratio(m[0], m[1]),
        ratio(m[0], m[2]),
    ]
}

fn all_rounds(values: &[Vec<f64>]) -> String {
    values
        .iter()
        .map(|v| rounds(v))
        .collect::<Vec<_>>()
        .join("; ")
}

fn notes(t: &mut Table, ctx: &Context) {
    t.note(format!(
        "Same content in all three, pushed the same way (skopeo from OCI layouts, digests kept; manifest {}), \
         storage on the same disk under the bench's work folder; blob of {} bytes. Every registry logs \
         warnings only, access logs off. For TLS the same registries are restarted on the same storage \
         with one server certificate (IP SAN 127.0.0.1) signed by a CA the bench makes.",
        ctx.digest, ctx.blob_size
    ));
    t.note(
        "Load client: airlift-bench's own (tokio + rustls 0.23 with ring, HTTP/1.1 keep-alive, httparse for \
         response heads, bodies counted and discarded), the same for every registry and both transports. \
         Over TLS it verifies each server's certificate against the bench CA (its only root) and the \
         127.0.0.1 IP SAN, offering TLS 1.3 and 1.2 with the suites in Go clients' order (AES-128-GCM first, as containerd offers \
         them) and ALPN http/1.1. Blob MB/s \
         counts body bytes received during the run, unfinished bodies included. Client, servers and this \
         driver share the machine's cores; one registry is loaded at a time.",
    );
    let names = Kind::ALL.map(Kind::name);
    let tls: Vec<String> = names
        .iter()
        .zip(&ctx.tls)
        .map(|(n, t)| format!("{n}: {t}"))
        .collect();
    t.note(format!("TLS negotiated: {}.", tls.join("; ")));
    t.note(
        "Per server CPU-second: the requests or MB of the run divided by the user + system CPU time of the \
         server process (all threads) during it (/proc/PID/stat). Loopback throughput is capped by the \
         machine (the client's and the kernel's copies share its cores), so the per-CPU-second rows decide.",
    );
}

/// The aims, one line each: per server CPU-second ≥ 2× distribution on
/// blobs and ≥ 20× on manifests at [`AIM_CONNECTIONS`] connections (the
/// most measured, if fewer), each transport; memory below distribution.
pub fn aims(rows: &[Row], memory: &[Memory]) -> Vec<String> {
    let at = rows
        .iter()
        .map(|r| r.connections)
        .filter(|&c| c <= AIM_CONNECTIONS)
        .max()
        .unwrap_or(AIM_CONNECTIONS);
    let mut out = Vec::new();
    for (what, label, goal) in [
        (What::Blob, "blob MB", 2.0),
        (What::Manifest, "manifest GETs", 20.0),
    ] {
        let verdicts: Vec<String> = [Transport::Plain, Transport::Tls]
            .into_iter()
            .filter_map(|tr| {
                let r = rows
                    .iter()
                    .find(|r| r.what == what && r.transport == tr && r.connections == at)?;
                let a = median(&per_cpu_values(&r.samples[0]));
                let d = median(&per_cpu_values(&r.samples[1]));
                Some(format!("{} {}", tr.name(), verdict(a, d, goal)))
            })
            .collect();
        out.push(format!(
            "Aim: {label} per server CPU-second ≥ {goal}× distribution v3 at {at} connections: {}.",
            if verdicts.is_empty() {
                "not measured".to_string()
            } else {
                verdicts.join("; ")
            }
        ));
    }
    let mem: Vec<String> = memory
        .iter()
        .map(|m| {
            let (a, d) = (m.kib[0] as f64, m.kib[1] as f64);
            let word = if a < d { "met" } else { "MISSED" };
            format!(
                "{} {word} ({})",
                m.transport.name(),
                ratio(Some(a), Some(d))
            )
        })
        .collect();
    out.push(format!(
        "Aim: peak memory below distribution v3: {}.",
        if mem.is_empty() {
            "not measured".to_string()
        } else {
            mem.join("; ")
        }
    ));
    out
}

/// `met (2.31×)`, `MISSED (1.20×)` or `MISSED (no figure)`.
fn verdict(a: Option<f64>, d: Option<f64>, goal: f64) -> String {
    match (a, d) {
        (Some(a), Some(d)) if d > 0.0 => {
            let word = if a >= goal * d { "met" } else { "MISSED" };
            format!("{word} ({})", ratio(Some(a), Some(d)))
        }
        _ => "MISSED (no figure)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(figure: f64, errors: u64, per_cpu_second: Option<f64>) -> Sample {
        Sample {
            figure,
            errors,
            per_cpu_second,
        }
    }

    fn row(transport: Transport, what: What, connections: u32, per_cpu: [f64; 3]) -> Row {
        Row {
            transport,
            what,
            connections,
            samples: per_cpu.map(|p| vec![sample(p / 2.0, 0, Some(p))]),
        }
    }

    fn ctx() -> Context {
        Context {
            seconds: 3,
            rounds: 3,
            blob_size: 67108864,
            digest: "sha256:abc".into(),
            tls: [
                "TLSv1_3 A (X25519, ALPN http/1.1)".into(),
                "TLSv1_3 B (X25519, ALPN http/1.1)".into(),
                "TLSv1_3 C (X25519, ALPN http/1.1)".into(),
            ],
        }
    }

    #[test]
    fn rows_show_medians_ratios_errors_and_rounds() {
        let r = Row {
            transport: Transport::Tls,
            what: What::Manifest,
            connections: 64,
            samples: [
                vec![
                    sample(30000.0, 1, Some(60000.0)),
                    sample(32000.0, 0, Some(64000.0)),
                    sample(31000.0, 0, Some(62000.0)),
                ],
                vec![sample(2000.0, 0, Some(3000.0)), sample(2200.0, 0, None)],
                vec![sample(1000.0, 2, Some(1000.0))],
            ],
        };
        let memory = [Memory {
            transport: Transport::Tls,
            kib: [20 << 10, 500 << 10, 100 << 10],
        }];
        let md = table(&ctx(), &[r], &memory).markdown();
        assert!(md.starts_with(
            "### 2. Serving on loopback: airlift-firstboot serve vs distribution v3.1.1 and docker-registry 2.8, \
             plain HTTP and TLS, 3 s per run, median of 3 rounds\n\n\
             | measure | transport | connections | airlift | distribution v3.1.1 | docker-registry 2.8 | \
             airlift ÷ distribution | airlift ÷ docker-registry | errors (a / dist / docker) | \
             rounds (airlift; distribution; docker-registry) |\n"
        ), "{md}");
        assert!(md.contains(
            "| manifest GET by tag, requests/s | TLS | 64 | 31000 | 2100 | 1000 | 14.76× | 31.00× | 1 / 0 / 2 | \
             30000 / 32000 / 31000; 2000 / 2200; 1000 |\n"
        ), "{md}");
        assert!(md.contains(
            "|   manifest GETs per server CPU-second | TLS | 64 | 62000 | 3000 | 1000 | 20.67× | 62.00× |  | \
             60000 / 64000 / 62000; 3000; 1000 |\n"
        ), "{md}");
        assert!(md.contains(
            "| peak memory (VmHWM, MiB) over all runs | TLS |  | 20.0 | 500.0 | 100.0 | 0.04× | 0.20× |  |  |\n"
        ), "{md}");
        assert!(md.contains("- TLS negotiated: airlift: TLSv1_3 A (X25519, ALPN http/1.1); distribution v3.1.1: TLSv1_3 B"));
        assert!(md.contains("manifest sha256:abc"));
        assert!(md.contains("blob of 67108864 bytes"));
        assert!(md.contains("verifies each server's certificate against the bench CA"));
        assert!(md.contains(
            "- Aim: manifest GETs per server CPU-second ≥ 20× distribution v3 at 64 connections: TLS met (20.67×).\n"
        ), "{md}");
        assert!(md.contains("- Aim: peak memory below distribution v3: TLS met (0.04×).\n"));
    }

    #[test]
    fn aims_say_met_or_missed_per_transport() {
        let rows = [
            row(Transport::Plain, What::Blob, 16, [5000.0, 1000.0, 900.0]),
            row(Transport::Plain, What::Blob, 64, [1900.0, 1000.0, 900.0]),
            row(Transport::Tls, What::Blob, 64, [2000.0, 1000.0, 900.0]),
            row(
                Transport::Plain,
                What::Manifest,
                64,
                [19000.0, 1000.0, 900.0],
            ),
            row(Transport::Tls, What::Manifest, 64, [25000.0, 1000.0, 900.0]),
        ];
        let memory = [
            Memory {
                transport: Transport::Plain,
                kib: [100, 99, 1],
            },
            Memory {
                transport: Transport::Tls,
                kib: [10, 99, 1],
            },
        ];
        assert_eq!(
            aims(&rows, &memory),
            [
                "Aim: blob MB per server CPU-second ≥ 2× distribution v3 at 64 connections: plain MISSED (1.90×); TLS met (2.00×).",
                "Aim: manifest GETs per server CPU-second ≥ 20× distribution v3 at 64 connections: plain MISSED (19.00×); TLS met (25.00×).",
                "Aim: peak memory below distribution v3: plain MISSED (1.01×); TLS met (0.10×).",
            ]
        );
    }

    #[test]
    fn aims_fall_back_to_the_most_connections_measured_and_name_missing_figures() {
        let mut no_cpu = row(
            Transport::Plain,
            What::Manifest,
            16,
            [30000.0, 1000.0, 900.0],
        );
        no_cpu.samples[1] = vec![sample(1.0, 0, None)];
        let rows = [
            row(Transport::Plain, What::Blob, 1, [900.0, 100.0, 100.0]),
            row(Transport::Plain, What::Blob, 16, [150.0, 100.0, 100.0]),
            no_cpu,
        ];
        assert_eq!(
            aims(&rows, &[]),
            [
                "Aim: blob MB per server CPU-second ≥ 2× distribution v3 at 16 connections: plain MISSED (1.50×).",
                "Aim: manifest GETs per server CPU-second ≥ 20× distribution v3 at 16 connections: plain MISSED (no figure).",
                "Aim: peak memory below distribution v3: not measured.",
            ]
        );
        assert_eq!(aims(&[], &[])[0], "Aim: blob MB per server CPU-second ≥ 2× distribution v3 at 64 connections: not measured.");
    }
}
