//! Part 1's table: airlift's build and its steps beside hashing alone,
//! xorriso and cat, with the verdicts against the aims. Pure: figures in,
//! Markdown table out.

use crate::measure::Run;
use crate::report::Table;
use crate::settings::Settings;
use crate::stats::{median, mib, num, ratio, rounds};

use super::Steps;

/// One command's runs, with the step times airlift reports (empty for
/// xorriso and cat).
#[derive(Debug, Default)]
pub(super) struct Runs {
    pub runs: Vec<Run>,
    pub steps: Vec<Steps>,
}

impl Runs {
    /// Each run's wall seconds.
    fn seconds(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.seconds).collect()
    }

    /// Each run's time for one step.
    fn step(&self, f: fn(&Steps) -> f64) -> Vec<f64> {
        self.steps.iter().map(f).collect()
    }
}

/// Every round's figures: airlift's first build and rebuild (with the
/// step times it reports), xorriso, cat, and the SHA-256 of the payload
/// blobs alone.
#[derive(Debug, Default)]
pub(super) struct Rounds {
    pub airlift: Runs,
    pub rebuild: Runs,
    pub xorriso: Runs,
    pub cat: Runs,
    pub hash: Vec<f64>,
}

/// The medians the rows and verdicts compare.
struct Medians {
    airlift: Option<f64>,
    iso: Option<f64>,
    rebuild: Option<f64>,
    rebuild_iso: Option<f64>,
    hash: Option<f64>,
    xorriso: Option<f64>,
    cat: Option<f64>,
}

/// The largest peak of `runs` in MiB, empty without runs.
fn peak(runs: &Runs) -> String {
    runs.runs
        .iter()
        .map(|r| r.peak_kib)
        .max()
        .map(|k| mib(k << 10))
        .unwrap_or_default()
}

/// MB/s of `bytes` in `m` seconds.
fn rate(bytes: u64, m: Option<f64>) -> String {
    num(m.map(|t| bytes as f64 / t / 1e6))
}

/// Step times come from airlift's report, in tenths of a second: 0.0
/// means "under 0.1 s", which has no meaningful rate or ratio.
fn below_resolution(m: Option<f64>) -> bool {
    m == Some(0.0)
}

