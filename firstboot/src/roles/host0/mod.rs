//! `airlift-firstboot host0`: the first machine's boot service, as a
//! short sequence of named steps ([`run`]) over one state type
//! ([`Host0`]) and the results each step hands to the next.
//!
//! 1. Read `/etc/airlift/appliance.json` ([`airlift_appliance`]) and mount
//!    the data disk ([`crate::datadisk`]) before anything is written.
//! 2. Find and mount the media by label ([`crate::services::media`]), unless given.
//! 3. TLS: generate (or take) the CA and server certificate ([`certs`]).
//! 4. Open the registry with the media bundle as a read-only layer (only
//!    index.json and manifests are read: start-up time does not grow
//!    with the bundle) ([`registry`]), bind the port.
//! 5. Point the local runtimes at it ([`runtimes`]), then tell systemd
//!    `READY=1` ([`notify`]): units ordered after this one find a
//!    registry that answers and config that names it.
//! 6. In the background, copy the bundle to the data store ([`load`]),
//!    record it as a release ([`crate::services::releases`]) and serve
//!    the releases from the disk alone; or serve from the media only
//!    when the data folder is in RAM and there is no data disk. Later
//!    releases come as updates (`/airlift/v1/releases`, [`crate::api::releases`]).
//!
//! Every step is idempotent, so a restart after a crash resumes and a
//! re-run after success changes nothing.

pub mod address_wait;
pub mod addresses;
pub mod certs;
pub mod day_two;
pub mod load;
pub mod registry;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlift_appliance::{ApplianceFile, TlsMode};
use airlift_oci::Layout;
use anyhow::{Context, Result};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::api::images::CurrentRegistry;
use crate::api::join::Join;
use crate::api::server::{self, Current};
use crate::datadisk::{Mode, StorageStatus};
use crate::services::ha::vip;
use crate::services::mirrors::runtimes::{self, Written};
use crate::services::mirrors::{
    signature_probe, signatures, Endpoint, MirrorSpec, Runtime, Scheme,
};
use crate::services::releases::{Ops, Releases};
use crate::services::status::{ApplianceName, Identity, LoadState, Status};
use crate::services::tls::TlsMaterial;
use crate::sys::console::milestone;
use crate::sys::notify;
use certs::{private_dir, tls_material};
use load::LoadJob;
use registry::Opened;

/// What `host0` runs with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The appliance file.
    pub config: PathBuf,
    /// A mounted media root or bundle folder; None: find the media by label.
    pub media: Option<PathBuf>,
    /// The root whose runtimes are configured.
    pub root: PathBuf,
    /// host0's state folder (`/var/lib/airlift`).
    pub data: PathBuf,
    /// The registry's address; None: all addresses, the file's port.
    pub listen: Option<SocketAddr>,
    /// More names for the certificate.
    pub hostnames: Vec<String>,
    /// `HOST:PORT`s to advertise instead of the discovered ones.
    pub advertise: Vec<String>,
    /// Copy the bundle even onto RAM.
    pub force_load: bool,
    /// How long to wait for the media to appear.
    pub media_wait: Duration,
    /// How long to wait for a NIC that is coming up to get an address
    /// before choosing the addresses to announce ([`address_wait`]).
    pub address_wait: Duration,
}

/// Run host0 until the process is stopped: the steps, in order.
pub async fn run(opts: Options) -> Result<()> {
    let host0 = Host0::start(opts).await?;
    let secure_boot = crate::sys::secure_boot::announce();
    let nic_wait = host0.start_address_wait();
    let media = host0.media().await?;
    private_dir(&host0.opts.data)?;
    crate::services::netboot::prepare(&host0.file);
    let listen = host0.listen();
    let ips = settled_addresses(nic_wait).await?;
    let tls = tls_material(&host0.file, &host0.opts, listen, &ips)?;
    let reg = host0.open_registry(&media, listen, tls.as_ref()).await?;
    let net = bind(listen, tls.as_ref()).await?;
    let local = host0.configure_runtimes(&net, &ips, tls.as_ref())?;
    vip::apply_in_background(&host0.file, vip::Role::Host0, &host0.opts.root);
    let status = host0.status(&reg, &net, &local, tls.as_ref());
    status.set_secure_boot(secure_boot);
    status.set_base(host0.file.base.clone());
    if reg.serve_opts.verifier.is_some() {
        status.set_signature_gate();
    }
    let (app, releases) = host0
        .api(&reg, &status, &net, &local, &media, tls.as_ref())
        .await;
    announce_ready(&net, &local, reg.initial)?;
    host0.finish_runtimes(&local);
    let (header_timeout, max_connections) = (
        Duration::from_secs(reg.serve_opts.header_timeout_secs),
        reg.serve_opts.max_connections,
    );
    day_two::watch_media(&host0.file, &releases);
    start_load(media, reg, status, releases);
    server::serve(
        net.listener,
        net.acceptor,
        app,
        header_timeout,
        max_connections,
    )
    .await
}

