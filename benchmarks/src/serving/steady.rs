//! The steady rows: one request (the manifest by tag, or the big blob)
//! repeated on 1, 16 and 64 connections for a fixed time, each registry
//! in turn (A B C A B C), the server's CPU time read from /proc before
//! and after every run.

use std::time::Duration;

use anyhow::Result;
use tokio::runtime::Runtime;

use super::content::{Content, ACCEPT_VALUE};
use crate::load::{repeat, Endpoint, Request};
use crate::measure;
use crate::servers::Server;
use crate::settings::Settings;
use crate::stats::num;

/// Plain HTTP or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

impl Transport {
    /// What the tables call it.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plain => "plain",
            Transport::Tls => "TLS",
        }
    }
}

/// What a steady row requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Manifest,
    Blob,
}

/// One run against one registry.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Requests/s or MB/s.
    pub figure: f64,
    pub errors: u64,
    /// The figure's work (requests or MB) per CPU-second the server
    /// process used during the run.
    pub per_cpu_second: Option<f64>,
}

/// One (transport, request, connections) comparison.
#[derive(Debug, Clone)]
pub struct Row {
    pub transport: Transport,
    pub what: What,
    pub connections: u32,
    /// Per registry in [`crate::servers::Kind::ALL`] order, one per round.
    pub samples: [Vec<Sample>; 3],
}

/// A started registry and how the client reaches it.
pub struct Live {
    pub server: Server,
    pub endpoint: Endpoint,
}

/// Every steady row of `transport`, rounds alternating the registries.
pub fn measure(
    rt: &Runtime,
    s: &Settings,
    live: &[Live],
    content: &Content,
    transport: Transport,
) -> Result<Vec<Row>> {
    let ticks = measure::clock_ticks_per_second() as f64;
    let mut rows = Vec::new();
    for what in [What::Manifest, What::Blob] {
        for &connections in &s.serve_connections {
            let mut row = Row {
                transport,
                what,
                connections,
                samples: Default::default(),
            };
            for round in 1..=s.rounds {
                for (i, l) in live.iter().enumerate() {
                    let sample = measure_once(rt, s, l, content, what, connections, ticks)?;
                    eprintln!(
                        "[serve] {} round {round}: {what:?} c={connections} {}: {} ({} errors), {} per server CPU-second",
                        transport.name(),
                        l.server.name(),
                        num(Some(sample.figure)),
                        sample.errors,
                        num(sample.per_cpu_second),
                    );
                    row.samples[i].push(sample);
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

fn measure_once(
    rt: &Runtime,
    s: &Settings,
    l: &Live,
    content: &Content,
    what: What,
    connections: u32,
    ticks: f64,
) -> Result<Sample> {
    let host = l.endpoint.addr.to_string();
    let request = match what {
        What::Manifest => {
            Request::new("GET", &content.manifest, &host, &[("Accept", ACCEPT_VALUE)])
        }
        What::Blob => Request::new("GET", &content.blob, &host, &[]),
    };
    let pid = l.server.pid();
    let before = measure::cpu_ticks(pid)?;
    let duration = Duration::from_secs(s.serve_seconds);
    let t = rt.block_on(repeat::run(&l.endpoint, &request, connections, duration))?;
    let cpu_seconds = (measure::cpu_ticks(pid)? - before) as f64 / ticks;
    if let Some(e) = &t.first_error {
        eprintln!(
            "[serve] {}: {} errors, the first: {e}",
            l.server.name(),
            t.errors
        );
    }
    let work = match what {
        What::Manifest => t.requests as f64,
        What::Blob => t.bytes as f64 / 1e6,
    };
    Ok(Sample {
        figure: work / t.seconds,
        errors: t.errors,
        per_cpu_second: (cpu_seconds > 0.0).then(|| work / cpu_seconds),
    })
}
