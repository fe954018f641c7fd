//! `airlift-firstboot replica`: a node that keeps a full copy of host0's
//! registry and serves it.
//!
//! 1. Join as a replica: the node config plus a server certificate for
//!    this node's address, signed by host0's CA ([`crate::api::join`]);
//!    the CA is checked as a joining node checks it.
//! 2. Serve the registry (pulls only: pushes go to host0) and
//!    `/airlift/v1/status` on the appliance's registry port, from a data
//!    folder of its own.
//! 3. Point this node's runtimes at the registries, as `join` does.
//! 4. Sync for ever: poll host0's state, fetch what is missing, report
//!    what was applied. The first full sync is `AIRLIFT-REPLICA-SYNCED`
//!    and systemd's `READY=1`; host0 offers the replica to nodes from
//!    then on. While host0 is unreachable the replica keeps serving what
//!    it has and retries with a capped backoff.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use airlift_appliance::ApplianceFile;
use anyhow::{Context, Result};
use tokio_rustls::TlsAcceptor;

use crate::api::server::{self, Current};
use crate::services::ha::replication::apply::apply;
use crate::services::ha::replication::plan::plan;
use crate::services::ha::replication::source::{Source, POLL_WAIT};
use crate::services::ha::replication::{Feed, Report};
use airlift_oci::atomic::write_with_mode;

use crate::services::join::node_config::{NodeConfig, ReplicaGrant};
use crate::services::join::params::JoinParams;
use crate::services::join::{self, backoff};
use crate::services::mirrors::Scheme;
use crate::services::registry::{Registry, ServeOptions};
use crate::services::status::{Identity, LoadState, ReplicationStatus, Status};
use crate::sys::console::milestone;

/// What `replica` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The join settings (`join`'s options: command line, file, root, state folder).
    pub join: join::Options,
    /// The appliance file.
    pub config: PathBuf,
    /// The registry's address; None: all addresses, the file's port.
    pub listen: Option<SocketAddr>,
}

/// Run the replica until the process is stopped: the steps, in order.
pub async fn run(opts: Options) -> Result<()> {
    let started_at = airlift_oci::civil_time::rfc3339_of(SystemTime::now());
    let file = ApplianceFile::load(&opts.config)?;
    let joined = join_as_replica(&opts).await?;
    let (cert, key) = write_tls(&opts, &joined)?;
    let mut serve_opts = serve_options(&opts, &file, &cert, &key)?;
    // host0's trust policy, in the mirror spec every node gets: pulls are
    // gated here as on host0.
    serve_opts.verifier =
        crate::services::registry::gate::verifier_for(joined.cfg.mirror.trust.as_ref())?;
    let registry = open_registry(&serve_opts, &joined).await?;
    let (status, own_url) = serve(&file, &joined, &serve_opts, &registry, started_at).await?;
    // This node's own runtimes, like any joined node.
    let no_verify = join::Options {
        no_verify: true,
        ..opts.join.clone()
    };
    join::configure(&joined.cfg, &no_verify, "AIRLIFT-JOIN-CONFIGURED").await?;
    // The virtual IP (ha.virtualIp): keepalived on every registry machine.
    crate::services::ha::vip::apply_in_background(
        &file,
        crate::services::ha::vip::Role::Replica,
        &opts.join.root,
    );
    let src = Source::new(
        &joined.params.server,
        &joined.params.token,
        joined.cfg.ca_pem.as_deref(),
    )?;
    let name = joined
        .params
        .mac
        .clone()
        .or_else(crate::sys::net::hostname)
        .unwrap_or_else(|| joined.grant.address.clone());
    let report = Report {
        name,
        url: own_url,
        ..Report::default()
    };
    sync_forever(src, registry, status, report, opts.join.max_backoff).await
}

/// What joining as a replica brought: the join parameters, host0's node
/// config (its CA accepted), and this replica's certificate grant.
struct Joined {
    params: JoinParams,
    cfg: NodeConfig,
    grant: ReplicaGrant,
}