/// What host0 runs with and what its first steps found: the options, the
/// appliance file, when it started, and the data disk's state.
pub struct Host0 {
    pub opts: Options,
    pub file: ApplianceFile,
    /// RFC 3339 UTC.
    pub started_at: String,
    pub storage: StorageStatus,
    /// One day-two change at a time (the boot media's load included).
    pub ops: Ops,
    /// `DATA/admin-token`, made at start: the day-two endpoints' secret.
    pub admin_token: String,
}

/// The bundle on the media (or the copy a full load left on the disk).
pub struct Media {
    pub dir: PathBuf,
    pub bundle: Layout,
}

/// The bound socket.
pub struct Bound {
    pub listener: TcpListener,
    pub acceptor: Option<TlsAcceptor>,
    pub addr: SocketAddr,
    pub scheme: Scheme,
}

/// The local runtimes' config, written (the trust store still to finish).
pub struct Local {
    /// `HOST:PORT`s announced.
    pub endpoints: Vec<String>,
    pub spec: MirrorSpec,
    pub runtimes: Vec<Runtime>,
    pub written: Written,
}

impl Host0 {
    /// Read the appliance file, mount the data disk, and clear the temp
    /// files a killed run left in the data folder.
    async fn start(opts: Options) -> Result<Host0> {
        let started_at = airlift_oci::civil_time::rfc3339_of(SystemTime::now());
        let file = ApplianceFile::load(&opts.config)?;
        tracing::info!(
            "appliance {} {} (media label {})",
            file.name,
            file.version,
            file.volume_label
        );
        // The data disk, mounted on the data folder before anything is
        // written there ([`crate::datadisk`]).
        let storage = {
            let (s, data) = (file.storage.clone(), opts.data.clone());
            tokio::task::spawn_blocking(move || crate::datadisk::run_appliance(&s, &data)).await?
        };
        // A killed run may have left temp files of its atomic writes (the
        // progress file, registry metadata, blobs): they are never data.
        let stale = airlift_oci::atomic::remove_stale_temps(&opts.data)?;
        if stale > 0 {
            tracing::info!(
                "removed {stale} temp files a previous run left in {}",
                opts.data.display()
            );
        }
        let admin_token = crate::api::admin::ensure_token(&opts.data)?;
        Ok(Host0 {
            opts,
            file,
            started_at,
            storage,
            ops: Ops::default(),
            admin_token,
        })
    }

    /// The addresses to announce: a NIC coming up gets a few seconds to
    /// take one (DHCP), while the media is found. Not needed when the
    /// address is given.
    fn start_address_wait(&self) -> Option<JoinHandle<()>> {
        let opts = &self.opts;
        (opts.listen.is_none_or(|l| l.ip().is_unspecified()) && opts.advertise.is_empty()).then(
            || {
                let limit = opts.address_wait;
                tokio::task::spawn_blocking(move || address_wait::wait(limit))
            },
        )
    }

    /// The media: the given folder, or the media found by label; when it
    /// does not appear, a bundle fully loaded onto the data disk.
    async fn media(&self) -> Result<Media> {
        let dir = match &self.opts.media {
            Some(m) => crate::services::media::bundle_dir(m)?,
            None => self.find_media().await?,
        };
        let bundle = Layout::open(&dir)
            .with_context(|| format!("opening the bundle on the media at {}", dir.display()))?;
        Ok(Media { dir, bundle })
    }

