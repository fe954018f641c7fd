//! Part 7: flattening a base image (`base.image`, issue #21). A synthetic
//! image of several gzip layers (many small text-like files, a few large
//! incompressible ones, whiteouts and an opaque folder), about
//! `AIRLIFT_BENCH_FLATTEN_MIB` of uncompressed tar, is flattened by
//! airlift (`airlift_builder::baseimage::flatten`, fed as the pipeline
//! feeds it: gzip decoded while the compressed digest and the diff_id are
//! checked) and unpacked by GNU tar (`tar -xzf` of the same layers in
//! order, into one folder; tar applies no whiteouts). Each runs in its own
//! process under `/usr/bin/time`, so its peak RSS is its own: airlift's
//! side is this binary re-run with [`CHILD_FLAG`].

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

use crate::measure::{self, Job};
use crate::report::Table;
use crate::settings::Settings;
use crate::stats::{median, mib, num, ratio};

/// The flag that makes `airlift-bench` the flattening child:
/// `airlift-bench --flatten-child LAYERS.json STORE`.
pub const CHILD_FLAG: &str = "--flatten-child";

/// One layer file and its digests, as the child is told them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LayerFile {
    pub path: PathBuf,
    /// `sha256:…` of the gzip bytes.
    pub digest: String,
    /// `sha256:…` of the tar (the config's diff_id).
    pub diff_id: String,
    pub compressed_bytes: u64,
    pub tar_bytes: u64,
}

/// What goes into the image, from its target size (uncompressed bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Layer 1: small files (mean size [`SMALL_MEAN`]).
    pub small_1: u64,
    /// Layer 2: large incompressible files of this size.
    pub large_2: Vec<u64>,
    /// Layer 3: more small files; whiteouts of every 8th of layer 1's,
    /// an opaque marker on layer 1's first folder.
    pub small_3: u64,
    /// Layer 4: one large file; a whiteout of layer 2's first.
    pub large_4: u64,
}

/// Mean size of a small file (sizes spread over 512 B ..= 15.5 KiB).
pub const SMALL_MEAN: u64 = 8 << 10;
/// Small files per folder.
const PER_DIR: u64 = 256;

impl Plan {
    /// 25% small files, 50% in four large files, 15% small files with
    /// whiteouts, 10% in one large file.
    pub fn for_bytes(total: u64) -> Plan {
        let pct = |p: u64| total * p / 100;
        Plan {
            small_1: pct(25) / SMALL_MEAN,
            large_2: vec![pct(50) / 4; 4],
            small_3: pct(15) / SMALL_MEAN,
            large_4: pct(10),
        }
    }

    /// Regular files in all layers (before whiteouts).
    pub fn files(&self) -> u64 {
        self.small_1 + self.large_2.len() as u64 + self.small_3 + 1
    }
}

/// The size of small file `i`: 512 B to 15.5 KiB, mean [`SMALL_MEAN`].
fn small_size(i: u64) -> u64 {
    512 + (i.wrapping_mul(2_654_435_761) % 31) * 512
}

/// Text-like bytes (words from a small vocabulary, seeded): compresses
/// like configuration, scripts and documentation do.
fn text(seed: u64, size: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "kernel", "module", "service", "config", "root", "path", "value", "install",
        "debian", "system", "network", "device", "driver", "option", "enable", "default", "file",
        "user", "group", "=", "\n", "#", "{", "}", "0", "1", "true", "false", "/usr/lib", "/etc",
    ];
    let mut out = Vec::with_capacity(size as usize + 16);
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while (out.len() as u64) < size {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let w = WORDS[(s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 59) as usize % WORDS.len()];
        out.extend_from_slice(w.as_bytes());
        out.push(b' ');
    }
    out.truncate(size as usize);
    out
}

/// Seeded incompressible bytes, streamed (xorshift64*, as
/// `airlift_integration::images::random_bytes`).
struct Random {
    state: u64,
    left: u64,
}

