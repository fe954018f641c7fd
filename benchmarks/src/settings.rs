//! What to run and how big: read from `AIRLIFT_BENCH_*` environment
//! variables, with the issue's sizes as defaults and small ones under
//! `AIRLIFT_BENCH_QUICK=1`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// One part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `airlift build` beside `xorriso` and `cat`.
    Build,
    /// `airlift-firstboot serve` beside distribution v3 and `docker-registry`.
    Serve,
    /// `airlift-firstboot host0`: first pull and background load.
    FirstBoot,
    /// Nodes pulling from host0 and two replicas: spread or not.
    Replicas,
    /// `just e2e` (QEMU, ~10 min): the netboot timeline.
    EndToEnd,
    /// Flattening a base image's layers beside GNU `tar -x`.
    Flatten,
}

impl Part {
    fn parse(s: &str) -> Result<Part> {
        match s.trim() {
            "build" => Ok(Part::Build),
            "serve" => Ok(Part::Serve),
            "firstboot" | "first-boot" => Ok(Part::FirstBoot),
            "replicas" => Ok(Part::Replicas),
            "e2e" | "end-to-end" => Ok(Part::EndToEnd),
            "flatten" => Ok(Part::Flatten),
            other => bail!(
                "AIRLIFT_BENCH_PARTS: unknown part {other:?}; use a comma list of build, serve, firstboot, replicas, e2e, flatten"
            ),
        }
    }
}

/// Sizes, rounds and durations of one benchmark run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// A smoke run with tiny sizes: the figures mean nothing.
    pub quick: bool,
    pub parts: Vec<Part>,
    /// Rounds of each comparison (A B A B ...); the median is reported.
    pub rounds: usize,
    /// Part 1: images in the payload, each with one unique layer...
    pub build_images: usize,
    /// ...of this many MiB...
    pub build_layer_mib: u64,
    /// ...plus one layer of this many MiB shared by all of them.
    pub build_shared_mib: u64,
    /// Part 2: size of the blob fetched over and over.
    pub serve_blob_mib: u64,
    /// Part 2: concurrent connections to try.
    pub serve_connections: Vec<u32>,
    /// Part 2: seconds of each load run.
    pub serve_seconds: u64,
    /// Part 2: simulated nodes starting at once.
    pub serve_nodes: usize,
    /// Part 3: payload sizes in MiB.
    pub first_boot_mib: Vec<u64>,
    /// Part 7: uncompressed size of the synthetic base image, MiB.
    pub flatten_mib: u64,
    /// Where payloads and outputs go (same disk as the outputs measured).
    pub work_dir: PathBuf,
    /// Where the Markdown results are written.
    pub results: PathBuf,
}

impl Settings {
    /// Settings from `get` (the environment in `main`), relative paths
    /// resolved against `root` (the workspace).
    pub fn from_vars(
        get: impl Fn(&str) -> Option<String>,
        root: &std::path::Path,
    ) -> Result<Settings> {
        let quick =
            matches!(get("AIRLIFT_BENCH_QUICK").as_deref(), Some(v) if v != "0" && !v.is_empty());
        let num = |name: &str, full: u64, small: u64| -> Result<u64> {
            match get(name) {
                Some(v) => v
                    .trim()
                    .parse()
                    .with_context(|| format!("{name}={v:?} is not a whole number")),
                None => Ok(if quick { small } else { full }),
            }
        };
        let list = |name: &str, full: &[u64], small: &[u64]| -> Result<Vec<u64>> {
            match get(name) {
                Some(v) => v
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse()
                            .with_context(|| format!("{name}={v:?}: {s:?} is not a whole number"))
                    })
                    .collect(),
                None => Ok(if quick { small } else { full }.to_vec()),
            }
        };
        let parts = match get("AIRLIFT_BENCH_PARTS") {
            Some(v) => v.split(',').map(Part::parse).collect::<Result<Vec<_>>>()?,
            // Quick runs leave out the QEMU end-to-end test (~10 min).
            None if quick => vec![
                Part::Build,
                Part::Serve,
                Part::FirstBoot,
                Part::Replicas,
                Part::Flatten,
            ],
            None => vec![
                Part::Build,
                Part::Serve,
                Part::FirstBoot,
                Part::EndToEnd,
                Part::Replicas,
                Part::Flatten,
            ],
        };
        let path = |name: &str, default: &str| -> PathBuf {
            let p = PathBuf::from(get(name).unwrap_or_else(|| default.to_string()));
            if p.is_absolute() {
                p
            } else {
                root.join(p)
            }
        };
        let s = Settings {
            quick,
            parts,
            rounds: num("AIRLIFT_BENCH_ROUNDS", 3, 1)? as usize,
            build_images: num("AIRLIFT_BENCH_IMAGES", 8, 2)? as usize,
            build_layer_mib: num("AIRLIFT_BENCH_LAYER_MIB", 256, 4)?,
            build_shared_mib: num("AIRLIFT_BENCH_SHARED_MIB", 16, 1)?,
            serve_blob_mib: num("AIRLIFT_BENCH_BLOB_MIB", 64, 4)?,
            serve_connections: list("AIRLIFT_BENCH_CONNECTIONS", &[1, 16, 64], &[1, 16])?
                .into_iter()
                .map(|c| c as u32)
                .collect(),
            serve_seconds: num("AIRLIFT_BENCH_SERVE_SECONDS", 3, 1)?,
            serve_nodes: num("AIRLIFT_BENCH_NODES", 24, 8)? as usize,
            first_boot_mib: list("AIRLIFT_BENCH_FIRSTBOOT_MIB", &[100, 2048], &[4])?,
            flatten_mib: num("AIRLIFT_BENCH_FLATTEN_MIB", 1024, 16)?,
            work_dir: path("AIRLIFT_BENCH_DIR", "target/bench-work"),
            results: path("AIRLIFT_BENCH_RESULTS", "benchmarks/RESULTS.md"),
        };
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<()> {
        if self.rounds == 0 {
            bail!("AIRLIFT_BENCH_ROUNDS must be at least 1");
        }
        if self.build_images == 0 || self.build_layer_mib == 0 {
            bail!("AIRLIFT_BENCH_IMAGES and AIRLIFT_BENCH_LAYER_MIB must be at least 1");
        }
        if self.serve_blob_mib == 0 || self.serve_seconds == 0 || self.serve_nodes == 0 {
            bail!("AIRLIFT_BENCH_BLOB_MIB, AIRLIFT_BENCH_SERVE_SECONDS and AIRLIFT_BENCH_NODES must be at least 1");
        }
        if self.flatten_mib == 0 {
            bail!("AIRLIFT_BENCH_FLATTEN_MIB must be at least 1");
        }
        if self.serve_connections.contains(&0) {
            bail!("AIRLIFT_BENCH_CONNECTIONS: every count must be at least 1");
        }
        Ok(())
    }

    /// Unique payload bytes of part 1.
    pub fn build_payload_bytes(&self) -> u64 {
        (self.build_images as u64 * self.build_layer_mib + self.build_shared_mib) << 20
    }

    /// The `AIRLIFT_BENCH_*` variables that were set, for the report.
    pub fn overrides(get: impl Fn(&str) -> Option<String>) -> Vec<String> {
        VARS.iter()
            .filter_map(|v| get(v).map(|x| format!("{v}={x}")))
            .collect()
    }
}

