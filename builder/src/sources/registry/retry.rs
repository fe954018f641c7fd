//! When and how long to retry: connect errors, 5xx and 429 are retried
//! with exponential backoff, a bounded number of times.

use std::time::Duration;

/// Tries per request, the first included.
pub const MAX_TRIES: u32 = 5;

/// Wait before try number `attempt` (1 = first retry): 250 ms doubling,
/// capped at 8 s.
pub fn backoff(attempt: u32) -> Duration {
    let ms = 250u64.saturating_mul(1 << attempt.saturating_sub(1).min(5));
    Duration::from_millis(ms.min(8_000))
}

/// Is a response with this status worth retrying?
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// Is an I/O error on a request worth retrying (the network, not the peer's
/// certificate or protocol)?
pub fn transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::BrokenPipe
            | K::TimedOut
            | K::UnexpectedEof
            | K::Interrupted
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_with_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(250));
        assert_eq!(backoff(2), Duration::from_millis(500));
        assert_eq!(backoff(4), Duration::from_millis(2000));
        assert_eq!(backoff(30), Duration::from_millis(8000));
    }

    #[test]
    fn retries_server_errors_and_throttling_only() {
        assert!(retryable_status(503) && retryable_status(429) && retryable_status(500));
        assert!(!retryable_status(404) && !retryable_status(401) && !retryable_status(200));
    }

    #[test]
    fn network_errors_are_transient_tls_errors_are_not() {
        use std::io::ErrorKind as K;
        assert!(transient_io(K::ConnectionRefused) && transient_io(K::ConnectionReset));
        assert!(!transient_io(K::InvalidData) && !transient_io(K::PermissionDenied));
    }
}
