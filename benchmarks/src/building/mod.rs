//! Part 1: `airlift build` beside `xorriso -as mkisofs` and `cat`, on the
//! same payload, same disk, each output fsynced before the clock stops.
//! Rounds alternate airlift's first build (no verification record: every
//! blob hashed), its rebuild (the record the first build left: unchanged
//! blobs copied unhashed), xorriso, cat.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::measure::{self, Job};
use crate::payload;
use crate::report::Table;
use crate::settings::Settings;
use crate::Binaries;

mod table;

use table::{table, Rounds};

/// The step times `airlift build` prints on its last line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Steps {
    pub bundle: f64,
    pub initramfs: f64,
    pub iso: f64,
}

/// Parse `bundle 1.2s, initramfs 0.3s, iso 4.5s` from airlift's log.
pub fn parse_steps(log: &str) -> Option<Steps> {
    let line = log.lines().rev().find(|l| l.contains(", iso "))?;
    let tail = line.rsplit(';').next()?;
    let secs = |key: &str| -> Option<f64> {
        tail.split(',')
            .map(str::trim)
            .find_map(|part| part.strip_prefix(key)?.trim().strip_suffix('s'))?
            .parse()
            .ok()
    };
    Some(Steps {
        bundle: secs("bundle")?,
        initramfs: secs("initramfs")?,
        iso: secs("iso")?,
    })
}

/// The image config for the payload, on the smoke boot base.
pub fn config_yaml(layout: &Path, refs: &[String], base: &Path, overlay: &Path) -> String {
    let mut s = String::from(
        "# Written by airlift-bench: the build benchmark's payload.\n\
         apiVersion: airlift/v1alpha1\nkind: Appliance\n\
         metadata:\n  name: bench\n  version: 0.1.0\nimages:\n",
    );
    for r in refs {
        s.push_str(&format!(
            "  - ref: registry.airlift.test/bench/{r}:1\n    from:\n      ociLayout: {{ path: \"{}\", ref: {r} }}\n",
            layout.display()
        ));
    }
    let b = base.display();
    s.push_str(&format!(
        "base:\n  kernel: {b}/vmlinuz\n  rootfs: {b}/rootfs-smoke\n  busybox: {b}/busybox\n  \
         modulesDir: {b}/modules\n  modules: [ata_piix, sr_mod, isofs, squashfs, loop, overlay]\n  \
         bootloader:\n    isolinux: {b}/isolinux\n    efi: {b}/efi/systemd-bootx64.efi\n    \
         shim: {b}/efi/shimx64.efi\n    grub: {b}/efi/grubx64.efi\n\
         overlays:\n  - {}\noutput:\n  volumeLabel: AIRLIFT_BENCH\n",
        overlay.display()
    ));
    s
}

/// Where part 1 works: its folders, the payload layout and the image config.
struct Workdir {
    dir: PathBuf,
    scratch: PathBuf,
    layout: PathBuf,
    config: PathBuf,
    /// airlift's verification record (`--cache`), removed before each
    /// first build.
    cache: PathBuf,
}

/// Run part 1 and return its table.
pub fn run(s: &Settings, bins: &Binaries, base: &Path, root: &Path) -> Result<Table> {
    let xorriso = measure::require("xorriso", "xorriso")?;
    let cat = measure::require("cat", "coreutils")?;
    let w = prepare(s, base, root)?;
    let airlift = |out: &Path| airlift_job(bins, &w, base, out);
    let tree = warm_up_tree(&w, &xorriso, &airlift)?;
    let files = regular_files(&tree)?;
    let tree_bytes: u64 = files.iter().map(|(_, n)| n).sum();
    let xorriso = |out: &Path| xorriso_job(&xorriso, &tree, out);
    let cat = |out: &Path| cat_job(&cat, &files, out);
    let rounds = measure_rounds(s, &w, [&airlift, &xorriso, &cat])?;
    Ok(table(s, tree_bytes, &rounds))
}

/// The working folders, the payload OCI layout (made once, kept across
/// runs) and the image config that builds it on the smoke boot base.
fn prepare(s: &Settings, base: &Path, root: &Path) -> Result<Workdir> {
    let dir = s.work_dir.join("build");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch)?;

    eprintln!(
        "[build] payload: {} images x {} MiB + {} MiB shared",
        s.build_images, s.build_layer_mib, s.build_shared_mib
    );
    let layout = dir.join("payload");
    let images = payload::build_images(s.build_images, s.build_layer_mib, s.build_shared_mib);
    let made = payload::ensure_layout(&layout, &images)?;
    let refs: Vec<String> = made.iter().map(|m| m.ref_name.clone()).collect();
    let config = dir.join("bench.yaml");
    std::fs::write(
        &config,
        config_yaml(&layout, &refs, base, &root.join("overlays/smoke")),
    )?;
    Ok(Workdir {
        cache: dir.join("cache"),
        dir,
        scratch,
        layout,
        config,
    })
}

/// `airlift build` of the payload config into `out`, its verification
/// record in the work folder.
fn airlift_job(bins: &Binaries, w: &Workdir, base: &Path, out: &Path) -> Job {
    Job {
        program: bins.airlift.clone(),
        args: vec![
            "build".into(),
            w.config.clone().into(),
            "-o".into(),
            out.into(),
            "--firstboot".into(),
            bins.firstboot.clone().into(),
            "--cache".into(),
            w.cache.clone().into(),
        ],
        env: vec![
            ("AIRLIFT_BASE".into(), base.display().to_string()),
            ("SOURCE_DATE_EPOCH".into(), "1700000000".into()),
            ("RUST_LOG".into(), "warn".into()),
        ],
        stdout_to: None,
        output: out.to_path_buf(),
    }
}