/// Every variable [`Settings::from_vars`] reads.
pub const VARS: &[&str] = &[
    "AIRLIFT_BENCH_QUICK",
    "AIRLIFT_BENCH_PARTS",
    "AIRLIFT_BENCH_ROUNDS",
    "AIRLIFT_BENCH_IMAGES",
    "AIRLIFT_BENCH_LAYER_MIB",
    "AIRLIFT_BENCH_SHARED_MIB",
    "AIRLIFT_BENCH_BLOB_MIB",
    "AIRLIFT_BENCH_CONNECTIONS",
    "AIRLIFT_BENCH_SERVE_SECONDS",
    "AIRLIFT_BENCH_NODES",
    "AIRLIFT_BENCH_FIRSTBOOT_MIB",
    "AIRLIFT_BENCH_FLATTEN_MIB",
    "AIRLIFT_BENCH_DIR",
    "AIRLIFT_BENCH_RESULTS",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|k| m.get(k).cloned(), Path::new("/ws"))
    }

    #[test]
    fn defaults_are_the_issue_sizes() {
        let s = settings(&[]).unwrap();
        assert!(!s.quick);
        assert_eq!(s.rounds, 3);
        assert_eq!(s.serve_connections, vec![1, 16, 64]);
        assert_eq!(s.serve_blob_mib, 64);
        assert_eq!((s.serve_seconds, s.serve_nodes), (3, 24));
        assert!(s.build_payload_bytes() >= 2 << 30);
        assert_eq!(s.first_boot_mib, vec![100, 2048]);
        assert_eq!(s.work_dir, Path::new("/ws/target/bench-work"));
        assert_eq!(s.parts.len(), 6);
        assert_eq!(s.parts[3], Part::EndToEnd);
        assert_eq!(s.parts[4], Part::Replicas);
        assert_eq!(s.parts[5], Part::Flatten);
        assert_eq!(s.flatten_mib, 1024);
    }

    #[test]
    fn quick_shrinks_and_variables_override() {
        let s = settings(&[
            ("AIRLIFT_BENCH_QUICK", "1"),
            ("AIRLIFT_BENCH_LAYER_MIB", "9"),
        ])
        .unwrap();
        assert!(s.quick);
        assert_eq!(s.build_layer_mib, 9);
        assert_eq!(s.rounds, 1);
        assert!(!s.parts.contains(&Part::EndToEnd), "quick runs skip QEMU");
        assert!(s.parts.contains(&Part::Replicas));
        assert_eq!(s.flatten_mib, 16);
        assert!(!settings(&[("AIRLIFT_BENCH_QUICK", "0")]).unwrap().quick);
        let s = settings(&[
            ("AIRLIFT_BENCH_PARTS", "serve, build, replicas"),
            ("AIRLIFT_BENCH_CONNECTIONS", "2,4"),
            ("AIRLIFT_BENCH_DIR", "/scratch"),
        ])
        .unwrap();
        assert_eq!(s.parts, vec![Part::Serve, Part::Build, Part::Replicas]);
        assert_eq!(s.serve_connections, vec![2, 4]);
        assert_eq!(s.work_dir, Path::new("/scratch"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = settings(&[("AIRLIFT_BENCH_ROUNDS", "three")]).unwrap_err();
        assert!(format!("{e:#}").contains("AIRLIFT_BENCH_ROUNDS"));
        let e = settings(&[("AIRLIFT_BENCH_PARTS", "boot")]).unwrap_err();
        assert!(format!("{e:#}").contains("AIRLIFT_BENCH_PARTS"));
        assert!(settings(&[("AIRLIFT_BENCH_ROUNDS", "0")]).is_err());
        assert!(settings(&[("AIRLIFT_BENCH_CONNECTIONS", "1,0")]).is_err());
        assert!(settings(&[("AIRLIFT_BENCH_NODES", "0")]).is_err());
    }
}
