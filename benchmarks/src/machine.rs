//! The machine the figures come from: cores, memory, kernel, disk.

use std::path::Path;
use std::process::Command;

/// A short description of this machine, one `- key: value` line each.
pub fn describe(work_dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    out.push(("cores (nproc)".to_string(), nproc.to_string()));
    if let Some(cpu) = read("/proc/cpuinfo").and_then(|t| cpu_model(&t)) {
        out.push(("cpu".to_string(), cpu));
    }
    if let Some(kib) = read("/proc/meminfo").and_then(|t| mem_total_kib(&t)) {
        out.push((
            "memory".to_string(),
            format!("{:.1} GiB", kib as f64 / (1u64 << 20) as f64),
        ));
    }
    let kernel = command("uname", &["-srm"]).unwrap_or_else(|| "unknown".to_string());
    out.push(("kernel".to_string(), kernel));
    if let Some(disk) = disk(work_dir) {
        out.push(("disk (work folder)".to_string(), disk));
    }
    out
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `model name` of the first CPU.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// `MemTotal` in KiB.
pub fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Device, filesystem, size and (for a block device) whether it spins.
fn disk(dir: &Path) -> Option<String> {
    let dir = dir.to_str()?;
    let df = command("df", &["-h", "--output=source,fstype,size,avail", dir])?;
    let line = df.lines().nth(1)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let (source, fstype, size, avail) = (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?);
    let mut s = format!("{source} ({fstype}, {size}, {avail} free)");
    if let Some(name) = source.strip_prefix("/dev/") {
        let rot = read(&format!("/sys/block/{name}/queue/rotational"));
        match rot.as_deref().map(str::trim) {
            Some("0") => s.push_str(", non-rotational"),
            Some("1") => s.push_str(", rotational"),
            _ => {}
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(
            mem_total_kib("MemTotal:       24576000 kB\n"),
            Some(24576000)
        );
        assert_eq!(mem_total_kib("nothing"), None);
    }

    #[test]
    fn describes_this_machine() {
        let d = describe(Path::new("/"));
        assert!(d.iter().any(|(k, _)| k == "cores (nproc)"));
        assert!(d.iter().any(|(k, _)| k == "kernel"));
    }
}
