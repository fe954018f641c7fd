//! host0's HTTP surface on the registry port: the registry itself
//! (swappable, so serving can move from media+disk to the disk alone
//! without a restart), `GET /airlift/v1/status` and the join endpoint.
//! The accept loop mirrors the registry's own server (TLS, HTTP/1.1 and
//! HTTP/2, header timeout, connection cap) and adds each connection's
//! two addresses to its requests for the join endpoint.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::join::{self, Join, Peer};
use crate::api::status;
use crate::services::registry::server::accept_loop;
use crate::services::registry::Registry;
use crate::services::status::Status;

/// The registry router currently serving (and its registry); replaced
/// when the media layer is dropped.
#[derive(Clone)]
pub struct Current(Arc<RwLock<(Router, Arc<Registry>)>>);

impl Current {
    /// Serve `registry`.
    pub fn new(registry: Arc<Registry>) -> Current {
        let router = crate::services::registry::router(registry.clone());
        Current(Arc::new(RwLock::new((router, registry))))
    }

    /// Serve `registry` from now on (requests in flight finish on the old one).
    pub fn replace(&self, registry: Arc<Registry>) {
        let router = crate::services::registry::router(registry.clone());
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = (router, registry);
    }

    fn get(&self) -> Router {
        self.0.read().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// The registry serving now (its store lists what is there).
    pub fn registry(&self) -> Arc<Registry> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

/// Hand a request to the registry serving now.
pub async fn to_registry(State(current): State<Current>, req: Request) -> Response {
    match current.get().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// A replica's app: its status, then everything else to its registry.
pub fn replica_app(current: Current, status: Status) -> Router {
    Router::new()
        .route(status::PATH, get(status::handler).with_state(status))
        .fallback(to_registry)
        .with_state(current)
}

/// The whole app: status, join, then everything else to the registry.
pub fn app(current: Current, status: Status, join: Arc<Join>) -> Router {
    Router::new()
        .route(status::PATH, get(status::handler).with_state(status))
        .route(
            "/airlift/v1/join",
            get(join::handler).post(join::handler).with_state(join),
        )
        .fallback(to_registry)
        .with_state(current)
}

/// Serve `app` on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_timeout: Duration,
    max_connections: usize,
) -> Result<()> {
    let local = listener.local_addr()?;
    accept_loop(
        listener,
        tls,
        header_timeout,
        max_connections,
        move |sock, remote| {
            let peer = Peer {
                remote,
                local: sock.local_addr().unwrap_or(local),
            };
            app.clone()
                .map_request(move |mut req: hyper::Request<axum::body::Body>| {
                    req.extensions_mut().insert(peer);
                    req.extensions_mut()
                        .insert(crate::services::registry::ClientAddr(remote.ip()));
                    req
                })
        },
    )
    .await
}

/// Bind, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the registry port {addr} (is another registry running?)"))
}