impl Read for Random {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize / 8 * 8;
        let n = if n == 0 {
            self.left.min(buf.len() as u64) as usize
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state >> 12;
            self.state ^= self.state << 25;
            self.state ^= self.state >> 27;
            let v = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex_digest(h: Sha256) -> String {
    let d = h.finalize();
    let mut s = String::from("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// One member of a generated layer.
enum Member {
    Dir(String),
    Text(String, u64, u64),
    Random(String, u64, u64),
    Empty(String),
}

fn small_path(layer: u32, i: u64) -> String {
    format!("usr/share/bench{layer}/d{:04}/f{i:06}", i / PER_DIR)
}

/// The members of layer `n` (1..=4) of `plan`.
fn members(plan: &Plan, n: u32) -> Vec<Member> {
    let mut m = Vec::new();
    let dirs = |layer: u32, count: u64, m: &mut Vec<Member>| {
        m.push(Member::Dir(format!("usr/share/bench{layer}")));
        for d in 0..count.div_ceil(PER_DIR) {
            m.push(Member::Dir(format!("usr/share/bench{layer}/d{d:04}")));
        }
    };
    match n {
        1 => {
            for d in ["usr", "usr/share", "opt", "opt/big"] {
                m.push(Member::Dir(d.to_string()));
            }
            dirs(1, plan.small_1, &mut m);
            for i in 0..plan.small_1 {
                m.push(Member::Text(small_path(1, i), i, small_size(i)));
            }
        }
        2 => {
            for (i, &size) in plan.large_2.iter().enumerate() {
                m.push(Member::Random(
                    format!("opt/big/blob{i}.bin"),
                    1000 + i as u64,
                    size,
                ));
            }
        }
        3 => {
            dirs(3, plan.small_3, &mut m);
            for i in 0..plan.small_3 {
                m.push(Member::Text(small_path(3, i), 1 << 32 | i, small_size(i)));
            }
            for i in (0..plan.small_1).step_by(8).filter(|i| i / PER_DIR > 0) {
                let p = small_path(1, i);
                let (dir, name) = p.rsplit_once('/').unwrap();
                m.push(Member::Empty(format!("{dir}/.wh.{name}")));
            }
            m.push(Member::Empty(
                "usr/share/bench1/d0000/.wh..wh..opq".to_string(),
            ));
        }
        _ => {
            m.push(Member::Empty("opt/big/.wh.blob0.bin".to_string()));
            m.push(Member::Random(
                "opt/big/blob4.bin".to_string(),
                2000,
                plan.large_4,
            ));
        }
    }
    m
}

/// Write layer `n` of `plan` as gzip (level 6, as image builders do) to
/// `path`.
fn write_layer(plan: &Plan, n: u32, path: &Path) -> Result<LayerFile> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let compressed = HashWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(compressed, flate2::Compression::default());
    let tar_side = HashWriter {
        inner: gz,
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut b = tar::Builder::new(tar_side);
    for member in members(plan, n) {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match member {
            Member::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty())?;
            }
            Member::Text(p, seed, size) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(size);
                b.append_data(&mut h, p, text(seed, size).as_slice())?;
            }
            Member::Random(p, seed, size) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(size);
                let r = Random {
                    state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
                    left: size,
                };
                b.append_data(&mut h, p, r)?;
            }
            Member::Empty(p) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty())?;
            }
        }
    }
    let tar_side = b.into_inner()?;
    let (diff_id, tar_bytes) = (hex_digest(tar_side.hash), tar_side.bytes);
    let mut compressed = tar_side.inner.finish()?;
    compressed.flush()?;
    let file = compressed
        .inner
        .into_inner()
        .map_err(|e| anyhow::anyhow!("flushing {}: {}", path.display(), e.error()))?;
    file.sync_all()?;
    Ok(LayerFile {
        path: path.to_path_buf(),
        digest: hex_digest(compressed.hash),
        diff_id,
        compressed_bytes: compressed.bytes,
        tar_bytes,
    })
}

