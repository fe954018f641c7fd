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
}
