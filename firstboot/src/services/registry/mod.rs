//! The appliance's OCI registry (distribution-spec v1.1): serves the
//! bundle's read-only layers and a writable data folder, namespaced by
//! upstream host so `quay.io/org/app` and `docker.io/org/app` never
//! collide (see [`route`] for how requests map to stored names).
//!
//! Layers: [`route`] (paths and names, pure), [`routes`] (thin HTTP
//! handlers), [`store`] (blobs, metadata, uploads), [`auth`], [`error`]
//! (the spec's error JSON), [`server`] (sockets, TLS, timeouts), [`conn`]
//! (the HTTP/1.1 driver in front of hyper: blob files with sendfile),
//! [`gate`] (manifests in a trusted key's scope served only when signed).

pub mod auth;
pub mod body;
pub mod conn;
pub mod error;
pub mod gate;
pub mod manifest;
pub mod options;
pub mod route;
pub mod routes;
pub mod s3;
pub mod server;
pub mod space;
pub mod store;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

pub use options::ServeOptions;
pub use routes::router;
pub use server::serve;

/// The registry's folder name under a state folder.
pub const REGISTRY_DIR: &str = "registry";

/// The registry's data folder under the state folder `data`.
pub fn registry_dir(data: &std::path::Path) -> std::path::PathBuf {
    data.join(REGISTRY_DIR)
}

/// Everything a request handler needs: shared by all connections.
pub struct Registry {
    pub store: store::Store,
    pub auth: auth::Auth,
    /// Whether `DELETE` of manifests, tags and blobs is allowed.
    pub allow_delete: bool,
    pub limits: Limits,
    /// The reserve uploads leave free ([`space`]); its
    /// [`SpaceGuard::set_reclaimable`](space::SpaceGuard::set_reclaimable)
    /// hook (None by default) says what `gc` would free.
    pub space: Arc<space::SpaceGuard>,
    /// Serves manifests in a trusted key's scope only when signed
    /// ([`gate`]); None: every manifest is served.
    pub gate: Option<gate::Gate>,
}

/// The address of the client that sent a request (a request extension
/// the server inserts; uploads are capped per client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The largest blob a push may upload (64 GiB).
pub const MAX_BLOB_BYTES: u64 = 64 << 30;

/// Limits on what one request may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a request body may go without sending a byte.
    pub body_stall: Duration,
    /// The largest blob an upload may grow to.
    pub max_blob_bytes: u64,
}

impl Registry {
    /// Open storage and credentials as the options say, with a new
    /// change feed.
    pub fn open(opts: &ServeOptions) -> Result<Registry> {
        Registry::open_with_changes(opts, store::Changes::new())
    }

    /// [`Registry::open`], bumping `changes` (the feed of the store this
    /// one replaces, so replicas see the generations go on).
    pub fn open_with_changes(opts: &ServeOptions, changes: store::Changes) -> Result<Registry> {
        let layers: Vec<store::LayerSpec> =
            opts.layers.iter().map(store::LayerSpec::tagged).collect();
        let store = store::Store::open_with(&opts.data, &layers, opts.remote()?, changes)?;
        store.set_upload_policy(opts.upload_policy()?);
        let space = Arc::new(space::SpaceGuard::new(&opts.data, opts.reserve_bytes()?));
        Ok(Registry {
            store,
            auth: auth::Auth::load(opts.htpasswd.as_deref(), opts.push_token_file.as_deref())?,
            allow_delete: opts.allow_delete,
            limits: Limits {
                body_stall: Duration::from_secs(opts.body_stall_secs),
                max_blob_bytes: MAX_BLOB_BYTES,
            },
            space,
            gate: opts
                .verifier
                .clone()
                .map(|v| gate::Gate::new(v).with_bypass(opts.gate_bypass_token.clone())),
        })
    }
}
