//! Log lines to stderr; `AIRLIFT_LOG` (or `RUST_LOG`) sets the filter.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = std::env::var("AIRLIFT_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