/// The layers of `plan` in `dir` (made once; kept while `layers.json`
/// is there).
fn ensure_layers(plan: &Plan, dir: &Path) -> Result<Vec<LayerFile>> {
    let spec = dir.join("layers.json");
    if let Ok(bytes) = fs::read(&spec) {
        if let Ok(layers) = serde_json::from_slice::<Vec<LayerFile>>(&bytes) {
            if layers.iter().all(|l| l.path.is_file()) {
                return Ok(layers);
            }
        }
    }
    fs::create_dir_all(dir)?;
    let mut layers = Vec::new();
    for n in 1..=4 {
        eprintln!("[flatten] writing layer {n} of 4");
        layers.push(write_layer(plan, n, &dir.join(format!("layer{n}.tar.gz")))?);
    }
    fs::write(&spec, serde_json::to_vec_pretty(&layers)?)?;
    Ok(layers)
}

/// The child: flatten the layers `spec` lists into `store` and print the
/// report as one line of JSON.
pub fn child(spec: &Path, store: &Path) -> Result<()> {
    use airlift_builder::baseimage::flatten::{flatten, Layer};
    use airlift_builder::baseimage::pull::open_layer;
    let layers: Vec<LayerFile> = serde_json::from_slice(&fs::read(spec)?)?;
    fs::create_dir(store).with_context(|| format!("creating {}", store.display()))?;
    // Each layer read exactly as `airlift build` reads a base image's:
    // gzip decoded, digest and diff_id checked while read.
    let feed = layers.into_iter().map(|l| -> Result<Layer<'static>> {
        let file = File::open(&l.path).with_context(|| format!("opening {}", l.path.display()))?;
        let desc = airlift_oci::Descriptor::new(
            airlift_oci::documents::media::OCI_LAYER_GZIP,
            l.digest.parse()?,
            l.compressed_bytes,
        );
        open_layer(
            Box::new(BufReader::with_capacity(1 << 20, file)),
            &desc,
            &l.diff_id.parse()?,
            "the benchmark's image",
        )
    });
    let f = flatten(feed, store)?;
    let r = &f.report;
    let cpu =
        measure::cpu_ticks(std::process::id())? as f64 / measure::clock_ticks_per_second() as f64;
    println!(
        "{}",
        serde_json::json!({
            "layers": r.layers, "files": r.files, "bytes": r.bytes,
            "whiteouts": r.whiteouts, "hardLinks": r.hard_links, "nodes": f.tree.len(),
            "cpuSeconds": cpu,
        })
    );
    Ok(())
}

/// Run part 7 and return its table.
pub fn run(s: &Settings) -> Result<Table> {
    let tar = measure::require("tar", "tar")?;
    let bash = measure::require("bash", "bash")?;
    measure::require("gzip", "gzip")?;
    let dir = s.work_dir.join("flatten");
    let plan = Plan::for_bytes(s.flatten_mib << 20);
    let layers = ensure_layers(&plan, &dir.join(format!("layers-{}", s.flatten_mib)))?;
    let spec = dir.join(format!("layers-{}/layers.json", s.flatten_mib));
    let tar_bytes: u64 = layers.iter().map(|l| l.tar_bytes).sum();
    let gz_bytes: u64 = layers.iter().map(|l| l.compressed_bytes).sum();
    let scratch = dir.join("scratch");
    fs::create_dir_all(&scratch)?;
    let store = dir.join("store");
    let unpacked = dir.join("tar-root");
    let exe = std::env::current_exe().context("finding airlift-bench")?;
    let airlift = Job {
        program: exe,
        args: vec![CHILD_FLAG.into(), spec.clone().into(), store.clone().into()],
        env: Vec::new(),
        stdout_to: Some(scratch.join("report.json")),
        output: dir.clone(),
    };
    // `times` last: the CPU time of tar and gzip (the shell's children).
    let mut script = String::from("set -e\n");
    for l in &layers {
        script.push_str(&format!(
            "{} --no-same-owner -xzf '{}' -C '{}'\n",
            tar.display(),
            l.path.display(),
            unpacked.display()
        ));
    }
    script.push_str("times\n");
    let gnu_tar = Job {
        program: bash,
        args: vec![OsString::from("-c"), script.into()],
        env: Vec::new(),
        stdout_to: None,
        output: dir.clone(),
    };
    let mut a = Vec::new();
    let mut t = Vec::new();
    let (mut a_cpu, mut t_cpu) = (Vec::new(), Vec::new());
    let mut report = String::new();
    for round in 0..s.rounds {
        eprintln!("[flatten] round {} of {}", round + 1, s.rounds);
        remove(&store)?;
        settle(&dir)?;
        a.push(measure::run(&airlift, &scratch)?);
        report = fs::read_to_string(scratch.join("report.json"))?;
        let r: serde_json::Value = serde_json::from_str(report.trim())
            .with_context(|| format!("the flattening child printed {report:?}"))?;
        a_cpu.push(r["cpuSeconds"].as_f64().unwrap_or(f64::NAN));
        remove(&store)?;
        remove(&unpacked)?;
        fs::create_dir_all(&unpacked)?;
        settle(&dir)?;
        let run = measure::run(&gnu_tar, &scratch)?;
        t_cpu.push(children_cpu(&run.log).unwrap_or(f64::NAN));
        t.push(run);
        remove(&unpacked)?;
    }
    let r: serde_json::Value = serde_json::from_str(report.trim())
        .with_context(|| format!("the flattening child printed {report:?}"))?;
    if r["layers"] != 4 {
        bail!(
            "the flattening child flattened {} layers, not 4",
            r["layers"]
        );
    }
    Ok(table(
        s,
        &plan,
        (tar_bytes, gz_bytes),
        &r,
        (&a, &a_cpu),
        (&t, &t_cpu),
    ))
}

