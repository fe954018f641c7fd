//! `airlift-bench`: run the benchmarks, print the tables, write
//! `benchmarks/RESULTS.md`. Settings come from `AIRLIFT_BENCH_*`
//! variables (see `settings.rs`); `just bench` is the usual way in.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use airlift_bench::settings::Settings;
use airlift_bench::Binaries;

fn main() {
    // The flattening benchmark's child (see `flattening`): its own
    // process, so `/usr/bin/time` reports its own peak RSS.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == airlift_bench::flattening::CHILD_FLAG)
    {
        let (Some(spec), Some(store)) = (args.get(2), args.get(3)) else {
            eprintln!("airlift-bench: usage: airlift-bench --flatten-child LAYERS.json STORE");
            std::process::exit(2);
        };
        if let Err(e) = airlift_bench::flattening::child(Path::new(spec), Path::new(store)) {
            eprintln!("airlift-bench --flatten-child: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if let Err(e) = real_main() {
        eprintln!("airlift-bench: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("benchmarks/ has a parent")?
        .to_path_buf();
    let get = |k: &str| std::env::var(k).ok();
    let s = Settings::from_vars(get, &root)?;
    let exe = std::env::current_exe().context("finding airlift-bench")?;
    let bins = Binaries::in_dir(exe.parent().context("airlift-bench has a folder")?)?;
    let base = match std::env::var_os("AIRLIFT_BASE") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
            .join(".cache/airlift/base/current"),
    };
    let base = base.canonicalize().with_context(|| {
        format!(
            "the boot base {} is missing: run `just base`",
            base.display()
        )
    })?;
    let mut command = String::from("just bench");
    for o in Settings::overrides(get) {
        command = format!("{o} {command}");
    }
    let outcome = airlift_bench::run(&s, &bins, &base, &root, &command)?;
    // Sections measured by hand (`just measure-root`) are kept.
    let previous = std::fs::read_to_string(&s.results).unwrap_or_default();
    let document = airlift_bench::report::keep_by_hand(outcome.document, &previous);
    write_atomic(&s.results, document.as_bytes())?;
    println!("{document}");
    eprintln!("wrote {}", s.results.display());
    if !outcome.failures.is_empty() {
        anyhow::bail!(
            "{} part(s) failed:\n{}",
            outcome.failures.len(),
            outcome.failures.join("\n")
        );
    }
    Ok(())
}

/// Temp file beside `path`, write, fsync, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("making a temp file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
