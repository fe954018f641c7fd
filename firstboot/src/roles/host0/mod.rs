//! `airlift-firstboot host0`: the first machine's boot service.
//!
//! 1. Read `/etc/airlift/appliance.json` ([`airlift_appliance`]).
//! 2. Find and mount the media by label ([`crate::services::media`]), unless given.
//! 3. TLS: generate (or take) the CA and server certificate ([`crate::services::tls`]).
//! 4. Open the registry with the media bundle as a read-only layer (only
//!    index.json and manifests are read: start-up time does not grow
//!    with the bundle), bind the port.
//! 5. Point the local runtimes at it ([`runtimes`]), then tell systemd
//!    `READY=1` ([`notify`]): units ordered after this one find a
//!    registry that answers and config that names it.
//! 6. In the background, copy the bundle to the data store ([`crate::services::loader`])
//!    and then serve from the disk alone; or serve from the media only
//!    when the data folder is in RAM and there is no data disk.
//!
//! Every step is idempotent, so a restart after a crash resumes and a
//! re-run after success changes nothing.

pub mod address_wait;
pub mod addresses;

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlift_appliance::{ApplianceFile, TlsMode};
use airlift_oci::Layout;
use anyhow::{Context, Result};
use tokio_rustls::TlsAcceptor;

use crate::api::join::Join;
use crate::api::server;
use crate::services::loader::{self, CopyDecision, Reporting};
use crate::services::mirrors::runtimes;
use crate::services::mirrors::{Endpoint, MirrorSpec, Scheme};
use crate::services::registry::{Registry, ServeOptions};
use crate::services::status::{self, ApplianceName, Identity, LoadState, Status};
use crate::services::tls::TlsMaterial;
use crate::sys::console::milestone;
use crate::sys::notify;

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

