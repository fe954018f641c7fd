//! `airlift-bench`: airlift's figures beside its peers, in one run.
//!
//! 1. building: `airlift build` vs `xorriso -as mkisofs` vs `cat`;
//! 2. serving: `airlift-firstboot serve` vs distribution v3 and
//!    `docker-registry`, plain HTTP and TLS, with the bench's load client;
//! 3. first boot: `airlift-firstboot host0`;
//! 4. end to end: `just e2e`'s netboot timeline under QEMU TCG;
//! 5. replicas: simulated nodes pulling from host0 and two replicas;
//! 7. flattening a base image's layers vs GNU `tar -x` of them.
//!
//! Every comparison runs both sides in the same run, alternating, and
//! reports medians. Nothing here passes or fails on time.

pub mod boot_breakdown;
pub mod building;
pub mod end_to_end;
pub mod first_boot;
pub mod flattening;
pub mod go_registry;
pub mod load;
pub mod load_sharing;
pub mod machine;
pub mod measure;
pub mod payload;
pub mod report;
pub mod servers;
pub mod serving;
pub mod settings;
pub mod stats;
pub mod tls_files;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use report::Table;
use settings::{Part, Settings};

/// The binaries measured.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub airlift: PathBuf,
    pub firstboot: PathBuf,
}

impl Binaries {
    /// `airlift` and `airlift-firstboot` in `dir` (cargo's
    /// `target/release`), or an error saying what to build.
    pub fn in_dir(dir: &Path) -> Result<Binaries> {
        let b = Binaries {
            airlift: dir.join("airlift"),
            firstboot: dir.join("airlift-firstboot"),
        };
        for p in [&b.airlift, &b.firstboot] {
            if !p.is_file() {
                anyhow::bail!(
                    "{} is not built: run `cargo build --release -p airlift-builder -p airlift-firstboot` \
                     (`just bench` does)",
                    p.display()
                );
            }
        }
        Ok(b)
    }
}

/// What one run produced.
pub struct Outcome {
    /// The Markdown document (machine, date, command, tables).
    pub document: String,
    /// Parts that failed, with their errors (also in the document).
    pub failures: Vec<String>,
}

/// Run the parts `s` asks for. A part that fails becomes a table holding
/// its error; the others still run.
pub fn run(
    s: &Settings,
    bins: &Binaries,
    base: &Path,
    root: &Path,
    command: &str,
) -> Result<Outcome> {
    std::fs::create_dir_all(&s.work_dir)
        .with_context(|| format!("creating the work folder {}", s.work_dir.display()))?;
    let load_start = load_average();
    let mut tables = Vec::new();
    let mut failures = Vec::new();
    let mut failed = |part: &str, e: anyhow::Error, tables: &mut Vec<Table>| {
        let mut t = Table::new(part, &["error"]);
        t.row(vec![format!("{e:#}").replace('\n', " ")]);
        failures.push(format!("{part}: {e:#}"));
        tables.push(t);
    };
    for part in &s.parts {
        match part {
            Part::Build => match building::run(s, bins, base, root) {
                Ok(t) => tables.push(t),
                Err(e) => failed("1. Building", e, &mut tables),
            },
            Part::Serve => match serving::run(s, bins) {
                Ok(t) => tables.extend(t),
                Err(e) => failed("2. Serving", e, &mut tables),
            },
            Part::FirstBoot => match first_boot::run(s, bins) {
                Ok(t) => tables.push(t),
                Err(e) => failed("3. First boot", e, &mut tables),
            },
            Part::Replicas => match load_sharing::run(s, bins) {
                Ok(t) => tables.push(t),
                Err(e) => failed("5. Replicas", e, &mut tables),
            },
            Part::EndToEnd => match end_to_end::run(s, root, &bins.firstboot) {
                Ok(t) => tables.extend(t),
                Err(e) => failed("4. End to end", e, &mut tables),
            },
            Part::Flatten => match flattening::run(s) {
                Ok(t) => tables.push(t),
                Err(e) => failed("7. Flattening a base image", e, &mut tables),
            },
        }
    }
    if !s.parts.contains(&Part::EndToEnd) {
        tables.push(end_to_end::skipped(if s.quick {
            "not run in quick mode (AIRLIFT_BENCH_PARTS=e2e runs it)"
        } else {
            "not run (AIRLIFT_BENCH_PARTS leaves out e2e)"
        }));
    }
    for t in &tables {
        eprintln!("\n{}", t.markdown());
    }
    let mut pre = preamble(s, root, command);
    pre.push_str(&format!(
        "- load average (1/5/15 min) at start: {load_start}; at end: {} (other work shares this machine)\n",
        load_average()
    ));
    Ok(Outcome {
        document: report::document(&pre, &tables),
        failures,
    })
}

/// `/proc/loadavg`'s first three fields.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The commit measured, and whether the measured crates had uncommitted
/// changes (the binaries are built from the work tree).
fn source_state(root: &Path) -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git work tree)".to_string();
    };
    match git(&[
        "status",
        "--porcelain",
        "--",
        "builder",
        "bundle",
        "firstboot",
    ]) {
        Some(dirty) if !dirty.is_empty() => {
            format!("commit {commit}, plus uncommitted changes in builder/, bundle/ or firstboot/ (built as found)")
        }
        _ => format!("commit {commit}"),
    }
}

fn preamble(s: &Settings, root: &Path, command: &str) -> String {
    let mut p = String::from("# airlift benchmark results\n\n");
    if s.quick {
        p.push_str("**Quick smoke run (AIRLIFT_BENCH_QUICK=1): tiny sizes, one round; these figures mean nothing.**\n\n");
    }
    p.push_str(
        "Written by `just bench` (benchmarks/src). Figures and ratios only: nothing passes or fails on time. \
         Each comparison runs both sides in the same run, alternating, and reports the median.\n\n",
    );
    let date = measure::output(
        Path::new("date"),
        &["-u".as_ref(), "+%Y-%m-%d %H:%M UTC".as_ref()],
    )
    .map(|d| d.trim().to_string())
    .unwrap_or_else(|_| "unknown".to_string());
    p.push_str(&format!("- date: {date}\n- command: `{command}`\n"));
    p.push_str(&format!("- source: {}\n", source_state(root)));
    for (k, v) in machine::describe(&s.work_dir) {
        p.push_str(&format!("- {k}: {v}\n"));
    }
    p
}
