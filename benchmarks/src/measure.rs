//! Running a command and measuring it: wall time (including an fsync of
//! its output, so every side pays for its writes the same way) and peak
//! memory (`/usr/bin/time -f %M`, or `VmHWM` for a running server).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// One measured run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Wall seconds: the command, then `sync OUTPUT`.
    pub seconds: f64,
    /// Peak resident memory in KiB (largest process of the tree).
    pub peak_kib: u64,
    /// The command's stderr (its stdout too, unless redirected).
    pub log: String,
}

/// A command to measure.
#[derive(Debug, Clone)]
pub struct Job {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    /// Send stdout to this file (for `cat`).
    pub stdout_to: Option<PathBuf>,
    /// The file to fsync (`sync FILE`) before the clock stops.
    pub output: PathBuf,
}

/// Run `job` under `/usr/bin/time`, fsync its output, and measure.
/// A failing command is an error with its log.
pub fn run(job: &Job, scratch: &Path) -> Result<Run> {
    let time = require("/usr/bin/time", "time")?;
    let mem_file = scratch.join("time-peak.txt");
    let log_file = scratch.join("run.log");
    let log =
        File::create(&log_file).with_context(|| format!("creating {}", log_file.display()))?;
    let mut cmd = Command::new(time);
    cmd.arg("-f").arg("%M").arg("-o").arg(&mem_file);
    cmd.arg(&job.program).args(&job.args);
    cmd.envs(job.env.iter().map(|(k, v)| (k, v)));
    cmd.stdin(Stdio::null()).stderr(log.try_clone()?);
    match &job.stdout_to {
        Some(p) => {
            cmd.stdout(File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => cmd.stdout(log),
    };
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("starting {}", job.program.display()))?;
    let synced = Command::new("sync").arg(&job.output).status();
    let seconds = start.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    if !status.success() {
        bail!("{} failed ({status}):\n{log}", job.program.display());
    }
    match synced {
        Ok(s) if s.success() => {}
        _ => bail!("sync {} failed", job.output.display()),
    }
    let mem = std::fs::read_to_string(&mem_file)
        .with_context(|| format!("reading {}", mem_file.display()))?;
    let peak_kib = parse_time_peak(&mem)
        .with_context(|| format!("/usr/bin/time wrote {mem:?}, not a peak in KiB"))?;
    Ok(Run {
        seconds,
        peak_kib,
        log,
    })
}

/// The last line of `/usr/bin/time -f %M` output (earlier lines may be
/// "Command exited with non-zero status").
pub fn parse_time_peak(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())?
        .trim()
        .parse()
        .ok()
}

/// Peak resident memory (`VmHWM`, KiB) of a running process.
pub fn vm_hwm(pid: u32) -> Result<u64> {
    let p = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
    parse_vm_hwm(&text).with_context(|| format!("{p} has no VmHWM line"))
}

/// CPU time (user + system, every thread) a running process has used so
/// far, in clock ticks (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let p = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {p}"))?;
    parse_cpu_ticks(&text).with_context(|| format!("{p} has no utime and stime fields"))
}

/// utime + stime of a `/proc/PID/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its
/// last `)`.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so 14 and 15 are 11 and 12.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The `VmHWM:` figure of a `/proc/PID/status` text, in KiB.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A program on PATH (or an absolute path that exists), or an error
/// saying which Debian package to install.
pub fn require(tool: &str, package: &str) -> Result<PathBuf> {
    which(tool).with_context(|| {
        format!("{tool} is not installed: apt-get install -y {package} (or `just deps`)")
    })
}

/// Look a program up on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let p = Path::new(tool);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Run a command to completion; its stdout, or an error with its output.
pub fn output(program: &Path, args: &[&std::ffi::OsStr]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{} {:?} failed ({}):\n{}{}",
            program.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_after_the_command_name() {
        // A name with a space and a parenthesis, as /proc shows it.
        let stat = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 567 0 0 20 0 6 0 100 1000000 200";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_cpu_ticks("garbage"), None);
        // Spinning moves this process's own count (bounded, not timed).
        let me = cpu_ticks(std::process::id()).unwrap();
        let spin = std::time::Instant::now();
        while cpu_ticks(std::process::id()).unwrap() == me {
            assert!(spin.elapsed().as_secs() < 60, "no CPU time counted");
            std::hint::black_box((0..10_000u64).sum::<u64>());
        }
    }

    #[test]
    fn parses_time_and_status() {
        assert_eq!(parse_time_peak("12345\n"), Some(12345));
        assert_eq!(
            parse_time_peak("Command exited with non-zero status 1\n77\n"),
            Some(77)
        );
        assert_eq!(parse_time_peak(""), None);
        let status = "Name:\tx\nVmPeak:\t  999 kB\nVmHWM:\t    4242 kB\nVmRSS:\t 1 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(4242));
        assert_eq!(parse_vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn reads_its_own_peak() {
        assert!(vm_hwm(std::process::id()).unwrap() > 0);
        assert!(vm_hwm(u32::MAX).is_err());
    }
}
