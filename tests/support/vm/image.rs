//! The ISOs the VM tests boot: the boot base they are built from, the
//! real `airlift build` (then `airlift verify`), and [`built`], which
//! builds each image config once per test process and hands every module
//! of the `vm` binary the same file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::slots::Slot;
use crate::tools::workspace_root;

/// The ISO built from `config` (a path under the workspace root, e.g.
/// `image-configs/demo.yaml`), built on first use and shared by every test
/// of this process after: two modules booting the demo build it once.
/// Callers attach it read-only. Different configs are different files.
pub fn built(config: &str) -> &'static Path {
    static BUILT: Mutex<BTreeMap<String, &'static OnceLock<PathBuf>>> = Mutex::new(BTreeMap::new());
    // One cell per config, kept for the whole process (as the ISO is).
    let cell: &'static OnceLock<PathBuf> = BUILT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(config.to_string())
        .or_insert_with(|| Box::leak(Box::default()));
    // Only this config's callers wait for its build, outside the map's lock.
    cell.get_or_init(|| {
        let stem = Path::new(config)
            .file_stem()
            .unwrap_or_else(|| panic!("{config} names no file"))
            .to_string_lossy()
            .into_owned();
        let dir = iso_dir();
        let iso = dir.join(format!("{stem}.iso"));
        let took = build_image(&workspace_root().join(config), &iso);
        eprintln!("built {} in {took:.1?}", iso.display());
        iso
    })
}

/// A folder for this process's ISOs, kept until the process ends: no
/// hook runs then, so the folders of earlier test processes that have
/// ended are removed here instead (`airlift-isos-PID-*` in the temp folder).
fn iso_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("airlift-isos-")
            .and_then(|r| r.split('-').next());
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("airlift-isos-{}-", std::process::id()))
        .tempdir_in(&tmp)
        .expect("making a temp folder for the ISOs")
        .keep()
}

/// A copy of `iso` whose El Torito boot record (sector 17) no longer
/// names El Torito, so firmware can only boot it through the partition
/// table (OVMF reads El Torito on disks too). Everything past the
/// descriptor's type, `CD001` and version is zeroed (the boot system id
/// and the catalog's LBA); the header stays, since GRUB's ISO 9660 driver
/// refuses a volume whose descriptor chain holds a sector without `CD001`
/// and then cannot find the volume by its label.
pub fn without_el_torito(iso: &Path, out: &Path) -> Result<()> {
    fs::copy(iso, out).with_context(|| format!("copying {}", iso.display()))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(17 * 2048 + 7))?;
    f.write_all(&[0u8; 2048 - 7])?;
    f.sync_all()?;
    Ok(())
}

/// The boot base made by `just base`: `AIRLIFT_BASE`, else
/// `${AIRLIFT_CACHE:-~/.cache/airlift}/base/current`. Panics with what to
/// run when it is missing: boot tests never skip silently.
pub fn airlift_base() -> PathBuf {
    let base = match std::env::var_os("AIRLIFT_BASE") {
        Some(b) => PathBuf::from(b),
        None => {
            let cache = std::env::var_os("AIRLIFT_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                        .join(".cache/airlift")
                });
            cache.join("base/current")
        }
    };
    check_base(&base).unwrap_or_else(|e| panic!("{e}"))
}

/// `base` resolved, if `just base` finished making it (its `.complete`
/// marker exists); otherwise a message saying what to run.
pub fn check_base(base: &Path) -> std::result::Result<PathBuf, String> {
    if !base.join(".complete").is_file() {
        return Err(format!(
            "the boot base {} is missing or incomplete: run `just base` (scripts/make-base.sh)",
            base.display()
        ));
    }
    fs::canonicalize(base).map_err(|e| format!("resolving {}: {e}", base.display()))
}

/// Runs `airlift build CONFIG -o OUT` with `AIRLIFT_BASE` set and a fixed
/// `SOURCE_DATE_EPOCH`, then `airlift verify OUT`, so every ISO the tests
/// boot also passes the check users run; panics with airlift's output on
/// either failure. Returns the build's time alone.
pub fn build_image(config: &Path, out: &Path) -> Duration {
    let airlift = crate::tools::binary("airlift");
    // A build loads the cores as a VM does.
    let _slot = Slot::take(1);
    let start = Instant::now();
    let result = Command::new(&airlift)
        .arg("build")
        .arg(config)
        .arg("-o")
        .arg(out)
        .env("AIRLIFT_BASE", airlift_base())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("running airlift build");
    assert!(
        result.status.success(),
        "airlift build {} failed ({}):\n{}",
        config.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    let took = start.elapsed();
    let verify = Command::new(&airlift)
        .arg("verify")
        .arg(out)
        .output()
        .expect("running airlift verify");
    assert!(
        verify.status.success(),
        "airlift verify {} failed ({}):\n{}{}",
        out.display(),
        verify.status,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    took
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_base_says_to_run_just_base() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_base(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("run `just base`"), "{err}");
        // Present but unfinished (no marker) is missing too.
        let err = check_base(dir.path()).unwrap_err();
        assert!(err.contains("incomplete"), "{err}");
        fs::write(dir.path().join(".complete"), "").unwrap();
        assert!(check_base(dir.path()).is_ok());
    }
}