    /// Find and mount the media by label, waiting for it; without it, the
    /// bundle a full load saved on the data disk.
    async fn find_media(&self) -> Result<PathBuf> {
        // The current release on the data disk is served without the media.
        let saved = (self.storage.mode == Mode::Disk)
            .then(|| crate::services::releases::dir::current_dir(&self.opts.data))
            .flatten();
        let (label, wait) = (self.file.volume_label.clone(), self.opts.media_wait);
        let wait = if saved.is_some() {
            wait.min(Duration::from_secs(20))
        } else {
            wait
        };
        let found = tokio::task::spawn_blocking(move || {
            crate::services::media::find_and_mount(
                &label,
                Path::new(crate::services::media::MOUNT_POINT),
                wait,
            )
        })
        .await?;
        match (found, saved) {
            (Ok(dir), _) => Ok(dir),
            (Err(e), Some(dir)) => {
                milestone(&format!(
                    "AIRLIFT-HOST0-NO-MEDIA serving the release loaded in {}: {e:#}",
                    dir.display()
                ));
                Ok(dir)
            }
            (Err(e), None) => Err(e),
        }
    }

    /// The registry's address: the given one, or all addresses on the
    /// file's port.
    fn listen(&self) -> SocketAddr {
        self.opts
            .listen
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], self.file.registry.port)))
    }

    /// Point the local runtimes at the registry (the slow trust-store
    /// part is [`Host0::finish_runtimes`]).
    fn configure_runtimes(
        &self,
        net: &Bound,
        ips: &[IpAddr],
        tls: Option<&TlsMaterial>,
    ) -> Result<Local> {
        let endpoints = addresses::endpoints(net.addr, ips, &self.opts.advertise);
        let spec = MirrorSpec::new(
            endpoints
                .iter()
                .map(|h| Endpoint {
                    host: h.clone(),
                    scheme: net.scheme,
                })
                .collect(),
            runtimes::upstreams(&self.file.mirrors),
            tls.and_then(|t| t.ca_pem.clone()),
        )
        .with_trust(self.file.trust.clone());
        let rts = self.file.runtimes.clone();
        let written = runtimes::write_files(&self.opts.root, &self.opts.data, &spec, &rts)?;
        match &written {
            Written::AlreadyDone => {
                tracing::info!("the runtimes already point at this registry")
            }
            Written::Applied { changed, .. } => tracing::info!(
                "runtimes configured ({}) for {}{}",
                rts.iter().map(|r| r.name()).collect::<Vec<_>>().join(", "),
                endpoints.join(", "),
                if *changed { "" } else { " (no change)" }
            ),
        }
        Ok(Local {
            endpoints,
            spec,
            runtimes: rts,
            written,
        })
    }

    /// The status `GET /airlift/v1/status` shows, as serving starts.
    fn status(
        &self,
        reg: &Opened,
        net: &Bound,
        local: &Local,
        tls: Option<&TlsMaterial>,
    ) -> Status {
        let status = Status::new(
            Identity {
                name: self.file.name.clone(),
                version: self.file.version.clone(),
                registry: format!("{}://{}", net.scheme, local.endpoints[0]),
                ca_fingerprint: tls.and_then(|t| t.ca_sha256.clone()),
                started_at: self.started_at.clone(),
            },
            reg.initial,
        );
        status.set_storage(self.storage.clone());
        status.set_disk(reg.disk_watch(self.file.storage.warn_percent()));
        if reg.initial == LoadState::MediaOnly {
            status.set_state(
                LoadState::MediaOnly,
                Some(format!(
                    "{} is in RAM and there is no data disk: serving from the media, which \
                     must stay attached",
                    reg.reg_dir.display()
                )),
            );
        }
        if reg.initial == LoadState::Ready {
            status.set_serving_from_disk();
        }
        if let Some(trust) = &local.spec.trust {
            let sigstore = signature_probe::detect_for(&local.spec);
            status.set_trust(signatures::trust_status(trust, &sigstore));
        }
        status
    }

    /// host0's API on the registry port ([`crate::api`]): status, join,
    /// replication, releases, netboot's boot endpoints, the status page,
    /// and the registry behind them.
    async fn api(
        &self,
        reg: &Opened,
        status: &Status,
        net: &Bound,
        local: &Local,
        media: &Media,
        tls: Option<&TlsMaterial>,
    ) -> (Router, Releases) {
        let file = &self.file;
        let replicas = crate::api::replicas::Replicas::new();
        crate::api::replication::track_changes(reg.registry.store.changes(), replicas.clone());
        let join = Arc::new(Join {
            token: file.join_token.clone(),
            appliance: ApplianceName {
                name: file.name.clone(),
                version: file.version.clone(),
            },
            upstreams: local.spec.upstreams.clone(),
            ca_pem: local.spec.ca_pem.clone(),
            scheme: net.scheme,
            port: net.addr.port(),
            advertised: local
                .endpoints
                .iter()
                .filter(|h| !h.starts_with("127."))
                .cloned()
                .collect(),
            runtimes: local.runtimes.clone(),
            tls_dir: tls
                .filter(|_| file.registry.tls == TlsMode::Generate)
                .map(|t| t.dir.clone()),
            replica_sans: vip::address(file).into_iter().collect(),
            replicas: replicas.clone(),
            trust: local.spec.trust.clone(),
        });
        let current = Current::new(reg.registry.clone());
        let registry = || {
            let c = current.clone();
            Arc::new(move || c.registry()) as CurrentRegistry
        };
        let releases = Releases::new(&self.opts.data, file, registry(), self.ops.clone());
        let app = server::app(current.clone(), status.clone(), join.clone());
        let app = crate::api::releases::attach(
            app,
            crate::api::releases::Admin {
                releases: releases.clone(),
                token: self.admin_token.clone(),
            },
        );
        let app = day_two::attach(
            app,
            &current,
            &self.opts.data,
            file,
            &self.ops,
            &self.admin_token,
            &releases,
        );
        let app = crate::api::replication::attach(
            app,
            Arc::new(crate::api::replication::FeedService {
                token: file.join_token.clone(),
                registry: registry(),
                replicas,
            }),
        );
        let app = crate::api::netboot::attach(
            app,
            file,
            &media.dir,
            net.addr.port(),
            net.scheme,
            tls.and_then(|t| t.ca_sha256.clone()),
        )
        .await;
        let manifest = crate::api::images::release_manifest(&media.dir, self.opts.data.clone());
        let app = crate::api::web::attach(app, file, manifest, registry(), join);
        (app, releases)
    }

    /// The rest of the runtime config, slow and not needed by the
    /// runtimes: the system trust store, then the marker (in the background).
    fn finish_runtimes(&self, local: &Local) {
        if let Written::Applied { update_trust, .. } = local.written {
            let (root, data, spec, rts) = (
                self.opts.root.clone(),
                self.opts.data.clone(),
                local.spec.clone(),
                local.runtimes.clone(),
            );
            tokio::task::spawn_blocking(move || {
                if let Err(e) = runtimes::finish(&root, &data, &spec, &rts, update_trust) {
                    tracing::error!("finishing the runtime config: {e:#}");
                }
            });
        }
    }
}