/// Run host0 until the process is stopped.
pub async fn run(opts: Options) -> Result<()> {
    let started_at = status::rfc3339(SystemTime::now());
    let file = ApplianceFile::load(&opts.config)?;
    tracing::info!(
        "appliance {} {} (media label {})",
        file.name,
        file.version,
        file.volume_label
    );

    // 0. The data disk, mounted on the data folder before anything is
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

    // The addresses to announce: a NIC coming up gets a few seconds to
    // take one (DHCP), while the media is found. Not needed when the
    // address is given.
    let nic_wait = (opts.listen.is_none_or(|l| l.ip().is_unspecified())
        && opts.advertise.is_empty())
    .then(|| {
        let limit = opts.address_wait;
        tokio::task::spawn_blocking(move || address_wait::wait(limit))
    });

    // 1. The media.
    let bundle_dir = match &opts.media {
        Some(m) => crate::services::media::bundle_dir(m)?,
        None => {
            // A bundle fully loaded onto the data disk is served without the media.
            let saved = (storage.mode == crate::datadisk::Mode::Disk)
                .then(|| crate::datadisk::stub::find(&opts.data))
                .flatten();
            let (label, wait) = (file.volume_label.clone(), opts.media_wait);
            let wait = if saved.is_some() {
                wait.min(Duration::from_secs(20))
            } else {
                wait
            };
            match tokio::task::spawn_blocking(move || {
                crate::services::media::find_and_mount(
                    &label,
                    Path::new(crate::services::media::MOUNT_POINT),
                    wait,
                )
            })
            .await?
            {
                Ok(dir) => dir,
                Err(e) => match saved {
                    Some(dir) => {
                        milestone(&format!(
                            "AIRLIFT-HOST0-NO-MEDIA serving the bundle loaded in {}: {e:#}",
                            dir.display()
                        ));
                        dir
                    }
                    None => return Err(e),
                },
            }
        }
    };
    let bundle = Layout::open(&bundle_dir).with_context(|| {
        format!(
            "opening the bundle on the media at {}",
            bundle_dir.display()
        )
    })?;

    private_dir(&opts.data)?;
    let reg_dir = crate::services::registry::registry_dir(&opts.data);
    let progress = loader::progress_path(&opts.data);

    crate::services::netboot::prepare(&file);

    // 2. TLS.
    let listen = opts
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], file.registry.port)));
    // Read after netboot::prepare has put the netboot address on its
    // interface: the wait may settle earlier (another NIC's DHCP), and the
    // certificate must name every address nodes are told to use.
    if let Some(w) = nic_wait {
        w.await?;
    }
    let ips = crate::sys::net::usable_addresses();
    let tls = tls_material(&file, &opts, listen, &ips)?;

    // 3. The registry: media layer (unless an earlier run loaded this bundle).
    std::fs::create_dir_all(&reg_dir).with_context(|| format!("creating {}", reg_dir.display()))?;
    let decision = loader::should_copy(
        &reg_dir,
        storage.mode == crate::datadisk::Mode::Disk,
        opts.force_load,
    )?;
    let loaded = match loader::already_complete(&progress, &bundle)? {
        Some(_) if decision == CopyDecision::Copy => all_blobs_present(&bundle, &reg_dir)?,
        _ => false,
    };
    let serve_opts = serve_options(
        listen,
        &reg_dir,
        if loaded {
            vec![]
        } else {
            vec![bundle_dir.clone()]
        },
        tls.as_ref(),
        file.registry.allow_delete,
    )?;
    let mut serve_opts = serve_opts;
    if file.registry.push {
        let dir = opts.config.parent().unwrap_or(Path::new("/"));
        serve_opts.push_token_file = Some(dir.join("push-token")).filter(|p| p.is_file());
        serve_opts.htpasswd = Some(dir.join("htpasswd")).filter(|p| p.is_file());
    }
    let registry = {
        let (o, reason) = (serve_opts.clone(), storage.push_disabled_reason());
        Arc::new(
            tokio::task::spawn_blocking(move || {
                Registry::open(&o).map(|mut r| {
                    r.auth.push_disabled_reason = reason;
                    r
                })
            })
            .await??,
        )
    };
    let acceptor = match &tls {
        Some(t) => Some(TlsAcceptor::from(Arc::new(
            crate::services::registry::server::tls_config(&t.cert_path(), &t.key_path())?,
        ))),
        None => None,
    };
    let listener = server::bind(listen).await?;
    let bound = listener.local_addr()?;
    let scheme = if tls.is_some() {
        Scheme::Https
    } else {
        Scheme::Http
    };

    // 4. The local runtimes.
    let endpoints = addresses::endpoints(bound, &ips, &opts.advertise);
    let ca_pem = tls.as_ref().and_then(|t| t.ca_pem.clone());
    let upstreams = runtimes::upstreams(&file.mirrors);
    let local_spec = MirrorSpec::new(
        endpoints
            .iter()
            .map(|h| Endpoint {
                host: h.clone(),
                scheme,
            })
            .collect(),
        upstreams.clone(),
        ca_pem.clone(),
    );
    let rts: Vec<_> = file
        .runtimes
        .iter()
        .map(|r| runtimes::runtime(*r))
        .collect();
    let outcome = runtimes::write_files(&opts.root, &opts.data, &local_spec, &rts)?;
    match &outcome {
        runtimes::Written::AlreadyDone => {
            tracing::info!("the runtimes already point at this registry")
        }
        runtimes::Written::Applied { changed, .. } => tracing::info!(
            "runtimes configured ({}) for {}{}",
            rts.iter().map(|r| r.name()).collect::<Vec<_>>().join(", "),
            endpoints.join(", "),
            if *changed { "" } else { " (no change)" }
        ),
    }
    // The virtual IP (ha.virtualIp), in the background; errors are logged.
    let (vip_file, vip_root) = (file.clone(), opts.root.clone());
    tokio::task::spawn_blocking(move || {
        match crate::services::ha::vip::apply(
            &vip_file,
            crate::services::ha::vip::Role::Host0,
            &vip_root,
        ) {
            Ok(crate::services::ha::vip::Applied::Off) => {}
            Ok(a) => tracing::info!("virtual IP: {a}"),
            Err(e) => tracing::error!("virtual IP: {e:#}"),
        }
    });

    // 5. Serve.
    let initial = match (decision, loaded) {
        (CopyDecision::MediaOnly, _) => LoadState::MediaOnly,
        (CopyDecision::Copy, true) => LoadState::Ready,
        (CopyDecision::Copy, false) => LoadState::Loading,
    };
    let status = Status::new(
        Identity {
            name: file.name.clone(),
            version: file.version.clone(),
            registry: format!("{scheme}://{}", endpoints[0]),
            ca_fingerprint: tls.as_ref().and_then(|t| t.ca_sha256.clone()),
            started_at,
        },
        initial,
    );
    status.set_storage(storage);
    if initial == LoadState::MediaOnly {
        status.set_state(
            LoadState::MediaOnly,
            Some(format!(
                "{} is in RAM and there is no data disk: serving from the media, which must \
                 stay attached",
                reg_dir.display()
            )),
        );
    }
    if loaded {
        status.set_serving_from_disk();
        if let Err(e) = crate::datadisk::stub::save(&bundle_dir, &opts.data) {
            tracing::warn!("saving the bundle's description to the disk: {e:#}");
        }
    }
    let replicas = crate::api::replicas::Replicas::new();
    crate::api::replication::track_changes(registry.store.changes(), replicas.clone());
    let join = Arc::new(Join {
        token: file.join_token.clone(),
        appliance: ApplianceName {
            name: file.name.clone(),
            version: file.version.clone(),
        },
        upstreams,
        ca_pem,
        scheme,
        port: bound.port(),
        advertised: endpoints
            .iter()
            .filter(|h| !h.starts_with("127."))
            .cloned()
            .collect(),
        runtimes: rts.clone(),
        tls_dir: tls
            .as_ref()
            .filter(|_| file.registry.tls == TlsMode::Generate)
            .map(|t| t.dir.clone()),
        replica_sans: crate::services::ha::vip::address(&file)
            .into_iter()
            .collect(),
        replicas: replicas.clone(),
    });
    let rts_for_finish = rts;
    let current = server::Current::new(registry.clone());
    let app = server::app(current.clone(), status.clone(), join.clone());
    let app = crate::api::replication::attach(
        app,
        Arc::new(crate::api::replication::FeedService {
            token: file.join_token.clone(),
            registry: {
                let c = current.clone();
                Arc::new(move || c.registry())
            },
            replicas,
        }),
    );
    let app = crate::api::netboot::attach(
        app,
        &file,
        &bundle_dir,
        bound.port(),
        scheme,
        tls.as_ref().and_then(|t| t.ca_sha256.clone()),
    )
    .await;
    let app = crate::api::web::attach(
        app,
        &file,
        &bundle_dir,
        {
            let c = current.clone();
            Arc::new(move || c.registry())
        },
        join,
    );
    notify::notify("READY=1\nSTATUS=serving the bundle")?;
    milestone(&format!(
        "AIRLIFT-HOST0-READY registry={scheme}://{} state={}",
        endpoints.join(","),
        serde_json::to_value(initial)?.as_str().unwrap_or_default()
    ));

    // The rest of step 4, slow and not needed by the runtimes: the
    // system trust store, then the marker.
    if let runtimes::Written::Applied { update_trust, .. } = outcome {
        let (root, data, spec, rts) = (
            opts.root.clone(),
            opts.data.clone(),
            local_spec.clone(),
            rts_for_finish,
        );
        tokio::task::spawn_blocking(move || {
            if let Err(e) = runtimes::finish(&root, &data, &spec, &rts, update_trust) {
                tracing::error!("finishing the runtime config: {e:#}");
            }
        });
    }

    // 6. The background copy.
    let (header_timeout, max_connections) = (
        Duration::from_secs(serve_opts.header_timeout_secs),
        serve_opts.max_connections,
    );
    if initial == LoadState::Loading {
        let job = LoadJob {
            bundle,
            reg_dir,
            progress,
            status: status.clone(),
            current,
            registry,
            serve_opts,
        };
        tokio::spawn(job.run());
    }
    server::serve(listener, acceptor, app, header_timeout, max_connections).await
}

