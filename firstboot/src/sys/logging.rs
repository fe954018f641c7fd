//! Logging: to the journal when systemd's journald is there (structured
//! fields, no timestamps of our own: the journal adds them), to stderr
//! otherwise. `RUST_LOG` overrides the default `info` level.

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// journald's native socket.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Journal,
    Stderr,
}

/// Pick the sink (pure): stderr when `AIRLIFT_LOG=stderr` asks for it,
/// else the journal when the service's output is connected to it
/// (`JOURNAL_STREAM`) or its socket exists.
pub fn choose(forced: Option<&str>, journal_stream: Option<&str>, socket_exists: bool) -> Sink {
    if forced == Some("stderr") {
        return Sink::Stderr;
    }
    if journal_stream.is_some_and(|s| !s.is_empty()) || socket_exists {
        Sink::Journal
    } else {
        Sink::Stderr
    }
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Set up the global subscriber once (later calls do nothing).
pub fn init() {
    let stream = std::env::var("JOURNAL_STREAM").ok();
    let forced = std::env::var("AIRLIFT_LOG").ok();
    let sink = choose(
        forced.as_deref(),
        stream.as_deref(),
        Path::new(JOURNAL_SOCKET).exists(),
    );
    if sink == Sink::Journal {
        if let Ok(layer) = tracing_journald::layer() {
            let _ = tracing_subscriber::registry()
                .with(filter())
                .with(layer.with_syslog_identifier("airlift-firstboot".to_string()))
                .try_init();
            return;
        }
    }
    // Under systemd without a usable journal socket, stderr still reaches
    // the journal, which timestamps it.
    let under_systemd = stream.is_some();
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    let _ = if under_systemd {
        fmt.without_time().try_init()
    } else {
        fmt.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_the_journal_when_present() {
        assert_eq!(choose(None, Some("8:1234"), false), Sink::Journal);
        assert_eq!(choose(None, None, true), Sink::Journal);
        assert_eq!(choose(None, Some(""), false), Sink::Stderr);
        assert_eq!(choose(None, None, false), Sink::Stderr);
        assert_eq!(choose(Some("stderr"), Some("8:1"), true), Sink::Stderr);
    }
}
