//! Part 2: serving on loopback. `airlift-firstboot serve` beside CNCF
//! distribution v3.1.1 (the main peer) and Debian's docker-registry 2.8,
//! over plain HTTP and TLS: steady rows (the manifest by tag and a big
//! blob at 1, 16 and 64 connections) and a node-start workload, all
//! driven by the bench's own load client, which verifies TLS.

pub mod content;
pub mod node_start;
pub mod node_table;
pub mod steady;
pub mod table;

use std::path::Path;

use anyhow::{bail, Context, Result};
use tokio::runtime::Runtime;

use crate::load::Endpoint;
use crate::measure;
use crate::report::Table;
use crate::servers::{Kind, Server};
use crate::settings::Settings;
use crate::tls_files::{self, TlsFiles};
use crate::Binaries;
use content::Content;
pub use content::{ACCEPT_VALUE, REPO, TAG};
use steady::{Live, Transport};

/// Run part 2 and return its two tables (steady rows, node start).
pub fn run(s: &Settings, bins: &Binaries) -> Result<Vec<Table>> {
    let skopeo = measure::require("skopeo", "skopeo")?;
    let dir = s.work_dir.join("serve");
    std::fs::create_dir_all(&dir)?;
    let content = content::prepare(s, &dir)?;
    let tls = tls_files::make(&dir.join("tls"))?;
    // Two workers, as wrk's two threads were: the client should not
    // take the cores the server needs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the load client's runtime")?;
    let mut rows = Vec::new();
    let mut node_rows = Vec::new();
    let mut memory = Vec::new();
    let mut digest = String::new();
    let mut negotiated: [String; 3] = Default::default();
    for transport in [Transport::Plain, Transport::Tls] {
        eprintln!(
            "[serve] {}: starting the three registries",
            transport.name()
        );
        let live = start_all(bins, &dir, transport, &tls)?;
        if transport == Transport::Plain {
            eprintln!("[serve] pushing the same images into each with skopeo");
            for l in &live {
                content::push(&skopeo, &content, &l.server)?;
            }
        }
        let (d, infos) = check_all(&rt, &live, &content)?;
        digest = d;
        if transport == Transport::Tls {
            negotiated = infos;
        }
        rows.extend(steady::measure(&rt, s, &live, &content, transport)?);
        node_rows.extend(node_start::measure(&rt, s, &live, &content, transport)?);
        let mut kib = [0; 3];
        for (k, l) in kib.iter_mut().zip(&live) {
            *k = l.server.peak_kib()?;
        }
        memory.push(table::Memory { transport, kib });
    }
    let ctx = table::Context {
        seconds: s.serve_seconds,
        rounds: s.rounds,
        blob_size: content.blob_size,
        digest,
        tls: negotiated,
    };
    let shape = node_table::Shape {
        nodes: s.serve_nodes,
        images: content.node_repos.len(),
        rounds: s.rounds,
    };
    Ok(vec![
        table::table(&ctx, &rows, &memory),
        node_table::table(shape, &node_rows),
    ])
}

/// The three registries, in [`Kind::ALL`] order: on fresh storage for
/// plain HTTP (pushed into next), restarted on that storage for TLS.
fn start_all(
    bins: &Binaries,
    dir: &Path,
    transport: Transport,
    tls: &TlsFiles,
) -> Result<Vec<Live>> {
    let client = match transport {
        Transport::Plain => None,
        Transport::Tls => Some(tls_files::client_config(&tls.ca_der)?),
    };
    let server_tls = (transport == Transport::Tls).then_some(tls);
    Kind::ALL
        .iter()
        .map(|&kind| {
            let server = Server::start(
                kind,
                &bins.firstboot,
                &dir.join(kind.folder()),
                server_tls,
                transport == Transport::Plain,
            )
            .with_context(|| format!("starting {}", kind.name()))?;
            let endpoint = Endpoint {
                addr: server.addr(),
                tls: client.clone(),
            };
            Ok(Live { server, endpoint })
        })
        .collect()
}

/// Every registry serves the same manifest and the blob whole; returns
/// the manifest's digest and what each TLS handshake settled on.
fn check_all(rt: &Runtime, live: &[Live], content: &Content) -> Result<(String, [String; 3])> {
    let mut digests = Vec::new();
    let mut infos: [String; 3] = Default::default();
    for (l, info) in live.iter().zip(infos.iter_mut()) {
        let (d, tls) = rt.block_on(content::check(&l.endpoint, content, l.server.name()))?;
        *info = tls.map(|t| t.describe()).unwrap_or_else(|| "plain".into());
        digests.push(d.to_string());
    }
    if digests.iter().any(|d| *d != digests[0]) {
        bail!(
            "the registries serve different manifests for {}:{} ({}): not comparable",
            content::REPO,
            content::TAG,
            digests.join(", ")
        );
    }
    Ok((digests.swap_remove(0), infos))
}