/// Join host0 as a replica: the node config plus a server certificate for
/// this node's address; the CA is checked as a joining node checks it.
async fn join_as_replica(opts: &Options) -> Result<Joined> {
    let p = join::load_params(&opts.join.cmdline, &opts.join.conf)?;
    milestone(&format!(
        "AIRLIFT-REPLICA-START server={} mac={}",
        p.server.url(),
        p.mac.as_deref().unwrap_or("-")
    ));
    let cfg = join::fetch_with_retry(&p, &opts.join, Some("replica")).await?;
    join::accept_ca(&p, &cfg, &opts.join.data)?;
    let grant = cfg.replica.clone().with_context(|| {
        format!(
            "host0 at {} sent no replica certificate; is it older than this node?",
            p.server.url()
        )
    })?;
    Ok(Joined {
        params: p,
        cfg,
        grant,
    })
}

/// TLS files of our own, signed by host0's CA: (certificate, key).
fn write_tls(opts: &Options, joined: &Joined) -> Result<(PathBuf, PathBuf)> {
    let tls_dir = opts.join.data.join(crate::services::tls::TLS_DIR);
    std::fs::create_dir_all(&tls_dir).with_context(|| format!("creating {}", tls_dir.display()))?;
    let (cert, key) = (
        tls_dir.join(crate::services::tls::SERVER_CERT),
        tls_dir.join(crate::services::tls::SERVER_KEY),
    );
    write_with_mode(&cert, joined.grant.cert_pem.as_bytes(), 0o644)?;
    write_with_mode(&key, joined.grant.key_pem.as_bytes(), 0o600)?;
    if let Some(ca) = &joined.cfg.ca_pem {
        write_with_mode(
            &tls_dir.join(crate::services::tls::CA_CERT),
            ca.as_bytes(),
            0o644,
        )?;
    }
    Ok((cert, key))
}

/// The registry's options: its own data folder, this node's certificate.
fn serve_options(
    opts: &Options,
    file: &ApplianceFile,
    cert: &Path,
    key: &Path,
) -> Result<ServeOptions> {
    let listen = opts
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], file.registry.port)));
    let reg_dir = crate::services::registry::registry_dir(&opts.join.data);
    serde_json::from_value(serde_json::json!({
        "listen": listen.to_string(),
        "data": reg_dir,
        "tls-cert": cert,
        "tls-key": key,
    }))
    .context("building the replica registry's options")
}

/// Open the registry, pushes refused with a pointer to host0.
async fn open_registry(serve_opts: &ServeOptions, joined: &Joined) -> Result<Arc<Registry>> {
    let reason = format!(
        "this is a read-only replica of {}: push there",
        joined.params.server.url()
    );
    let o = serve_opts.clone();
    Ok(Arc::new(
        tokio::task::spawn_blocking(move || {
            Registry::open(&o).map(|mut r| {
                r.auth.push_disabled_reason = Some(reason);
                r
            })
        })
        .await??,
    ))
}

/// Bind and serve the registry and `/airlift/v1/status` in the
/// background: the status and this replica's own URL.
async fn serve(
    file: &ApplianceFile,
    joined: &Joined,
    serve_opts: &ServeOptions,
    registry: &Arc<Registry>,
    started_at: String,
) -> Result<(Status, String)> {
    let (cert, key) = (
        serve_opts
            .tls_cert
            .clone()
            .context("the replica serves TLS")?,
        serve_opts
            .tls_key
            .clone()
            .context("the replica serves TLS")?,
    );
    let acceptor = TlsAcceptor::from(Arc::new(crate::services::registry::server::tls_config(
        &cert, &key,
    )?));
    let listener = server::bind(serve_opts.listen).await?;
    let own_url = format!(
        "{}://{}",
        Scheme::Https,
        crate::api::join::host_port(SocketAddr::new(
            joined
                .grant
                .address
                .parse()
                .context("the replica address host0 saw")?,
            listener.local_addr()?.port()
        ))
    );
    let status = Status::new(
        Identity {
            name: file.name.clone(),
            version: file.version.clone(),
            registry: own_url.clone(),
            ca_fingerprint: joined
                .cfg
                .ca_pem
                .as_deref()
                .and_then(|c| crate::services::tls::fingerprint(c).ok()),
            started_at,
        },
        LoadState::Loading,
    );
    status.set_secure_boot(crate::sys::secure_boot::announce());
    if serve_opts.verifier.is_some() {
        status.set_signature_gate();
    }
    let current = Current::new(registry.clone());
    let app = server::replica_app(current, status.clone());
    tokio::spawn(server::serve(
        listener,
        Some(acceptor),
        app,
        Duration::from_secs(serve_opts.header_timeout_secs),
        serve_opts.max_connections,
    ));
    milestone(&format!("AIRLIFT-REPLICA-SERVING {own_url}"));
    Ok((status, own_url))
}