/// The registry's options: built through its config-file form, so every
/// setting not named here keeps the registry's own default.
fn serve_options(
    listen: SocketAddr,
    data: &Path,
    layers: Vec<PathBuf>,
    tls: Option<&TlsMaterial>,
    allow_delete: bool,
) -> Result<ServeOptions> {
    let mut v = serde_json::json!({
        "listen": listen.to_string(),
        "data": data,
        "layers": layers,
        "allow-delete": allow_delete,
    });
    if let Some(t) = tls {
        v["tls-cert"] = serde_json::json!(t.cert_path());
        v["tls-key"] = serde_json::json!(t.key_path());
    }
    serde_json::from_value(v).context("building the registry's options")
}

/// Create `dir` (and parents) with mode 0700.
fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// The TLS files the file's mode asks for (None: plain HTTP).
fn tls_material(
    file: &ApplianceFile,
    opts: &Options,
    listen: SocketAddr,
    ips: &[IpAddr],
) -> Result<Option<TlsMaterial>> {
    let dir = opts.data.join(crate::services::tls::TLS_DIR);
    match file.registry.tls {
        TlsMode::Off => {
            tracing::warn!("registry.tls is off: serving plain HTTP");
            Ok(None)
        }
        TlsMode::Provided => {
            private_dir(&dir)?;
            let (cert, key) = (
                file.registry
                    .tls_cert
                    .as_deref()
                    .context("registry.tlsCert is missing")?,
                file.registry
                    .tls_key
                    .as_deref()
                    .context("registry.tlsKey is missing")?,
            );
            Ok(Some(crate::services::tls::use_supplied(
                &dir, cert, key, None,
            )?))
        }
        TlsMode::Generate => {
            private_dir(&dir)?;
            // The machine's own name only when it is a DNS name (the
            // certificate cannot carry `my_host`); configured names must be.
            let mut names: Vec<String> = crate::sys::net::hostname()
                .filter(|h| {
                    let ok = addresses::is_dns_name(h);
                    if !ok {
                        tracing::warn!("host name {h:?} is not a DNS name; not in the certificate");
                    }
                    ok
                })
                .into_iter()
                .collect();
            let mut ip_sans: Vec<IpAddr> = ips.to_vec();
            for n in opts.hostnames.iter().chain(&file.registry.extra_names) {
                match n.parse::<IpAddr>() {
                    Ok(ip) => ip_sans.push(ip),
                    Err(_) => names.push(n.clone()),
                }
            }
            if !listen.ip().is_unspecified() {
                ip_sans.push(listen.ip());
            }
            ip_sans.extend(crate::services::ha::vip::address(file));
            ip_sans.sort();
            ip_sans.dedup();
            names.sort();
            names.dedup();
            let t = crate::services::tls::ensure_tls(&dir, &names, &ip_sans)
                .with_context(|| format!("making the registry's TLS files in {}", dir.display()))?;
            if t.issued {
                tracing::info!(
                    "issued a server certificate for {} and {:?}",
                    names.join(", "),
                    ip_sans
                );
            }
            Ok(Some(t))
        }
    }
}