/// Part 1's table from every round's figures; `bytes` is the size of the
/// tree xorriso and cat read.
pub(super) fn table(s: &Settings, bytes: u64, r: &Rounds) -> Table {
    let (iso, bundle) = (r.airlift.step(|s| s.iso), r.airlift.step(|s| s.bundle));
    let rebuild_iso = r.rebuild.step(|s| s.iso);
    let m = Medians {
        airlift: median(&r.airlift.seconds()),
        iso: median(&iso),
        rebuild: median(&r.rebuild.seconds()),
        rebuild_iso: median(&rebuild_iso),
        hash: median(&r.hash),
        xorriso: median(&r.xorriso.seconds()),
        cat: median(&r.cat.seconds()),
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
    t.row(run_row(
        "`airlift build` end to end, first build (bundle + initramfs + ISO; no verification record: every blob hashed)",
        m.airlift, &r.airlift, bytes, &m,
    ));
    t.row(step_row(
        "  its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back on a second thread, fsync; as it reports)",
        m.iso, &iso, bytes, &m,
    ));
    t.row(step_row(
        "  its bundle step alone (blobs symlinked from the payload layout, manifests verified; as it reports)",
        median(&bundle), &bundle, bytes, &m,
    ));
    t.row(run_row(
        "`airlift build` end to end, rebuild (the first build's verification record: blobs unchanged since their check copied unhashed)",
        m.rebuild, &r.rebuild, bytes, &m,
    ));
    t.row(step_row(
        "  its ISO step alone (SHA256SUMS, copy every payload byte once, each blob's device, inode, size, mtime and ctime compared before and after its copy, fsync; as it reports)",
        m.rebuild_iso, &rebuild_iso, bytes, &m,
    ));
    baseline_rows(&mut t, bytes, r, &m);
    notes(&mut t, bytes, &m);
    t
}

/// A row for a whole run of airlift, median `time`.
fn run_row(what: &str, time: Option<f64>, runs: &Runs, bytes: u64, m: &Medians) -> Vec<String> {
    vec![
        what.into(),
        num(time),
        rounds(&runs.seconds()),
        rate(bytes, time),
        peak(runs),
        ratio(time, m.cat),
        ratio(time, m.xorriso),
    ]
}

/// A row for one of the steps airlift reports, median `step`.
fn step_row(what: &str, step: Option<f64>, times: &[f64], bytes: u64, m: &Medians) -> Vec<String> {
    let or_dash = |cell: String| {
        if below_resolution(step) {
            "—".to_string()
        } else {
            cell
        }
    };
    vec![
        what.into(),
        if below_resolution(step) {
            "< 0.1".to_string()
        } else {
            num(step)
        },
        rounds(times),
        or_dash(rate(bytes, step)),
        "(same process)".into(),
        or_dash(ratio(step, m.cat)),
        or_dash(ratio(step, m.xorriso)),
    ]
}

/// The rows airlift is compared with: hashing alone, xorriso, cat.
fn baseline_rows(t: &mut Table, bytes: u64, r: &Rounds, m: &Medians) {
    t.row(vec![
        "  SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache)".into(),
        num(m.hash),
        rounds(&r.hash),
        rate(bytes, m.hash),
        "(bench process)".into(),
        ratio(m.hash, m.cat),
        ratio(m.hash, m.xorriso),
    ]);
    t.row(vec![
        "`xorriso -as mkisofs -R -J -o X.iso TREE`".into(),
        num(m.xorriso),
        rounds(&r.xorriso.seconds()),
        rate(bytes, m.xorriso),
        peak(&r.xorriso),
        ratio(m.xorriso, m.cat),
        "1.00×".into(),
    ]);
    t.row(vec![
        "`cat TREE-files… > X` (the disk's limit)".into(),
        num(m.cat),
        rounds(&r.cat.seconds()),
        rate(bytes, m.cat),
        peak(&r.cat),
        "1.00×".into(),
        ratio(m.cat, m.xorriso),
    ]);
}

/// What was measured and how, then the verdicts against the aims.
fn notes(t: &mut Table, bytes: u64, m: &Medians) {
    t.note(format!(
        "Tree: {} MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; \
         xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and \
         `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).",
        mib(bytes)
    ));
    t.note(
        "`airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local \
         OCI layout are symlinked into its work bundle unread; the ISO writer copies each payload byte once \
         (copy_file_range) from the source file. On a first build it checks every such blob's digest on the bytes \
         it wrote, read back from the page cache on a second thread, and records each checked file's device, \
         inode, size, mtime and ctime (`--cache`; only files last changed 2 s or more before the check); a \
         rebuild copies a file whose key is unchanged before and after its copy unhashed. The record is removed \
         before each round's first build. The step rows come from its own report (0.1 s resolution); xorriso \
         writes no boot records or ESP.",
    );
    t.note(verdict("airlift first build end to end", m.airlift, m));
    if let (Some(a), Some(c), Some(h)) = (m.airlift, m.cat, m.hash) {
        t.note(format!(
            "airlift first build − cat = {:.2} s; the SHA-256 check of every blob alone takes {h:.2} s of one core. \
             airlift runs it on a second thread beside the copy and the write-back, so it is hidden only while \
             a core is free (2 cores here, shared: see the load average).",
            a - c
        ));
    }
    t.note(verdict("airlift first build, ISO step alone", m.iso, m));
    t.note(verdict("airlift rebuild end to end", m.rebuild, m));
    t.note(verdict("airlift rebuild, ISO step alone", m.rebuild_iso, m));
}

/// `name`'s median `time` against the aims: at most 1.1× cat, under xorriso.
fn verdict(name: &str, time: Option<f64>, m: &Medians) -> String {
    match (time, m.cat, m.xorriso) {
        (Some(t), Some(c), Some(x)) => format!(
            "{name}: {:.2}× cat (aim ≤ 1.1×: {}), {:.2}× xorriso (aim < 1×: {})",
            t / c,
            if t / c <= 1.1 { "met" } else { "MISSED" },
            t / x,
            if t < x { "met" } else { "MISSED" }
        ),
        _ => format!("{name}: no figures"),
    }
}

#[cfg(test)]
/// The table text `just bench` prints and RESULTS.md records, from fixed
/// figures, byte for byte (the rebuild rows were checked by hand when
/// they were added).
mod tests {
    use std::path::Path;

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
        let rebuild = [run(5.2, 90_000), run(5.4, 91_000), run(5.1, 89_000)];
        let rebuild_steps = steps.map(|s| Steps {
            iso: s.iso - 0.8,
            ..s
        });
        let r = Rounds {
            airlift: Runs {
                runs: a.to_vec(),
                steps: steps.to_vec(),
            },
            rebuild: Runs {
                runs: rebuild.to_vec(),
                steps: rebuild_steps.to_vec(),
            },
            xorriso: Runs {
                runs: x.to_vec(),
                steps: vec![],
            },
            cat: Runs {
                runs: c.to_vec(),
                steps: vec![],
            },
            hash: h.to_vec(),
        };
        let t = table(&settings(), 2_200 << 20, &r);
        assert_eq!(
            t.markdown(),
            r#"### 1. Building: 2064.0 MiB payload (8 images × 256 MiB + 16 MiB shared layer), median of 3 rounds

| what | median s | rounds s | MB/s of tree bytes | peak MiB | ÷ cat | ÷ xorriso |
|---|---|---|---|---|---|---|
| `airlift build` end to end, first build (bundle + initramfs + ISO; no verification record: every blob hashed) | 6.00 | 6.00 / 5.50 / 7.25 | 384 | 117.2 | 1.20× | 0.75× |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back on a second thread, fsync; as it reports) | 4.10 | 4.10 / 3.90 / 4.40 | 563 | (same process) | 0.82× | 0.51× |
|   its bundle step alone (blobs symlinked from the payload layout, manifests verified; as it reports) | < 0.1 | 0.000 / 0.000 / 0.000 | — | (same process) | — | — |
| `airlift build` end to end, rebuild (the first build's verification record: blobs unchanged since their check copied unhashed) | 5.20 | 5.20 / 5.40 / 5.10 | 444 | 88.9 | 1.04× | 0.65× |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, each blob's device, inode, size, mtime and ctime compared before and after its copy, fsync; as it reports) | 3.30 | 3.30 / 3.10 / 3.60 | 699 | (same process) | 0.66× | 0.41× |
|   SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache) | 1.30 | 1.25 / 1.50 / 1.30 | 1775 | (bench process) | 0.26× | 0.16× |
| `xorriso -as mkisofs -R -J -o X.iso TREE` | 8.00 | 8.00 / 8.50 / 7.90 | 288 | 40.0 | 1.60× | 1.00× |
| `cat TREE-files… > X` (the disk's limit) | 5.00 | 5.00 / 5.20 / 4.90 | 461 | 1.1 | 1.00× | 0.62× |

- Tree: 2200.0 MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).
- `airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local OCI layout are symlinked into its work bundle unread; the ISO writer copies each payload byte once (copy_file_range) from the source file. On a first build it checks every such blob's digest on the bytes it wrote, read back from the page cache on a second thread, and records each checked file's device, inode, size, mtime and ctime (`--cache`; only files last changed 2 s or more before the check); a rebuild copies a file whose key is unchanged before and after its copy unhashed. The record is removed before each round's first build. The step rows come from its own report (0.1 s resolution); xorriso writes no boot records or ESP.
- airlift first build end to end: 1.20× cat (aim ≤ 1.1×: MISSED), 0.75× xorriso (aim < 1×: met)
- airlift first build − cat = 1.00 s; the SHA-256 check of every blob alone takes 1.30 s of one core. airlift runs it on a second thread beside the copy and the write-back, so it is hidden only while a core is free (2 cores here, shared: see the load average).
- airlift first build, ISO step alone: 0.82× cat (aim ≤ 1.1×: met), 0.51× xorriso (aim < 1×: met)
- airlift rebuild end to end: 1.04× cat (aim ≤ 1.1×: met), 0.65× xorriso (aim < 1×: met)
- airlift rebuild, ISO step alone: 0.66× cat (aim ≤ 1.1×: met), 0.41× xorriso (aim < 1×: met)
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
        let r = Rounds {
            airlift: Runs {
                runs: vec![],
                steps: steps.to_vec(),
            },
            cat: Runs {
                runs: vec![run(0.5, 10)],
                steps: vec![],
            },
            ..Rounds::default()
        };
        let t = table(&settings(), 0, &r);
        assert_eq!(
            t.markdown(),
            r#"### 1. Building: 2064.0 MiB payload (8 images × 256 MiB + 16 MiB shared layer), median of 3 rounds

| what | median s | rounds s | MB/s of tree bytes | peak MiB | ÷ cat | ÷ xorriso |
|---|---|---|---|---|---|---|
| `airlift build` end to end, first build (bundle + initramfs + ISO; no verification record: every blob hashed) | n/a |  | n/a |  | n/a | n/a |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, digest check of every blob read back on a second thread, fsync; as it reports) | < 0.1 | 0.000 | — | (same process) | — | — |
|   its bundle step alone (blobs symlinked from the payload layout, manifests verified; as it reports) | 0.350 | 0.350 | 0.000 | (same process) | 0.70× | n/a |
| `airlift build` end to end, rebuild (the first build's verification record: blobs unchanged since their check copied unhashed) | n/a |  | n/a |  | n/a | n/a |
|   its ISO step alone (SHA256SUMS, copy every payload byte once, each blob's device, inode, size, mtime and ctime compared before and after its copy, fsync; as it reports) | n/a |  | n/a | (same process) | n/a | n/a |
|   SHA-256 of every payload blob alone (airlift's hasher, one thread, page cache) | n/a |  | n/a | (bench process) | n/a | n/a |
| `xorriso -as mkisofs -R -J -o X.iso TREE` | n/a |  | n/a |  | n/a | 1.00× |
| `cat TREE-files… > X` (the disk's limit) | 0.500 | 0.500 | 0.000 | 0.0 | 1.00× | n/a |

- Tree: 0.0 MiB in the files of the warm-up ISO (bundle, kernel, initramfs, boot files), extracted with xorriso; xorriso and cat read it, airlift reads the payload OCI layout. Every output is on the same disk and `sync FILE` (fsync) runs before the clock stops, for all three. Page cache is not dropped (shared machine).
- `airlift build` re-bundles from its sources each time (no reuse of a previous bundle). Blobs of a local OCI layout are symlinked into its work bundle unread; the ISO writer copies each payload byte once (copy_file_range) from the source file. On a first build it checks every such blob's digest on the bytes it wrote, read back from the page cache on a second thread, and records each checked file's device, inode, size, mtime and ctime (`--cache`; only files last changed 2 s or more before the check); a rebuild copies a file whose key is unchanged before and after its copy unhashed. The record is removed before each round's first build. The step rows come from its own report (0.1 s resolution); xorriso writes no boot records or ESP.
- airlift first build end to end: no figures
- airlift first build, ISO step alone: no figures
- airlift rebuild end to end: no figures
- airlift rebuild, ISO step alone: no figures
"#
        );
    }
}