/// Poll, plan, apply, report; never returns unless the process stops.
async fn sync_forever(
    src: Source,
    registry: Arc<Registry>,
    status: Status,
    mut report: Report,
    max_backoff: Duration,
) -> Result<()> {
    let mut rs = ReplicationStatus {
        source: src.url().to_string(),
        state: "syncing".into(),
        ..ReplicationStatus::default()
    };
    status.set_replication(rs.clone());
    let mut failures = 0u32;
    let mut behind_since: Option<Instant> = None;
    loop {
        let wait = if report.synced {
            POLL_WAIT
        } else {
            Duration::ZERO
        };
        let feed = match src.poll(&report, wait).await {
            Ok(f) => f,
            Err(e) => {
                if failures == 0 {
                    milestone(&format!(
                        "AIRLIFT-REPLICA-SOURCE-LOST {}: {e:#}; serving what is here",
                        src.url()
                    ));
                }
                let since = *behind_since.get_or_insert_with(Instant::now);
                rs.state = "source-unreachable".into();
                rs.error = Some(format!("{e:#}"));
                rs.lag_seconds = since.elapsed().as_secs_f64();
                status.set_replication(rs.clone());
                tokio::time::sleep(backoff(failures, max_backoff)).await;
                failures += 1;
                continue;
            }
        };
        if failures > 0 {
            milestone(&format!("AIRLIFT-REPLICA-SOURCE-BACK {}", src.url()));
            failures = 0;
        }
        let seen = Instant::now();
        rs.last_contact = Some(airlift_oci::civil_time::rfc3339_of(SystemTime::now()));
        let todo = plan(&registry.store.snapshot(), &feed.repositories);
        if !todo.is_empty() {
            let since = *behind_since.get_or_insert(seen);
            rs.lag_seconds = since.elapsed().as_secs_f64();
            status.set_replication(rs.clone());
            match apply(&todo, &registry, &src).await {
                Ok(done) => {
                    rs.manifests_copied += done.manifests as u64;
                    rs.blobs_copied += done.blobs as u64;
                    rs.bytes_copied += done.bytes;
                    rs.last_apply_seconds = seen.elapsed().as_secs_f64();
                    milestone(&format!(
                        "AIRLIFT-REPLICA-APPLIED generation={} manifests={} blobs={} bytes={} \
                         tags={} removed={} in {:.3}s",
                        feed.generation,
                        done.manifests,
                        done.blobs,
                        done.bytes,
                        done.tags,
                        done.removed,
                        rs.last_apply_seconds
                    ));
                }
                Err(e) => {
                    tracing::error!("replicating generation {}: {e:#}", feed.generation);
                    rs.error = Some(format!("{e:#}"));
                    status.set_replication(rs.clone());
                    tokio::time::sleep(backoff(failures, max_backoff)).await;
                    failures += 1;
                    continue;
                }
            }
        }
        behind_since = None;
        report.applied = feed.generation;
        report.source = Some(feed.source_id.clone());
        rs.applied_generation = feed.generation;
        rs.lag_seconds = 0.0;
        rs.error = None;
        rs.state = "in-sync".into();
        status.set_replication(rs.clone());
        if !report.synced {
            report.synced = true;
            announce_synced(&feed, &rs, &status)?;
        }
    }
}

/// The first full sync: ready for nodes, and systemd is told so.
fn announce_synced(feed: &Feed, rs: &ReplicationStatus, status: &Status) -> Result<()> {
    status.set_state(LoadState::Ready, None);
    let repos = feed.repositories.len();
    let manifests: usize = feed.repositories.values().map(|r| r.manifests.len()).sum();
    milestone(&format!(
        "AIRLIFT-REPLICA-SYNCED generation={} repositories={repos} manifests={manifests} \
         blobs={} bytes={}",
        feed.generation, rs.blobs_copied, rs.bytes_copied
    ));
    crate::sys::notify::notify("READY=1\nSTATUS=in sync with host0")
}
