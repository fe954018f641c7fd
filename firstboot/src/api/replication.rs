//! host0's side: `GET /airlift/v1/replication/state` (the join token as
//! Bearer) answers with the whole catalogue as soon as the change
//! generation passes the replica's `after` (or after `wait` seconds, at
//! most [`MAX_WAIT`]), and `GET /airlift/v1/replicas` shows the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use crate::api::join::{presented_token, token_ok};
use crate::api::json::json_response;
use crate::api::replicas::Replicas;
use crate::services::ha::replication::{Feed, Report};
use crate::services::registry::store::Changes;
use crate::services::registry::{route::query_params, Registry};

/// The longest a poll is held open.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// What the endpoints need.
pub struct FeedService {
    /// The join token: replicas present it.
    pub token: String,
    /// The registry serving now (host0 swaps it when the media is dropped).
    pub registry: Arc<dyn Fn() -> Arc<Registry> + Send + Sync>,
    pub replicas: Replicas,
}

/// Keep `replicas`' change history: when each generation of `changes`
/// (the registry's feed, which host0's store swap keeps) was made.
pub fn track_changes(changes: &Changes, replicas: Replicas) {
    let mut rx = changes.subscribe();
    replicas.changed(*rx.borrow_and_update(), Instant::now());
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let g = *rx.borrow_and_update();
            replicas.changed(g, Instant::now());
        }
    });
}

/// Wait until the generation of `changes` passes `after`, at most `wait`.
async fn wait_past(changes: &Changes, after: u64, wait: Duration) {
    let mut rx = changes.subscribe();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        if *rx.borrow_and_update() > after {
            return;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = &mut deadline => return,
        }
    }
}

/// `GET /airlift/v1/replication/state?after=G&source=S&wait=SECS&replica=NAME&url=URL&synced=BOOL`.
pub async fn state(State(s): State<Arc<FeedService>>, headers: HeaderMap, uri: Uri) -> Response {
    if !token_ok(&s.token, presented_token(&headers, b"").as_deref()) {
        tracing::warn!("replication state refused: missing or wrong join token");
        return json_response(
            StatusCode::FORBIDDEN,
            &serde_json::json!({
                "error": "replication needs the appliance's join token as a Bearer token"
            }),
        );
    }
    let params = query_params(uri.query());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let after: u64 = get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let registry = (s.registry)();
    let changes = registry.store.changes();
    let ours = get("source") == Some(changes.source_id());
    let wait =
        Duration::from_secs(get("wait").and_then(|v| v.parse().ok()).unwrap_or(0)).min(MAX_WAIT);
    if let Some(r) = Report::from_params(&params) {
        s.replicas.report(&r, ours, Instant::now());
    }
    if ours && !wait.is_zero() {
        wait_past(changes, after, wait).await;
    }
    // The generation is read first: a change made while the snapshot is
    // taken is then also reported by the next poll.
    let generation = changes.generation();
    let repositories = registry.store.snapshot();
    json_response(
        StatusCode::OK,
        &Feed {
            source_id: changes.source_id().to_string(),
            generation,
            repositories,
        },
    )
}

/// `GET /airlift/v1/replicas`.
pub async fn replicas(State(s): State<Arc<FeedService>>) -> Response {
    let generation = (s.registry)().store.changes().generation();
    json_response(StatusCode::OK, &s.replicas.view(generation, Instant::now()))
}

/// Add the state and replica-table endpoints to host0's app.
pub fn attach(app: axum::Router, feed: Arc<FeedService>) -> axum::Router {
    use axum::routing::get;
    app.route(
        crate::services::ha::replication::STATE_PATH,
        get(state).with_state(feed.clone()),
    )
    .route(
        crate::services::ha::replication::REPLICAS_PATH,
        get(replicas).with_state(feed),
    )
}
