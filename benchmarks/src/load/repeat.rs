//! A fixed-duration load run: `connections` kept-alive connections each
//! sending one request over and over until the deadline, counting
//! completed 2xx responses, body bytes (partial bodies included, so a
//! large blob still counts at high concurrency) and failures.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::conn::{Endpoint, TlsInfo};
use super::http1::{Exchange, Request};

/// Consecutive failures after which a connection gives up.
const GIVE_UP_AFTER: u32 = 20;

/// What one run counted.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Completed responses with a 2xx status.
    pub requests: u64,
    /// Body bytes received (of any response, finished or not).
    pub bytes: u64,
    /// Non-2xx responses, failed connections and broken exchanges.
    pub errors: u64,
    /// Wall seconds from the first connect to the deadline.
    pub seconds: f64,
    /// The first connection's TLS parameters.
    pub tls: Option<TlsInfo>,
    /// The first failure, for the log.
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    tls: Mutex<Option<TlsInfo>>,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut e) = self.first_error.lock() {
            e.get_or_insert(what);
        }
    }
}

/// Run `request` on `connections` connections for `duration`. Call from
/// inside a tokio runtime.
pub async fn run(
    endpoint: &Endpoint,
    request: &Request,
    connections: u32,
    duration: Duration,
) -> Result<Totals> {
    let shared = Arc::new(Shared::default());
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (shared, endpoint, request) = (shared.clone(), endpoint.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let work = one_connection(&endpoint, &request, &shared);
            let _ = tokio::time::timeout_at(deadline, work).await;
        }));
    }
    for t in tasks {
        t.await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Totals {
        requests: shared.requests.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        seconds,
        tls: take(&shared.tls),
        first_error: take(&shared.first_error),
    })
}

fn take<T>(m: &Mutex<Option<T>>) -> Option<T> {
    m.lock().ok().and_then(|mut g| g.take())
}

/// Send `request` until cancelled, reconnecting after a failure or a
/// `Connection: close`; give up after [`GIVE_UP_AFTER`] failures in a row.
async fn one_connection(endpoint: &Endpoint, request: &Request, shared: &Shared) {
    let mut failures = 0;
    while failures < GIVE_UP_AFTER {
        let mut ex = match Exchange::open(endpoint).await {
            Ok(ex) => ex,
            Err(e) => {
                shared.fail(format!("{e:#}"));
                failures += 1;
                continue;
            }
        };
        if let (Some(info), Ok(mut slot)) = (&ex.tls, shared.tls.lock()) {
            slot.get_or_insert_with(|| info.clone());
        }
        loop {
            match ex.send(request, &shared.bytes, false).await {
                Ok(r) if (200..300).contains(&r.status) => {
                    failures = 0;
                    shared.requests.fetch_add(1, Ordering::Relaxed);
                    if r.close {
                        break;
                    }
                }
                Ok(r) => {
                    failures += 1;
                    shared.fail(format!("status {}", r.status));
                    if r.close || failures >= GIVE_UP_AFTER {
                        break;
                    }
                }
                Err(e) => {
                    failures += 1;
                    shared.fail(format!("{e:#}"));
                    break;
                }
            }
        }
    }
}