/// Is every blob of the bundle in the registry's data folder (by size)?
fn all_blobs_present(bundle: &Layout, reg_dir: &Path) -> Result<bool> {
    let data = Layout::create(reg_dir)?;
    Ok(loader::plan(bundle)?
        .iter()
        .all(|d| std::fs::metadata(data.blob_path(&d.digest)).is_ok_and(|m| m.len() == d.size)))
}

/// The background copy and the switch to the disk copy.
struct LoadJob {
    bundle: Layout,
    reg_dir: PathBuf,
    progress: PathBuf,
    status: Status,
    current: server::Current,
    registry: Arc<Registry>,
    serve_opts: ServeOptions,
}

impl LoadJob {
    async fn run(self) {
        let status = self.status.clone();
        if let Err(e) = self.load().await {
            let msg = format!("{e:#}");
            tracing::error!("loading the bundle failed, still serving from the media: {msg}");
            println!("AIRLIFT-HOST0-LOAD-FAILED {msg}");
            status.set_state(LoadState::Failed, Some(msg));
        }
    }

    async fn load(self) -> Result<()> {
        let bundle = self.bundle.clone();
        let data = Layout::create(&self.reg_dir)?;
        let (status, progress) = (self.status.clone(), self.progress.clone());
        let p = tokio::task::spawn_blocking(move || -> Result<_> {
            let blobs = loader::plan(&bundle)?;
            loader::copy_blobs(
                &bundle,
                &data,
                &blobs,
                &status,
                &progress,
                Reporting::default(),
            )
        })
        .await??;
        let images = loader::register(&self.registry.store, &self.bundle).await?;
        loader::mark_complete(&self.progress, &self.bundle, &p)?;
        if let Some(data) = self.reg_dir.parent() {
            crate::datadisk::stub::save(self.bundle.root(), data)?;
        }
        let mut opts = self.serve_opts.clone();
        opts.layers.clear();
        // The disk store goes on with this store's change feed.
        let changes = self.registry.store.changes().clone();
        let disk = tokio::task::spawn_blocking(move || Registry::open_with_changes(&opts, changes))
            .await??;
        self.current.replace(Arc::new(disk));
        self.status.set_serving_from_disk();
        self.status.set_state(LoadState::Ready, None);
        milestone(&format!(
            "AIRLIFT-HOST0-LOADED {images} images, {} blobs, {} MB verified in {}; \
             serving from the disk: the media can be ejected",
            p.blobs_done,
            p.bytes_done / 1_000_000,
            self.reg_dir.display()
        ));
        Ok(())
    }
}
