//! Driving Debian's `wrk` and reading its summary.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// What one `wrk` run reported.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkResult {
    /// Completed requests.
    pub requests: u64,
    /// Seconds the run lasted.
    pub seconds: f64,
    /// `Requests/sec`.
    pub requests_per_sec: f64,
    /// Responses with a status outside 2xx/3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

impl WrkResult {
    /// Requests that failed one way or another.
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.socket_errors
    }
}

/// One `wrk` run: `connections` connections (threads: at most 2) for
/// `seconds` against `url`, with one extra header.
pub fn run(
    wrk: &Path,
    url: &str,
    connections: u32,
    seconds: u64,
    header: Option<&str>,
    timeout_secs: u64,
) -> Result<WrkResult> {
    let threads = connections.clamp(1, 2);
    let mut cmd = Command::new(wrk);
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--timeout")
        .arg(format!("{timeout_secs}s"));
    if let Some(h) = header {
        cmd.arg("-H").arg(h);
    }
    cmd.arg(url).stdin(Stdio::null());
    let out = cmd
        .output()
        .with_context(|| format!("starting {}", wrk.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk against {url} failed ({}):\n{text}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("reading wrk's output for {url}:\n{text}"))
}

/// Parse wrk's summary text.
pub fn parse(text: &str) -> Result<WrkResult> {
    let mut requests = None;
    let mut seconds = None;
    let mut rps = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    for line in text.lines().map(str::trim) {
        if let Some((n, rest)) = line.split_once(" requests in ") {
            requests = n.trim().parse::<u64>().ok();
            seconds = rest.split(',').next().and_then(|d| duration_secs(d.trim()));
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().context("Non-2xx count")?;
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                let n = part.split_whitespace().last().unwrap_or("0");
                socket_errors += n.parse::<u64>().context("socket error count")?;
            }
        }
    }
    Ok(WrkResult {
        requests: requests.context("no `N requests in T` line")?,
        seconds: seconds.context("no duration on the requests line")?,
        requests_per_sec: rps.context("no `Requests/sec:` line")?,
        non_2xx,
        socket_errors,
    })
}

/// wrk's durations: `10.01s`, `1.00m`, `500.00ms`, `12.00us`.
fn duration_secs(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 10s test @ http://127.0.0.1:5000/v2/a/manifests/1
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   210.33us  101.22us   5.01ms   91.00%
    Req/Sec    36.51k     2.10k   41.00k    70.50%
  726543 requests in 10.10s, 512.40MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  71934.95
Transfer/sec:     50.73MB
";

    #[test]
    fn parses_the_summary() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests, 726543);
        assert!((r.seconds - 10.10).abs() < 1e-9);
        assert!((r.requests_per_sec - 71934.95).abs() < 1e-9);
        assert_eq!(r.non_2xx, 3);
        assert_eq!(r.socket_errors, 3);
        assert_eq!(r.errors(), 6);
    }

    #[test]
    fn clean_runs_and_garbage() {
        let clean = "  30 requests in 1.00m, 1.88GB read\nRequests/sec:      0.50\n";
        let r = parse(clean).unwrap();
        assert_eq!((r.requests, r.seconds, r.errors()), (30, 60.0, 0));
        assert!(parse("wrk: connection refused").is_err());
        assert_eq!(duration_secs("500.00ms"), Some(0.5));
        assert_eq!(duration_secs("10"), None);
    }
}
