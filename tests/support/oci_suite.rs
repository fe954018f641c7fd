//! The OCI distribution-spec conformance suite against a registry: its
//! binaries (built by `just oci-suite` from `../shared/oci-conformance`
//! into `$OCI_CONFORMANCE_DIR`, default `~/.cache/oci-conformance`), one
//! run through the suite's `run.sh`, and the totals that script prints.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::tools::workspace_root;

/// Which suite to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The current suite (distribution-spec `main`), a plain Go program.
    Main,
    /// The older ginkgo suite of tag v1.1.1.
    V111,
}

impl Suite {
    fn binary(self) -> &'static str {
        match self {
            Suite::Main => "conformance.bin",
            Suite::V111 => "conformance-v111.test",
        }
    }

    /// The settings that turn on the suite's optional checks (the main
    /// suite's `OCI_API_*` flags; v1.1.1's automatic cross-mount check).
    pub fn optional_checks(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Suite::Main => &[
                ("OCI_API_BLOBS_UPLOAD_CANCEL", "true"),
                ("OCI_API_MANIFESTS_TAG_PARAM", "true"),
                ("OCI_API_BLOBS_DIGEST_HEADER", "true"),
                ("OCI_API_MANIFESTS_DIGEST_HEADER", "true"),
            ],
            Suite::V111 => &[("OCI_AUTOMATIC_CROSSMOUNT", "true")],
        }
    }
}

/// How long one run may take before it is killed.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// What one run printed.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    pub pass: u32,
    pub fail: u32,
    pub skip: u32,
    /// Main suite only (v1.1.1 reports none).
    pub disabled: u32,
    /// Main suite: errors of the suite itself; v1.1.1: pending specs.
    pub error: u32,
    /// The failing test names run.sh listed.
    pub failing: Vec<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pass {}, fail {}, skip {}, disabled {}, error/pending {} in {:.1} s",
            self.pass,
            self.fail,
            self.skip,
            self.disabled,
            self.error,
            self.elapsed.as_secs_f64()
        )
    }
}

/// The folder holding the suite's built binaries.
pub fn bin_dir() -> PathBuf {
    match std::env::var_os("OCI_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/oci-conformance"),
    }
}

/// The suite's `run.sh`, beside the repository in `../shared`.
pub fn run_sh() -> PathBuf {
    let p = workspace_root().join("../shared/oci-conformance/run.sh");
    assert!(
        p.is_file(),
        "{} is missing: the OCI conformance suite is expected in ../shared/oci-conformance beside the repository",
        p.display()
    );
    p
}

/// Panic naming `just oci-suite` unless the suite's binary is built:
/// tests never skip silently.
pub fn require_built(suite: Suite) -> PathBuf {
    let bin = bin_dir().join(suite.binary());
    assert!(
        bin.is_file(),
        "{} is not built: run `just oci-suite` (or set OCI_CONFORMANCE_DIR to where build.sh put it)",
        bin.display()
    );
    bin
}

/// Run `suite` against `host` (`127.0.0.1:PORT`, plain HTTP) with `env`
/// (credentials, optional checks, a test filter), writing the suite's
/// reports to `results` (emptied first). Every other `OCI_*` variable of
/// the caller's environment is left out, so runs are reproducible.
pub fn run(suite: Suite, host: &str, results: &Path, env: &[(&str, &str)]) -> Totals {
    require_built(suite);
    let _ = std::fs::remove_dir_all(results);
    std::fs::create_dir_all(results).expect("creating the results folder");
    let mut cmd = Command::new(run_sh());
    if suite == Suite::V111 {
        cmd.arg("--v111");
    }
    cmd.arg(host).arg(results);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("OCI_") && k != "OCI_CONFORMANCE_DIR" {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.env("OCI_CONFORMANCE_DIR", bin_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a run past the limit is killed whole.
        .process_group(0);
    let start = Instant::now();
    let child = cmd.spawn().expect("starting run.sh");
    let pid = child.id();
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(RUN_LIMIT).is_err() {
            // Past the limit: kill run.sh's process group (it and the suite).
            let _ = Command::new("kill")
                .args(["-KILL", &format!("-{pid}")])
                .status();
        }
    });
    let out = child.wait_with_output().expect("waiting for run.sh");
    let elapsed = start.elapsed();
    let _ = done.send(());
    let _ = watchdog.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut totals = parse_totals(suite, &stdout).unwrap_or_else(|| {
        panic!(
            "run.sh ({suite:?}) printed no totals after {:.0} s ({}); the end of its output:\n{}\n{}",
            elapsed.as_secs_f64(),
            out.status,
            tail(&stdout),
            tail(&String::from_utf8_lossy(&out.stderr))
        )
    });
    totals.elapsed = elapsed;
    totals
}