/// The addresses usable now, once the NIC wait (if any) is over. Read
/// after `netboot::prepare` has put the netboot address on its interface:
/// the wait may settle earlier (another NIC's DHCP), and the certificate
/// must name every address nodes are told to use.
async fn settled_addresses(nic_wait: Option<JoinHandle<()>>) -> Result<Vec<IpAddr>> {
    if let Some(w) = nic_wait {
        w.await?;
    }
    Ok(crate::sys::net::usable_addresses())
}

/// Bind the registry's port, with the TLS acceptor when there is TLS.
async fn bind(listen: SocketAddr, tls: Option<&TlsMaterial>) -> Result<Bound> {
    let acceptor = match tls {
        Some(t) => Some(TlsAcceptor::from(Arc::new(
            crate::services::registry::server::tls_config(&t.cert_path(), &t.key_path())?,
        ))),
        None => None,
    };
    let listener = server::bind(listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };
    Ok(Bound {
        listener,
        acceptor,
        addr,
        scheme,
    })
}

/// Tell systemd and the console that the registry serves.
fn announce_ready(net: &Bound, local: &Local, initial: LoadState) -> Result<()> {
    notify::notify("READY=1\nSTATUS=serving the bundle")?;
    milestone(&format!(
        "AIRLIFT-HOST0-READY registry={}://{} state={}",
        net.scheme,
        local.endpoints.join(","),
        serde_json::to_value(initial)?.as_str().unwrap_or_default()
    ));
    Ok(())
}

/// The background copy, when the bundle is still to be loaded. It holds
/// the day-two lock: no update or collection runs before it is done.
fn start_load(media: Media, reg: Opened, status: Status, releases: Releases) {
    if reg.initial != LoadState::Loading {
        return;
    }
    let guard = match releases.ops().begin("loading the boot media") {
        Ok(g) => g,
        Err(e) => {
            tracing::error!("{e}");
            return;
        }
    };
    let job = LoadJob {
        bundle: media.bundle,
        reg_dir: reg.reg_dir,
        progress: reg.progress,
        status,
        releases,
        _guard: guard,
    };
    tokio::spawn(job.run());
}
