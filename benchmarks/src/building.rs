//! Part 1: `airlift build` beside `xorriso -as mkisofs` and `cat`, on the
//! same payload, same disk, each output fsynced before the clock stops.
//! Rounds alternate airlift, xorriso, cat.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::measure::{self, Job, Run};
use crate::payload;
use crate::report::Table;
use crate::settings::Settings;
use crate::stats::{median, mib, num, ratio, rounds};
use crate::Binaries;

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
        "base:\n  kernel: {b}/vmlinuz\n  rootfs: {b}/rootfs-smoke\n  modulesDir: {b}/modules\n  \
         modules: [ata_piix, sr_mod, isofs]\n  bootloader:\n    isolinux: {b}/isolinux\n    \
         efi: {b}/efi/systemd-bootx64.efi\noverlays:\n  - {}\noutput:\n  volumeLabel: AIRLIFT_BENCH\n",
        overlay.display()
    ));
    s
}

/// Run part 1 and return its table.
pub fn run(s: &Settings, bins: &Binaries, base: &Path, root: &Path) -> Result<Table> {
    let xorriso = measure::require("xorriso", "xorriso")?;
    let cat = measure::require("cat", "coreutils")?;
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

    let airlift_job = |out: &Path| Job {
        program: bins.airlift.clone(),
        args: vec![
            "build".into(),
            config.clone().into(),
            "-o".into(),
            out.into(),
            "--firstboot".into(),
            bins.firstboot.clone().into(),
        ],
        env: vec![
            ("AIRLIFT_BASE".into(), base.display().to_string()),
            ("SOURCE_DATE_EPOCH".into(), "1700000000".into()),
            ("RUST_LOG".into(), "warn".into()),
        ],
        stdout_to: None,
        output: out.to_path_buf(),
    };

    // Warm-up build (not counted); its ISO gives the file tree xorriso and
    // cat get: the bundle folder, kernel, initramfs, boot files, as airlift
    // lays them out.
    eprintln!("[build] warm-up airlift build, then extracting its tree");
    let warm = dir.join("warm.iso");
    let _ = std::fs::remove_file(&warm);
    measure::run(&airlift_job(&warm), &scratch).context("warm-up airlift build")?;
    let tree = dir.join("tree");
    if tree.exists() {
        std::fs::remove_dir_all(&tree)?;
    }
    measure::output(
        &xorriso,
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
    let files = regular_files(&tree)?;
    let tree_bytes: u64 = files.iter().map(|(_, n)| n).sum();

    let xorriso_job = |out: &Path| Job {
        program: xorriso.clone(),
        args: ["-as", "mkisofs", "-R", "-J", "-quiet", "-o"]
            .into_iter()
            .map(OsString::from)
            .chain([out.into(), tree.clone().into()])
            .collect(),
        env: vec![],
        stdout_to: None,
        output: out.to_path_buf(),
    };
    let cat_job = |out: &Path| Job {
        program: cat.clone(),
        args: files
            .iter()
            .map(|(p, _)| p.clone().into_os_string())
            .collect(),
        env: vec![],
        stdout_to: Some(out.to_path_buf()),
        output: out.to_path_buf(),
    };

    let mut a: Vec<Run> = Vec::new();
    let mut steps: Vec<Steps> = Vec::new();
    let mut x: Vec<Run> = Vec::new();
    let mut c: Vec<Run> = Vec::new();
    let mut h: Vec<f64> = Vec::new();
    let out = dir.join("out.iso");
    let blobs = regular_files(&layout.join("blobs"))?;
    for round in 1..=s.rounds {
        let secs = hash_all(&blobs)?;
        eprintln!("[build] round {round}: sha256 of the payload blobs: {secs:.2}s");
        h.push(secs);
        for (name, job, into) in [
            ("airlift build", airlift_job(&out), &mut a),
            ("xorriso", xorriso_job(&out), &mut x),
            ("cat", cat_job(&out), &mut c),
        ] {
            let _ = std::fs::remove_file(&out);
            let r =
                measure::run(&job, &scratch).with_context(|| format!("round {round}: {name}"))?;
            eprintln!(
                "[build] round {round}: {name}: {:.2}s, {} KiB peak",
                r.seconds, r.peak_kib
            );
            if name == "airlift build" {
                steps.push(
                    parse_steps(&r.log).with_context(|| {
                        format!("airlift build printed no step times:\n{}", r.log)
                    })?,
                );
            }
            into.push(r);
        }
    }
    let _ = std::fs::remove_file(&out);

    Ok(table(s, tree_bytes, &a, &steps, &x, &c, &h))
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

fn table(
    s: &Settings,
    bytes: u64,
    a: &[Run],
    steps: &[Steps],
    x: &[Run],
    c: &[Run],
    h: &[f64],
) -> Table {
    let secs = |runs: &[Run]| runs.iter().map(|r| r.seconds).collect::<Vec<_>>();
    let peak = |runs: &[Run]| runs.iter().map(|r| r.peak_kib).max().map(|k| mib(k << 10));
    let (ta, tx, tc) = (secs(a), secs(x), secs(c));
    let ti: Vec<f64> = steps.iter().map(|s| s.iso).collect();
    let tb: Vec<f64> = steps.iter().map(|s| s.bundle).collect();
    let (ma, mx, mc, mi, mb) = (
        median(&ta),
        median(&tx),
        median(&tc),
        median(&ti),
        median(&tb),
    );
    let rate = |m: Option<f64>| num(m.map(|t| bytes as f64 / t / 1e6));
    // Step times come from airlift's report, in tenths of a second: 0.0
    // means "under 0.1 s", which has no meaningful rate or ratio.
    let below_resolution = |m: Option<f64>| m == Some(0.0);
    let step = |m: Option<f64>| {
        if below_resolution(m) {
            "< 0.1".to_string()
        } else {
            num(m)
        }
    };
    let step_or = |m: Option<f64>, cell: String| {
        if below_resolution(m) {
            "—".to_string()
        } else {
            cell
        }
    };
    let mut t = Table::new(
        &format!(
            "1. Building: {} MiB payload ({} images × {} MiB + {} MiB shared layer), median of {} rounds",
            mib(s.build_payload_bytes()),
            s.build_images,
            s.build_layer_mib,
            s.build_shared_mib,
            s.rounds
        ),
        &["what", "median s", "rounds s", "MB/s of tree bytes", "peak MiB", "÷ cat", "÷ xorriso"],
    );
    t.row(vec![
        "`airlift build` end to end (bundle + initramfs + ISO)".into(),
        num(ma),
        rounds(&ta),
        rate(ma),
        peak(a).unwrap_or_default(),
        ratio(ma, mc),
        ratio(ma, mx),
    ]);
    t.row(vec![
        "  its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back, fsync; as it reports)".into(),
        step(mi),
        rounds(&ti),
        step_or(mi, rate(mi)),
        "(same process)".into(),
        step_or(mi, ratio(mi, mc)),
        step_or(mi, ratio(mi, mx)),
    ]);
    t.row(vec![
        "  its bundle step alone (blobs hard-linked from the payload layout, manifests verified; as it reports)".into(),
        step(mb),
        rounds(&tb),
        step_or(mb, rate(mb)),
        "(same process)".into(),
        step_or(mb, ratio(mb, mc)),
        step_or(mb, ratio(mb, mx)),
    ]);
    let mh = median(h);
    t.row(vec![
        "  SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache)".into(),
        num(mh),
        rounds(h),
        rate(mh),
        "(bench process)".into(),
        ratio(mh, mc),
        ratio(mh, mx),
    ]);
    t.row(vec![
        "`xorriso -as mkisofs -R -J -o X.iso TREE`".into(),
        num(mx),
        rounds(&tx),
        rate(mx),
        peak(x).unwrap_or_default(),
        ratio(mx, mc),
        "1.00×".into(),
    ]);
    t.row(vec![
        "`cat TREE-files… > X` (the disk's limit)".into(),
        num(mc),
        rounds(&tc),
        rate(mc),
        peak(c).unwrap_or_default(),
        "1.00×".into(),
        ratio(mc, mx),
    ]);
    t.note(format!(
        "Tree: {} MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; \
         xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and \
         `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).",
        mib(bytes)
    ));
    t.note(
        "`airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local \
         OCI layout are hard-linked into its work bundle unread; the ISO writer copies each payload byte once \
         (copy_file_range) and checks every such blob's digest on the bytes it wrote, read back from the page \
         cache on a second thread: one read and one write of the payload, as for cat and xorriso. The step rows \
         come from its own report (0.1 s resolution); xorriso writes no boot records or ESP.",
    );
    let verdict = |name: &str, m: Option<f64>| -> String {
        match (m, mc, mx) {
            (Some(m), Some(c), Some(x)) => format!(
                "{name}: {:.2}× cat (aim ≤ 1.1×: {}), {:.2}× xorriso (aim < 1×: {})",
                m / c,
                if m / c <= 1.1 { "met" } else { "MISSED" },
                m / x,
                if m < x { "met" } else { "MISSED" }
            ),
            _ => format!("{name}: no figures"),
        }
    };
    t.note(verdict("airlift build end to end", ma));
    if let (Some(a), Some(c), Some(h)) = (ma, mc, mh) {
        t.note(format!(
            "airlift build − cat = {:.2} s; the SHA-256 check of every blob alone takes {h:.2} s of one core. \
             airlift runs it on a second thread beside the copy and the write-back, so it is hidden only while \
             a core is free (2 cores here, shared: see the load average).",
            a - c
        ));
    }
    t.note(verdict("airlift ISO step alone", mi));
    t
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
        assert!(y.contains("  - /ov\n"));
    }
}

#[cfg(test)]
/// The table text `just bench` prints and RESULTS.md records, from fixed
/// figures: the literals were rendered by the table code before it was
/// split into row groups (#16), so the split is checked byte for byte.
mod table_tests {
    use super::*;

    fn run(seconds: f64, peak_kib: u64) -> Run {
        Run {
            seconds,
            peak_kib,
            log: String::new(),
        }
    }

    fn settings() -> Settings {
        Settings::from_vars(|_| None, Path::new("/r")).unwrap()
    }

    #[test]
    fn table_text_with_every_figure() {
        let a = [run(6.0, 90_000), run(5.5, 120_000), run(7.25, 100_000)];
        let steps = [
            Steps {
                bundle: 0.0,
                initramfs: 0.3,
                iso: 4.1,
            },
            Steps {
                bundle: 0.0,
                initramfs: 0.4,
                iso: 3.9,
            },
            Steps {
                bundle: 0.0,
                initramfs: 0.3,
                iso: 4.4,
            },
        ];
        let x = [run(8.0, 40_000), run(8.5, 41_000), run(7.9, 39_000)];
        let c = [run(5.0, 1_000), run(5.2, 1_100), run(4.9, 900)];
        let h = [1.25, 1.5, 1.3];
        let t = table(&settings(), 2_200 << 20, &a, &steps, &x, &c, &h);
        assert_eq!(
            t.markdown(),
            r#"### 1. Building: 2064.0 MiB payload (8 images × 256 MiB + 16 MiB shared layer), median of 3 rounds

| what | median s | rounds s | MB/s of tree bytes | peak MiB | ÷ cat | ÷ xorriso |
|---|---|---|---|---|---|---|
| `airlift build` end to end (bundle + initramfs + ISO) | 6.00 | 6.00 / 5.50 / 7.25 | 384 | 117.2 | 1.20× | 0.75× |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back, fsync; as it reports) | 4.10 | 4.10 / 3.90 / 4.40 | 563 | (same process) | 0.82× | 0.51× |
|   its bundle step alone (blobs hard-linked from the payload layout, manifests verified; as it reports) | < 0.1 | 0.000 / 0.000 / 0.000 | — | (same process) | — | — |
|   SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache) | 1.30 | 1.25 / 1.50 / 1.30 | 1775 | (bench process) | 0.26× | 0.16× |
| `xorriso -as mkisofs -R -J -o X.iso TREE` | 8.00 | 8.00 / 8.50 / 7.90 | 288 | 40.0 | 1.60× | 1.00× |
| `cat TREE-files… > X` (the disk's limit) | 5.00 | 5.00 / 5.20 / 4.90 | 461 | 1.1 | 1.00× | 0.62× |

- Tree: 2200.0 MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).
- `airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local OCI layout are hard-linked into its work bundle unread; the ISO writer copies each payload byte once (copy_file_range) and checks every such blob's digest on the bytes it wrote, read back from the page cache on a second thread: one read and one write of the payload, as for cat and xorriso. The step rows come from its own report (0.1 s resolution); xorriso writes no boot records or ESP.
- airlift build end to end: 1.20× cat (aim ≤ 1.1×: MISSED), 0.75× xorriso (aim < 1×: met)
- airlift build − cat = 1.00 s; the SHA-256 check of every blob alone takes 1.30 s of one core. airlift runs it on a second thread beside the copy and the write-back, so it is hidden only while a core is free (2 cores here, shared: see the load average).
- airlift ISO step alone: 0.82× cat (aim ≤ 1.1×: met), 0.51× xorriso (aim < 1×: met)
"#
        );
    }

    #[test]
    fn table_text_with_missing_figures() {
        let steps = [Steps {
            bundle: 0.35,
            initramfs: 0.3,
            iso: 0.0,
        }];
        let t = table(&settings(), 0, &[], &steps, &[], &[run(0.5, 10)], &[]);
        assert_eq!(
            t.markdown(),
            r#"### 1. Building: 2064.0 MiB payload (8 images × 256 MiB + 16 MiB shared layer), median of 3 rounds

| what | median s | rounds s | MB/s of tree bytes | peak MiB | ÷ cat | ÷ xorriso |
|---|---|---|---|---|---|---|
| `airlift build` end to end (bundle + initramfs + ISO) | n/a |  | n/a |  | n/a | n/a |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back, fsync; as it reports) | < 0.1 | 0.000 | — | (same process) | — | — |
|   its bundle step alone (blobs hard-linked from the payload layout, manifests verified; as it reports) | 0.350 | 0.350 | 0.000 | (same process) | 0.70× | n/a |
|   SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache) | n/a |  | n/a | (bench process) | n/a | n/a |
| `xorriso -as mkisofs -R -J -o X.iso TREE` | n/a |  | n/a |  | n/a | 1.00× |
| `cat TREE-files… > X` (the disk's limit) | 0.500 | 0.500 | 0.000 | 0.0 | 1.00× | n/a |

- Tree: 0.0 MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).
- `airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local OCI layout are hard-linked into its work bundle unread; the ISO writer copies each payload byte once (copy_file_range) and checks every such blob's digest on the bytes it wrote, read back from the page cache on a second thread: one read and one write of the payload, as for cat and xorriso. The step rows come from its own report (0.1 s resolution); xorriso writes no boot records or ESP.
- airlift build end to end: no figures
- airlift ISO step alone: no figures
"#
        );
    }
}