/// User + system seconds of the children from bash's `times` (its last
/// line: `0m5.120s 0m1.030s`).
pub fn children_cpu(log: &str) -> Option<f64> {
    let line = log.lines().rev().find(|l| !l.trim().is_empty())?;
    let secs = |f: &str| -> Option<f64> {
        let (m, s) = f.strip_suffix('s')?.split_once('m')?;
        Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
    };
    let mut it = line.split_whitespace();
    Some(secs(it.next()?)? + secs(it.next()?)?)
}

/// `sync -f` of the work folder's filesystem, outside the clock: the
/// previous run's writes are on disk before the next run starts, so no
/// run pays for another's write-back.
fn settle(dir: &Path) -> Result<()> {
    let ok = std::process::Command::new("sync")
        .arg("-f")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        bail!("sync -f {} failed", dir.display());
    }
    Ok(())
}

fn remove(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

fn table(
    s: &Settings,
    plan: &Plan,
    (tar_bytes, gz_bytes): (u64, u64),
    report: &serde_json::Value,
    (airlift, airlift_cpu): (&[measure::Run], &[f64]),
    (tar, tar_cpu): (&[measure::Run], &[f64]),
) -> Table {
    let secs = |runs: &[measure::Run]| median(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>());
    let peak = |runs: &[measure::Run]| {
        median(
            &runs
                .iter()
                .map(|r| r.peak_kib as f64 / 1024.0)
                .collect::<Vec<_>>(),
        )
    };
    let rounds = |runs: &[measure::Run]| {
        runs.iter()
            .map(|r| format!("{:.2}", r.seconds))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mbs = |sec: Option<f64>| sec.map(|x| tar_bytes as f64 / 1e6 / x);
    let (sa, st) = (secs(airlift), secs(tar));
    let mut t = Table::new(
        &format!(
            "7. Flattening a base image: {} MiB of tar in 4 gzip layers ({} MiB compressed), median of {} rounds",
            mib(tar_bytes),
            mib(gz_bytes),
            s.rounds
        ),
        &[
            "what",
            "median s",
            "rounds s",
            "MB/s of tar",
            "CPU s (user+sys)",
            "peak RSS MiB",
            "÷ tar -x (time)",
            "÷ tar -x (CPU)",
        ],
    );
    t.row(vec![
        "airlift `baseimage::flatten` (gzip decoded with flate2, layer digest and diff_id checked, whiteouts applied, file bytes into a numbered store, the tree in memory)".into(),
        num(sa),
        rounds(airlift),
        num(mbs(sa)),
        num(median(airlift_cpu)),
        num(peak(airlift)),
        ratio(sa, st),
        ratio(median(airlift_cpu), median(tar_cpu)),
    ]);
    t.row(vec![
        "GNU `tar --no-same-owner -xzf` of each layer in order into one folder (gzip in its own process; no digests, no whiteouts)".into(),
        num(st),
        rounds(tar),
        num(mbs(st)),
        num(median(tar_cpu)),
        num(peak(tar)),
        "1.00×".into(),
        "1.00×".into(),
    ]);
    t.note(format!(
        "Image: layer 1 {} small text-like files (512 B–15.5 KiB, {} per folder), layer 2 {} incompressible files of {} MiB, layer 3 {} small files, whiteouts of every 8th file of layer 1 and an opaque folder, layer 4 one {} MiB file and a whiteout of a layer-2 file; {} regular files in all. airlift's tree: {} files, {} MiB, {} whiteouts applied, {} nodes.",
        plan.small_1,
        PER_DIR,
        plan.large_2.len(),
        mib(plan.large_2.first().copied().unwrap_or(0)),
        plan.small_3,
        mib(plan.large_4),
        plan.files(),
        report["files"],
        mib(report["bytes"].as_u64().unwrap_or(0)),
        report["whiteouts"],
        report["nodes"],
    ));
    t.note("airlift's side is one thread (decode, two SHA-256s, writes); tar's is two processes (tar, and gzip decoding beside it), so on a shared machine the wall time moves with the load, the CPU time much less: airlift's CPU figure is its own `/proc/self/stat`, tar's is bash's `times` for its children.");
    t.note("Each side is its own process under `/usr/bin/time` (peak RSS: its largest process; tar's is the larger of tar and gzip); the clock stops after `sync` of the work folder. Neither fsyncs the files it wrote (both leave them in the page cache). Outputs are removed between runs and the filesystem synced (`sync -f`), outside the clock, so no run pays for another's write-back. Layers are made once by the bench (flate2, level 6) and kept in the work folder.");
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_childrens_cpu_from_times() {
        let log = "0m0.001s 0m0.002s\n1m2.500s 0m0.500s\n";
        assert_eq!(children_cpu(log), Some(63.0));
        assert_eq!(children_cpu("nothing"), None);
    }

    #[test]
    fn the_plan_adds_up_to_the_size() {
        let p = Plan::for_bytes(1 << 30);
        let small = (p.small_1 + p.small_3) * SMALL_MEAN;
        let large: u64 = p.large_2.iter().sum::<u64>() + p.large_4;
        let total = small + large;
        assert!(total > (1 << 30) * 99 / 100 && total <= 1 << 30, "{total}");
        assert!(p.small_1 > 30_000, "many small files: {p:?}");
        assert_eq!((0..31).map(small_size).sum::<u64>() / 31, SMALL_MEAN);
    }

    /// A tiny image flattened by the child's code path fills the store
    /// (numbered folders of numbered files), and a damaged layer is
    /// refused naming its digest.
    #[test]
    fn layers_flatten_and_digests_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let plan = Plan::for_bytes(2 << 20);
        let layers = ensure_layers(&plan, dir.path()).unwrap();
        assert_eq!(layers.len(), 4);
        let store = dir.path().join("store");
        child(&dir.path().join("layers.json"), &store).unwrap();
        let (mut files, mut bytes) = (0u64, 0u64);
        for folder in fs::read_dir(&store).unwrap() {
            for f in fs::read_dir(folder.unwrap().path()).unwrap() {
                let meta = f.unwrap().metadata().unwrap();
                assert!(meta.is_file());
                files += 1;
                bytes += meta.len();
            }
        }
        assert!(
            files > 10 && bytes > 1 << 20,
            "{files} files, {bytes} bytes"
        );
        // A flipped byte in the last layer's gzip data: a digest error.
        let mut bytes = fs::read(&layers[3].path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        fs::write(&layers[3].path, bytes).unwrap();
        let e = child(&dir.path().join("layers.json"), &dir.path().join("store2")).unwrap_err();
        let text = format!("{e:#}");
        assert!(text.contains(&layers[3].digest), "{text}");
    }
}