/// `xorriso -as mkisofs` of the extracted tree into `out`.
fn xorriso_job(xorriso: &Path, tree: &Path, out: &Path) -> Job {
    Job {
        program: xorriso.to_path_buf(),
        args: ["-as", "mkisofs", "-R", "-J", "-quiet", "-o"]
            .into_iter()
            .map(OsString::from)
            .chain([out.into(), tree.into()])
            .collect(),
        env: vec![],
        stdout_to: None,
        output: out.to_path_buf(),
    }
}

/// `cat` of every file of the tree into `out`.
fn cat_job(cat: &Path, files: &[(PathBuf, u64)], out: &Path) -> Job {
    Job {
        program: cat.to_path_buf(),
        args: files
            .iter()
            .map(|(p, _)| p.clone().into_os_string())
            .collect(),
        env: vec![],
        stdout_to: Some(out.to_path_buf()),
        output: out.to_path_buf(),
    }
}

/// Warm-up build (not counted); its ISO gives the file tree xorriso and
/// cat get: the bundle folder, kernel, initramfs, boot files, as airlift
/// lays them out. Returns the extracted tree's folder.
fn warm_up_tree(w: &Workdir, xorriso: &Path, airlift: &dyn Fn(&Path) -> Job) -> Result<PathBuf> {
    eprintln!("[build] warm-up airlift build, then extracting its tree");
    let warm = w.dir.join("warm.iso");
    let _ = std::fs::remove_file(&warm);
    measure::run(&airlift(&warm), &w.scratch).context("warm-up airlift build")?;
    let tree = w.dir.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree)?;
    }
    measure::output(
        xorriso,
        &[
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            warm.as_os_str(),
            "-extract".as_ref(),
            "/".as_ref(),
            tree.as_os_str(),
        ],
    )
    .context("extracting the warm-up ISO's tree with xorriso")?;
    std::fs::remove_file(&warm)?;
    Ok(tree)
}

/// The measured rounds: each hashes the payload blobs, then runs
/// airlift's first build (its record removed), its rebuild, xorriso and
/// cat in that order into the same output file.
fn measure_rounds(s: &Settings, w: &Workdir, jobs: [&dyn Fn(&Path) -> Job; 3]) -> Result<Rounds> {
    let [airlift, xorriso, cat] = jobs;
    let mut r = Rounds::default();
    let out = w.dir.join("out.iso");
    let blobs = regular_files(&w.layout.join("blobs"))?;
    for round in 1..=s.rounds {
        let secs = hash_all(&blobs)?;
        eprintln!("[build] round {round}: sha256 of the payload blobs: {secs:.2}s");
        r.hash.push(secs);
        if w.cache.exists() {
            std::fs::remove_dir_all(&w.cache)
                .with_context(|| format!("removing {}", w.cache.display()))?;
        }
        for (name, job, into) in [
            ("airlift build", airlift(&out), &mut r.airlift),
            ("airlift rebuild", airlift(&out), &mut r.rebuild),
            ("xorriso", xorriso(&out), &mut r.xorriso),
            ("cat", cat(&out), &mut r.cat),
        ] {
            let _ = std::fs::remove_file(&out);
            let run =
                measure::run(&job, &w.scratch).with_context(|| format!("round {round}: {name}"))?;
            eprintln!(
                "[build] round {round}: {name}: {:.2}s, {} KiB peak",
                run.seconds, run.peak_kib
            );
            if name.starts_with("airlift") {
                let steps = parse_steps(&run.log)
                    .with_context(|| format!("{name} printed no step times:\n{}", run.log))?;
                into.steps.push(steps);
            }
            into.runs.push(run);
        }
    }
    let _ = std::fs::remove_file(&out);
    Ok(r)
}

/// Seconds to SHA-256 every file of `files` with airlift's own hasher,
/// one thread, in this process: the verification `airlift build` pays
/// that cat and xorriso do not.
fn hash_all(files: &[(PathBuf, u64)]) -> Result<f64> {
    let start = std::time::Instant::now();
    for (p, _) in files {
        let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
        airlift_oci::digest::hash_reader(airlift_oci::Algorithm::Sha256, f)
            .with_context(|| format!("hashing {}", p.display()))?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Every regular file under `dir`, sorted, with its size.
fn regular_files(dir: &Path) -> Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push((e.path(), e.metadata()?.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_airlift_step_times() {
        let log = "INFO something\nwrote /x.iso: 123 bytes; 8 images; initramfs 9 bytes (3 modules, kernel 6.1.0); \
                   bundle 12.3s, initramfs 0.4s, iso 5.6s\n";
        assert_eq!(
            parse_steps(log),
            Some(Steps {
                bundle: 12.3,
                initramfs: 0.4,
                iso: 5.6
            })
        );
        assert_eq!(parse_steps("nothing here"), None);
    }

    #[test]
    fn config_names_every_image() {
        let y = config_yaml(
            Path::new("/p"),
            &["img0".into(), "img1".into()],
            Path::new("/base"),
            Path::new("/ov"),
        );
        assert!(y.contains("ref: registry.airlift.test/bench/img1:1"));
        assert!(y.contains("ociLayout: { path: \"/p\", ref: img0 }"));
        assert!(y.contains("kernel: /base/vmlinuz"));
        assert!(y.contains("busybox: /base/busybox"));
        assert!(y.contains("shim: /base/efi/shimx64.efi\n    grub: /base/efi/grubx64.efi\n"));
        assert!(y.contains("  - /ov\n"));
    }
}