/// The last 2000 bytes of `s` (at a character boundary).
fn tail(s: &str) -> &str {
    let mut from = s.len().saturating_sub(2000);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

/// Read the totals run.sh prints: the main suite's
/// `  Pass......: 986` lines, or ginkgo's
/// `SUCCESS! -- 75 Passed | 0 Failed | 0 Pending | 4 Skipped`; plus the
/// `  FAIL <name>` lines run.sh lists. `None` if the totals are missing.
pub fn parse_totals(suite: Suite, out: &str) -> Option<Totals> {
    let mut t = Totals::default();
    let mut seen = 0;
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("  FAIL ") {
            t.failing.push(name.trim().to_string());
            continue;
        }
        match suite {
            Suite::Main => {
                let Some((key, value)) = line.split_once(':') else {
                    continue;
                };
                let Ok(n) = value.trim().parse::<u32>() else {
                    continue;
                };
                let slot = match key.trim().trim_end_matches('.') {
                    "Pass" => &mut t.pass,
                    "FAIL" => &mut t.fail,
                    "Skip" => &mut t.skip,
                    "Disabled" => &mut t.disabled,
                    "Error" => &mut t.error,
                    _ => continue,
                };
                *slot = n;
                seen += 1;
            }
            Suite::V111 => {
                let Some(counts) = line
                    .strip_prefix("SUCCESS! -- ")
                    .or_else(|| line.strip_prefix("FAIL! -- "))
                else {
                    continue;
                };
                for part in counts.split('|') {
                    let mut words = part.split_whitespace();
                    let (Some(n), Some(what)) = (words.next(), words.next()) else {
                        continue;
                    };
                    let Ok(n) = n.parse::<u32>() else { continue };
                    let slot = match what {
                        "Passed" => &mut t.pass,
                        "Failed" => &mut t.fail,
                        "Skipped" => &mut t.skip,
                        "Pending" => &mut t.error,
                        _ => continue,
                    };
                    *slot = n;
                    seen += 1;
                }
            }
        }
    }
    (seen >= 4).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_suites_totals() {
        let main = "== OCI conformance (main suite) against 127.0.0.1:1: exit 1; results in /r\n\
            OCI Conformance Result: FAIL\n  Disabled......................:          0\n\
            \x20 Skip..........................:          6\n  Pass..........................:        968\n\
            \x20 FAIL..........................:         12\n  Error.........................:          0\n\
            \x20 Total.........................:        986\nfailing tests (1 distinct names):\n\
            \x20 FAIL OCI Conformance Test/x/push (x4)\n       some error\n";
        let t = parse_totals(Suite::Main, main).unwrap();
        assert_eq!(
            (t.pass, t.fail, t.skip, t.disabled, t.error),
            (968, 12, 6, 0, 0)
        );
        assert_eq!(t.failing, ["OCI Conformance Test/x/push (x4)"]);
        let v111 = "Ran 74 of 79 Specs in 0.561 seconds\n\
            FAIL! -- 71 Passed | 3 Failed | 0 Pending | 5 Skipped\n";
        let t = parse_totals(Suite::V111, v111).unwrap();
        assert_eq!((t.pass, t.fail, t.skip, t.error), (71, 3, 5, 0));
        assert!(parse_totals(Suite::Main, "nothing").is_none());
        assert!(parse_totals(Suite::V111, main).is_none());
    }
}
